"""The paper's controller on the study's own 256-setting table (notebook 09), scored on measurements.

The table of :mod:`t2s_lib.rewards.table256` (measured entries where measured, the bounded model
elsewhere) and the live Task2Vec vectors of notebook 02 make a :class:`PolicyProblem` with all 256
settings, the controller's action space. On it the methods *choose*: the ``paper`` and ``per-task``
controllers over seeds, ``reward-kernel``, the baselines, and measured selection (on the measured
settings only: its measurement is the validation-split 5-NN of a stored backbone).

They are *scored* on measurements only, never on the model: every setting any method picks is
pre-trained again on fresh seeds (``table256.pick_seeds``, none of which the table used) in
``runs/<profile>/rewards256_picks`` (:func:`measure_picks`), and a method's score on a task is the
fresh-seed mean 5-NN of its pick. Choosing on the table's seeds and scoring on fresh ones is
cross-fitting: the oracle, the best fixed setting and measured selection, which pick a maximum of
noisy entries, are not credited with the noise they selected (the winner's curse). The oracle is
also reported in-sample (its table entries) to show the size of that curse. A method whose picks
are not all measured gets no score and no verdict (``measured_share`` says how far it got).
``random`` is the mean over the table's measured settings (no pick to measure), labelled so.

Comparisons with the best fixed setting are per task (seed-averaged for the seeded controllers)
and carry a Student-t interval over tasks (4 unseen tasks: 3 degrees of freedom), which holds at
few tasks where a percentile bootstrap over 4 values is too narrow. A method that picks one setting
for every task is named for what it is here, and each comparison with domain randomisation says
whether its backbone learned (held-out pre-training accuracy over chance).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import T2SError
from ..profiles import Profile
from ..published import reward_table_from_mapping
from ..rewards.analysis import load_rows
from ..rewards.table256 import MEASURED, Table256
from ..settings import PRESETS
from ..verdicts import NOT_RESOLVED, Interval, t_interval_over_tasks, verdict
from .analysis import similarity_vs_reward_correlation
from .measured_report import k_curve_per_task
from .problem import PolicyProblem
from .report import best_fixed_key, method_label, predictions
from .runner import CONTROLLER_VARIANTS, run_variant, write_summary
from .small_study import live_vectors, validation_rows

#: the methods of ``policy_live256.csv`` besides measured selection (one row per K)
METHODS = ("paper", "per-task", "reward-kernel", "best-fixed", "domain-randomization", "random", "oracle")
#: measured selection's budgets K reported (each K's picks are pre-trained on the fresh seeds)
MEASURED_ROWS = (1, 4, 16)
SPLITS = ("seen", "unseen", "loo")
#: non-inferiority margin of the policy-level Table 1 ("no degradation"), points of 5-NN accuracy
FRACTION_MARGIN = 1.0


def live256_problem(prof: Profile, result: Table256, *, measured_only: bool = False) -> PolicyProblem:
    """The study's tasks with their live vectors over the 256-setting table (or its measured settings)."""
    keys = [k for k in result.table.columns if not measured_only or result.source[k] == MEASURED]
    tasks = result.tasks
    mapping = {t: {k: float(result.table.loc[t, k]) for k in keys} for t in tasks}
    vectors = live_vectors(prof, tasks)
    missing = [t for t in tasks if t not in vectors]
    if missing:
        raise T2SError(f"no Task2Vec vector for task(s) {missing} in {prof.layout.task_vector(missing[0]).parent}",
                       f"run notebook 02 first (t2s study --profile {prof.name} --only 02)")
    seen = tuple(t for t in prof.tasks.seen if t in vectors)
    unseen = tuple(t for t in prof.tasks.unseen if t in vectors)
    table = reward_table_from_mapping(mapping, source="table256", tasks=seen + unseen,
                                      require_all_settings=not measured_only)
    return PolicyProblem(table, vectors, seen, unseen, name=f"live256-{prof.name}" + ("-measured" if measured_only else ""))


