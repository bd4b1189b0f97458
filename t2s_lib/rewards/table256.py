"""The 256-setting reward table from a measured fraction: fit, predict, validate, and effects with intervals.

Route (a) of the study's design: a regular fraction of the 2^8 settings (``table256.design``,
resolution V at the cpu profile: 64 settings in which every main effect and two-factor interaction
is estimable free of the others) is measured at the full proxy recipe; per task, a least-squares
model on the +-1 coded parameters predicts the other settings.

The table's model is chosen by held-out validation. Candidates: main effects, or main effects and
the 28 two-factor interactions (when the fraction identifies them), each fitted on the **logit** of
the accuracy: a 5-NN accuracy is a proportion of ``n_test`` test images, so its logit (with the
half-count correction, which keeps an entry at 100 % finite) is unbounded, and a prediction mapped
back lies in (0, 100) whatever the model extrapolates. A linear model on the points scale is fitted
too and reported beside them, but it is not eligible: it predicts past 100 % where a task sits at
the ceiling. The candidate with the smallest mean per-task RMSE on the held-out settings (measured
outside the fraction, never seen by the validation fit) fills the table; each task's validation
Spearman is reported with its interval, not only the task mean's.

Effects. A main effect (ON minus OFF) or two-factor interaction is the contrast of measured entries
that the points-scale least-squares fit estimates (on a regular fraction the columns are orthogonal:
the coefficient is exactly half the contrast). Its noise is the larger of the model's residual SD and
the replicate seed SD of one entry (the residual holds seed noise and what the model leaves out; the
replicates hold seed noise measured directly; neither is a lower bound of the other, so the larger is
the conservative one), with that estimate's degrees of freedom. Multiplicity: each effect's two-sided
p-value enters a Benjamini-Hochberg procedure over every (task, term) test of the tasks (main effects
and interactions together); ``resolved_bh`` is what survives it at 5 % FDR, ``resolved_bonferroni``
what survives Bonferroni.

Noise of entries. ``sigma`` (per task) is the pooled within-setting seed SD of the replicated
settings (one entry of one seed); a measured entry averaged over ``n`` seeds has standard error
``sigma / sqrt(n)``; a predicted entry's is the model's (residual SD times the square root of its
leverage, mapped through the logit's slope).

The final table keeps every measured entry (seed-averaged) and fills the rest with the chosen model
fitted on every measured setting; ``source`` says which is which. A task whose measured entries all
sit at 100 % cannot rank settings and is refused; ``validation["ceiling_share"]`` says how close each
task is to that.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import special, stats

from ..errors import T2SError
from ..published import REWARD_RANGE
from ..settings import PARAMETER_LABELS, PARAMETERS, SimSetting
from ..verdicts import bootstrap_interval
from .analysis import MEAN, design_matrix, knn_frame, pooled_seed_sd
from .spec import SCRATCH, RewardSpec

ALL_KEYS = tuple(SimSetting.from_index(i).key for i in range(256))
PAIRS = tuple(itertools.combinations(range(len(PARAMETERS)), 2))
MEASURED, PREDICTED = "measured", "predicted"
LOGIT, POINTS = "logit", "points"
#: the false-discovery rate of the Benjamini-Hochberg step over the effects
FDR = 0.05


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


def identifiable(keys: Sequence[str], order: int) -> bool:
    """Whether ``keys`` identify every term of ``order`` with residual degrees of freedom to spare."""
    x = model_matrix(keys, order)
    return len(keys) > x.shape[1] and np.linalg.matrix_rank(x) == x.shape[1]


def model_order(keys: Sequence[str]) -> int:
    """2 when ``keys`` identify every main effect and two-factor interaction (e.g. a resolution-V
    fraction), else 1 when they identify the main effects; refused otherwise."""
    for order in (2, 1):
        if identifiable(keys, order):
            return order
    raise T2SError(f"the {len(keys)} measured settings of the fraction do not identify the 8 main effects "
                   "with residual degrees of freedom to spare",
                   "use a fractional factorial design for table256.design (ff16, ff32, resv64) or full")


def to_logit(accuracy: np.ndarray, n_test: int) -> np.ndarray:
    """Empirical logit of a 5-NN accuracy (%) over ``n_test`` images: the half-count correction keeps
    0 and 100 % finite (``log((k + 0.5) / (n - k + 0.5))`` for ``k`` correct)."""
    correct = np.asarray(accuracy, dtype=float) / 100.0 * n_test
    return np.log((correct + 0.5) / (n_test - correct + 0.5))


@dataclass
class Fit:
    """Least-squares fit of one task's rewards on the model terms (on the model's scale)."""

    beta: np.ndarray
    cov_unscaled: np.ndarray  # (X'X)^-1
    residual_sd: float
    dof: int
    order: int
    scale: str = POINTS

    def predict(self, keys: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(prediction, its standard error) for setting keys, in accuracy points; on the logit scale
        the standard error is mapped by the slope of the inverse logit (delta method)."""
        x = model_matrix(keys, self.order)
        leverage = np.einsum("ij,jk,ik->i", x, self.cov_unscaled, x)
        z, se = x @ self.beta, self.residual_sd * np.sqrt(leverage)
        if self.scale == POINTS:
            return z, se
        p = special.expit(z)
        return 100.0 * p, 100.0 * p * (1 - p) * se


