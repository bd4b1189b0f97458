"""``runs/<profile>/reproduction.md``: a rerun of the study (``make demo``, on the reader's machine) set
beside the committed one: every committed finding with the rerun's verdict (a flip between "holds" and
"does not hold" listed first), and every measurement both ledgers hold with its difference against the
entry's seed noise (how much the same experiment moves between seeds on the committed machine).

The seed noise of a reward entry is the pooled standard deviation over seeds of the replicated settings
of the committed ledger, per task (the study replicates some settings for exactly this); measurements
of kinds without replicates are reported as differences only.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from .files import write_text
from .index import NOT_MEASURED
from .ledger import Ledger
from .verdicts import DOES_NOT_HOLD, HOLDS

#: kinds whose value is one accuracy in percent (what "a shared measurement" is compared by)
SCALAR_KINDS = ("reward.knn", "reward.knn_val", "reward.linear", "evaluate.protocol")


def seed_noise(ledger: Ledger, kind: str = "reward.knn") -> dict[str, float]:
    """Per task, the pooled SD over seeds of the replicated settings' ``kind`` values in ``ledger``."""
    groups: dict[tuple[str, str], list[float]] = defaultdict(list)
    for rec in ledger.current(kind).values():
        ident = rec.identity
        if "setting" in ident:
            groups[(ident["task"], ident["setting"])].append(float(rec.value["value"]))
    ss: dict[str, float] = defaultdict(float)
    dof: dict[str, int] = defaultdict(int)
    for (task, _), values in groups.items():
        if len(values) > 1:
            mean = sum(values) / len(values)
            ss[task] += sum((v - mean) ** 2 for v in values)
            dof[task] += len(values) - 1
    return {t: math.sqrt(ss[t] / dof[t]) for t in ss if dof[t] > 0}


def compare_ledgers(committed: Ledger, rerun: Ledger) -> list[dict[str, Any]]:
    """One row per measurement both ledgers hold: kind, what, committed and rerun value, difference,
    and the difference in units of the task's seed noise (where the committed ledger has replicates)."""
    noise = seed_noise(committed)
    rows = []
    for kind in SCALAR_KINDS:
        mine = rerun.current(kind)
        for key, rec in committed.current(kind).items():
            if key not in mine:
                continue
            ident = rec.identity
            task = ident.get("task", "?")
            inner = ident.get("backbone")  # evaluate.protocol: the reward cell's identity
            backbone = ident.get("setting") or (inner.get("setting") or inner.get("backbone")
                                                if isinstance(inner, dict) else inner)
            a, b = float(rec.value["value"]), float(mine[key].value["value"])
            sd = noise.get(task)
            rows.append({"kind": kind, "task": task, "backbone": str(backbone), "seed": ident.get("seed"),
                         "committed": a, "rerun": b, "difference": b - a,
                         "in_seed_sd": (b - a) / sd if sd else None,
                         "committed_cpu": rec.provenance.get("cpu"), "rerun_cpu": mine[key].provenance.get("cpu")})
    return rows


def compare_findings(committed: dict[str, Any], rerun: dict[str, Any]) -> list[dict[str, Any]]:
    """Every committed finding beside the rerun's; flips between holds and does not hold first."""
    rows = []
    for item, old in committed.items():
        new = rerun.get(item) or {"verdict": NOT_MEASURED}
        flip = {old.get("verdict"), new.get("verdict")} == {HOLDS, DOES_NOT_HOLD}
        rows.append({"item": item, "committed": old.get("verdict"), "committed_interval": old.get("interval"),
                     "rerun": new.get("verdict"), "rerun_interval": new.get("interval"), "flip": flip,
                     "same": old.get("verdict") == new.get("verdict")})
    return sorted(rows, key=lambda r: (not r["flip"], r["same"], r["item"]))


def _interval(iv) -> str:
    return f"[{iv[0]:+.3g}, {iv[1]:+.3g}]" if iv else "-"


def write_reproduction(committed_figures: Path, committed_ledger: Path, rerun_figures: Path, rerun_ledger: Path,
                       out: Path) -> Path:
    """Write the report comparing a rerun (its figures and ledger folders) with the committed study."""
    def findings(folder: Path) -> dict[str, Any]:
        path = Path(folder) / "findings.json"
        return json.loads(path.read_text()) if path.is_file() else {}

    verdicts = compare_findings(findings(committed_figures), findings(rerun_figures))
    rows = compare_ledgers(Ledger(committed_ledger), Ledger(rerun_ledger))
    flips = [r for r in verdicts if r["flip"]]
    lines = ["# Reproduction: this machine's rerun beside the committed study", "",
             f"Committed: `{committed_figures}` and `{committed_ledger}`; rerun: `{rerun_figures}` and `{rerun_ledger}`.",
             "", f"**{len(flips)} finding(s) flipped between holds and does not hold**"
             + (": " + ", ".join(r["item"] for r in flips) if flips else "."), "",
             "## Findings", "", "| item | committed | interval | rerun | interval |", "|---|---|---|---|---|"]
    for r in verdicts:
        mark = " **(flipped)**" if r["flip"] else ""
        lines.append(f"| {r['item']}{mark} | {r['committed']} | {_interval(r['committed_interval'])} | {r['rerun']} | "
                     f"{_interval(r['rerun_interval'])} |")
    lines += ["", "## Shared measurements", ""]
    if not rows:
        lines.append("The two ledgers share no measurement (different profiles, recipes or numerics versions).")
    else:
        scored = [r for r in rows if r["in_seed_sd"] is not None]
        within1 = sum(abs(r["in_seed_sd"]) <= 1 for r in scored)
        within2 = sum(abs(r["in_seed_sd"]) <= 2 for r in scored)
        cpus = sorted({str(r["rerun_cpu"]) for r in rows}), sorted({str(r["committed_cpu"]) for r in rows})
        lines += [f"{len(rows)} measurements in both ledgers (rerun on {', '.join(cpus[0])}; committed on "
                  f"{', '.join(cpus[1])}). Of the {len(scored)} with a seed-noise estimate, {within1} differ by at most "
                  f"one seed SD and {within2} by at most two (about 68 % and 95 % if the machines differ no more than "
                  "seeds do).", "", "Largest differences in seed SDs:", "",
                  "| kind | task | backbone | seed | committed | rerun | difference | in seed SDs |", "|---|---|---|---|---|---|---|---|"]
        for r in sorted(scored, key=lambda r: -abs(r["in_seed_sd"]))[:15]:
            lines.append(f"| {r['kind']} | {r['task']} | {r['backbone']} | {r['seed']} | {r['committed']:.2f} | "
                         f"{r['rerun']:.2f} | {r['difference']:+.2f} | {r['in_seed_sd']:+.2f} |")
    return write_text(out, "\n".join(lines) + "\n")