def run_live256(prof: Profile, result: Table256, *, workers: int = 1, log=print) -> dict[str, Any]:
    """Every method of ``policy_live256`` chooses on the 256-setting table (and the ``paper`` controller
    again with the fraction vectors of Table 1 (policy)); returns their summaries and the problems.
    Nothing here is a score yet: :func:`measure_picks` measures what they chose."""
    sec = prof.table256
    problem = live256_problem(prof, result)
    summaries: dict[str, dict] = {}
    for method in METHODS:
        # the controllers are seeded; reward-kernel and the baselines are deterministic (random: the
        # expected reward of a uniformly drawn setting)
        seeds = list(sec.policy_seeds) if method in CONTROLLER_VARIANTS else [0]
        loo = list(sec.loo_seeds) if method in CONTROLLER_VARIANTS else [0]
        options = {"epochs": prof.policy.epochs} if method in CONTROLLER_VARIANTS else {}
        summary, _ = run_variant(method, problem, seeds, options=options, loo_seeds=loo, workers=workers)
        summaries[method] = summary
        write_summary(prof.layout.policy_live256 / method, summary)  # notebook 07's task2sim: paper-256
        log(f"[live256] {method}: {len(predictions(summary) | predictions(summary, 'loo'))} distinct picks "
            f"({summary['seconds']:.0f} s)")
    measured_problem = live256_problem(prof, result, measured_only=True)
    val = validation_rows(prof, measured_problem, table=prof.layout.rewards256)
    k_tasks = k_curve_per_task(measured_problem, MEASURED_ROWS, measured_rows=val)
    for k in sorted(set(k_tasks["K"])):  # measured selection as a summary per K (deterministic: one seed)
        summaries[f"measured K={k}"] = _summary_from_long(k_tasks[k_tasks["K"] == k], f"measured K={k}")
        # notebook 07's measured selection (scaling.measured_policy measured-k16-256)
        write_summary(prof.layout.policy_live256 / f"measured-k{k}", summaries[f"measured K={k}"])
    return {"problem": problem, "measured_problem": measured_problem, "summaries": summaries,
            "validation_rows": val is not None, "fractions": _fraction_runs(prof, problem, workers=workers)}


def _summary_from_long(frame: pd.DataFrame, name: str) -> dict[str, Any]:
    """The parts of a runner summary that the tables read, from (split, task, setting, reward) rows."""
    both = frame[frame["split"] != "loo"]
    loo = frame[frame["split"] == "loo"]
    return {"variant": name, "seeds": [0],
            "per_task": {"0": dict(zip(both["task"], both["reward"]))},
            "predictions": {"0": dict(zip(both["task"], both["setting"]))},
            "loo": {"per_task": {"0": dict(zip(loo["task"], loo["reward"]))},
                    "predictions": {"0": dict(zip(loo["task"], loo["setting"]))}}}


def _fraction_tasks(prof: Profile, problem: PolicyProblem) -> list[str]:
    return [t for t in prof.task2vec.fraction_tasks if t in problem.all_tasks]


def _fraction_runs(prof: Profile, problem: PolicyProblem, *, workers: int = 1) -> dict[float, dict]:
    """The ``paper`` controller fitted and applied with the vectors notebook 02 computed from each
    fraction < 1 of the fraction tasks' training data (the other tasks keep their 100 % vectors)."""
    from ..task2vec.embed import Embedding

    sec = prof.table256
    out = {}
    for fraction in sorted({f for f in prof.task2vec.fractions if f < 1.0}, reverse=True):
        vectors = dict(problem.vectors)
        for t in _fraction_tasks(prof, problem):
            path = prof.layout.task2vec_fractions / f"{t}__f{fraction}.npz"
            if not path.is_file():
                raise T2SError(f"{path} not found", "run notebook 02 (its fraction experiment writes these vectors)")
            vectors[t] = np.asarray(Embedding.load(path).hessian, dtype=np.float64)
        sub = PolicyProblem(problem.table, vectors, problem.seen, problem.unseen, f"{problem.name}-f{fraction}")
        out[fraction], _ = run_variant("paper", sub, list(sec.policy_seeds), options={"epochs": prof.policy.epochs},
                                       workers=workers)
    return out