def fit_task(keys: Sequence[str], values: Sequence[float], order: int, scale: str = POINTS,
             n_test: int | None = None) -> Fit:
    """Fit one task's measured ``values`` (accuracy %) on the terms of ``order``, on ``scale``
    (``logit`` needs ``n_test``, the images of the 5-NN test split)."""
    x = model_matrix(keys, order)
    y = np.asarray(values, dtype=float)
    if scale == LOGIT:
        if not n_test:
            raise T2SError("a logit-scale fit needs the number of 5-NN test images (n_test)",
                           "pass n_test=spec.knn['max_test']")
        y = to_logit(y, n_test)
    cov = np.linalg.inv(x.T @ x)
    beta = cov @ x.T @ y
    dof = len(y) - x.shape[1]
    resid = y - x @ beta
    sd = float(np.sqrt(resid @ resid / dof)) if dof > 0 else float("nan")
    return Fit(beta, cov, sd, dof, order, scale)


@dataclass(frozen=True)
class Candidate:
    """A model of the table: its scale and order; only bounded ones may fill the table."""

    scale: str
    order: int

    @property
    def name(self) -> str:
        terms = "main + two-factor" if self.order == 2 else "main effects"
        return f"{self.scale}, {terms}"

    @property
    def bounded(self) -> bool:
        return self.scale == LOGIT


def candidates(keys: Sequence[str]) -> list[Candidate]:
    """Every model the measured ``keys`` identify: logit and points scale, main effects and (when
    identified) main + two-factor."""
    orders = [o for o in (1, 2) if identifiable(keys, o)]
    if not orders:
        model_order(keys)  # raises with the fix
    return [Candidate(scale, order) for scale in (LOGIT, POINTS) for order in orders]


def measured_frame(rows: pd.DataFrame) -> pd.DataFrame:
    """5-NN per (task incl. ``mean``, setting, seed), scratch left out."""
    knn = knn_frame(rows)
    return knn[knn["setting"] != SCRATCH]


def ceiling_share(values: pd.Series | np.ndarray) -> float:
    """Share of entries at 100 %."""
    v = np.asarray(values, dtype=float)
    return float(np.mean(v >= REWARD_RANGE[1] - 1e-9)) if len(v) else float("nan")


@dataclass
class Table256:
    """Everything notebook 09 reports about the 256-setting table."""

    table: pd.DataFrame  # tasks (+ mean) x 256 settings, 5-NN %
    source: pd.Series  # setting -> measured / predicted
    entry_se: pd.DataFrame  # tasks (+ mean) x 256: standard error of each entry
    seeds: pd.Series  # setting -> seeds measured (0: predicted)
    sigma: pd.Series  # task -> pooled seed SD of one entry
    effects: pd.DataFrame  # task, term, kind, effect, se, noise, dof, low, high, p, q_bh, resolved(_bh/_bonferroni)
    validation: pd.DataFrame  # per task (chosen model): held-out Spearman and its interval, RMSE, noise, ceiling share
    order: int  # the chosen model's
    fraction: list[str]
    heldout: list[str]
    extras: dict = field(default_factory=dict)
    model: Candidate | None = None  # the model that fills the table
    n_test: int = 0  # 5-NN test images (the logit's denominator)
    selection: pd.DataFrame = field(default_factory=pd.DataFrame)  # one row per candidate: held-out accuracy

    @property
    def tasks(self) -> list[str]:
        return [t for t in self.table.index if t != MEAN]


