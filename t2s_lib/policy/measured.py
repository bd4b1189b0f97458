"""``measured``: measured selection, a task -> setting method with a measurement budget K.

Premise. Once a reward table has been built, one pre-trained backbone per setting exists, and
scoring a stored backbone on a new task costs one feature-extraction pass (a 5-NN on a validation
split carved from the task's own training data). Task2Vec similarity predicts little about which
settings suit a task; a handful of direct measurements can.

Method. For a new task:

1. a Gaussian prior over the task's reward row (one value per column of the table) is built from
   the training tasks' rows (:class:`RowPrior`): an unknown per-task offset (flat prior), a prior
   mean (the average centred or standardised training row, optionally weighted by Task2Vec
   similarity), and a covariance estimated from the training rows, either in the Walsh basis of
   the 8 on/off parameters (main effects, + pairwise, + triple interactions; the rest of each
   row is an iid residual) or directly over the columns (empirical covariance), shrunk towards
   its diagonal;
2. K settings are measured one at a time (:func:`select`), each chosen by an acquisition rule on
   the current posterior: ``prior`` (the top of the training tasks' ranking, not adaptive),
   ``greedy`` (highest posterior mean), ``ucb`` (mean + kappa sd), ``ei`` (expected improvement
   over the best measured value) or ``uncertainty`` (largest posterior sd);
3. the setting is the best measured one (``final="observed"``) or the argmax of the posterior mean
   over every column (``final="model"``; on an exact table it equals the measured value where
   one was measured).

Measurements go through a callable ``measure(task, setting_keys) -> {key: value}``;
:func:`table_measure` implements it by looking up the reward table (the published study), and
the live study plugs in a 5-NN on a validation split. The sequence of measured settings does not
depend on K (the first K of a larger budget are the same), so more budget never lowers the best
measured value.

Design. Every choice (model, shrinkage, prior weighting, acquisition, final rule) is made by
leave-one-task-out over the seen tasks only (:func:`selection_scores`: fit on the others,
measure K settings of the held-out task, take its true reward of the chosen setting).
:func:`design_study` scores :func:`wide_grid` that way on the 12 seen tasks and picks the
configuration with the best mean over K = 1, 2, 4, 8, 16, 32; that is :data:`DEFAULT_CONFIG`
(the record is ``figures/policy_measured_design.md``). Fitting the method builds the prior from
the seen rows and records the seen-task leave-one-out reward of its configuration at its budget;
with ``grid=`` it instead picks the best configuration of that grid for its budget, the same
way. The method is deterministic; the seed is accepted and ignored.

Caveat. On the published table there is one number per cell: it is both the measurement that
selects a setting and the score it is credited with, so a lucky high cell is both chosen and
credited. :func:`optimism_curve` estimates that bias by simulating noisy measurements.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from ..errors import T2SError
from ..published import RewardTable, l2_normalize
from ..settings import PARAMETERS, parse_key
from .methods import METHODS, Prediction
from .problem import PolicyProblem

#: measure(task, setting_keys) -> {key: value}
Measure = Callable[[str, Sequence[str]], Mapping[str, float]]

MODELS = ("walsh1", "walsh2", "walsh3", "empirical")
ACQUISITIONS = ("prior", "greedy", "ucb", "ei", "uncertainty")
FINALS = ("observed", "model")
NORMALISATIONS = ("center", "z")
#: The budgets reported in the K-curve.
REPORT_BUDGETS = (1, 2, 4, 8, 16, 32)
#: Budget of ``t2s policy train --variant measured`` without ``--budget``.
DEFAULT_BUDGET = 8


@dataclass(frozen=True)
class MeasuredConfig:
    """One design of measured selection (the defaults are :data:`DEFAULT_CONFIG`)."""

    model: str = "walsh3"  # prior covariance: Walsh order 1-3 (+ iid residual) or "empirical"
    shrink: float = 0.5  # covariance -> (1 - shrink) * sample + shrink * its diagonal
    normalisation: str = "center"  # prior mean from centred rows, or z-scored rows rescaled to points
    tau: float = float("inf")  # Task2Vec kernel on the prior mean (inf: plain average)
    acquisition: str = "ucb"
    kappa: float = 2.0  # ucb only
    final: str = "observed"
    noise_sd: float = 0.0  # measurement noise the posterior assumes (0: exact table lookups)

    def __post_init__(self) -> None:
        for name, value, allowed in (("model", self.model, MODELS), ("acquisition", self.acquisition, ACQUISITIONS),
                                     ("final", self.final, FINALS), ("normalisation", self.normalisation, NORMALISATIONS)):
            if value not in allowed:
                raise T2SError(f"measured selection: unknown {name} {value!r}", f"use one of: {', '.join(allowed)}")
        if not 0.0 <= self.shrink <= 1.0:
            raise T2SError(f"measured selection: shrink {self.shrink} is not in [0, 1]")
        if self.noise_sd < 0 or self.kappa < 0 or self.tau <= 0:
            raise T2SError("measured selection: noise_sd and kappa must be >= 0, tau > 0")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["tau"] = "inf" if math.isinf(self.tau) else self.tau
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> "MeasuredConfig":
        d = dict(d)
        if d.get("tau") == "inf":
            d["tau"] = float("inf")
        return cls(**d)


# ----- the measurement -------------------------------------------------------------------------
def table_measure(table: RewardTable, *, noise_sd: float = 0.0, seed: int = 0) -> Measure:
    """A measurement by table lookup (the published study); with ``noise_sd`` > 0 each cell gets
    one fixed Gaussian perturbation (same value however often it is read), drawn from ``seed``."""
    noise = None
    if noise_sd > 0:
        noise = np.random.default_rng([seed, 17]).normal(0.0, noise_sd, size=table.values.shape)

    def measure(task: str, keys: Sequence[str]) -> dict[str, float]:
        i = table.task_index(task)
        out = {}
        for key in keys:
            j = table.key_index(key)
            out[key] = float(table.values[i, j] + (noise[i, j] if noise is not None else 0.0))
        return out

    return measure


# ----- the prior -------------------------------------------------------------------------------
def rows_measure(keys: Sequence[str], rows: Mapping[str, Sequence[float]]) -> Measure:
    """A measurement that reads ``rows[task]`` (one value per setting, in ``keys`` order)."""
    position = {k: j for j, k in enumerate(keys)}

    def measure(task: str, wanted: Sequence[str]) -> dict[str, float]:
        if task not in rows:
            raise T2SError(f"measured selection: no measurements for task {task!r}",
                           "build the reward table with rewards.validation: true")
        return {k: float(rows[task][position[k]]) for k in wanted}

    return measure


def column_signs(keys: Sequence[str]) -> np.ndarray:
    """[m, 8] +-1 encoding of each column's setting (paper parameter order)."""
    return np.array([[1.0 if b else -1.0 for b in parse_key(k).bits(PARAMETERS)] for k in keys])


