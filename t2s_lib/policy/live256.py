"""The paper's controller on the study's own 256-setting table (notebook 09).

The table of :mod:`t2s_lib.rewards.table256` (measured entries where measured, the fitted model
elsewhere) and the live Task2Vec vectors of notebook 02 make a :class:`PolicyProblem` with all 256
settings, the controller's action space. On it: the ``paper`` and ``per-task`` controllers over
seeds, ``reward-kernel``, the baselines, and measured selection (on the measured settings only: a
measurement is the validation-split 5-NN of a stored backbone, and predicted settings have none),
each on the seen tasks, the unseen tasks and leave-one-task-out over all tasks.

Comparisons carry their noise: a method's difference from the best fixed setting, per task and seed,
is summarised with a percentile bootstrap over seeds and tasks (:func:`t2s_lib.verdicts.bootstrap_interval`).
A method that predicts one setting for every task is named for what it is here (a fixed setting).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import T2SError
from ..profiles import Profile
from ..published import reward_table_from_mapping
from ..rewards.analysis import MEAN
from ..rewards.table256 import MEASURED, Table256
from ..verdicts import Interval, bootstrap_interval, verdict
from .measured_report import k_curve_per_task, k_curve_table
from .problem import PolicyProblem
from .report import best_fixed_key, method_label, predictions
from .runner import CONTROLLER_VARIANTS, run_variant, write_summary
from .small_study import live_vectors, validation_rows

#: the methods of ``policy_live256.csv`` besides measured selection (one row per K)
METHODS = ("paper", "per-task", "reward-kernel", "best-fixed", "domain-randomization", "random", "oracle")
MEASURED_ROWS = (1, 2, 4, 8, 16, 32)


def live256_problem(prof: Profile, result: Table256, *, measured_only: bool = False) -> PolicyProblem:
    """The study's tasks with their live vectors over the 256-setting table (or its measured settings)."""
    keys = [k for k in result.table.columns if not measured_only or result.source[k] == MEASURED]
    tasks = [t for t in result.table.index if t != MEAN]
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
    """Every method of ``policy_live256`` on the 256-setting table; returns summaries and the problems."""
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
        log(f"[live256] {method}: seen {summary['seen_mean']:.2f}, unseen {summary['unseen_mean']:.2f}, "
            f"loo {summary['loo']['mean']:.2f} ({summary['seconds']:.0f} s)")
    measured_problem = live256_problem(prof, result, measured_only=True)
    val = validation_rows(prof, measured_problem, table=prof.layout.rewards256)
    k_curve = k_curve_table(measured_problem, tuple(sec.measured_budgets), measured_rows=val)
    k_tasks = k_curve_per_task(measured_problem, tuple(sec.measured_budgets), measured_rows=val)
    for k in sorted(set(k_tasks["K"])):  # measured selection as a summary per K (deterministic: one seed)
        summaries[f"measured K={k}"] = _summary_from_long(k_tasks[k_tasks["K"] == k], f"measured K={k}")
    return {"problem": problem, "measured_problem": measured_problem, "summaries": summaries, "k_curve": k_curve,
            "validation_rows": val is not None}


def _summary_from_long(frame: pd.DataFrame, name: str) -> dict[str, Any]:
    """The parts of a runner summary that the tables read, from (split, task, setting, reward) rows."""
    both = frame[frame["split"] != "loo"]
    loo = frame[frame["split"] == "loo"]
    return {"variant": name, "seeds": [0],
            "per_task": {"0": dict(zip(both["task"], both["reward"]))},
            "predictions": {"0": dict(zip(both["task"], both["setting"]))},
            "loo": {"per_task": {"0": dict(zip(loo["task"], loo["reward"]))},
                    "predictions": {"0": dict(zip(loo["task"], loo["setting"]))}}}


def per_seed_task(summary: Mapping[str, Any], split: str, tasks: Sequence[str]) -> np.ndarray:
    """[seeds, tasks] rewards of a summary on a split (``seen``/``unseen`` from ``per_task``, ``loo``)."""
    per = summary["loo"]["per_task"] if split == "loo" else summary["per_task"]  # "all": seen and unseen
    return np.asarray([[per[s][t] for t in tasks] for s in sorted(per, key=int)], dtype=float)


