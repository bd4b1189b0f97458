"""``make figures``: every file of ``figures/`` regenerated from the committed results ledger alone, by the
notebooks at HEAD, and the check CI runs that the committed figures are exactly those.

The notebooks run in the ledger's ``replay`` mode (:mod:`t2s_lib.ledger`): every measurement comes from
``results/<profile>/``; nothing is rendered for a reward cell, trained or evaluated. A notebook whose
measurements the ledger does not hold yet stops with the missing record named; its items are then
"not measured at this commit" in ``INDEX.md`` and the notebook is listed in ``regeneration.json``. Any
other failure is a bug and fails the run.

The comparison (:func:`compare_figures`) is exact for tables, findings and plots, with two exceptions
that carry no measurement: commit hashes and write times (provenance, INDEX's commit column), and the
figures that *show rendered images* (Figure 8, the sample grid), which the renderer draws afresh and
which may differ in a pixel across CPU types: those are checked to exist.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from .errors import T2SError
from .files import write_json
from .paths import FIGURES_DIR, RESULTS_DIR, figures_work_dir
from .profiles import load_profile

#: figures that show rendered images rather than measured data (checked to exist, not byte for byte)
RENDERED_IMAGES = ("render_parameters_fig8.png", "render_sample_grid.png")
#: what a regeneration writes beside the figures: which notebooks ran from the ledger, which could not
REGENERATION_FILE = "regeneration.json"
#: the notebook that writes INDEX.md and RESULTS.md: it runs last, after every other one
INDEX_NOTEBOOK = "08_index"
#: the notebook that writes each figures/ file, by name prefix (the longest prefix that matches decides)
FIGURE_PRODUCERS = {"render_": "01_render", "task2vec_": "02_task2vec", "table2_": "02_task2vec",
                    "rewards_": "03_rewards", "04_": "04_evaluate", "policy_": "05_policy", "06_": "06_cka",
                    "scaling_": "07_scaling", "rewards256_": "09_table256", "policy_live256": "09_table256",
                    "INDEX": INDEX_NOTEBOOK, "RESULTS": INDEX_NOTEBOOK}


def producer(file_name: str) -> str | None:
    """The notebook that writes ``figures/<file_name>``, or None for a file of no single notebook."""
    matches = [p for p in FIGURE_PRODUCERS if file_name.startswith(p)]
    return FIGURE_PRODUCERS[max(matches, key=len)] if matches else None


_HASH = re.compile(r"\b[0-9a-f]{12}(\+dirty)?\b")
_VOLATILE_KEYS = ("written", "commit")


@dataclass
class Regeneration:
    figures_dir: Path
    regenerated: list[str] = field(default_factory=list)
    not_in_ledger: dict[str, str] = field(default_factory=dict)  # notebook -> the missing record


def regenerate_figures(profile: str = "cpu", *, ledger_root: Path = RESULTS_DIR, figures_dir: Path = FIGURES_DIR,
                       only: Sequence[str] | None = None, log=print) -> Regeneration:
    """Run the notebooks in replay mode from ``ledger_root`` and replace ``figures_dir`` with what they
    write (the old folder stays until the new one is complete)."""
    from .files import atomic_path
    from .study import StudyStopped, run_study, select_notebooks, study_notebooks

    notebooks = [nb.stem for nb in select_notebooks(study_notebooks(), only)]
    order = [n for n in notebooks if n != INDEX_NOTEBOOK] + ([INDEX_NOTEBOOK] if INDEX_NOTEBOOK in notebooks else [])
    profile_name = load_profile(profile).name
    if not (Path(ledger_root) / profile_name).is_dir():
        raise T2SError(f"no results ledger for profile {profile_name!r} in {ledger_root}",
                       f"measure it first: t2s study --profile {profile} --record --budget-minutes M")
    saved = {k: os.environ.get(k) for k in ("T2S_LEDGER", "T2S_LEDGER_MODE", "T2S_RUNS")}
    work = figures_work_dir("replay")
    shutil.rmtree(work, ignore_errors=True)
    os.environ.update(T2S_LEDGER=str(Path(ledger_root).resolve()), T2S_LEDGER_MODE="replay", T2S_RUNS=str(work))
    try:
        with atomic_path(figures_dir, is_dir=True) as staging:
            result = Regeneration(Path(figures_dir))
            for name in order:
                if name == INDEX_NOTEBOOK:  # the index reads which notebooks ran from the ledger
                    write_json(staging / REGENERATION_FILE, {"profile": profile_name, "regenerated": result.regenerated,
                                                            "not_in_ledger": result.not_in_ledger})
                try:
                    run_study(profile, only=[name], overrides={"figures_dir": str(staging)})
                    result.regenerated.append(name)
                except StudyStopped:
                    raise
                except T2SError as exc:
                    reason = _missing_record(exc.problem)
                    if reason is None:
                        raise
                    result.not_in_ledger[name] = reason
                    log(f"[t2s figures] {name}: not in the ledger at this commit ({reason})")
            write_json(staging / REGENERATION_FILE, {"profile": profile_name, "regenerated": result.regenerated,
                                                    "not_in_ledger": result.not_in_ledger})
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return result


_MISSING = re.compile(r"holds no current (\S+) record")


def _missing_record(problem: str) -> str | None:
    """Why a notebook stopped in replay mode, in words that do not depend on the machine (no paths): the
    kind of record the ledger lacks, or an earlier notebook's output it needed; None for anything else (a bug)."""
    found = _MISSING.search(problem)
    if found:
        return f"the ledger holds no current {found.group(1)} record it needs"
    if any(marker in problem for marker in ("not found", "run notebook", "build the reward table first")):
        return "it needs the output of an earlier notebook that was not regenerated"
    return None


