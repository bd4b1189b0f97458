"""Downstream tasks: the paper's 20 datasets, the offline tasks, and users' own folders.

>>> from t2s_lib.tasks import get_task, list_tasks
>>> list_tasks("offline")          # ['digits', 'mnist', ..., 'faces', 'letters', 'icons', 'emoji', 'clipart', 'objects']
>>> task = get_task("digits")      # or a paper task name ('DTD', needs root/T2S_DATA_ROOT) or a folder path
>>> ds = task.dataset("train")     # torch Dataset of (PIL RGB image, int label)
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import T2SError
from .base import ArrayDataset, FileDataset, ImageDecodeError, SubsetDataset, Task, skip_none_collate
from .folder import FolderTask
from .offline import OFFLINE_DESCRIPTIONS, OFFLINE_INFO, OFFLINE_TASKS, OfflineInfo, OfflineTask, offline_record
from .paper import PAPER_SPECS, SEEN, UNSEEN, PaperTask, data_root
from .splits import split_70_30, split_groups_70_30, stratified_indices

KINDS = ("paper", "offline")


def list_tasks(kind: str | None = None) -> list[str]:
    """Registered task names: ``paper`` (20, seen then unseen), ``offline`` or both (``None``)."""
    if kind not in (None, *KINDS):
        raise T2SError(f"unknown task kind {kind!r}", "use 'paper', 'offline' or None")
    names: list[str] = []
    if kind in (None, "paper"):
        names += SEEN + UNSEEN
    if kind in (None, "offline"):
        names += OFFLINE_TASKS
    return names


def task_records(kind: str | None = None) -> list[dict]:
    """Every registered task as a dict (``t2s data list --json``).

    All records have ``name``, ``kind`` (``paper`` or ``offline``), ``classes`` (number), ``train``,
    ``test``; offline ones add ``fetched``, ``source``, ``license``, ``domain``, ``split``; paper
    ones add ``role`` (seen/unseen in the paper), ``category``, ``split``, ``folder`` and ``source``.
    Folder tasks (``kind`` ``folder``) are not registered: any ImageFolder path is one.
    """
    records = []
    for name in list_tasks(kind):
        if name in PAPER_SPECS:
            s = PAPER_SPECS[name]
            records.append({"name": name, "kind": "paper", "classes": s.num_classes, "train": s.train, "test": s.test,
                            "role": "seen" if name in SEEN else "unseen", "category": s.category, "split": s.split,
                            "folder": s.folder, "source": s.source})
        else:
            records.append(offline_record(name))
    return records


def get_task(name_or_path: str | os.PathLike, root: str | os.PathLike | None = None) -> Task:
    """A task by registered name (case-insensitive for paper tasks) or by ImageFolder path."""
    text = str(name_or_path)
    if text in OFFLINE_TASKS:
        return OfflineTask(text)
    lower = {n.lower(): n for n in PAPER_SPECS}
    if text.lower() in lower:
        return PaperTask(lower[text.lower()], root)
    path = Path(text).expanduser()
    if path.is_dir():
        return FolderTask(path)
    raise T2SError(
        f"unknown task {text!r} (not a registered name, nor an existing folder)",
        f"use one of: {', '.join(list_tasks())}, or a path to an ImageFolder (<class>/<image>)",
    )


__all__ = [
    "ArrayDataset", "FileDataset", "FolderTask", "ImageDecodeError", "OFFLINE_DESCRIPTIONS", "OfflineTask",
    "PAPER_SPECS", "PaperTask", "SEEN", "SubsetDataset", "Task", "UNSEEN", "data_root", "get_task",
    "list_tasks", "skip_none_collate", "split_70_30", "split_groups_70_30", "stratified_indices", "task_records",
    "OFFLINE_INFO", "OfflineInfo", "offline_record",
]