def _split_tasks(problem: PolicyProblem, split: str) -> tuple[str, ...]:
    return {"seen": problem.seen, "unseen": problem.unseen, "loo": problem.all_tasks}[split]


def versus_best_fixed(summaries: Mapping[str, Mapping], problem: PolicyProblem, method: str, split: str,
                      *, n: int = 2000, seed: int = 0) -> Interval:
    """Mean over seeds and tasks of (method - best fixed), with a percentile bootstrap over seeds and tasks."""
    tasks = _split_tasks(problem, split)
    a = per_seed_task(summaries[method], split, tasks)
    b = per_seed_task(summaries["best-fixed"], split, tasks).mean(axis=0, keepdims=True)
    diff = a - b
    axes = (0, 1) if diff.shape[0] > 1 else (1,)
    return bootstrap_interval(np.mean, diff, axes=axes, n=n, seed=seed,
                              what="seeds and tasks" if len(axes) == 2 else "tasks")


def live256_table(run: Mapping[str, Any]) -> pd.DataFrame:
    """``policy_live256.csv``: one row per method (measured selection per K), columns ``seen, unseen,
    loo`` (mean over seeds), their seed SD, and each split's difference from the best fixed setting
    with its 95 % bootstrap interval."""
    summaries, problem = run["summaries"], run["problem"]
    best_fixed = best_fixed_key(summaries)
    rows = []
    for method, s in summaries.items():
        if method.startswith("measured K=") and int(method.split("=")[1]) not in MEASURED_ROWS:
            continue
        row: dict[str, Any] = {"method": method_label(method, s, best_fixed), "seeds": len(s["seeds"])}
        for split in ("seen", "unseen", "loo"):
            values = per_seed_task(s, split, _split_tasks(problem, split)).mean(axis=1)
            row[split] = float(values.mean())
            row[f"{split}_sd"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        for split in ("unseen", "loo"):
            iv = versus_best_fixed(summaries, problem, method, split) if method != "best-fixed" else None
            row[f"{split}_minus_best_fixed"] = iv.estimate if iv else 0.0
            row[f"{split}_low"], row[f"{split}_high"] = (iv.low, iv.high) if iv else (0.0, 0.0)
        picked = predictions(s) | predictions(s, "loo")
        row["distinct_settings"] = len(picked) if picked else float("nan")  # random: an expectation, no setting
        rows.append(row)
    return pd.DataFrame(rows).set_index("method")


def live256_per_task(run: Mapping[str, Any], result: Table256) -> pd.DataFrame:
    """Per task (first seed; leave-one-out prediction): each controller's chosen setting, its reward,
    whether that entry is measured or predicted, whether it differs from the best fixed setting by
    more than the two entries' noise (|difference| > 1.96 x their combined standard error), and
    whether the chosen setting's backbone learned (held-out pre-training accuracy over chance, for
    measured settings; the best fixed setting's in its own column)."""
    summaries, problem = run["summaries"], run["problem"]
    best_fixed = best_fixed_key(summaries)
    learned = result.extras.get("learned", pd.Series(dtype=float))
    rows = []
    for task in problem.all_tasks:
        row: dict[str, Any] = {"task": task, "split": "seen" if task in problem.seen else "unseen",
                               "best fixed": best_fixed, "best fixed 5-NN %": float(result.table.loc[task, best_fixed]),
                               "best fixed x chance": float(learned.get(best_fixed, np.nan))}
        for method in ("paper", "per-task", "reward-kernel"):
            key = summaries[method]["loo"]["predictions"]["0"][task]
            diff = float(result.table.loc[task, key] - result.table.loc[task, best_fixed])
            se = float(np.hypot(result.entry_se.loc[task, key], result.entry_se.loc[task, best_fixed])) if key != best_fixed else 0.0
            row[f"{method} setting (loo)"] = key
            row[f"{method} 5-NN %"] = float(result.table.loc[task, key])
            row[f"{method} entry"] = result.source[key]
            row[f"{method} beyond noise"] = bool(key != best_fixed and abs(diff) > 1.96 * se)
            row[f"{method} x chance"] = float(learned.get(key, np.nan))
        rows.append(row)
    return pd.DataFrame(rows).set_index("task")


def adaptive_finding(run: Mapping[str, Any], method: str = "paper", split: str = "loo") -> tuple[str, str, Interval]:
    """The paper's claim at this scale: task-adaptive settings (``method``) beat the best fixed setting
    on tasks the policy did not train on. Verdict from the bootstrap interval of the difference."""
    summaries, problem = run["summaries"], run["problem"]
    best_fixed = best_fixed_key(summaries)
    iv = versus_best_fixed(summaries, problem, method, split)
    label = method_label(method, summaries[method], best_fixed)
    where = {"loo": f"leave-one-task-out over {len(problem.all_tasks)} tasks",
             "unseen": f"{len(problem.unseen)} unseen tasks"}[split]
    sentence = (f"{label} minus best fixed ({best_fixed}), {where}: {iv.text()} points (95 % {iv.method}); "
                f"{len(predictions(summaries[method], 'loo' if split == 'loo' else 'all'))} distinct setting(s) chosen")
    return verdict(iv, +1), sentence, iv


#: non-inferiority margin of the policy-level Table 1 ("no degradation"), points of 5-NN accuracy
FRACTION_MARGIN = 1.0


def fraction_policy(prof: Profile, run: Mapping[str, Any], *, workers: int = 1) -> tuple[pd.DataFrame, Interval | None]:
    """Supplementary Table 1 at the policy level: the ``paper`` controller fitted and applied with the
    Task2Vec vectors notebook 02 computed from 50 / 20 / 10 % of the fraction tasks' training data
    (the other tasks keep their 100 % vectors), on the controller seeds of the main run. Per fraction:
    the mean 5-NN % on the fraction tasks (seed SD), and its paired difference from the 100 % vectors
    (bootstrap over seeds and tasks). Returns the table and the interval of the smallest fraction."""
    from ..task2vec.embed import Embedding

    problem: PolicyProblem = run["problem"]
    sec = prof.table256
    tasks = [t for t in prof.task2vec.fraction_tasks if t in problem.all_tasks]
    full = per_seed_task(run["summaries"]["paper"], "all", tasks)
    rows = [{"fraction": 1.0, "tasks": ", ".join(tasks), "5-NN %": float(full.mean()),
             "seed_sd": float(full.mean(axis=1).std(ddof=1)) if len(full) > 1 else 0.0,
             "minus_100": 0.0, "low": 0.0, "high": 0.0}]
    last = None
    for fraction in sorted({f for f in prof.task2vec.fractions if f < 1.0}, reverse=True):
        vectors = dict(problem.vectors)
        for t in tasks:
            path = prof.layout.task2vec_fractions / f"{t}__f{fraction}.npz"
            if not path.is_file():
                raise T2SError(f"{path} not found", "run notebook 02 (its fraction experiment writes these vectors)")
            vectors[t] = np.asarray(Embedding.load(path).hessian, dtype=np.float64)
        sub = PolicyProblem(problem.table, vectors, problem.seen, problem.unseen, f"{problem.name}-f{fraction}")
        summary, _ = run_variant("paper", sub, list(sec.policy_seeds), options={"epochs": prof.policy.epochs},
                                 workers=workers)
        values = per_seed_task(summary, "all", tasks)
        diff = values - full
        iv = bootstrap_interval(np.mean, diff, axes=(0, 1) if len(diff) > 1 else (1,), what="seeds and tasks")
        rows.append({"fraction": fraction, "tasks": ", ".join(tasks), "5-NN %": float(values.mean()),
                     "seed_sd": float(values.mean(axis=1).std(ddof=1)) if len(values) > 1 else 0.0,
                     "minus_100": iv.estimate, "low": iv.low, "high": iv.high})
        last = iv
    return pd.DataFrame(rows).set_index("fraction"), last