@lru_cache(maxsize=16)
def _walsh_design(keys: tuple[str, ...], order: int) -> np.ndarray:
    """[m, p] Walsh functions of degree 1..order (no constant) over the 8 bits, at the columns."""
    signs = column_signs(keys)
    cols = [np.prod(signs[:, combo], axis=1) for d in range(1, order + 1) for combo in itertools.combinations(range(8), d)]
    return np.stack(cols, axis=1)


def walsh_order(model: str) -> int | None:
    return int(model[-1]) if model.startswith("walsh") else None


def model_fits(model: str, n_columns: int) -> bool:
    """A Walsh model needs more columns than coefficients (+ the offset) to be estimated."""
    order = walsh_order(model)
    if order is None:
        return True
    return sum(math.comb(8, d) for d in range(order + 1)) < n_columns


@dataclass
class RowPrior:
    """Gaussian prior of a new task's reward row: ``y = offset + mean + f``, ``f ~ N(0, cov)``,
    with a flat prior on the offset (handled exactly by generalised least squares)."""

    mean: np.ndarray  # [m]
    cov: np.ndarray  # [m, m]

    @classmethod
    def fit(cls, rows: np.ndarray, keys: Sequence[str], cfg: MeasuredConfig, weights: np.ndarray | None = None) -> "RowPrior":
        rows = np.asarray(rows, dtype=np.float64)
        n, m = rows.shape
        if n < 2:
            raise T2SError("measured selection needs at least 2 training tasks to build its prior")
        centred = rows - rows.mean(axis=1, keepdims=True)
        w = np.full(n, 1.0 / n) if weights is None else np.asarray(weights, dtype=np.float64)
        if cfg.normalisation == "center":
            mean = w @ centred
        else:
            sd = np.maximum(rows.std(axis=1, keepdims=True), 1e-12)
            mean = (w @ (centred / sd)) * float(sd.mean())
        dev = centred - centred.mean(axis=0)
        order = walsh_order(cfg.model)
        if order is None:
            S = dev.T @ dev / (n - 1)
            cov = (1.0 - cfg.shrink) * S + cfg.shrink * np.diag(np.diag(S))
        else:
            if not model_fits(cfg.model, m):
                raise T2SError(f"measured selection: model {cfg.model} has more coefficients than the table's {m} settings",
                               "use walsh1 or empirical for a table with few settings")
            Phi = _walsh_design(tuple(keys), order)
            coef, *_ = np.linalg.lstsq(np.c_[np.ones(m), Phi], dev.T, rcond=None)
            beta = coef[1:].T  # [n, p]
            resid = dev - coef[0][:, None] - beta @ Phi.T
            dof = max(m - Phi.shape[1] - 1, 1)
            s2 = float((resid**2).sum() / (n - 1) / dof)
            Sb = beta.T @ beta / (n - 1)
            Cb = (1.0 - cfg.shrink) * Sb + cfg.shrink * np.diag(np.diag(Sb))
            cov = Phi @ Cb @ Phi.T + s2 * np.eye(m)
        return cls(mean, cov)


