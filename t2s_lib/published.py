"""Loaders for the published Task2Sim data: the 20 x 256 reward table and the Task2Vec vectors.

The files ship inside the package (``t2s_lib/data/published``, see its ATTRIBUTION.md), so the study
works without any external folder. Every loader validates what it reads and raises a
:class:`~t2s_lib.errors.T2SError` naming the file and the bad item; nothing is silently repaired.

Names:

* :data:`SEEN_TASKS` - the 12 training tasks of the published controller;
* :data:`UNSEEN_TASKS` - the 8 zero-shot test tasks.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from .errors import T2SError
from .paths import PUBLISHED_DATA_DIR
from .settings import all_settings, parse_key

SEEN_TASKS: tuple[str, ...] = (
    "CropDisease", "EuroSAT", "SVHN", "ChestX", "Sketch", "DTD",
    "Flowers102", "DeepWeeds", "Resisc45", "Omniglot", "ISIC", "Kaokore",
)
UNSEEN_TASKS: tuple[str, ...] = (
    "CUB", "PacsC", "PacsS", "AID", "USPS", "FMD", "CactusAerial", "ChestXPneumonia",
)
ALL_TASKS: tuple[str, ...] = SEEN_TASKS + UNSEEN_TASKS
TASK2VEC_DIM = 9600

REWARD_FILE = PUBLISHED_DATA_DIR / "reward_db.json"
#: Rewards are accuracies in percent (5-NN top-1); the table format states no other metric range.
REWARD_RANGE: tuple[float, float] = (0.0, 100.0)
VECTOR_FILES = (PUBLISHED_DATA_DIR / "task2vec_seen.npz", PUBLISHED_DATA_DIR / "task2vec_unseen.npz")


@dataclass(frozen=True)
class RewardTable:
    """Rewards (5-NN top-1 %, or any score) of tasks x settings.

    ``values[i, j]`` is the reward of ``tasks[i]`` under ``keys[j]``; keys are in the published
    enumeration order (setting index 0..255) when the table is complete.
    """

    tasks: tuple[str, ...]
    keys: tuple[str, ...]
    values: np.ndarray  # float64 [n_tasks, n_keys]
    source: str = ""

    def __post_init__(self) -> None:
        if self.values.shape != (len(self.tasks), len(self.keys)):
            raise ValueError("values shape does not match tasks x keys")

    def row(self, task: str) -> np.ndarray:
        return self.values[self.task_index(task)]

    def task_index(self, task: str) -> int:
        try:
            return self.tasks.index(task)
        except ValueError:
            raise T2SError(
                f"unknown task {task!r} in reward table {self.source or '(in memory)'}",
                f"use one of: {', '.join(self.tasks)}",
            ) from None

    def key_index(self, key: str) -> int:
        try:
            return self.keys.index(key)
        except ValueError:
            parse_key(key)  # a malformed key gets the parser's message
            raise T2SError(f"setting {key!r} is not in reward table {self.source or '(in memory)'}") from None

    def reward(self, task: str, key: str) -> float:
        return float(self.values[self.task_index(task), self.key_index(key)])

    def subset(self, tasks: Iterable[str]) -> "RewardTable":
        tasks = tuple(tasks)
        idx = [self.task_index(t) for t in tasks]
        return RewardTable(tasks, self.keys, self.values[idx], self.source)

    def to_dict(self) -> dict[str, dict[str, float]]:
        return {t: {k: float(v) for k, v in zip(self.keys, row)} for t, row in zip(self.tasks, self.values)}


def reward_table_from_mapping(
    data: Mapping[str, Mapping[str, float]],
    *,
    source: str = "",
    tasks: Iterable[str] | None = None,
    require_all_settings: bool = True,
    value_range: tuple[float, float] | None = REWARD_RANGE,
) -> RewardTable:
    """Validate ``{task: {key: reward}}`` and turn it into a :class:`RewardTable`.

    Every task must have the same set of keys (all 256 when ``require_all_settings``), every key
    must parse, every value must be a finite number within ``value_range`` (accuracies in percent;
    ``None`` for a score of another range).
    """
    where = source or "reward table"
    if not isinstance(data, Mapping) or not data:
        raise T2SError(f"{where}: expected a non-empty mapping {{task: {{setting_key: reward}}}}")
    task_names = tuple(tasks) if tasks is not None else tuple(data)
    missing = [t for t in task_names if t not in data]
    if missing:
        raise T2SError(f"{where}: task(s) {missing} missing", "use a complete reward table (every task x setting)")
    if require_all_settings:
        keys = tuple(s.key for s in all_settings())
    else:
        # The union of every task's keys: a task lacking one of them is then named below.
        union = {k for t in task_names if isinstance(data[t], Mapping) for k in data[t]}
        keys = tuple(sorted(union, key=lambda k: parse_key(k).index))
    for key in keys:
        parse_key(key)
    values = np.empty((len(task_names), len(keys)), dtype=np.float64)
    for i, task in enumerate(task_names):
        row = data[task]
        if not isinstance(row, Mapping):
            raise T2SError(f"{where}: task {task!r} is not a mapping of setting keys to rewards")
        missing_keys = [k for k in keys if k not in row]
        if missing_keys:
            raise T2SError(
                f"{where}: task {task!r} lacks {len(missing_keys)} setting key(s), e.g. {missing_keys[0]!r}",
                "every task needs a reward for every setting",
            )
        extra = [k for k in row if k not in set(keys)]
        if extra:
            parse_key(extra[0])
            raise T2SError(f"{where}: task {task!r} has unexpected setting key {extra[0]!r}")
        for j, key in enumerate(keys):
            value = row[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise T2SError(f"{where}: task {task!r}, setting {key!r}: reward {value!r} is not a finite number")
            if value_range is not None and not value_range[0] <= value <= value_range[1]:
                # an accuracy of -5 % or 100.5 % is a broken table, not a reward to learn from
                low, high = (f"{v:g}" for v in value_range)
                raise T2SError(f"{where}: task {task!r}, setting {key!r}: reward {value!r} is outside {low}..{high} "
                               "(rewards are accuracies in percent)",
                               "fix or rebuild the table (t2s rewards build writes 5-NN accuracies in percent)")
            values[i, j] = float(value)
    return RewardTable(task_names, keys, values, source)


def load_reward_table(
    path: str | Path | None = None, tasks: Iterable[str] | None = None, *, require_all_settings: bool = True,
    value_range: tuple[float, float] | None = REWARD_RANGE,
) -> RewardTable:
    """Load a reward table JSON (default: the published 20 x 256 table).

    With ``require_all_settings=False`` a table over a subset of the settings (the same subset for
    every task, e.g. the few settings a small study pre-trained on) is accepted. Every reward must
    lie within ``value_range`` (see :func:`reward_table_from_mapping`)."""
    path = Path(path) if path is not None else REWARD_FILE
    if not path.is_file():
        raise T2SError(f"{path}: reward table not found", "check the path (the published table ships in t2s_lib/data/published)")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise T2SError(f"{path}: not valid JSON ({exc})") from exc
    if path == REWARD_FILE and tasks is None:
        tasks = ALL_TASKS
    return reward_table_from_mapping(data, source=str(path), tasks=tasks, require_all_settings=require_all_settings,
                                     value_range=value_range)


@lru_cache(maxsize=4)
def _published_reward_table() -> RewardTable:
    return load_reward_table()


def published_reward_table() -> RewardTable:
    """The published table (cached), tasks ordered seen then unseen."""
    return _published_reward_table()


def open_vectors_npz(path: str | Path):
    """``np.load`` of a Task2Vec npz file, with clear errors for a missing or non-npz file."""
    import zipfile

    path = Path(path)
    if not path.is_file():
        raise T2SError(f"{path}: Task2Vec file not found",
                       "give .npz files written by `t2s task2vec` (or the published vectors)")
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise T2SError(f"{path}: not a readable .npz file ({type(exc).__name__})",
                       "give .npz files written by `t2s task2vec` (or the published vectors)") from exc


def embedding_task_name(path: str | Path) -> str:
    """The task of a one-task npz written by ``t2s task2vec``: the one its ``.json`` metadata
    records, else (no metadata beside it) the file's stem."""
    path = Path(path)
    meta_path = path.with_suffix(".json")
    if not meta_path.is_file():
        return path.stem
    try:
        meta = json.loads(meta_path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise T2SError(f"{meta_path}: the metadata of {path.name} is not valid JSON ({exc})",
                       f"recompute the vector with `t2s task2vec --task NAME --out {path}`, or delete {meta_path.name} "
                       "to name the task by the file name") from exc
    task = meta.get("task") if isinstance(meta, dict) else None
    return task if isinstance(task, str) and task else path.stem


def _npz_vectors(path: Path, npz) -> list[tuple[str, np.ndarray, np.ndarray | None]]:
    """``(task, hessian, scale or None)`` of every task of one npz, in either format: the published
    one (``task_names`` + ``<Task>__hessian`` / ``<Task>__scale``) or the one-task file that
    ``t2s task2vec`` writes (``hessian`` + ``scale``, the task in its metadata)."""
    if "task_names" in npz.files:
        out = []
        for task in [str(t) for t in npz["task_names"]]:
            hkey, skey = f"{task}__hessian", f"{task}__scale"
            if hkey not in npz.files:
                raise T2SError(f"{path}: task {task!r} has no {hkey!r} array")
            out.append((task, npz[hkey], npz[skey] if skey in npz.files else None))
        return out
    if "hessian" in npz.files:
        return [(embedding_task_name(path), npz["hessian"], npz["scale"] if "scale" in npz.files else None)]
    raise T2SError(f"{path}: neither a 'hessian' array (a `t2s task2vec` file) nor 'task_names' with "
                   "<Task>__hessian arrays (the published format)",
                   "give .npz files written by `t2s task2vec` (or the published vectors)")


def load_task2vec_vectors(paths: Iterable[str | Path] | None = None, dim: int = TASK2VEC_DIM) -> dict[str, np.ndarray]:
    """Load Task2Vec vectors from npz files: one task per file as ``t2s task2vec`` writes them
    (``hessian`` + ``scale``, named by :func:`embedding_task_name`), or several per file as
    published (``task_names`` + ``<Task>__hessian`` arrays); the two may be mixed.

    Returns ``{task: float64 vector}`` (the raw hessian; ``scale`` is checked to be all ones,
    as in the published Monte-Carlo embeddings, and otherwise divided out).
    """
    vectors: dict[str, np.ndarray] = {}
    origin: dict[str, Path] = {}
    for path in (paths if paths is not None else VECTOR_FILES):
        path = Path(path)
        with open_vectors_npz(path) as npz:
            for task, hessian, scale in _npz_vectors(path, npz):
                vec = np.asarray(hessian, dtype=np.float64).reshape(-1)
                if vec.shape[0] != dim:
                    raise T2SError(f"{path}: vector of {task!r} has length {vec.shape[0]}, expected {dim}")
                if scale is not None:
                    scale = np.asarray(scale, dtype=np.float64).reshape(-1)
                    if scale.shape != vec.shape:
                        raise T2SError(f"{path}: scale of {task!r} has length {scale.shape[0]}, expected {dim}")
                    if not np.all(scale == 1.0):
                        vec = vec / scale
                if not np.all(np.isfinite(vec)):
                    raise T2SError(f"{path}: vector of {task!r} has non-finite entries")
                if np.any(vec < 0):
                    raise T2SError(f"{path}: vector of {task!r} has negative entries (a Fisher diagonal cannot)")
                if task in vectors:  # one task, two vectors: which one the policy sees must not be luck
                    raise T2SError(f"task {task!r} has a vector in both {origin[task]} and {path}",
                                   "give one vector file per task")
                vectors[task], origin[task] = vec, path
    return vectors


def task_vectors_matrix(vectors: Mapping[str, np.ndarray], tasks: Iterable[str]) -> np.ndarray:
    """Stack vectors of ``tasks`` into a [n, d] array, with a clear error for a missing task."""
    rows = []
    for task in tasks:
        if task not in vectors:
            raise T2SError(f"no Task2Vec vector for task {task!r}", f"available: {', '.join(vectors)}")
        rows.append(vectors[task])
    return np.stack(rows)


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Row-wise L2 normalisation, as the published policy does (``F.normalize``)."""
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norm, eps)
