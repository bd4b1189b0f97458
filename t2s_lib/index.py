"""``figures/INDEX.md``: one row per item of the paper's supplementary (Table 1, Table 2, Figure 1 ... 11)
naming the files in ``figures/`` that regenerate it, the notebook and profile that wrote them, the
commit, and one sentence on whether the paper's qualitative finding holds at this scale.

The sentences are measured, not written by hand: the notebook that makes an item's figure calls
:func:`record_finding` with a verdict and the numbers behind it; they are kept in
``<figures>/findings.json`` and :func:`write_index` (the last notebook) assembles the table.
A comparative verdict (``holds``, ``does not hold``, ``not resolved at this scale``) comes from
:func:`t2s_lib.verdicts.verdict` and is stored with its 95 % ``interval``; ``not testable here``
and ``n/a`` need none. A finding recorded by an earlier rule (no interval) is shown as such.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass
from pathlib import Path

from .files import write_json, write_text
from .profiles import Profile

from .verdicts import DOES_NOT_HOLD, HOLDS, NOT_RESOLVED, Interval, finite_rounded

COMPARATIVE = (HOLDS, DOES_NOT_HOLD, NOT_RESOLVED)
#: an item whose measurements are not in the results ledger at this commit (never a verdict of an old rule)
NOT_MEASURED = "not measured at this commit"
VERDICTS = (*COMPARATIVE, "not testable here", "n/a", NOT_MEASURED)


@dataclass(frozen=True)
class Item:
    name: str
    what: str
    files: tuple[str, ...]
    notebook: str
    paper_finding: str


SUPPLEMENTARY: tuple[Item, ...] = (
    Item("Table 1", "Task2Vec from 100/50/20/10 % of the training data, and the policy's settings from them",
         ("task2vec_fractions.md", "task2vec_fractions.png", "policy_fraction_predictions.md"), "02_task2vec, 05_policy",
         "no degradation with fewer examples"),
    Item("Table 2", "classes and train/test sizes of every downstream task", ("table2_tasks.md",), "02_task2vec", "sizes"),
    Item("Figure 1", "CKA between pre-trained backbones at ResNet stages 1-4, before and after fine-tuning",
         ("06_cka_before_finetuning.png", "06_cka_after_finetuning.png", "06_cka_summary.md"), "06_cka",
         "early stages similar, later stages differ; more similar after fine-tuning"),
    Item("Figure 2", "average seen-task accuracy with backbones of different sizes",
         ("scaling_arch_linear_probe.png", "scaling_arch_5-NN.png", "scaling_means.md"), "07_scaling",
         "larger backbones help; Task2Sim beats domain randomisation for every backbone"),
    Item("Figure 3", "average unseen-task accuracy with backbones of different sizes",
         ("scaling_arch_linear_probe.png", "scaling_arch_5-NN.png", "scaling_means.md"), "07_scaling",
         "as Figure 2, on unseen tasks"),
    Item("Figure 4", "linear probing per task: Task2Sim vs the baselines", ("scaling_per_task_linear_probe.png",),
         "07_scaling", "Task2Sim competitive or better on most tasks"),
    Item("Figure 5", "seen tasks, linear probing, number of pre-training classes",
         ("scaling_classes_linear_probe.png", "scaling_means.md"), "07_scaling", "all methods improve at similar rates"),
    Item("Figure 6", "seen tasks, linear probing, object models per class",
         ("scaling_models_per_class_linear_probe.png", "scaling_means.md"), "07_scaling",
         "both synthetic methods improve, domain randomisation slightly faster"),
    Item("Figure 7", "seen tasks, linear probing, number of pre-training images",
         ("scaling_images_linear_probe.png", "scaling_means.md"), "07_scaling",
         "DR improves faster but stops before Task2Sim under linear probing"),
    Item("Table 1 (policy)", "the paper's controller fitted with Task2Vec vectors from 100/50/20/10 % of the training "
         "data: the downstream 5-NN of the settings it picks", ("policy_live256_fractions.md",), "09_table256",
         "no degradation with fewer examples"),
    Item("Task2Sim", "the paper's controller on the study's 256-setting table vs the best fixed setting "
         "(leave-one-task-out over the study's tasks)", ("policy_live256.md", "policy_live256_per_task.md"), "09_table256",
         "task-adaptive pre-training data beats a single fixed setting on unseen tasks"),
    Item("Premise", "Task2Sim's premise on the 256-setting table's measured settings: Task2Vec similarity vs "
         "reward-row correlation over task pairs (Mantel permutation)", ("policy_live256_premise.md",), "09_table256",
         "tasks with similar Task2Vec embeddings are helped by similar simulation settings"),
    Item("Reward table", "the 256-setting table: per-task main effects and two-factor interactions",
         ("rewards256_table.csv", "rewards256_heatmap.png", "rewards256_main_effects.md", "rewards256_interactions.md",
          "rewards256_fidelity.csv"), "09_table256", "different tasks are helped by different simulation parameters"),
    Item("Figure 8", "examples of each simulation parameter's variation", ("render_parameters_fig8.png",), "01_render",
         "an illustration"),
    Item("Figure 9", "unseen tasks, number of pre-training classes", ("scaling_classes_linear_probe.png", "scaling_means.md"),
         "07_scaling", "as Figure 5, on unseen tasks"),
    Item("Figure 10", "unseen tasks, object models per class",
         ("scaling_models_per_class_linear_probe.png", "scaling_means.md"), "07_scaling", "as Figure 6, on unseen tasks"),
    Item("Figure 11", "unseen tasks, number of pre-training images", ("scaling_images_linear_probe.png", "scaling_means.md"),
         "07_scaling", "as Figure 7, on unseen tasks"),
)


def findings_path(prof: Profile) -> Path:
    return prof.layout.figure("findings", ".json")


def record_finding(prof: Profile, item: str, verdict: str, sentence: str,
                   interval: Interval | None = None) -> dict:
    """Record the measured verdict on one supplementary item's finding (kept in ``findings.json``);
    a comparative verdict needs the ``interval`` it was read from (stored as ``interval: [low, high]``)."""
    from .errors import T2SError
    from .notebook import git_commit

    names = {i.name for i in SUPPLEMENTARY}
    if item not in names:
        raise T2SError(f"unknown supplementary item {item!r}", f"use one of: {', '.join(sorted(names))}")
    if verdict not in VERDICTS:
        raise T2SError(f"unknown verdict {verdict!r}", f"use one of: {', '.join(VERDICTS)}")
    if verdict in COMPARATIVE and interval is None:
        raise T2SError(f"finding {item!r}: verdict {verdict!r} without the interval it was read from",
                       "pass interval= (a t2s_lib.verdicts.Interval) from the rule that gave the verdict")
    path = findings_path(prof)
    data = json.loads(path.read_text()) if path.is_file() else {}
    data[item] = {"verdict": verdict, "sentence": sentence, "profile": prof.name, "notebook": prof.notebook,
                  "commit": git_commit(), "written": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    if interval is not None:
        data[item].update(interval=interval.bounds, estimate=finite_rounded(interval.estimate),
                          interval_method=interval.method, level=interval.level)
    write_json(path, dict(sorted(data.items())))
    return data[item]


def index_rows(prof: Profile) -> list[dict]:
    prov_path = prof.layout.provenance
    prov = json.loads(prov_path.read_text()) if prov_path.is_file() else {}
    path = findings_path(prof)
    findings = json.loads(path.read_text()) if path.is_file() else {}
    rows = []
    for item in SUPPLEMENTARY:
        present = [f for f in item.files if prof.layout.figure(Path(f).stem, Path(f).suffix).is_file()]
        profiles = sorted({prov.get(f, {}).get("profile", "?") for f in present})
        commits = sorted({prov.get(f, {}).get("commit", "?") for f in present})
        finding = findings.get(item.name)
        rows.append({"item": item.name, "what": item.what, "files": present, "missing": [f for f in item.files if f not in present],
                     "notebook": item.notebook, "profile": ", ".join(profiles) if present else "-",
                     "commit": ", ".join(commits) if present else "-",
                     "finding": finding_text(finding), "paper": item.paper_finding})
    return rows


def finding_text(finding: dict | None) -> str:
    """The INDEX sentence of a finding: verdict, sentence and its interval. A comparative verdict
    recorded without one (a point-estimate rule of an earlier commit) is no verdict: the item is shown
    as not measured at this commit."""
    if not finding:
        return f"**{NOT_MEASURED}**"
    if "interval" in finding:
        low, high = finding["interval"]
        if low is None or high is None:  # too few units for an interval (e.g. one task)
            return (f"**{finding['verdict']}**: {finding['sentence']} "
                    f"(no interval: {finding.get('interval_method', '')})")
        return (f"**{finding['verdict']}**: {finding['sentence']} "
                f"(95 % interval [{low:+.3g}, {high:+.3g}], {finding.get('interval_method', '')})")
    if finding["verdict"] in ("not testable here", "n/a", NOT_MEASURED):
        return f"**{finding['verdict']}**: {finding['sentence']}"
    return (f"**{NOT_MEASURED}**: the verdict recorded at {finding.get('commit', '?')} came from an earlier "
            f"point-estimate rule without an interval; rerun {finding.get('notebook', 'its notebook')}")


def write_index(prof: Profile) -> Path:
    """Write ``<figures>/INDEX.md`` from the supplementary items, ``provenance.json`` and ``findings.json``."""
    lines = ["# Index: the supplementary's tables and figures, regenerated", "",
             f"Written by notebook 08_index (profile `{prof.name}`). Each finding is measured by the notebook that",
             "makes the item; `provenance.json` names the notebook, profile, time and commit of every file.", "",
             "| item | what | files | notebook | profile | commit | paper's finding | at this scale |",
             "|---|---|---|---|---|---|---|---|"]
    for r in index_rows(prof):
        files = ", ".join(f"[{f}]({f})" for f in r["files"]) or "-"
        if r["missing"]:
            files += f" (missing: {', '.join(r['missing'])})"
        lines.append(f"| {r['item']} | {r['what']} | {files} | {r['notebook']} | {r['profile']} | {r['commit']} | "
                     f"{r['paper']} | {r['finding']} |")
    regeneration = prof.layout.figure("regeneration", ".json")
    if regeneration.is_file():  # written by make figures (t2s_lib.regenerate)
        record = json.loads(regeneration.read_text())
        lines += ["", f"Regenerated from the results ledger `results/{record['profile']}/` by the notebooks at this "
                      f"commit (make figures): {', '.join(record['regenerated']) or 'none'}."]
        if record["not_in_ledger"]:
            lines += ["", "Not regenerated: the ledger does not hold their measurements yet (their items are "
                          "*not measured at this commit*):", ""]
            lines += [f"- {nb}: {why}" for nb, why in record["not_in_ledger"].items()]
    path = prof.layout.figure("INDEX", ".md")
    write_text(path, "\n".join(lines) + "\n")
    return path


#: sections of ``RESULTS.md``: a heading, a sentence on what the table is, and the generated table it includes
RESULTS: tuple[tuple[str, str, str], ...] = (
    ("The paper's controller on the study's 256-setting table",
     "Notebook 09: the methods choose on the table and are scored on their picks pre-trained on fresh seeds: "
     "5-NN % on the seen / unseen tasks and leave-one-task-out (loo); `*_minus_best_fixed` with its 95 % t interval "
     "over tasks; `measured_share` below 1: not scored yet.", "policy_live256.md"),
    ("How well the fitted model predicts unmeasured settings",
     "Notebook 09: the chosen model; Spearman between predicted and measured held-out settings per task (median, "
     "range, tasks whose 95 % bootstrap interval excludes 0) and on the task mean.", "rewards256_fidelity.md"),
    ("Resolved effects of the 256-setting table", "Notebook 09: (task, term) effects whose 95 % interval excludes 0, "
     "the count chance alone would give, and those surviving Benjamini-Hochberg and Bonferroni.",
     "rewards256_resolved.md"),
    ("Policy-level Table 1", "Notebook 09: the controller with vectors from fewer training examples.",
     "policy_live256_fractions.md"),
    ("The study's reward table: signal against seed noise", "Notebook 03.", "rewards_signal.md"),
    ("Methods on the published 20 x 256 table", "Notebook 05 (mean and sd over controller seeds).",
     "policy_methods_vs_baselines.md"),
    ("Measured selection on the published table", "Notebook 05.", "policy_measured_vs_baselines.md"),
)


def write_results(prof: Profile) -> Path:
    """Write ``<figures>/RESULTS.md``: the study's headline tables, included verbatim from the generated
    ``figures/*.md`` files (so the numbers the README and docs point to are never typed by hand), and
    every finding with its interval."""
    lines = ["# Results at this profile, generated", "",
             f"Written by notebook 08_index (profile `{prof.name}`) from the generated tables in this folder; "
             "`provenance.json` names the notebook and commit of each. Nothing here is typed by hand.", ""]
    for heading, what, name in RESULTS:
        path = prof.layout.figure(Path(name).stem, Path(name).suffix)
        lines += [f"## {heading}", "", what + f" ([{name}]({name}))", ""]
        lines += [path.read_text().rstrip(), ""] if path.is_file() else ["(not generated at this profile yet)", ""]
    lines += ["## Findings", "", "| item | at this scale |", "|---|---|"]
    lines += [f"| {r['item']} | {r['finding']} |" for r in index_rows(prof)]
    path = prof.layout.figure("RESULTS", ".md")
    write_text(path, "\n".join(lines) + "\n")
    return path