# ----- selection -------------------------------------------------------------------------------
@dataclass
class Posterior:
    mean: np.ndarray
    sd: np.ndarray


def posterior(prior: RowPrior, idx: Sequence[int], values: Sequence[float], noise_var: float) -> Posterior:
    """Posterior of the row given exact or noisy values at columns ``idx`` (universal kriging:
    the unknown offset is estimated by generalised least squares)."""
    m = prior.mean.shape[0]
    if len(idx) == 0:
        return Posterior(prior.mean.copy(), np.full(m, np.inf))
    idx = np.asarray(idx)
    scale = float(np.mean(np.diag(prior.cov))) or 1.0
    A = prior.cov[np.ix_(idx, idx)] + (noise_var + 1e-9 * scale) * np.eye(len(idx))
    L = np.linalg.cholesky(A)
    solve = lambda b: np.linalg.solve(L.T, np.linalg.solve(L, b))  # noqa: E731
    r = np.asarray(values, dtype=np.float64) - prior.mean[idx]
    Ai_r, Ai_1 = solve(r), solve(np.ones(len(idx)))
    denom = float(Ai_1.sum())
    offset = float(Ai_r.sum()) / denom
    alpha = Ai_r - offset * Ai_1
    k = prior.cov[:, idx]  # [m, k]
    mean = prior.mean + offset + k @ alpha
    V = np.linalg.solve(L, k.T)  # [k, m]
    var = np.diag(prior.cov) - (V**2).sum(axis=0)
    u = 1.0 - k @ Ai_1  # offset uncertainty term
    var = var + u**2 / denom
    return Posterior(mean, np.sqrt(np.maximum(var, 0.0)))


def _norm_cdf(x: np.ndarray) -> np.ndarray:
    from scipy.special import ndtr

    return ndtr(x)


def acquisition_scores(post: Posterior, best: float, cfg: MeasuredConfig, prior_mean: np.ndarray) -> np.ndarray:
    a = cfg.acquisition
    if a == "prior":
        return prior_mean
    if a == "greedy":
        return post.mean
    if a == "ucb":
        return post.mean + cfg.kappa * post.sd
    if a == "uncertainty":
        return post.sd
    # expected improvement over the best measured value
    sd = np.maximum(post.sd, 1e-12)
    z = (post.mean - best) / sd
    return (post.mean - best) * _norm_cdf(z) + sd * np.exp(-0.5 * z**2) / math.sqrt(2 * math.pi)


@dataclass
class Selection:
    """One task's measured selection: the columns measured in order, their values, and the
    chosen column after each budget in ``checkpoints``."""

    measured: list[int]
    values: list[float]
    chosen: dict[int, int]
    posterior_mean: np.ndarray | None = None  # after the last checkpoint, for final="model"