def analyse_table256(rows: pd.DataFrame, fraction: Sequence[str], heldout: Sequence[str], *, n_test: int,
                     chance: float | None = None, drop_tasks: Sequence[str] = (), bootstrap: int = 2000,
                     seed: int = 0) -> Table256:
    """Fit, predict, validate and estimate effects from the rows of a reward table folder
    (``rewards.csv``) for a measured ``fraction`` and ``heldout`` settings; ``n_test`` is the
    number of 5-NN test images (the logit scale's denominator). ``drop_tasks`` are left out (their
    measured share of entries at 100 % is ``extras["dropped"]``). With the pre-training task's
    ``chance`` accuracy, ``extras["learned"]`` is each measured setting's held-out pre-training
    accuracy over chance (seed mean): whether its backbone learned at all."""
    present = set(rows["task"].dropna())
    unknown = [t for t in drop_tasks if t not in present]
    if unknown:
        raise T2SError(f"table256.drop_tasks {unknown} are not tasks of the table ({', '.join(sorted(present))})",
                       "name tasks of rewards.tasks, or leave drop_tasks empty")
    knn_all = measured_frame(rows)
    dropped = {t: ceiling_share(knn_all[knn_all["task"] == t].groupby("setting")["value"].mean()) for t in drop_tasks}
    rows = rows[~rows["task"].isin(list(drop_tasks))]
    knn = measured_frame(rows)
    means = knn.groupby(["task", "setting"])["value"].mean().unstack("setting")
    counts = knn[knn["task"] == MEAN].groupby("setting")["seed"].nunique()
    missing = [k for k in list(fraction) + list(heldout) if k not in means.columns or means[k].isna().any()]
    if missing:
        raise T2SError(f"the 256-setting table lacks {len(missing)} measured setting(s), e.g. {missing[:3]}",
                       "finish the cells first: t2s rewards build --profile P --table256 (rerunning resumes)")
    replicate = pooled_seed_sd(rows)
    sigma = replicate["sd"]
    fraction, heldout = list(fraction), [k for k in heldout if k not in fraction]
    tasks = [t for t in means.index if t != MEAN]
    measured_keys = [k for k in ALL_KEYS if k in means.columns]
    at_ceiling = {t: ceiling_share(means.loc[t, measured_keys]) for t in tasks}
    full = [t for t, share in at_ceiling.items() if share == 1.0]
    if full:
        raise T2SError(f"every measured entry of task(s) {full} is at 100 %: they cannot rank settings",
                       "replace the task by a harder variant (e.g. fewer 5-NN training images per class) "
                       "or leave it out of rewards.tasks")

    cands = candidates(fraction)
    selection, per_candidate = _select_model(means, tasks, fraction, heldout, cands, n_test)
    if selection.empty:  # nothing held out to validate on: the simplest bounded model
        chosen = next(c for c in cands if c.bounded)
    else:
        chosen = next(c for c in cands if c.name == selection.index[selection["chosen"]][0])

    table = pd.DataFrame(index=tasks + [MEAN], columns=list(ALL_KEYS), dtype=float)
    entry_se = table.copy()
    validation = []
    for task in tasks:
        row = means.loc[task]
        if heldout:
            pred = per_candidate[chosen.name][task]
            measured = row[heldout].to_numpy(float)
            validation.append(_validation_row(task, pred, measured, sigma, counts, heldout, at_ceiling[task],
                                              bootstrap=bootstrap, seed=seed))
        fit = fit_task(measured_keys, row[measured_keys].to_numpy(float), chosen.order, chosen.scale, n_test)
        pred, pred_se = fit.predict(ALL_KEYS)
        values, ses = pd.Series(pred, index=ALL_KEYS), pd.Series(pred_se, index=ALL_KEYS)
        values[measured_keys] = row[measured_keys]
        ses[measured_keys] = [sigma.get(task, np.nan) / np.sqrt(counts[k]) for k in measured_keys]
        table.loc[task], entry_se.loc[task] = values, ses
    # the task mean: measured where measured; elsewhere the mean of the tasks' predictions (their
    # errors taken as independent)
    table.loc[MEAN] = table.loc[tasks].mean(axis=0)
    entry_se.loc[MEAN] = np.sqrt((entry_se.loc[tasks].astype(float) ** 2).sum(axis=0)) / len(tasks)
    table.loc[MEAN, measured_keys] = means.loc[MEAN, measured_keys]
    entry_se.loc[MEAN, measured_keys] = [sigma.get(MEAN, np.nan) / np.sqrt(counts[k]) for k in measured_keys]
    if heldout:  # the task mean's validation: the mean of the tasks' predictions against the measured mean
        pred = np.mean([per_candidate[chosen.name][t] for t in tasks], axis=0)
        measured = means.loc[MEAN, heldout].to_numpy(float)
        validation.append(_validation_row(MEAN, pred, measured, sigma, counts, heldout,
                                          ceiling_share(means.loc[MEAN, measured_keys]), bootstrap=bootstrap, seed=seed))

    effects = _effects(means, tasks, measured_keys, replicate)
    source = pd.Series([MEASURED if k in measured_keys else PREDICTED for k in ALL_KEYS], index=list(ALL_KEYS), name="source")
    seeds = pd.Series([int(counts.get(k, 0)) for k in ALL_KEYS], index=list(ALL_KEYS), name="seeds")
    extras: dict = {"dropped": dropped}
    if chance:
        val = rows[rows["metric"] == "pretrain_val_acc"]
        extras["learned"] = val.groupby("setting")["value"].mean() / chance
    return Table256(table, source, entry_se, seeds, sigma, effects,
                    pd.DataFrame(validation).set_index("task") if validation else pd.DataFrame(), chosen.order, fraction,
                    heldout, extras, chosen, n_test, selection)