# -- what was picked, and its measurement on fresh seeds ------------------------------------------------

#: the order in which picks are pre-trained (a budgeted run measures the headline comparison first)
PICK_PRIORITY = ("best-fixed", "paper", "domain-randomization", "oracle", "reward-kernel", "per-task")


def picked_settings(run: Mapping[str, Any]) -> list[str]:
    """Every setting any method picked, on any split and seed (random picks none: it is an average),
    in measuring order: best fixed and the paper controller first, then the other methods, measured
    selection and the fraction runs."""
    summaries = run["summaries"]
    ordered = [summaries[m] for m in PICK_PRIORITY if m in summaries]
    ordered += [s for m, s in summaries.items() if m not in PICK_PRIORITY] + list(run["fractions"].values())
    keys: dict[str, None] = {}
    for summary in ordered:
        chosen = predictions(summary) | (predictions(summary, "loo") if "loo" in summary else set())
        keys.update(dict.fromkeys(sorted(chosen)))
    return list(keys)


def measure_picks(prof: Profile, picks: Sequence[str], *, log: Callable[[str], None] = print):
    """Pre-train each picked setting on the profile's fresh ``table256.pick_seeds`` and measure its
    5-NN (``runs/<profile>/rewards256_picks``, through the results ledger: held cells are replayed, a
    budget stops cleanly). Returns the :class:`PickScores`."""
    from ..rewards.cells import cell_ledger, ledger_holds_cell
    from ..rewards.spec import Cell, picks_spec
    from ..rewards.study import build_pick_cells

    picks = list(picks)
    if picks:
        spec = picks_spec(prof, picks)
        led = cell_ledger(spec)
        if led.mode == "replay":  # regenerating figures: score what the ledger holds, the rest stays unmeasured
            picks = [k for k in spec.settings if all(ledger_holds_cell(led, spec, Cell(k, s)) for s in spec.seeds[k])]
    if not picks:
        return PickScores.from_rows(pd.DataFrame(columns=["setting", "seed", "task", "metric", "value"]), [])
    build_pick_cells(prof, picks, log=log)
    return PickScores.from_rows(load_rows(prof.layout.rewards256_picks), prof.table256.pick_seeds)


@dataclass
class PickScores:
    """Fresh-seed measurements of picked settings: 5-NN per (task, setting), mean over the pick seeds."""

    values: pd.DataFrame  # tasks x settings
    seeds: pd.Series  # setting -> fresh seeds measured
    pretrain_acc: pd.Series  # setting -> held-out pre-training accuracy (seed mean)

    @classmethod
    def from_rows(cls, rows: pd.DataFrame, pick_seeds: Sequence[int]) -> "PickScores":
        rows = rows[rows["seed"].isin(list(pick_seeds))] if len(rows) else rows
        knn = rows[rows["metric"] == "knn_top1"]
        values = knn.groupby(["task", "setting"])["value"].mean().unstack("setting") if len(knn) else pd.DataFrame()
        seeds = knn.groupby("setting")["seed"].nunique() if len(knn) else pd.Series(dtype=int)
        val = rows[rows["metric"] == "pretrain_val_acc"]
        return cls(values, seeds, val.groupby("setting")["value"].mean() if len(val) else pd.Series(dtype=float))

    def score(self, task: str, key: str | None) -> float:
        if key is None or key not in self.values.columns or task not in self.values.index:
            return float("nan")
        return float(self.values.loc[task, key])


def _keys(summary: Mapping[str, Any], split: str, tasks: Sequence[str]) -> list[list[str | None]]:
    """[seeds][tasks] picked setting keys of a summary on a split."""
    per = summary["loo"]["predictions"] if split == "loo" else summary["predictions"]
    return [[per[s].get(t) for t in tasks] for s in sorted(per, key=int)]


def _split_tasks(problem: PolicyProblem, split: str) -> tuple[str, ...]:
    return {"seen": problem.seen, "unseen": problem.unseen, "loo": problem.all_tasks}[split]