def _final_choice(prior: RowPrior, idx: list[int], vals: list[float], cfg: MeasuredConfig, exact: bool) -> tuple[int, np.ndarray | None]:
    if cfg.final == "observed":
        return idx[int(np.argmax(vals))], None
    post = posterior(prior, idx, vals, cfg.noise_sd**2)
    score = post.mean.copy()
    if exact:
        score[idx] = vals  # an exact measurement is the truth at its column
    return int(np.argmax(score)), post.mean


def select(
    prior: RowPrior,
    measure_columns: Callable[[list[int]], list[float]],
    budget: int,
    cfg: MeasuredConfig,
    checkpoints: Iterable[int] | None = None,
) -> Selection:
    """Measure ``budget`` columns one at a time by ``cfg.acquisition`` and choose a column after
    each budget in ``checkpoints`` (default: only ``budget``). The order of measured columns does
    not depend on ``budget``."""
    m = prior.mean.shape[0]
    if budget < 1:
        raise T2SError(f"measured selection: budget K={budget} must be at least 1", "pass --budget K with 1 <= K <= number of settings")
    if budget > m:
        raise T2SError(f"measured selection: budget K={budget} exceeds the table's {m} settings",
                       f"pass --budget K with 1 <= K <= {m}")
    checkpoints = sorted({min(int(k), budget) for k in (checkpoints or [budget])} | {budget})
    exact = cfg.noise_sd == 0.0
    if checkpoints == [m]:
        # Everything is measured: the order does not matter, skip the sequential posterior.
        cols = list(range(m))
        vals = [float(v) for v in measure_columns(cols)]
        chosen_col, post_mean = _final_choice(prior, cols, vals, cfg, exact)
        return Selection(cols, vals, {m: chosen_col}, post_mean)
    idx: list[int] = []
    vals: list[float] = []
    chosen: dict[int, int] = {}
    available = np.ones(m, dtype=bool)
    # Ties (e.g. equal prior means) go to the lower column index: np.argmax takes the first.
    post_mean = None
    for step in range(budget):
        if cfg.acquisition == "prior":
            score = prior.mean
        elif step == 0:
            # Nothing measured yet: the prior's best, or (uncertainty) its most uncertain column.
            score = np.diag(prior.cov) if cfg.acquisition == "uncertainty" else prior.mean
        else:
            post = posterior(prior, idx, vals, cfg.noise_sd**2)
            score = acquisition_scores(post, max(vals), cfg, prior.mean)
        score = np.where(available, score, -np.inf)
        j = int(np.argmax(score))
        available[j] = False
        idx.append(j)
        vals.append(float(measure_columns([j])[0]))
        if step + 1 in checkpoints:
            chosen[step + 1], post_mean = _final_choice(prior, idx, vals, cfg, exact)
    return Selection(idx, vals, chosen, post_mean)


# ----- leave-one-task-out scoring (model selection) --------------------------------------------
def _kernel_weights(sim: np.ndarray, tau: float) -> np.ndarray:
    if math.isinf(tau):
        return np.full(sim.shape, 1.0 / sim.shape[-1])
    w = np.exp((sim - sim.max()) / tau)
    return w / w.sum()


def selection_scores(
    rows: np.ndarray,
    keys: Sequence[str],
    vectors: np.ndarray,
    configs: Sequence[MeasuredConfig],
    budgets: Sequence[int],
) -> np.ndarray:
    """[n_configs, n_budgets] mean true reward of leave-one-task-out measured selection over the
    tasks of ``rows``: each task is predicted by the method fitted on the others and K
    measurements of its own row (exact lookups, as on the published table)."""
    rows = np.asarray(rows, dtype=np.float64)
    n = rows.shape[0]
    if n < 3:
        raise T2SError("measured selection: model selection needs at least 3 training tasks", "add seen tasks or pass a fixed config")
    kmax = max(budgets)
    sims = l2_normalize(vectors) @ l2_normalize(vectors).T
    out = np.zeros((len(configs), len(budgets)))
    groups: dict[tuple, list[int]] = {}
    for c, cfg in enumerate(configs):
        groups.setdefault((cfg.model, cfg.shrink, cfg.normalisation, cfg.tau), []).append(c)
    for members in groups.values():
        for u in range(n):
            others = np.r_[0:u, u + 1 : n]
            first = configs[members[0]]
            prior = RowPrior.fit(rows[others], keys, first, _kernel_weights(sims[u, others], first.tau))
            row = rows[u]
            for c in members:
                sel = select(prior, lambda cols: [row[j] for j in cols], kmax, configs[c], budgets)
                out[c] += [row[sel.chosen[k]] for k in budgets]
    return out / n


