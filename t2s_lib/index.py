"""``figures/INDEX.md``: one row per item of the paper's supplementary (Table 1, Table 2, Figure 1 ... 11)
naming the files in ``figures/`` that regenerate it, the notebook and profile that wrote them, the
commit, and one sentence on whether the paper's qualitative finding holds at this scale.

The sentences are measured, not written by hand: the notebook that makes an item's figure calls
:func:`record_finding` with a verdict (``holds``, ``does not hold``, ``partly holds``, ``not
testable here``, ``n/a``) and the numbers behind it; they are kept in ``<figures>/findings.json``
and :func:`write_index` (the last notebook) assembles the table.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass
from pathlib import Path

from .io import write_json, write_text
from .profiles import Profile

VERDICTS = ("holds", "partly holds", "does not hold", "not testable here", "n/a")


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


def record_finding(prof: Profile, item: str, verdict: str, sentence: str) -> dict:
    """Record the measured verdict on one supplementary item's finding (kept in ``findings.json``)."""
    from .errors import T2SError
    from .notebook import git_commit

    names = {i.name for i in SUPPLEMENTARY}
    if item not in names:
        raise T2SError(f"unknown supplementary item {item!r}", f"use one of: {', '.join(sorted(names))}")
    if verdict not in VERDICTS:
        raise T2SError(f"unknown verdict {verdict!r}", f"use one of: {', '.join(VERDICTS)}")
    path = findings_path(prof)
    data = json.loads(path.read_text()) if path.is_file() else {}
    data[item] = {"verdict": verdict, "sentence": sentence, "profile": prof.name, "notebook": prof.notebook,
                  "commit": git_commit(), "written": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
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
                     "finding": (f"**{finding['verdict']}**: {finding['sentence']}" if finding
                                 else "not run at this profile yet"), "paper": item.paper_finding})
    return rows


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
    path = prof.layout.figure("INDEX", ".md")
    write_text(path, "\n".join(lines) + "\n")
    return path