def scored(summary: Mapping[str, Any], split: str, tasks: Sequence[str], scores: PickScores) -> np.ndarray:
    """[seeds, tasks] fresh-seed 5-NN of a summary's picks (NaN where a pick is not measured)."""
    return np.asarray([[scores.score(t, k) for t, k in zip(tasks, row)] for row in _keys(summary, split, tasks)],
                      dtype=float)


def in_sample(summary: Mapping[str, Any], split: str, tasks: Sequence[str], result: Table256) -> np.ndarray:
    """[seeds, tasks] the table's own entries of a summary's picks (what the method chose on)."""
    return np.asarray([[float(result.table.loc[t, k]) if k else np.nan for t, k in zip(tasks, row)]
                       for row in _keys(summary, split, tasks)], dtype=float)


def random_scores(result: Table256, tasks: Sequence[str]) -> np.ndarray:
    """[1, tasks]: the mean over the table's measured settings (a uniformly drawn measured setting's expectation)."""
    measured = [k for k in result.table.columns if result.source[k] == MEASURED]
    return result.table.loc[list(tasks), measured].astype(float).mean(axis=1).to_numpy()[None, :]


def versus_best_fixed(run: Mapping[str, Any], method: str, split: str, scores: PickScores) -> Interval:
    """Mean over tasks of (method - best fixed) on fresh seeds, each task's difference averaged over
    the method's seeds first; a t interval over tasks."""
    problem = run["problem"]
    tasks = _split_tasks(problem, split)
    summaries = run["summaries"]
    a = scored(summaries[method], split, tasks, scores)
    b = scored(summaries["best-fixed"], split, tasks, scores)[0]
    per_task = (a - b[None, :]).mean(axis=0)
    seeds = a.shape[0]
    return t_interval_over_tasks(per_task, f"fresh seeds; {seeds} controller seeds averaged per task" if seeds > 1
                                 else "fresh seeds")


def _learned(keys: set[str], scores: PickScores, chance: float | None) -> float:
    """Mean held-out pre-training accuracy over chance of the picked settings (fresh seeds)."""
    if not chance or not keys:
        return float("nan")
    values = [scores.pretrain_acc.get(k, np.nan) for k in sorted(keys)]  # a set's order varies by process
    return float(np.nanmean(values) / chance) if np.isfinite(values).any() else float("nan")