def _validation_row(task: str, pred: np.ndarray, measured: np.ndarray, sigma: pd.Series, counts: pd.Series,
                    heldout: list[str], ceiling: float, *, bootstrap: int, seed: int) -> dict:
    """One row of the validation table: held-out Spearman with its bootstrap interval, RMSE, and the
    noise of a measured held-out entry (seed SD / sqrt(seeds))."""
    rho = bootstrap_interval(_spearman_of_pair, np.stack([pred, measured], 1), n=bootstrap, seed=seed,
                             what="held-out settings")
    return {"task": task, "heldout": len(heldout), "spearman": rho.estimate, "spearman_low": rho.low,
            "spearman_high": rho.high, "excludes_0": bool(rho.low > 0 or rho.high < 0),
            "rmse": float(np.sqrt(np.mean((pred - measured) ** 2))),
            "entry_noise": float(np.sqrt(np.mean([sigma.get(task, np.nan) ** 2 / counts[k] for k in heldout]))),
            "ceiling_share": ceiling}


def _select_model(means: pd.DataFrame, tasks: list[str], fraction: list[str], heldout: list[str],
                  cands: list[Candidate], n_test: int) -> tuple[pd.DataFrame, dict[str, dict[str, np.ndarray]]]:
    """Every candidate fitted on the fraction and scored on the held-out settings, per task: the
    selection table (the bounded candidate with the smallest mean per-task RMSE is ``chosen``; on a tie
    the simpler) and each candidate's held-out predictions per task."""
    if not heldout:
        return pd.DataFrame(), {}
    preds: dict[str, dict[str, np.ndarray]] = {}
    rows = []
    for cand in cands:
        preds[cand.name] = {}
        rmse, rho, outside = [], [], 0
        for task in tasks:
            fit = fit_task(fraction, means.loc[task, fraction].to_numpy(float), cand.order, cand.scale, n_test)
            pred = fit.predict(heldout)[0]
            measured = means.loc[task, heldout].to_numpy(float)
            preds[cand.name][task] = pred
            outside += int(np.sum(_outside(fit.predict(ALL_KEYS)[0])))  # of the 256, fitted on the fraction
            rmse.append(float(np.sqrt(np.mean((pred - measured) ** 2))))
            rho.append(_spearman_of_pair(np.stack([pred, measured], 1)))
        mean_pred = np.mean([preds[cand.name][t] for t in tasks], axis=0)
        task_mean_rho = _spearman_of_pair(np.stack([mean_pred, means.loc[MEAN, heldout].to_numpy(float)], 1))
        rows.append({"model": cand.name, "bounded": cand.bounded, "terms": model_matrix(fraction[:1], cand.order).shape[1],
                     "rmse_mean_over_tasks": float(np.mean(rmse)), "rmse_median": float(np.median(rmse)),
                     "spearman_median": float(np.nanmedian(rho)), "spearman_min": float(np.nanmin(rho)),
                     "spearman_max": float(np.nanmax(rho)), "spearman_task_mean": task_mean_rho,
                     "predictions_outside_0_100": outside, "order": cand.order})
    out = pd.DataFrame(rows).set_index("model")
    eligible = out[out["bounded"]].sort_values(["rmse_mean_over_tasks", "order"])
    out["chosen"] = out.index == eligible.index[0]
    return out.drop(columns="order"), preds