def _normalised_text(text: str) -> str:
    return _HASH.sub("<commit>", text)


def _normalised_json(obj):
    if isinstance(obj, dict):
        return {k: _normalised_json(v) for k, v in obj.items() if k not in _VOLATILE_KEYS}
    if isinstance(obj, list):
        return [_normalised_json(v) for v in obj]
    if isinstance(obj, str):
        return _normalised_text(obj)
    return obj


def compare_figures(committed: Path, regenerated: Path) -> list[str]:
    """Every difference between two figures folders that is not a commit hash, a write time, or a
    re-rendered image (see the module docstring); empty when they agree."""
    committed, regenerated = Path(committed), Path(regenerated)
    names = {p.name for p in committed.iterdir() if p.is_file()} | {p.name for p in regenerated.iterdir() if p.is_file()}
    out = []
    for name in sorted(names):
        a, b = committed / name, regenerated / name
        if not a.is_file():
            out.append(f"{name}: regenerated at HEAD but not committed")
            continue
        if not b.is_file():
            out.append(f"{name}: committed but not regenerated from the ledger at HEAD")
            continue
        if name in RENDERED_IMAGES:
            continue
        if name.endswith(".json"):
            same = _normalised_json(json.loads(a.read_text())) == _normalised_json(json.loads(b.read_text()))
        elif name.endswith((".md", ".csv")):
            same = _normalised_text(a.read_text()) == _normalised_text(b.read_text())
        else:
            same = a.read_bytes() == b.read_bytes()
        if not same:
            out.append(f"{name}: differs from what the ledger gives at HEAD")
    return out


def check_figures(profile: str = "cpu", *, ledger_root: Path = RESULTS_DIR, figures_dir: Path = FIGURES_DIR,
                  only: Sequence[str] | None = None, log=print) -> list[str]:
    """Regenerate into a scratch folder and compare with the committed ``figures_dir``."""
    scratch = figures_work_dir("check") / "figures"
    shutil.rmtree(scratch.parent, ignore_errors=True)
    regenerate_figures(profile, ledger_root=ledger_root, figures_dir=scratch, only=only, log=log)
    return compare_figures(figures_dir, scratch)