def live256_table(run: Mapping[str, Any], result: Table256, scores: PickScores, *, chance: float | None = None) -> pd.DataFrame:
    """``policy_live256.csv``: one row per method (measured selection per K) with the share of its
    picks measured on fresh seeds, its fresh-seed mean 5-NN on ``seen``, ``unseen`` and ``loo``, each
    split's difference from the best fixed setting with its t interval over tasks, the number of
    distinct settings it picked, and how far above chance its picks' backbones learned. The oracle has
    a second, in-sample row (the table entries it chose on)."""
    summaries, problem = run["summaries"], run["problem"]
    best_fixed = best_fixed_key(summaries)
    rows = []
    for method, s in summaries.items():
        if method.startswith("measured K=") and int(method.split("=")[1]) not in MEASURED_ROWS:
            continue
        picked = predictions(s) | predictions(s, "loo")
        if method == "random":
            label = f"random (mean over the {int((result.source == MEASURED).sum())} measured settings)"
        else:
            label = method_label(method, s, best_fixed)
        row: dict[str, Any] = {"method": label, "seeds": len(s["seeds"])}
        values = {}
        if method == "random":
            row["measured_share"] = 1.0
            for split in SPLITS:
                values[split] = random_scores(result, _split_tasks(problem, split))
        else:
            grids = {split: scored(s, split, _split_tasks(problem, split), scores) for split in SPLITS}
            cells = np.concatenate([g.ravel() for g in grids.values()])
            row["measured_share"] = float(np.isfinite(cells).mean())
            values = grids
        # a split is scored once every pick of it is measured (the method's, and best fixed's for the difference)
        complete = {split: bool(np.isfinite(values[split]).all()) for split in SPLITS}
        fixed_complete = {split: bool(np.isfinite(scored(summaries["best-fixed"], split, _split_tasks(problem, split),
                                                         scores)).all()) for split in SPLITS}
        for split in SPLITS:
            v = values[split].mean(axis=1) if complete[split] else np.array([np.nan])
            row[split] = float(v.mean())
            row[f"{split}_seed_sd"] = float(v.std(ddof=1)) if len(v) > 1 else 0.0
        for split in ("unseen", "loo"):
            if method == "best-fixed" or not (complete[split] and fixed_complete[split]):  # best fixed: the reference
                row[f"{split}_minus_best_fixed"] = 0.0 if method == "best-fixed" and complete[split] else np.nan
                row[f"{split}_low"] = row[f"{split}_high"] = row[f"{split}_minus_best_fixed"]
                continue
            if method == "random":
                tasks = _split_tasks(problem, split)
                b = scored(summaries["best-fixed"], split, tasks, scores)[0]
                iv = t_interval_over_tasks(values[split][0] - b, "fresh seeds for best fixed")
            else:
                iv = versus_best_fixed(run, method, split, scores)
            row[f"{split}_minus_best_fixed"], row[f"{split}_low"], row[f"{split}_high"] = iv.estimate, iv.low, iv.high
        row["distinct_settings"] = len(picked) if picked else float("nan")  # random: an expectation, no setting
        row["learned_x_chance"] = _learned(picked, scores, chance)
        rows.append(row)
        if method == "oracle":  # the winner's curse, shown: the same picks scored on the entries they were chosen on
            ins = {split: in_sample(s, split, _split_tasks(problem, split), result) for split in SPLITS}
            rows.append({"method": "oracle, in-sample (the table entries it chose on)", "seeds": 1, "measured_share": np.nan,
                         **{split: float(ins[split].mean()) for split in SPLITS},
                         **{f"{split}_seed_sd": 0.0 for split in SPLITS}, "distinct_settings": len(picked)})
    return pd.DataFrame(rows).set_index("method")


def live256_per_task(run: Mapping[str, Any], result: Table256, scores: PickScores, *, chance: float | None = None) -> pd.DataFrame:
    """Per task (first seed; leave-one-out prediction): each controller's chosen setting, whether the
    table's entry for it is measured or predicted, its fresh-seed 5-NN, its difference from the fresh-seed
    5-NN of the best fixed setting of the other tasks (the leave-one-out baseline), and whether the chosen setting's backbone learned (held-out
    pre-training accuracy over chance on the fresh seeds)."""
    summaries, problem = run["summaries"], run["problem"]
    rows = []
    for task in problem.all_tasks:
        # leave-one-out: the best fixed setting of the other tasks, as for the controllers' picks
        fixed_key = summaries["best-fixed"]["loo"]["predictions"]["0"][task]
        fixed = scores.score(task, fixed_key)
        row: dict[str, Any] = {"task": task, "split": "seen" if task in problem.seen else "unseen",
                               "best fixed (loo)": fixed_key, "best fixed 5-NN % (fresh)": fixed,
                               "best fixed x chance": _learned({fixed_key}, scores, chance)}
        for method in ("paper", "per-task", "reward-kernel", "oracle"):
            key = summaries[method]["loo"]["predictions"]["0"][task]
            fresh = scores.score(task, key)
            row[f"{method} setting (loo)"] = key
            row[f"{method} table entry"] = result.source[key]
            row[f"{method} 5-NN % (fresh)"] = fresh
            row[f"{method} minus best fixed"] = fresh - fixed
            row[f"{method} x chance"] = _learned({key}, scores, chance)
        rows.append(row)
    return pd.DataFrame(rows).set_index("task")


def _one_pick_for_all(summary: Mapping[str, Any], split: str, tasks: Sequence[str]) -> str | None:
    """The setting a method picked for every task of a split on every seed, or None when the picks differ."""
    picks = {k for row in _keys(summary, split, tasks) for k in row}
    return next(iter(picks)) if len(picks) == 1 else None


