"""Supplementary Table 2: classes and train/test sizes of the downstream tasks, from the loaders' metadata.

Paper tasks carry the published counts (supplementary Table 2 / reference 7.3); where a dataset is
present under the data root its loader is run and the counts it produces are shown next to the
published ones. Offline tasks are measured from the built data.
"""

from __future__ import annotations

from typing import Sequence

from ..errors import T2SError
from . import PAPER_SPECS, get_task, list_tasks, task_records


def task_table(names: Sequence[str] | None = None, *, root: str | None = None):
    """One row per task: kind, category or domain, classes, train, test, split rule, source and where
    the counts come from (``measured``, ``published``, or ``published; loader: a/b``)."""
    import pandas as pd

    wanted = list(names) if names is not None else list_tasks()
    records = {r["name"]: r for r in task_records()}
    rows = []
    for name in wanted:
        rec = records.get(name)
        if rec is None:
            raise T2SError(f"unknown task {name!r} for Table 2", f"use registered tasks: {', '.join(records)}")
        row = {"task": name, "kind": rec["kind"], "group": rec.get("category") or rec.get("domain", ""),
               "role_in_paper": rec.get("role", ""), "classes": rec["classes"], "train": rec["train"],
               "test": rec["test"], "split": rec.get("split", ""), "source": rec.get("source", "")}
        if rec["kind"] == "offline":
            try:
                task = get_task(name)
                row.update(classes=task.num_classes, train=len(task.labels("train")), test=len(task.labels("test")),
                           counts="measured")
            except T2SError:
                row["counts"] = "listed (not built here: t2s data fetch)"
        else:
            row["counts"] = "published"
            try:
                task = get_task(name, root=root)
                got = (task.num_classes, len(task.labels("train")), len(task.labels("test")))
            except T2SError:
                got = None
            if got is not None:
                spec = PAPER_SPECS[name]
                same = got == (spec.num_classes, spec.train, spec.test)
                row["counts"] = "published; the loader agrees" if same else f"published; loader: {got[1]}/{got[2]}, {got[0]} classes"
        rows.append(row)
    return pd.DataFrame(rows).set_index("task")
