"""``reward-kernel``: our task -> setting method (the default variant).

Idea. The controller compresses 12 tasks x 256 rewards into a network trained by REINFORCE; with
so few tasks it mostly learns one setting for everyone. A direct alternative uses the seen tasks'
reward rows themselves:

1. normalise each seen task's 256 rewards (``z``: z-score per task; ``center``: subtract the
   task mean), so easy and hard tasks weigh the same;
2. optionally smooth each row with a low-order Walsh (parameter-interaction) expansion fitted by
   least squares (order 1: main effects; 2: + pairwise; 3: + triple interactions), which removes
   the noise of single pre-training runs from the 256-way argmax;
3. weight the seen tasks by a kernel on Task2Vec similarity, ``softmax(sim / tau)`` (``tau = inf``
   is the plain average, i.e. the best fixed setting under that normalisation), with ``sim`` the
   cosine of L2-normalised vectors (what the policy sees), of centred log-vectors (not dominated
   by a handful of stem filters), or the symmetric Task2Vec similarity;
4. predict the argmax of the weighted score.

Model selection is part of the method and uses the seen tasks only: every configuration of the
grid is scored by leave-one-task-out over the seen tasks (predict each from the others, take its
true reward), and the best one (ties: the earlier, simpler configuration) is used. The method is
deterministic; the seed is accepted and ignored.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Iterable, Sequence

import numpy as np

from ..errors import T2SError
from ..published import l2_normalize
from .methods import METHODS, Prediction
from .problem import PolicyProblem

SIMILARITIES = ("cos", "logcos", "task2vec")
NORMALISATIONS = ("z", "center")
ORDERS = (0, 1, 2, 3)  # 0 = no smoothing
TAUS = (float("inf"), 1.0, 0.3, 0.1, 0.03, 0.01)


@dataclass(frozen=True)
class KernelConfig:
    similarity: str = "cos"
    normalisation: str = "z"
    order: int = 0
    tau: float = float("inf")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["tau"] = "inf" if np.isinf(self.tau) else self.tau
        return d


def default_grid() -> list[KernelConfig]:
    """Simplest first (plain average, no smoothing), so ties go to the simpler configuration."""
    return [
        KernelConfig(sim, norm, order, tau)
        for tau, order, norm, sim in itertools.product(TAUS, ORDERS, NORMALISATIONS, SIMILARITIES)
    ]


# ----- pieces ----------------------------------------------------------------------------------
def similarity_matrix(a: np.ndarray, b: np.ndarray, kind: str) -> np.ndarray:
    """Similarity of rows of ``a`` to rows of ``b`` (raw non-negative Task2Vec vectors)."""
    if kind == "cos":
        return l2_normalize(a) @ l2_normalize(b).T
    if kind == "logcos":
        return _centred_log(a) @ _centred_log(b).T
    if kind == "task2vec":
        from ..task2vec.distances import task2vec_distance_matrix

        return 1.0 - task2vec_distance_matrix(a, b)
    raise T2SError(f"unknown similarity {kind!r}", f"use one of: {', '.join(SIMILARITIES)}")


def _centred_log(x: np.ndarray) -> np.ndarray:
    # A floor relative to each vector's largest entry keeps dead filters (exact zeros) finite.
    floor = 1e-8 * x.max(axis=1, keepdims=True)
    logs = np.log(np.maximum(x, floor) + floor)
    return l2_normalize(logs - logs.mean(axis=1, keepdims=True))


def normalise_rows(rows: np.ndarray, kind: str) -> np.ndarray:
    centred = rows - rows.mean(axis=1, keepdims=True)
    if kind == "center":
        return centred
    if kind == "z":
        return centred / np.maximum(rows.std(axis=1, keepdims=True), 1e-12)
    raise T2SError(f"unknown normalisation {kind!r}", f"use one of: {', '.join(NORMALISATIONS)}")


@lru_cache(maxsize=8)
def _walsh_projector(order: int) -> np.ndarray:
    """Least-squares projector onto Walsh functions of degree <= order over the 8 bits."""
    signs = np.array([[1.0 if (i >> (7 - k)) & 1 else -1.0 for k in range(8)] for i in range(256)])
    cols = [np.ones(256)]
    for degree in range(1, order + 1):
        for combo in itertools.combinations(range(8), degree):
            cols.append(np.prod(signs[:, combo], axis=1))
    design = np.stack(cols, axis=1)
    return design @ np.linalg.pinv(design)


def smooth_rows(rows: np.ndarray, order: int) -> np.ndarray:
    return rows if order == 0 else rows @ _walsh_projector(order).T


def kernel_weights(sim: np.ndarray, tau: float) -> np.ndarray:
    if np.isinf(tau):
        return np.full_like(sim, 1.0 / sim.shape[-1])
    w = np.exp((sim - sim.max(axis=-1, keepdims=True)) / tau)
    return w / w.sum(axis=-1, keepdims=True)


# ----- model selection -------------------------------------------------------------------------
def loo_scores(vectors: np.ndarray, rewards: np.ndarray, grid: Iterable[KernelConfig]) -> list[tuple[KernelConfig, float]]:
    """Mean true reward of leave-one-task-out predictions for each configuration."""
    n = len(vectors)
    if n < 2:
        raise T2SError("reward-kernel model selection needs at least 2 seen tasks")
    sims = {kind: similarity_matrix(vectors, vectors, kind) for kind in SIMILARITIES}
    prepared: dict[tuple[str, int], np.ndarray] = {}
    results = []
    for cfg in grid:
        key = (cfg.normalisation, cfg.order)
        if key not in prepared:
            prepared[key] = smooth_rows(normalise_rows(rewards, cfg.normalisation), cfg.order)
        rows = prepared[key]
        total = 0.0
        for u in range(n):
            others = np.r_[0:u, u + 1 : n]
            w = kernel_weights(sims[cfg.similarity][u, others], cfg.tau)
            total += rewards[u, int(np.argmax(w @ rows[others]))]
        results.append((cfg, total / n))
    return results


class FittedRewardKernel:
    def __init__(self, problem: PolicyProblem, config: KernelConfig, selection: list[tuple[KernelConfig, float]]):
        self.problem = problem
        self.config = config
        self.selection = selection
        self.seen_x = problem.matrix(problem.seen)
        self.rows = smooth_rows(normalise_rows(problem.rewards(problem.seen), config.normalisation), config.order)

    def scores(self, vectors: np.ndarray) -> np.ndarray:
        """Predicted (normalised) score of each of the 256 settings for each vector."""
        w = kernel_weights(similarity_matrix(vectors, self.seen_x, self.config.similarity), self.config.tau)
        return w @ self.rows

    def predict(self, tasks: Sequence[str]) -> Prediction:
        tasks = tuple(tasks)
        scores = self.scores(self.problem.matrix(tasks))
        best = scores.argmax(axis=1)
        return Prediction(
            tasks,
            best,
            extras={
                "config": self.config.to_dict(),
                "selection_loo_seen": max(s for _, s in self.selection),
            },
        )


@METHODS.register("reward-kernel")
def fit_reward_kernel(problem: PolicyProblem, seed: int = 0, grid: Sequence[KernelConfig] | None = None, **_) -> FittedRewardKernel:
    """Select a configuration by leave-one-out over the seen tasks, then fit on all of them."""
    grid = list(grid) if grid is not None else default_grid()
    if len(problem.table.keys) != 256:
        # Walsh smoothing needs the full 2^8 cube; a partial table uses the raw rows.
        grid = [cfg for cfg in grid if cfg.order == 0]
    selection = loo_scores(problem.matrix(problem.seen), problem.rewards(problem.seen), grid)
    best_score = max(score for _, score in selection)
    chosen = next(cfg for cfg, score in selection if score >= best_score - 1e-12)
    return FittedRewardKernel(problem, chosen, selection)
