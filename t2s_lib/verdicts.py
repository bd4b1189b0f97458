"""Verdicts that carry their noise: a paper's finding "holds" at this scale only when the 95 %
interval of the quantity the paper compares excludes zero in the paper's direction.

Every finding of the study goes through :func:`verdict`:

* ``holds``: the interval lies entirely on the paper's side of zero;
* ``does not hold``: it lies entirely on the other side;
* ``not resolved at this scale``: it contains zero (the difference is inside its noise).

Intervals come from replicates: :func:`paired_t_interval` (a paired difference over seeds,
Student's t), :func:`t_interval_over_tasks` (per-task values, seeds averaged first: the interval
for findings over few tasks, where a percentile bootstrap over 3-4 values is too narrow) or
:func:`bootstrap_interval` (percentile bootstrap over resampled units, for many units); each
finding names which (:class:`Interval.method`) and its n.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Callable, Sequence

import numpy as np
from scipy import stats

HOLDS = "holds"
DOES_NOT_HOLD = "does not hold"
NOT_RESOLVED = "not resolved at this scale"
LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    """A point estimate with its ``level`` interval and how the interval was obtained."""

    estimate: float
    low: float
    high: float
    method: str  # e.g. "paired t over 3 seeds", "bootstrap over seeds and tasks (2000)"
    level: float = LEVEL

    @property
    def bounds(self) -> list[float | None]:
        """``[low, high]`` rounded; None (JSON null) where there is no bound (e.g. one task: no t interval)."""
        return [finite_rounded(self.low), finite_rounded(self.high)]

    def text(self, digits: int = 2) -> str:
        if not (np.isfinite(self.low) and np.isfinite(self.high)):
            return f"{self.estimate:+.{digits}f} (no interval)"
        return f"{self.estimate:+.{digits}f} [{self.low:+.{digits}f}, {self.high:+.{digits}f}]"

    def to_dict(self) -> dict:
        finite = {k: (v if not isinstance(v, float) or np.isfinite(v) else None) for k, v in asdict(self).items()}
        return {**finite, "interval": self.bounds}


def finite_rounded(value: float, digits: int = 4) -> float | None:
    """``value`` rounded, None (JSON null) when it is not finite."""
    return round(float(value), digits) if np.isfinite(value) else None


def verdict(interval: Interval | Sequence[float], direction: int = 1, threshold: float = 0.0) -> str:
    """``holds`` / ``does not hold`` / ``not resolved at this scale`` for a quantity whose paper
    direction is ``direction`` (+1: the paper says it is above ``threshold``, -1: below).

    ``threshold`` is 0 for a difference the paper says exists; a claim of *no loss* (e.g. "no
    degradation with fewer examples") is a non-inferiority claim, ``difference > -margin``, with
    the margin stated where the finding is made."""
    if direction not in (1, -1):
        raise ValueError("direction must be +1 or -1")
    low, high = (interval.low, interval.high) if isinstance(interval, Interval) else (float(interval[0]), float(interval[1]))
    if not (np.isfinite(low) and np.isfinite(high)):
        return NOT_RESOLVED
    low, high = low - threshold, high - threshold
    low, high = (low, high) if direction == 1 else (-high, -low)
    if low > 0:
        return HOLDS
    if high < 0:
        return DOES_NOT_HOLD
    return NOT_RESOLVED


def equivalence_verdict(interval: Interval, margin: float) -> str:
    """For a claim of *no difference* (e.g. "similar rates"): holds when the interval lies within
    ``[-margin, margin]``, does not hold when it lies entirely outside it, else not resolved."""
    low, high = interval.low, interval.high
    if not (np.isfinite(low) and np.isfinite(high)):
        return NOT_RESOLVED
    if -margin < low and high < margin:
        return HOLDS
    if low >= margin or high <= -margin:
        return DOES_NOT_HOLD
    return NOT_RESOLVED


def combine(verdicts: Sequence[str]) -> str:
    """A finding made of several quantities: it holds when every part holds, does not hold when
    every part does not, and is not resolved otherwise (no partial credit)."""
    parts = set(verdicts)
    if parts == {HOLDS}:
        return HOLDS
    if parts == {DOES_NOT_HOLD}:
        return DOES_NOT_HOLD
    return NOT_RESOLVED


def paired_t_interval(differences: Sequence[float], level: float = LEVEL) -> Interval:
    """Mean of paired differences (one per seed) with its Student-t interval; NaN bounds below 2 values."""
    d = np.asarray(differences, dtype=float)
    d = d[np.isfinite(d)]
    if len(d) == 0:
        return Interval(float("nan"), float("nan"), float("nan"), "no replicate")
    mean = float(d.mean())
    if len(d) < 2:
        return Interval(mean, float("nan"), float("nan"), "one seed: no interval")
    half = float(stats.t.ppf(0.5 + level / 2, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d)))
    return Interval(mean, mean - half, mean + half, f"paired t over {len(d)} seeds", level)


def t_interval_over_tasks(per_task: Sequence[float], what: str) -> Interval:
    """Mean of per-task values (each already averaged over its seeds) with a Student-t interval over
    tasks (n - 1 degrees of freedom): it covers at its level with 3-7 tasks, where a percentile
    bootstrap over the tasks does not (tests/test_verdicts.py checks both on simulated data)."""
    d = np.asarray(per_task, dtype=float)
    if len(d) < 2 or not np.all(np.isfinite(d)):
        return Interval(float(np.mean(d)) if len(d) else float("nan"), float("nan"), float("nan"),
                        f"no interval over {len(d)} task(s) ({what})")
    # the same Student-t interval as a paired difference over seeds, here over tasks
    return replace(paired_t_interval(d), method=f"t over {len(d)} tasks, {len(d) - 1} df ({what})")


def normal_interval(estimate: float, se: float, *, dof: float | None = None, method: str = "",
                    level: float = LEVEL) -> Interval:
    """``estimate +- q se`` with q from Student's t (``dof``) or the normal distribution."""
    q = float(stats.t.ppf(0.5 + level / 2, dof) if dof else stats.norm.ppf(0.5 + level / 2))
    return Interval(float(estimate), float(estimate - q * se), float(estimate + q * se), method, level)


def bootstrap_interval(statistic: Callable[[np.ndarray], float], data: np.ndarray, *, axes: Sequence[int] = (0,),
                       n: int = 2000, seed: int = 0, level: float = LEVEL, what: str = "") -> Interval:
    """Percentile bootstrap of ``statistic(data)``, resampling ``data`` independently along each
    of ``axes`` (e.g. axis 0 = seeds, axis 1 = tasks: a two-way bootstrap over seeds and tasks)."""
    data = np.asarray(data, dtype=float)
    rng = np.random.default_rng(seed)
    estimate = float(statistic(data))
    draws = np.empty(n)
    for i in range(n):
        sample = data
        for ax in axes:
            pick = rng.integers(0, data.shape[ax], data.shape[ax])
            sample = np.take(sample, pick, axis=ax)
        draws[i] = statistic(sample)
    draws = draws[np.isfinite(draws)]
    if len(draws) == 0:
        return Interval(estimate, float("nan"), float("nan"), "bootstrap: no finite resample")
    low, high = np.quantile(draws, [0.5 - level / 2, 0.5 + level / 2])
    return Interval(estimate, float(low), float(high), f"bootstrap over {what or 'axes ' + str(list(axes))} ({n})", level)
