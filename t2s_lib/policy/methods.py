"""Task -> setting methods behind one interface, and their registry.

A *method* is fitted on the seen tasks of a :class:`PolicyProblem` (their vectors and reward rows)
with a seed, and returns a :class:`Prediction` for any list of tasks from their vectors alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol, Sequence

import numpy as np

from ..registry import Registry
from ..settings import HEAD_ORDER
from .problem import PolicyProblem


@dataclass
class Prediction:
    """Predicted setting per task as a column of the problem's reward table (for a complete
    table, column = setting index 0..255), plus optional per-parameter P(vary)."""

    tasks: tuple[str, ...]
    indices: np.ndarray
    p_vary: np.ndarray | None = None  # [n_tasks, 8] in HEAD_ORDER
    extras: dict = field(default_factory=dict)
    #: For methods that are a distribution over settings (uniformly random), the expected reward.
    expected: np.ndarray | None = None

    def keys(self, problem: PolicyProblem) -> dict[str, str | None]:
        columns = problem.table.keys
        return {t: (columns[int(i)] if i >= 0 else None) for t, i in zip(self.tasks, self.indices)}

    def rewards(self, problem: PolicyProblem) -> np.ndarray:
        if self.expected is not None:
            return np.asarray(self.expected, dtype=np.float64)
        R = problem.rewards(self.tasks)
        return R[np.arange(len(self.tasks)), self.indices]


class FittedMethod(Protocol):
    def predict(self, tasks: Sequence[str]) -> Prediction: ...


#: name -> fit(problem, seed, **options) -> FittedMethod (predicts for any task of the problem)
METHODS: Registry[Callable[..., FittedMethod]] = Registry("policy variant")

#: The default variant of ``t2s policy train``.
DEFAULT_VARIANT = "reward-kernel"


def p_vary_from_probs(probs: np.ndarray) -> np.ndarray:
    """[n, 8, 2] head probabilities -> [n, 8] probability that each parameter varies."""
    return probs[..., 1]


__all__ = ["DEFAULT_VARIANT", "METHODS", "FittedMethod", "Prediction", "HEAD_ORDER", "p_vary_from_probs"]