def adaptive_finding(run: Mapping[str, Any], scores: PickScores, method: str = "paper", split: str = "loo",
                     *, chance: float | None = None) -> tuple[str, str, Interval | None]:
    """The paper's claim at this scale: task-adaptive settings (``method``) beat the best fixed setting
    on tasks the policy did not train on, scored on fresh seeds. Verdict from the t interval over
    tasks; ``not measured`` (no interval) while any pick of either side lacks its fresh seeds."""
    from ..index import NOT_MEASURED

    summaries, problem = run["summaries"], run["problem"]
    best_fixed = best_fixed_key(summaries)
    tasks = _split_tasks(problem, split)
    label = method_label(method, summaries[method], best_fixed)
    where = {"loo": f"leave-one-task-out over {len(tasks)} tasks", "unseen": f"{len(tasks)} unseen tasks"}[split]
    grid = np.concatenate([scored(summaries[m], split, tasks, scores).ravel() for m in (method, "best-fixed")])
    if not np.isfinite(grid).all():
        missing = int((~np.isfinite(grid)).sum())
        return NOT_MEASURED, (f"{label} vs best fixed ({best_fixed}), {where}: {missing} of {grid.size} picks not yet "
                              f"pre-trained on the fresh seeds (make record ONLY=\"02 09 08\" continues)"), None
    iv = versus_best_fixed(run, method, split, scores)
    seeds = len(summaries[method]["loo"]["per_task"] if split == "loo" else summaries[method]["per_task"])
    distinct = len(predictions(summaries[method], "loo" if split == "loo" else "all"))
    sentence = (f"{label} minus best fixed ({best_fixed}), {where}, {seeds} controller seed(s), scored on fresh seeds: "
                f"{_numbers(iv)}; {distinct} distinct setting(s) chosen")
    dr = PRESETS["domain_randomization"].key
    if chance:
        sentence += f"; best fixed learned {_learned({best_fixed}, scores, chance):.1f}x chance, DR {_learned({dr}, scores, chance):.1f}x"
    return _untestable_without_interval(verdict(iv, +1), sentence, iv)


def fraction_table(prof: Profile, run: Mapping[str, Any], scores: PickScores) -> tuple[pd.DataFrame, str, str, Interval | None]:
    """Supplementary Table 1 at the policy level: the ``paper`` controller with the vectors of 100 /
    50 / 20 / 10 % of the fraction tasks' data, on the main run's seeds; per fraction the fresh-seed
    5-NN of its picks for those tasks (seed SD) and the paired difference from the 100 % vectors (t
    interval over tasks). Returns the table and the finding of the smallest fraction (verdict,
    sentence, interval): non-inferiority with margin ``FRACTION_MARGIN``, and not informative when
    the controller picks one setting for every task whatever the vectors."""
    from ..index import NOT_MEASURED

    problem: PolicyProblem = run["problem"]
    tasks = _fraction_tasks(prof, problem)
    full_summary = run["summaries"]["paper"]
    full = scored(full_summary, "all", tasks, scores)
    rows = [_fraction_row(1.0, tasks, full, None, full_summary)]
    last, last_summary = None, None
    for fraction, summary in run["fractions"].items():
        values = scored(summary, "all", tasks, scores)
        iv = t_interval_over_tasks((values - full).mean(axis=0), "fresh seeds, controller seeds averaged per task") \
            if np.isfinite(values).all() and np.isfinite(full).all() else None
        rows.append(_fraction_row(fraction, tasks, values, iv, summary))
        last, last_summary = iv, summary
    table = pd.DataFrame(rows).set_index("fraction")
    if last_summary is None:
        return table, NOT_RESOLVED, "no fraction below 100 % in task2vec.fractions", None
    smallest = min(run["fractions"])
    picks = {_one_pick_for_all(s, "all", tasks) for s in [full_summary] + list(run["fractions"].values())}
    if len(picks) == 1 and None not in picks:
        return (table, *_untestable_without_interval(
            NOT_RESOLVED, f"not informative: the paper controller picks {picks.pop()} for every fraction task "
                          f"({', '.join(tasks)}) with every fraction's vectors and seed; the vectors do not change the pick",
            last))
    if last is None:
        return table, NOT_MEASURED, (f"paper controller's picks with the {smallest:.0%} vectors are not all pre-trained on the "
                                     "fresh seeds yet"), None
    sentence = (f"paper controller, fresh-seed 5-NN % on {', '.join(tasks)} with the {smallest:.0%} vectors minus the 100 % "
                f"vectors: {_numbers(last)}; non-inferiority margin -{FRACTION_MARGIN}")
    return (table, *_untestable_without_interval(verdict(last, +1, threshold=-FRACTION_MARGIN), sentence, last))


