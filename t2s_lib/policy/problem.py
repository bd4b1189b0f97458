"""A policy-learning problem: a reward table, Task2Vec vectors, and the seen / unseen task split."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from ..errors import T2SError
from ..published import (
    SEEN_TASKS,
    UNSEEN_TASKS,
    RewardTable,
    load_reward_table,
    load_task2vec_vectors,
    published_reward_table,
    task_vectors_matrix,
)


@dataclass(frozen=True)
class PolicyProblem:
    """Everything a task -> setting method may use, and what it is judged on.

    ``table`` holds rewards of every task (seen and unseen) for every setting; a method may only
    look at the rows of ``seen`` tasks when it is fitted, and at the vectors of the tasks it
    predicts for.
    """

    table: RewardTable
    vectors: Mapping[str, np.ndarray]
    seen: tuple[str, ...]
    unseen: tuple[str, ...]
    name: str = "published"

    def __post_init__(self) -> None:
        for task in self.seen + self.unseen:
            self.table.task_index(task)
            if task not in self.vectors:
                raise T2SError(f"problem {self.name!r}: no Task2Vec vector for task {task!r}")
        overlap = set(self.seen) & set(self.unseen)
        if overlap:
            raise T2SError(f"problem {self.name!r}: tasks {sorted(overlap)} are both seen and unseen")
        if len(self.seen) < 2:
            raise T2SError(f"problem {self.name!r}: needs at least 2 seen tasks, got {len(self.seen)}")
        dims = {np.asarray(self.vectors[t]).shape for t in self.all_tasks}
        if len(dims) != 1:
            raise T2SError(f"problem {self.name!r}: Task2Vec vectors have different shapes {sorted(dims)}")

    @property
    def all_tasks(self) -> tuple[str, ...]:
        return self.seen + self.unseen

    def digest(self) -> str:
        """A content hash of everything a method may see and is judged on (rewards, vectors, split): two
        problems with one digest give every method the same result."""
        import hashlib

        h = hashlib.sha256()
        h.update(repr((self.table.tasks, self.table.keys, self.seen, self.unseen)).encode())
        h.update(np.ascontiguousarray(self.table.values, dtype=np.float64).tobytes())
        for task in self.all_tasks:
            h.update(np.ascontiguousarray(self.vectors[task], dtype=np.float64).tobytes())
        return h.hexdigest()[:24]

    @property
    def dim(self) -> int:
        return int(np.asarray(self.vectors[self.seen[0]]).shape[-1])

    def matrix(self, tasks: Iterable[str]) -> np.ndarray:
        return task_vectors_matrix(self.vectors, tasks)

    def rewards(self, tasks: Iterable[str]) -> np.ndarray:
        return self.table.subset(tasks).values

    def with_split(self, seen: Iterable[str], unseen: Iterable[str]) -> "PolicyProblem":
        return PolicyProblem(self.table, self.vectors, tuple(seen), tuple(unseen), self.name)


def published_problem() -> PolicyProblem:
    """The published 20-task problem: 12 seen (training) tasks, 8 unseen (zero-shot) tasks."""
    return PolicyProblem(published_reward_table(), load_task2vec_vectors(), SEEN_TASKS, UNSEEN_TASKS, "published")


def problem_from_files(
    reward_path: str | Path,
    vector_paths: Iterable[str | Path],
    seen: Iterable[str],
    unseen: Iterable[str],
    *,
    name: str | None = None,
) -> PolicyProblem:
    """A problem from a reward table JSON and Task2Vec npz files (e.g. the small study's own, or the
    one-task files ``t2s task2vec`` writes)."""
    seen, unseen = tuple(seen), tuple(unseen)
    vector_paths = list(vector_paths)  # read twice below (a generator would be empty the second time)
    table = load_reward_table(reward_path, tasks=seen + unseen, require_all_settings=False)
    vectors = load_task2vec_vectors(vector_paths, dim=_first_dim(vector_paths))
    return PolicyProblem(table, vectors, seen, unseen, name or Path(reward_path).stem)


def _first_dim(paths: Iterable[str | Path]) -> int:
    from ..published import open_vectors_npz

    # the length of the first vector; load_task2vec_vectors then refuses any of another length
    for path in paths:
        with open_vectors_npz(path) as npz:
            for key in npz.files:
                if key == "hessian" or key.endswith("__hessian"):
                    return int(np.asarray(npz[key]).size)
    raise T2SError(f"no Task2Vec vectors ('hessian' or '<Task>__hessian' arrays) in {[str(p) for p in paths]}",
                   "give .npz files written by `t2s task2vec` (or the published vectors)")