# ----- the configuration grid -------------------------------------------------------------------
def wide_grid() -> list[MeasuredConfig]:
    """The design space searched by :func:`design_study` (seen tasks only)."""
    grid = []
    for model, shrink, norm, tau in itertools.product(MODELS, (0.0, 0.5, 1.0), NORMALISATIONS, (float("inf"), 0.1)):
        base = MeasuredConfig(model=model, shrink=shrink, normalisation=norm, tau=tau)
        for acq, kappa in (("prior", 1.0), ("greedy", 1.0), ("ucb", 0.5), ("ucb", 1.0), ("ucb", 2.0), ("ei", 1.0), ("uncertainty", 1.0)):
            for final in FINALS:
                grid.append(replace(base, acquisition=acq, kappa=kappa, final=final))
    return grid


#: The configuration chosen by :func:`design_study` on the 12 seen tasks of the published table
#: (best mean seen-task leave-one-out reward over the budgets 1, 2, 4, 8, 16, 32 in
#: :func:`wide_grid`; see ``figures/policy_measured_design.md``): pairwise+triple Walsh prior with
#: half-shrunk covariance, centred rows, no Task2Vec weighting, UCB with kappa 2, best measured.
DEFAULT_CONFIG = MeasuredConfig(model="walsh3", shrink=0.5, normalisation="center", tau=float("inf"),
                                acquisition="ucb", kappa=2.0, final="observed")


def adapt_to_table(cfg: MeasuredConfig, n_columns: int) -> MeasuredConfig:
    """The same configuration on a table with fewer settings: the highest Walsh order whose
    coefficients the table's columns can estimate (down to main effects), else the empirical
    covariance."""
    order = walsh_order(cfg.model)
    if order is None:
        return cfg
    for o in range(order, 0, -1):
        if model_fits(f"walsh{o}", n_columns):
            return replace(cfg, model=f"walsh{o}")
    return replace(cfg, model="empirical")


def design_study(
    problem: PolicyProblem,
    grid: Sequence[MeasuredConfig] | None = None,
    budgets: Sequence[int] = REPORT_BUDGETS,
):
    """Score every configuration of ``grid`` (default :func:`wide_grid`) by leave-one-task-out
    over the problem's SEEN tasks only (their rows and vectors; nothing of the unseen tasks is
    read) and choose the one with the best mean over ``budgets`` (ties: the earlier one).
    Returns (table of seen-LOO rewards per configuration and budget, chosen configuration)."""
    import pandas as pd

    grid = list(grid) if grid is not None else wide_grid()
    m = len(problem.table.keys)
    budgets = [int(k) for k in budgets if int(k) <= m]
    grid = list(dict.fromkeys(adapt_to_table(cfg, m) for cfg in grid))
    seen_table = problem.table.subset(problem.seen)
    scores = selection_scores(seen_table.values, seen_table.keys, problem.matrix(problem.seen), grid, budgets)
    frame = pd.DataFrame([cfg.to_dict() for cfg in grid])
    for b, k in enumerate(budgets):
        frame[f"K={k}"] = scores[:, b]
    frame["mean_over_K"] = scores.mean(axis=1)
    best = float(frame["mean_over_K"].max())
    chosen = grid[int(np.flatnonzero(frame["mean_over_K"].to_numpy() >= best - 1e-12)[0])]
    return frame, chosen