def _outside(values: np.ndarray) -> np.ndarray:
    return (values < REWARD_RANGE[0]) | (values > REWARD_RANGE[1])


def _effects(means: pd.DataFrame, tasks: list[str], keys: list[str], replicate: pd.DataFrame) -> pd.DataFrame:
    """Main effects and (when identified) two-factor interactions per task and the task mean, on the
    points scale, with t intervals from the larger of the residual and the replicate SD, p-values and
    the Benjamini-Hochberg / Bonferroni steps over the tasks' tests."""
    order = model_order(keys)
    out = []
    for task in tasks + [MEAN]:
        fit = fit_task(keys, means.loc[task, keys].to_numpy(float), order)
        rep_sd = float(replicate["sd"].get(task, np.nan))
        rep_dof = int(replicate["dof"].get(task, 0))
        if np.isfinite(rep_sd) and rep_sd > fit.residual_sd:
            sd, dof, noise = rep_sd, rep_dof, "replicate"
        else:
            sd, dof, noise = fit.residual_sd, fit.dof, "residual"
        q = float(stats.t.ppf(0.975, dof)) if dof > 0 else float("nan")
        for i, name in enumerate(term_names(order)):
            effect = 2 * float(fit.beta[i + 1])  # ON minus OFF (interactions: the same contrast of their product)
            se = 2 * sd * float(np.sqrt(fit.cov_unscaled[i + 1, i + 1]))
            p = float(2 * stats.t.sf(abs(effect) / se, dof)) if dof > 0 and se > 0 else float("nan")
            out.append({"task": task, "term": name, "kind": "main" if i < len(PARAMETERS) else "interaction",
                        "effect": effect, "se": se, "noise": noise, "dof": dof, "low": effect - q * se,
                        "high": effect + q * se, "p": p, "resolved": bool(effect - q * se > 0 or effect + q * se < 0)})
    effects = pd.DataFrame(out)
    per = effects["task"] != MEAN
    effects["q_bh"] = np.nan
    effects.loc[per, "q_bh"] = stats.false_discovery_control(effects.loc[per, "p"].fillna(1.0).to_numpy(), method="bh")
    effects["resolved_bh"] = per & (effects["q_bh"] <= FDR)
    effects["resolved_bonferroni"] = per & (effects["p"] * int(per.sum()) <= FDR)
    return effects


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
    """``rewards256_fidelity.csv``: one row for route (a), ``rung = model``: the chosen model, the
    Spearman rank correlation between its predictions and the measured held-out settings per task
    (median, range, tasks whose percentile-bootstrap interval excludes 0) and on the task mean (with
    its interval), and the table's measured cost."""
    if result.validation.empty:
        raise T2SError("no held-out settings: the model's predictions were not validated",
                       "give table256.heldout_design or table256.heldout_settings in the profile")
    v, summary = result.validation.loc[MEAN], validation_summary(result)
    return pd.DataFrame([{"rung": "model", "model": result.model.name, "epochs": epochs, "settings": int(v["heldout"]),
                          "spearman_per_task_median": summary["spearman_median"],
                          "spearman_per_task_min": summary["spearman_min"], "spearman_per_task_max": summary["spearman_max"],
                          "tasks_excluding_0": f"{summary['tasks_excluding_0']} of {summary['tasks']}",
                          "spearman_task_mean": float(v["spearman"]), "spearman_low": float(v["spearman_low"]),
                          "spearman_high": float(v["spearman_high"]), "cpu_hours": round(cpu_hours, 3)}]).set_index("rung")


def resolved_counts(effects: pd.DataFrame) -> pd.DataFrame:
    """Per kind (tasks, not the mean): how many (task, term) effects have a 95 % interval that excludes
    zero, how many of those chance alone would give (5 % of the tests), and how many survive
    Benjamini-Hochberg (5 % FDR over every test of both kinds) and Bonferroni."""
    per = effects[effects["task"] != MEAN]
    out = per.groupby("kind").agg(effects=("resolved", "size"), resolved=("resolved", "sum"),
                                  resolved_bh=("resolved_bh", "sum"), resolved_bonferroni=("resolved_bonferroni", "sum"))
    out.insert(2, "expected_by_chance", (out["effects"] * (1 - 0.95)).round(1))
    return out


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
                     f"predicted by the {result.model.name} model")
    fig.tight_layout()
    return fig


