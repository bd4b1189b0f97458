"""The 256-setting reward table from a measured fraction: fit, predict, validate, and effects with intervals.

Route (a) of the study's design: a regular fraction of the 2^8 settings (``table256.design``,
resolution V at the cpu profile: 64 settings in which every main effect and two-factor interaction
is estimable free of the others) is measured at the full proxy recipe; per task, a least-squares
model on the +-1 coded parameters (main effects, plus the 28 two-factor interactions when the
fraction has resolution >= 5) predicts the other settings. The predictions are checked against
settings measured outside the fraction (``heldout``), which the validation fit never sees.

Noise. ``sigma`` (per task) is the pooled within-setting seed SD of the replicated settings (one
table entry of one seed); a measured entry averaged over ``n`` seeds has standard error
``sigma / sqrt(n)``. An effect's interval uses the model's residual SD (its degrees of freedom:
settings minus terms), which holds the seed noise of single-seed entries *and* whatever the model
leaves out (higher-order interactions), so it is the conservative of the two. A predicted entry's
standard error is the residual SD times the square root of its leverage.

The final table keeps every measured entry (seed-averaged) and fills the rest with the model fitted
on every measured setting; ``source`` says which is which.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import T2SError
from ..published import REWARD_RANGE
from ..settings import PARAMETER_LABELS, PARAMETERS, SimSetting
from ..verdicts import bootstrap_interval
from .analysis import MEAN, design_matrix, knn_frame, seed_sd
from .spec import SCRATCH, RewardSpec

ALL_KEYS = tuple(SimSetting.from_index(i).key for i in range(256))
PAIRS = tuple(itertools.combinations(range(len(PARAMETERS)), 2))
MEASURED, PREDICTED = "measured", "predicted"


def term_names(order: int) -> list[str]:
    """Model terms after the intercept: the 8 parameters, then (order 2) their 28 pairs ``a x b``."""
    names = list(PARAMETERS)
    if order >= 2:
        names += [f"{PARAMETERS[i]} x {PARAMETERS[j]}" for i, j in PAIRS]
    return names


def model_matrix(keys: Sequence[str], order: int) -> np.ndarray:
    """Intercept, +-1 main effects and (order 2) their pairwise products, one row per setting key."""
    x = design_matrix(list(keys))
    cols = [np.ones((len(keys), 1)), x]
    if order >= 2:
        cols.append(np.stack([x[:, i] * x[:, j] for i, j in PAIRS], 1))
    return np.concatenate(cols, 1)


def model_order(keys: Sequence[str]) -> int:
    """2 when ``keys`` identify every main effect and two-factor interaction (e.g. a resolution-V
    fraction), else 1 when they identify the main effects; refused otherwise."""
    for order in (2, 1):
        x = model_matrix(keys, order)
        if len(keys) > x.shape[1] and np.linalg.matrix_rank(x) == x.shape[1]:
            return order
    raise T2SError(f"the {len(keys)} measured settings of the fraction do not identify the 8 main effects "
                   "with residual degrees of freedom to spare",
                   "use a fractional factorial design for table256.design (ff16, ff32, resv64) or full")


@dataclass
class Fit:
    """Least-squares fit of one task's rewards on the model terms."""

    beta: np.ndarray
    cov_unscaled: np.ndarray  # (X'X)^-1
    residual_sd: float
    dof: int
    order: int

    def predict(self, keys: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(prediction, its standard error) for setting keys."""
        x = model_matrix(keys, self.order)
        leverage = np.einsum("ij,jk,ik->i", x, self.cov_unscaled, x)
        return x @ self.beta, self.residual_sd * np.sqrt(leverage)


def fit_task(keys: Sequence[str], values: Sequence[float], order: int) -> Fit:
    x = model_matrix(keys, order)
    y = np.asarray(values, dtype=float)
    cov = np.linalg.inv(x.T @ x)
    beta = cov @ x.T @ y
    dof = len(y) - x.shape[1]
    resid = y - x @ beta
    sd = float(np.sqrt(resid @ resid / dof)) if dof > 0 else float("nan")
    return Fit(beta, cov, sd, dof, order)


def measured_frame(rows: pd.DataFrame) -> pd.DataFrame:
    """5-NN per (task incl. ``mean``, setting, seed), scratch left out."""
    knn = knn_frame(rows)
    return knn[knn["setting"] != SCRATCH]


@dataclass
class Table256:
    """Everything notebook 09 reports about the 256-setting table."""

    table: pd.DataFrame  # tasks (+ mean) x 256 settings, 5-NN %
    source: pd.Series  # setting -> measured / predicted
    entry_se: pd.DataFrame  # tasks (+ mean) x 256: standard error of each entry
    seeds: pd.Series  # setting -> seeds measured (0: predicted)
    sigma: pd.Series  # task -> pooled seed SD of one entry
    effects: pd.DataFrame  # task, term, kind, effect, se, low, high, resolved
    validation: pd.DataFrame  # per task: held-out Spearman and its interval, RMSE, noise of a held-out entry
    order: int
    fraction: list[str]
    heldout: list[str]
    extras: dict = field(default_factory=dict)


def analyse_table256(rows: pd.DataFrame, fraction: Sequence[str], heldout: Sequence[str], *,
                     chance: float | None = None, bootstrap: int = 2000, seed: int = 0) -> Table256:
    """Fit, predict, validate and estimate effects from the rows of a reward table folder
    (``rewards.csv``) for a measured ``fraction`` and ``heldout`` settings. With the pre-training
    task's ``chance`` accuracy, ``extras["learned"]`` is each measured setting's held-out pre-training
    accuracy over chance (seed mean): whether its backbone learned at all."""
    knn = measured_frame(rows)
    means = knn.groupby(["task", "setting"])["value"].mean().unstack("setting")
    counts = knn[knn["task"] == MEAN].groupby("setting")["seed"].nunique()
    missing = [k for k in list(fraction) + list(heldout) if k not in means.columns or means[k].isna().any()]
    if missing:
        raise T2SError(f"the 256-setting table lacks {len(missing)} measured setting(s), e.g. {missing[:3]}",
                       "finish the cells first: t2s rewards build --profile P --table256 (rerunning resumes)")
    sigma = seed_sd(rows)
    fraction, heldout = list(fraction), [k for k in heldout if k not in fraction]
    order = model_order(fraction)
    tasks = [t for t in means.index if t != MEAN] + [MEAN]
    measured_keys = [k for k in ALL_KEYS if k in means.columns]

    table = pd.DataFrame(index=tasks, columns=list(ALL_KEYS), dtype=float)
    entry_se = table.copy()
    effects, validation = [], []
    clipped: dict[str, int] = {}
    for task in tasks:
        row = means.loc[task]
        # validation: the fraction alone predicts the held-out settings
        if heldout:
            vfit = fit_task(fraction, row[fraction].to_numpy(float), order)
            pred, _ = vfit.predict(heldout)
            measured = row[heldout].to_numpy(float)
            pair = np.stack([pred, measured], 1)
            rho = bootstrap_interval(_spearman_of_pair, pair, n=bootstrap, seed=seed, what="held-out settings")
            noise = float(np.sqrt(np.mean([sigma.get(task, np.nan) ** 2 / counts[k] for k in heldout])))
            validation.append({"task": task, "heldout": len(heldout), "spearman": rho.estimate, "spearman_low": rho.low,
                               "spearman_high": rho.high, "rmse": float(np.sqrt(np.mean((pred - measured) ** 2))),
                               "entry_noise": noise, "model_residual_sd": vfit.residual_sd, "model_dof": vfit.dof})
        # the table: measured where measured, else the model fitted on every measured setting
        fit = fit_task(measured_keys, row[measured_keys].to_numpy(float), order)
        pred, pred_se = fit.predict(ALL_KEYS)
        # an accuracy lies in 0..100: a linear model extrapolates past the ceiling (faces sits at 100 %),
        # so a prediction is bounded there (how many were, is extras["clipped"]); the modelling fix is issue 31's
        clipped[task] = int(((pred < REWARD_RANGE[0]) | (pred > REWARD_RANGE[1])).sum())
        pred = np.clip(pred, *REWARD_RANGE)
        values = pd.Series(pred, index=ALL_KEYS)
        ses = pd.Series(pred_se, index=ALL_KEYS)
        values[measured_keys] = row[measured_keys]
        ses[measured_keys] = [sigma.get(task, np.nan) / np.sqrt(counts[k]) for k in measured_keys]
        table.loc[task], entry_se.loc[task] = values, ses
        q = float(stats.t.ppf(0.975, fit.dof)) if fit.dof > 0 else float("nan")
        for i, name in enumerate(term_names(order)):
            effect = 2 * float(fit.beta[i + 1])  # ON minus OFF (interactions: the same contrast of their product)
            se = 2 * fit.residual_sd * float(np.sqrt(fit.cov_unscaled[i + 1, i + 1]))
            low, high = effect - q * se, effect + q * se
            effects.append({"task": task, "term": name, "kind": "main" if i < len(PARAMETERS) else "interaction",
                            "effect": effect, "se": se, "low": low, "high": high, "dof": fit.dof,
                            "resolved": bool(low > 0 or high < 0)})
    source = pd.Series([MEASURED if k in measured_keys else PREDICTED for k in ALL_KEYS], index=list(ALL_KEYS), name="source")
    seeds = pd.Series([int(counts.get(k, 0)) for k in ALL_KEYS], index=list(ALL_KEYS), name="seeds")
    extras: dict = {"clipped": clipped}
    if chance:
        val = rows[rows["metric"] == "pretrain_val_acc"]
        extras["learned"] = val.groupby("setting")["value"].mean() / chance
    return Table256(table, source, entry_se, seeds, sigma, pd.DataFrame(effects),
                    pd.DataFrame(validation).set_index("task") if validation else pd.DataFrame(), order, fraction, heldout,
                    extras)


def _spearman_of_pair(pair: np.ndarray) -> float:
    if len(np.unique(pair[:, 0])) < 2 or len(np.unique(pair[:, 1])) < 2:
        return float("nan")
    return float(stats.spearmanr(pair[:, 0], pair[:, 1]).statistic)


def measured_cpu_hours(table: str | Path, spec: RewardSpec, settings: Sequence[str]) -> float:
    """CPU-hours the cells of ``settings`` took (render + pre-training + every 5-NN, times the cell's torch
    threads), from their manifests and 5-NN records."""
    import json

    from .cells import cell_dir

    seconds = 0.0
    for cell in spec.cells():
        if cell.setting not in settings:
            continue
        folder = cell_dir(Path(table), cell)
        manifest = folder / "cell.json"
        threads = spec.threads or 1
        if manifest.is_file():
            m = json.loads(manifest.read_text())
            seconds += (m.get("render_seconds", 0.0) + m.get("pretrain_seconds", 0.0)) * (m.get("threads") or threads)
        for sub in ("knn", "knn_val"):
            for rec in (folder / sub).glob("*.json"):
                seconds += json.loads(rec.read_text()).get("seconds", 0.0) * threads
    return seconds / 3600


def fidelity_table(result: Table256, cpu_hours: float, epochs: int) -> pd.DataFrame:
    """``rewards256_fidelity.csv``: one row for route (a), ``rung = model``: the Spearman rank
    correlation (percentile bootstrap over held-out settings) between the model's predictions and
    the measured held-out settings on the task mean, and the table's measured cost."""
    if result.validation.empty:
        raise T2SError("no held-out settings: the model's predictions were not validated",
                       "give table256.heldout_design or table256.heldout_settings in the profile")
    v = result.validation.loc[MEAN]
    return pd.DataFrame([{"rung": "model", "epochs": epochs, "settings": int(v["heldout"]),
                          "spearman_task_mean": float(v["spearman"]), "spearman_low": float(v["spearman_low"]),
                          "spearman_high": float(v["spearman_high"]), "cpu_hours": round(cpu_hours, 3)}]).set_index("rung")


def resolved_counts(effects: pd.DataFrame) -> pd.DataFrame:
    """How many (task, term) effects have a 95 % interval that excludes zero, per kind (tasks, not the mean)."""
    per = effects[effects["task"] != MEAN]
    out = per.groupby("kind")["resolved"].agg(["sum", "count"]).rename(columns={"sum": "resolved", "count": "effects"})
    return out.astype(int)


def best_settings(result: Table256) -> pd.DataFrame:
    """Per task: the best setting of the 256 table, its source, value and standard error, the task mean's
    best setting (the best fixed one) and whether the task's best beats it by more than their noise."""
    t = result.table
    fixed = str(t.loc[MEAN].astype(float).idxmax())
    rows = []
    for task in t.index:
        best = str(t.loc[task].astype(float).idxmax())
        diff = float(t.loc[task, best] - t.loc[task, fixed])
        se = float(np.hypot(result.entry_se.loc[task, best], result.entry_se.loc[task, fixed])) if best != fixed else 0.0
        rows.append({"task": task, "best_setting": best, "source": result.source[best], "best": float(t.loc[task, best]),
                     "best_se": float(result.entry_se.loc[task, best]), "best_fixed_all_tasks": fixed,
                     "best_fixed_all_tasks_value": float(t.loc[task, fixed]), "difference": diff, "difference_se": se,
                     "beyond_noise": bool(best != fixed and diff > 1.96 * se)})
    return pd.DataFrame(rows).set_index("task")


def effects_wide(effects: pd.DataFrame, kind: str = "main") -> pd.DataFrame:
    """Tasks x terms of one kind: ``effect [low, high]`` strings (``*`` where the interval excludes 0)."""
    sub = effects[effects["kind"] == kind]
    text = sub.assign(cell=[f"{e:+.2f} [{lo:+.2f}, {hi:+.2f}]{'*' if r else ''}"
                            for e, lo, hi, r in zip(sub["effect"], sub["low"], sub["high"], sub["resolved"])])
    out = text.pivot(index="task", columns="term", values="cell")
    order = [t for t in dict.fromkeys(sub["task"])]
    cols = [c for c in dict.fromkeys(sub["term"])]
    out = out.loc[order, cols]
    if kind == "main":
        out.columns = [PARAMETER_LABELS.get(c, c) for c in out.columns]
    return out


def plot_table256(result: Table256):
    """Heat map: tasks x 256 settings (columns sorted by the task mean), with a strip marking measured entries."""
    import matplotlib.pyplot as plt

    t = result.table.astype(float)
    order = t.loc[MEAN].sort_values(ascending=False).index
    z = t[order]
    z = (z.T - z.mean(axis=1)).T  # per task: difference from the task's average over the 256 settings
    fig, (ax, strip) = plt.subplots(2, 1, figsize=(12, 0.42 * len(t) + 1.4), sharex=True,
                                    gridspec_kw={"height_ratios": [len(t), 0.6]})
    lim = float(np.nanmax(np.abs(z.to_numpy())))
    im = ax.imshow(z.to_numpy(), aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
    ax.set_yticks(range(len(t)), list(t.index))
    ax.set_title("5-NN % minus the task's average over the 256 settings (columns: settings by task-mean reward)")
    fig.colorbar(im, ax=ax, fraction=0.02, pad=0.01, label="points")
    strip.imshow((result.source[order] == MEASURED).to_numpy()[None].astype(float), aspect="auto", cmap="Greys",
                 vmin=0, vmax=1, interpolation="nearest")
    strip.set_yticks([0], ["measured"])
    strip.set_xticks([])
    strip.set_xlabel(f"{(result.source == MEASURED).sum()} measured (black), {(result.source == PREDICTED).sum()} "
                     f"predicted by the {'main + two-factor' if result.order == 2 else 'main-effect'} model")
    fig.tight_layout()
    return fig


def plot_validation(result: Table256, task: str = MEAN):
    """Predicted (from the fraction alone) vs measured held-out settings for one task."""
    import matplotlib.pyplot as plt

    fit = fit_task(result.fraction, result.table.loc[task, result.fraction].astype(float).to_numpy(), result.order)
    pred, se = fit.predict(result.heldout)
    meas = result.table.loc[task, result.heldout].astype(float).to_numpy()
    noise = result.entry_se.loc[task, result.heldout].astype(float).to_numpy()
    fig, ax = plt.subplots(figsize=(4.6, 4.4))
    ax.errorbar(pred, meas, xerr=1.96 * se, yerr=1.96 * noise, fmt="o", ms=4, lw=0.8, capsize=2)
    lo, hi = float(min(pred.min(), meas.min())) - 1, float(max(pred.max(), meas.max())) + 1
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
    v = result.validation.loc[task]
    ax.set_title(f"{task}: held-out settings, Spearman {v['spearman']:.2f} [{v['spearman_low']:.2f}, {v['spearman_high']:.2f}]",
                 fontsize=9)
    ax.set_xlabel("predicted from the fraction (5-NN %)")
    ax.set_ylabel("measured (5-NN %)")
    fig.tight_layout()
    return fig


def disagreement_finding(result: Table256) -> tuple[str, str, "Interval"]:
    """"Different tasks are helped by different parameters", measured: is there a parameter whose main
    effect is resolved positive on one task and resolved negative on another? Each effect's interval is
    Bonferroni-widened over the 8 parameters (two-sided 95 / 8 %). The interval returned is the weaker
    side of the best such pair, signed so that > 0 means both sides are resolved (min of the positive
    task's effect and minus the negative task's)."""
    from ..verdicts import Interval, verdict

    mains = result.effects[(result.effects["kind"] == "main") & (result.effects["task"] != MEAN)].copy()
    q = stats.t.ppf(1 - 0.025 / len(PARAMETERS), mains["dof"].clip(lower=1))
    mains["low_b"], mains["high_b"] = mains["effect"] - q * mains["se"], mains["effect"] + q * mains["se"]
    best, best_iv = None, None
    for term, grp in mains.groupby("term", sort=False):
        pos, neg = grp.loc[grp["low_b"].idxmax()], grp.loc[grp["high_b"].idxmin()]
        iv = Interval(min(pos["effect"], -neg["effect"]), min(pos["low_b"], -neg["high_b"]),
                      min(pos["high_b"], -neg["low_b"]), "t intervals from the model's residual SD, Bonferroni over 8 parameters")
        if best_iv is None or iv.low > best_iv.low:
            best, best_iv = (term, pos, neg), iv
    term, pos, neg = best
    split = [t for t, g in mains.groupby("term") if (g["low_b"] > 0).any() and (g["high_b"] < 0).any()]
    sentence = (f"{len(split)} of 8 parameters help one task and hurt another beyond their noise"
                + (f" ({', '.join(PARAMETER_LABELS.get(t, t) for t in split)})" if split else "")
                + f"; clearest: {PARAMETER_LABELS.get(term, term)} {pos['effect']:+.2f} [{pos['low_b']:+.2f}, {pos['high_b']:+.2f}] "
                f"on {pos['task']} vs {neg['effect']:+.2f} [{neg['low_b']:+.2f}, {neg['high_b']:+.2f}] on {neg['task']}")
    return verdict(best_iv, +1), sentence, best_iv