# ----- the fitted method -----------------------------------------------------------------------
class FittedMeasured:
    """Measured selection fitted on a problem's seen tasks (prior rows + chosen configuration)."""

    def __init__(self, problem: PolicyProblem, budget: int, config: MeasuredConfig, selection: list[tuple[MeasuredConfig, float]],
                 measure: Measure | None = None):
        self.problem = problem
        self.budget = budget
        self.config = config
        self.selection = selection
        self.measure = measure if measure is not None else table_measure(problem.table)
        self.keys = problem.table.keys
        self.rows = problem.rewards(problem.seen)
        self.seen_x = problem.matrix(problem.seen)
        self._uniform_prior = None

    def prior_for(self, vector: np.ndarray | None) -> RowPrior:
        if math.isinf(self.config.tau) or vector is None:
            if self._uniform_prior is None:
                self._uniform_prior = RowPrior.fit(self.rows, self.keys, self.config)
            return self._uniform_prior
        sim = l2_normalize(vector[None])[0] @ l2_normalize(self.seen_x).T
        return RowPrior.fit(self.rows, self.keys, self.config, _kernel_weights(sim, self.config.tau))

    def run(self, task: str, vector: np.ndarray | None = None) -> Selection:
        """Measured selection for one task through ``self.measure``."""
        keys = self.keys

        def measure_columns(cols: list[int]) -> list[float]:
            wanted = [keys[j] for j in cols]
            got = self.measure(task, wanted)
            missing = [k for k in wanted if k not in got]
            if missing:
                raise T2SError(f"measurement of task {task!r} returned no value for setting(s) {missing}")
            return [float(got[k]) for k in wanted]

        return select(self.prior_for(vector), measure_columns, self.budget, self.config)

    def predict(self, tasks: Sequence[str]) -> Prediction:
        tasks = tuple(tasks)
        chosen, measured = [], {}
        for task in tasks:
            vector = self.problem.vectors[task] if not math.isinf(self.config.tau) else None
            sel = self.run(task, vector)
            chosen.append(sel.chosen[self.budget])
            measured[task] = [self.keys[j] for j in sel.measured]
        return Prediction(
            tasks,
            np.asarray(chosen, dtype=np.int64),
            extras={
                "config": self.config.to_dict(),
                # None: too few seen tasks (< 3) for a leave-one-out score
                "selection_loo_seen": max((s for _, s in self.selection if s == s), default=None),
                "budget": self.budget,
                "measured": measured,
            },
        )


def default_budget(n_columns: int) -> int:
    return min(DEFAULT_BUDGET, n_columns)


def check_budget(budget, n_columns: int) -> int:
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 1:
        raise T2SError(f"measured selection: budget K={budget!r} must be a positive integer", f"pass --budget K with 1 <= K <= {n_columns}")
    if budget > n_columns:
        raise T2SError(
            f"measured selection: budget K={budget} exceeds the {n_columns} settings of the reward table",
            f"pass --budget K with 1 <= K <= {n_columns}",
        )
    return int(budget)


@METHODS.register("measured")
def fit_measured(
    problem: PolicyProblem,
    seed: int = 0,
    *,
    budget: int | None = None,
    config: MeasuredConfig | Mapping | None = None,
    grid: Sequence[MeasuredConfig] | None = None,
    measure: Measure | None = None,
    measured_rows: Mapping[str, Sequence[float]] | None = None,
    **_,
) -> FittedMeasured:
    """Fit on the seen tasks: their rows form the prior. The configuration is ``config``
    (default :data:`DEFAULT_CONFIG`, adapted to the table's settings), or, with ``grid``, the
    best of the grid for ``budget`` by leave-one-task-out over the seen tasks. The seen-LOO
    reward of the configuration used is recorded either way.

    ``measured_rows`` (plain data: task -> one value per setting of the table) is what a measurement
    observes when it is not the reward that scores the choice, e.g. the live table's 5-NN on a
    validation split of each task's training data."""
    m = len(problem.table.keys)
    if measured_rows is not None:
        if measure is not None:
            raise T2SError("measured selection: pass either measure or measured_rows, not both")
        measure = rows_measure(problem.table.keys, measured_rows)
    budget = check_budget(default_budget(m) if budget is None else budget, m)
    if grid is not None and config is not None:
        raise T2SError("measured selection: pass either config or grid, not both")
    if grid is None:
        cfg = DEFAULT_CONFIG if config is None else (config if isinstance(config, MeasuredConfig) else MeasuredConfig.from_dict(config))
        grid = [cfg]
    grid = list(dict.fromkeys(adapt_to_table(cfg, m) for cfg in grid))
    if len(problem.seen) < 3:
        return FittedMeasured(problem, budget, grid[0], [(grid[0], float("nan"))], measure)
    seen_table = problem.table.subset(problem.seen)
    scores = selection_scores(seen_table.values, seen_table.keys, problem.matrix(problem.seen), grid, [budget])[:, 0]
    best = float(scores.max())
    chosen = next(cfg for cfg, s in zip(grid, scores) if s >= best - 1e-12)
    return FittedMeasured(problem, budget, chosen, list(zip(grid, scores.tolist())), measure)