def heldout_prediction(result: Table256, task: str) -> tuple[np.ndarray, np.ndarray]:
    """The chosen model fitted on the fraction alone: its predictions of the held-out settings and
    their standard errors, for one task (the task mean: the mean of the tasks' predictions)."""
    if task == MEAN:
        parts = [heldout_prediction(result, t) for t in result.tasks]
        return (np.mean([p for p, _ in parts], axis=0),
                np.sqrt(np.sum([se ** 2 for _, se in parts], axis=0)) / len(parts))
    fit = fit_task(result.fraction, result.table.loc[task, result.fraction].astype(float).to_numpy(), result.model.order,
                   result.model.scale, result.n_test)
    return fit.predict(result.heldout)


def plot_validation(result: Table256):
    """Per task and the task mean: predicted (from the fraction alone) vs measured held-out settings."""
    import matplotlib.pyplot as plt

    tasks = result.tasks + [MEAN]
    cols = 4
    fig, axes = plt.subplots((len(tasks) + cols - 1) // cols, cols, figsize=(3.1 * cols, 2.9 * ((len(tasks) + cols - 1) // cols)),
                             squeeze=False)
    for ax, task in zip(axes.flat, tasks):
        pred, se = heldout_prediction(result, task)
        meas = result.table.loc[task, result.heldout].astype(float).to_numpy()
        noise = result.entry_se.loc[task, result.heldout].astype(float).to_numpy()
        ax.errorbar(pred, meas, xerr=1.96 * se, yerr=1.96 * noise, fmt="o", ms=3, lw=0.7, capsize=1.5)
        lo, hi = float(min(pred.min(), meas.min())) - 1, float(max(pred.max(), meas.max())) + 1
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.7)
        v = result.validation.loc[task]
        ax.set_title(f"{task}: rho {v['spearman']:.2f} [{v['spearman_low']:.2f}, {v['spearman_high']:.2f}]", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(tasks):]:
        ax.axis("off")
    fig.supxlabel(f"predicted from the fraction ({result.model.name}), 5-NN %", fontsize=9)
    fig.supylabel("measured, 5-NN %", fontsize=9)
    fig.tight_layout()
    return fig


def validation_summary(result: Table256) -> dict:
    """Per-task held-out Spearman in one line: median, range, and how many tasks' intervals exclude 0
    (the task mean's beside it, never instead of it)."""
    v = result.validation.drop(index=MEAN, errors="ignore")
    return {"model": result.model.name, "tasks": len(v), "heldout": int(v["heldout"].iloc[0]) if len(v) else 0,
            "spearman_median": float(v["spearman"].median()), "spearman_min": float(v["spearman"].min()),
            "spearman_max": float(v["spearman"].max()), "tasks_excluding_0": int(v["excludes_0"].sum()),
            "task_mean_spearman": float(result.validation.loc[MEAN, "spearman"]) if MEAN in result.validation.index else float("nan"),
            "tasks_over_10pct_at_ceiling": [t for t in v.index if v.loc[t, "ceiling_share"] > 0.10]}


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
    n_tasks = mains["task"].nunique()
    method = f"t intervals from the larger of the residual and replicate SD, Bonferroni over 8 parameters, {n_tasks} tasks"
    best, best_iv = None, None
    for term, grp in mains.groupby("term", sort=False):
        pos, neg = grp.loc[grp["low_b"].idxmax()], grp.loc[grp["high_b"].idxmin()]
        iv = Interval(min(pos["effect"], -neg["effect"]), min(pos["low_b"], -neg["high_b"]),
                      min(pos["high_b"], -neg["low_b"]), method)
        if best_iv is None or iv.low > best_iv.low:
            best, best_iv = (term, pos, neg), iv
    term, pos, neg = best
    split = [t for t, g in mains.groupby("term") if (g["low_b"] > 0).any() and (g["high_b"] < 0).any()]
    sentence = (f"{len(split)} of 8 parameters help one of the {n_tasks} tasks and hurt another beyond their noise"
                + (f" ({', '.join(PARAMETER_LABELS.get(t, t) for t in split)})" if split else "")
                + f"; clearest: {PARAMETER_LABELS.get(term, term)} {pos['effect']:+.2f} [{pos['low_b']:+.2f}, {pos['high_b']:+.2f}] "
                f"on {pos['task']} vs {neg['effect']:+.2f} [{neg['low_b']:+.2f}, {neg['high_b']:+.2f}] on {neg['task']}")
    return verdict(best_iv, +1), sentence, best_iv
