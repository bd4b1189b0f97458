"""Analyses of the policy's premise on a reward table and Task2Vec vectors.

:func:`similarity_vs_reward_correlation` measures Task2Sim's premise, that tasks with similar
Task2Vec embeddings are helped by similar simulation settings: over all task pairs, the Spearman
correlation between

* the pairwise Task2Vec similarity the policy sees (cosine of L2-normalised vectors), and
* the pairwise correlation of the two tasks' reward rows (Pearson, or Spearman, of the rows after
  centring each one; the row mean, i.e. how easy a task is, does not enter),

with a permutation p-value (Mantel test: task labels of one matrix are permuted, which keeps the
dependence between pairs that share a task). Works on any :class:`PolicyProblem` (the published
table and vectors, or the live study's table and offline vectors).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
from scipy.stats import rankdata

from ..errors import T2SError
from ..published import l2_normalize
from .problem import PolicyProblem


@dataclass(frozen=True)
class PremiseResult:
    spearman: float  # rank correlation of similarity and reward-row correlation over pairs
    p_value: float  # one-sided, H1: positive association (permutation / Mantel)
    p_value_two_sided: float
    n_tasks: int
    n_pairs: int
    permutations: int
    row_correlation: str
    null_low: float = float("nan")  # the permutation null's 2.5 % quantile
    null_high: float = float("nan")  # and its 97.5 % quantile

    def to_dict(self) -> dict:
        return asdict(self)


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = rankdata(a), rankdata(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = np.sqrt((ra**2).sum() * (rb**2).sum())
    return float((ra * rb).sum() / denom) if denom > 0 else float("nan")


def task_similarity(vectors: np.ndarray) -> np.ndarray:
    """[n, n] cosine of L2-normalised Task2Vec vectors (what the policy sees)."""
    x = l2_normalize(np.asarray(vectors, dtype=np.float64))
    return x @ x.T


def reward_row_correlation(rows: np.ndarray, kind: str = "pearson") -> np.ndarray:
    """[n, n] correlation of reward rows, each centred first (Pearson) or ranked (Spearman)."""
    rows = np.asarray(rows, dtype=np.float64)
    if kind == "spearman":
        rows = np.apply_along_axis(rankdata, 1, rows)
    elif kind != "pearson":
        raise T2SError(f"unknown row correlation {kind!r}", "use 'pearson' or 'spearman'")
    c = rows - rows.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(c, axis=1)
    if np.any(norms == 0):
        raise T2SError("a reward row is constant: its correlation with other rows is undefined")
    c = c / norms[:, None]
    return c @ c.T


def premise_test(similarity: np.ndarray, row_corr: np.ndarray, *, permutations: int = 9999, seed: int = 0,
                 row_correlation: str = "pearson") -> PremiseResult:
    """Spearman of the upper triangles of two [n, n] matrices, with a Mantel permutation p-value."""
    n = similarity.shape[0]
    if n < 3 or similarity.shape != (n, n) or row_corr.shape != (n, n):
        raise T2SError("premise test needs two square matrices over the same >= 3 tasks")
    iu = np.triu_indices(n, k=1)
    sim_pairs = similarity[iu]
    rho = _spearman(sim_pairs, row_corr[iu])
    rng = np.random.default_rng([seed, 41])
    # Ranks of the similarity pairs are fixed; permuting tasks of the other matrix permutes its pairs.
    rs = rankdata(sim_pairs)
    rs = (rs - rs.mean()) / np.sqrt(((rs - rs.mean()) ** 2).sum())
    ge = ge_abs = 0
    null = np.empty(permutations)
    for i in range(permutations):
        p = rng.permutation(n)
        rb = rankdata(row_corr[np.ix_(p, p)][iu])
        rb = rb - rb.mean()
        r = float(rs @ rb / np.sqrt((rb**2).sum()))
        null[i] = r
        ge += r >= rho - 1e-12
        ge_abs += abs(r) >= abs(rho) - 1e-12
    null_low, null_high = (np.quantile(null, [0.025, 0.975]) if permutations else (np.nan, np.nan))
    return PremiseResult(
        spearman=rho,
        p_value=(1 + ge) / (1 + permutations),
        p_value_two_sided=(1 + ge_abs) / (1 + permutations),
        n_tasks=n,
        n_pairs=len(sim_pairs),
        permutations=permutations,
        row_correlation=row_correlation,
        null_low=float(null_low),
        null_high=float(null_high),
    )


def similarity_vs_reward_correlation(
    problem: PolicyProblem,
    tasks: Sequence[str] | None = None,
    *,
    row_correlation: str = "pearson",
    permutations: int = 9999,
    seed: int = 0,
) -> PremiseResult:
    """Task2Sim's premise on ``problem`` (default: all its tasks): does Task2Vec similarity of two
    tasks predict how similarly the settings rank for them?"""
    tasks = tuple(tasks) if tasks is not None else problem.all_tasks
    sim = task_similarity(problem.matrix(tasks))
    corr = reward_row_correlation(problem.rewards(tasks), row_correlation)
    return premise_test(sim, corr, permutations=permutations, seed=seed, row_correlation=row_correlation)


def premise_pairs(problem: PolicyProblem, tasks: Sequence[str] | None = None, row_correlation: str = "pearson"):
    """Tidy table of every task pair: similarity and reward-row correlation (for a scatter plot)."""
    import pandas as pd

    tasks = tuple(tasks) if tasks is not None else problem.all_tasks
    sim = task_similarity(problem.matrix(tasks))
    corr = reward_row_correlation(problem.rewards(tasks), row_correlation)
    i, j = np.triu_indices(len(tasks), k=1)
    return pd.DataFrame({"task_a": [tasks[a] for a in i], "task_b": [tasks[b] for b in j],
                         "task2vec_cosine": sim[i, j], "reward_row_correlation": corr[i, j]})