def _untestable_without_interval(verdict_: str, sentence: str, iv: Interval | None) -> tuple[str, str, Interval | None]:
    """A comparison over fewer than 2 tasks has no interval: it is not testable, not a verdict."""
    if iv is not None and not (np.isfinite(iv.low) and np.isfinite(iv.high)):
        return "not testable here", sentence, None
    return verdict_, sentence, iv


def _numbers(iv: Interval) -> str:
    if np.isfinite(iv.low) and np.isfinite(iv.high):
        return f"{iv.text()} points (95 % {iv.method})"
    return f"{iv.estimate:+.2f} points ({iv.method})"


def _fraction_row(fraction: float, tasks: Sequence[str], values: np.ndarray, iv: Interval | None,
                  summary: Mapping[str, Any]) -> dict[str, Any]:
    per_seed = values.mean(axis=1)
    return {"fraction": fraction, "tasks": ", ".join(tasks), "measured_share": float(np.isfinite(values).mean()),
            "5-NN % (fresh)": float(values.mean()) if np.isfinite(values).all() else np.nan,
            "seed_sd": float(per_seed.std(ddof=1)) if len(per_seed) > 1 and np.isfinite(values).all() else np.nan,
            "distinct_settings": len({k for by in summary["predictions"].values() for t, k in by.items() if t in tasks}),
            "minus_100": iv.estimate if iv else (0.0 if fraction == 1.0 else np.nan),
            "low": iv.low if iv else (0.0 if fraction == 1.0 else np.nan),
            "high": iv.high if iv else (0.0 if fraction == 1.0 else np.nan)}


def premise_finding(run: Mapping[str, Any], *, permutations: int = 9999) -> tuple[pd.DataFrame, str, str, Interval]:
    """Task2Sim's premise on the 256-setting table's **measured** settings: the Spearman correlation,
    over task pairs, of Task2Vec similarity and reward-row correlation, against its Mantel permutation
    null (task labels permuted). The interval is the statistic minus the null's 97.5 and 2.5 %
    quantiles: it excludes 0 exactly when the two-sided permutation test rejects at 5 %."""
    problem: PolicyProblem = run["measured_problem"]
    rows, ivs = [], {}
    for kind in ("pearson", "spearman"):
        res = similarity_vs_reward_correlation(problem, row_correlation=kind, permutations=permutations)
        ivs[kind] = Interval(res.spearman, res.spearman - res.null_high, res.spearman - res.null_low,
                             f"Mantel permutation over {res.n_tasks} task labels ({res.permutations}), {res.n_pairs} pairs")
        rows.append({"row correlation": kind, "spearman": res.spearman, "null_2.5%": res.null_low,
                     "null_97.5%": res.null_high, "p (one-sided)": res.p_value, "p (two-sided)": res.p_value_two_sided,
                     "tasks": res.n_tasks, "task pairs": res.n_pairs,
                     "settings": len(problem.table.keys)})
    iv = ivs["pearson"]
    sentence = (f"Spearman of Task2Vec similarity and reward-row correlation over {rows[0]['task pairs']} task pairs, "
                f"{rows[0]['settings']} measured settings: {iv.estimate:+.2f} (permutation null 95 % "
                f"[{rows[0]['null_2.5%']:+.2f}, {rows[0]['null_97.5%']:+.2f}]; rank correlation of rows: "
                f"{rows[1]['spearman']:+.2f})")
    return pd.DataFrame(rows).set_index("row correlation"), verdict(iv, +1), sentence, iv
