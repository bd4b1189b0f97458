"""Reference methods on the same reward table.

* ``oracle``: each task's best setting (an upper bound: it looks at the task's own rewards);
* ``domain-randomization``: everything varies (``1_1_1_1_1_3_0_1_1``);
* ``all-off``: nothing varies (``0_0_0_0_0_1_0_0_0``);
* ``best-fixed``: the one setting with the best mean reward over the seen tasks;
* ``random``: a uniformly random setting (its expected reward, the mean over the 256);
* ``nearest-seen``: the best setting of the seen task whose L2-normalised Task2Vec vector has the
  highest cosine with the target's (a seen task's nearest is itself).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..published import l2_normalize
from ..settings import PRESETS
from .methods import METHODS, Prediction
from .problem import PolicyProblem

BASELINES = ("oracle", "domain-randomization", "all-off", "best-fixed", "random", "nearest-seen")


class _Fixed:
    def __init__(self, column: int):
        self.column = column

    def predict(self, tasks: Sequence[str]) -> Prediction:
        return Prediction(tuple(tasks), np.full(len(tasks), self.column, dtype=np.int64))


class _Oracle:
    def __init__(self, problem: PolicyProblem):
        self.problem = problem

    def predict(self, tasks: Sequence[str]) -> Prediction:
        return Prediction(tuple(tasks), self.problem.rewards(tasks).argmax(axis=1))


class _Random:
    def __init__(self, problem: PolicyProblem):
        self.problem = problem

    def predict(self, tasks: Sequence[str]) -> Prediction:
        n = len(tasks)
        return Prediction(tuple(tasks), np.full(n, -1, dtype=np.int64), expected=self.problem.rewards(tasks).mean(axis=1))


class _NearestSeen:
    def __init__(self, problem: PolicyProblem):
        self.problem = problem
        self.seen_x = l2_normalize(problem.matrix(problem.seen))
        self.seen_best = problem.rewards(problem.seen).argmax(axis=1)

    def predict(self, tasks: Sequence[str]) -> Prediction:
        cos = l2_normalize(self.problem.matrix(tasks)) @ self.seen_x.T
        nearest = cos.argmax(axis=1)
        return Prediction(
            tuple(tasks),
            self.seen_best[nearest],
            extras={"nearest": {t: self.problem.seen[j] for t, j in zip(tasks, nearest)}},
        )


@METHODS.register("oracle")
def fit_oracle(problem: PolicyProblem, seed: int = 0, **_) -> _Oracle:
    return _Oracle(problem)


@METHODS.register("domain-randomization")
def fit_domain_randomization(problem: PolicyProblem, seed: int = 0, **_) -> _Fixed:
    return _Fixed(problem.table.key_index(PRESETS["domain_randomization"].key))


@METHODS.register("all-off")
def fit_all_off(problem: PolicyProblem, seed: int = 0, **_) -> _Fixed:
    return _Fixed(problem.table.key_index(PRESETS["all_off"].key))


@METHODS.register("best-fixed")
def fit_best_fixed(problem: PolicyProblem, seed: int = 0, **_) -> _Fixed:
    return _Fixed(int(problem.rewards(problem.seen).mean(axis=0).argmax()))


@METHODS.register("random")
def fit_random(problem: PolicyProblem, seed: int = 0, **_) -> _Random:
    return _Random(problem)


@METHODS.register("nearest-seen")
def fit_nearest_seen(problem: PolicyProblem, seed: int = 0, **_) -> _NearestSeen:
    return _NearestSeen(problem)
