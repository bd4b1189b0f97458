"""The policy on the small study's own measurements (cpu / smoke profiles).

Notebook 03 builds ``runs/<profile>/rewards/reward_table.json`` (seed-averaged 5-NN % of each
backbone, pre-trained on one rendered setting, on each offline task) and notebook 02 writes the
offline tasks' Task2Vec embeddings to ``runs/<profile>/task2vec/<task>.npz``. Together with the profile's
seen / unseen split (``tasks:`` section) they form a :class:`PolicyProblem` over the few settings
that were rendered and pre-trained. The controller needs all 256 settings, so this stage runs
``reward-kernel`` and the baselines; the setting predicted for an unseen task was already
rendered and pre-trained, so its downstream reward is measured, not extrapolated.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

import numpy as np
import pandas as pd

from ..errors import T2SError
from ..profiles import Profile
from ..published import reward_table_from_mapping
from .baselines import BASELINES
from .problem import PolicyProblem
from .report import best_fixed_key, method_label, results_table
from .runner import run_variant, write_summary

SMALL_STUDY_VARIANTS = ("reward-kernel", "measured") + BASELINES


def live_vectors(prof: Profile, tasks) -> dict[str, np.ndarray]:
    """The Task2Vec vectors notebook 02 wrote for ``tasks`` (those that have one), checked comparable
    (same probe and options)."""
    from ..task2vec.distances import check_comparable
    from ..task2vec.embed import Embedding

    vectors: dict[str, np.ndarray] = {}
    metas: dict[str, dict] = {}
    for task in tasks:
        path = prof.layout.task_vector(task)
        if path.is_file():
            emb = Embedding.load(path)
            vectors[task] = np.asarray(emb.hessian, dtype=np.float64)
            metas[task] = emb.meta
    check_comparable(metas)
    return vectors


def study_problem(prof: Profile) -> PolicyProblem:
    """Build the small study's problem from the run folder, with clear errors for missing stages."""
    layout = prof.layout
    reward_path = layout.reward_table
    if not reward_path.is_file():
        raise T2SError(f"{reward_path} not found", "build the reward table first (notebook 03 or `t2s rewards build`)")
    rewards = json.loads(reward_path.read_text())
    vectors = live_vectors(prof, [t for t in prof.tasks.all if t in rewards])
    seen = tuple(t for t in prof.tasks.seen if t in vectors)
    unseen = tuple(t for t in prof.tasks.unseen if t in vectors)
    if len(seen) < 2 or not unseen:
        raise T2SError(
            f"small study: need >= 2 seen and >= 1 unseen task with both a reward row and an embedding; "
            f"have seen {list(seen)}, unseen {list(unseen)}",
            "run notebooks 02 and 05 for the profile's tasks (tasks.seen / tasks.unseen)",
        )
    table = reward_table_from_mapping(rewards, source=str(reward_path), tasks=seen + unseen, require_all_settings=False)
    return PolicyProblem(table, vectors, seen, unseen, name=f"small-study-{prof.name}")


def run_small_study_policy(prof: Profile) -> dict[str, Any]:
    """reward-kernel and the baselines on the small study's table; summaries cached per run."""
    problem = study_problem(prof)
    out = prof.layout.policy_small_study
    val = validation_rows(prof, problem)
    summaries = {}
    for variant in SMALL_STUDY_VARIANTS:
        options: dict[str, Any] = {}
        if variant == "measured" and val is not None:
            # measurements are the validation-split 5-NN; the reward credited is the test-split 5-NN
            options["measured_rows"] = {t: [round(float(v), 4) for v in row] for t, row in val.items()}
        summary, _ = run_variant(variant, problem, [0], options=options, loo_seeds=[0])
        write_summary(out / variant, summary)
        summaries[variant] = summary
    return {"problem": problem, "summaries": summaries}


def small_study_tables(result: Mapping[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(methods table, per-task predicted setting and its measured 5-NN %)."""
    summaries, problem = result["summaries"], result["problem"]
    methods = results_table(summaries.values()).drop(columns=["seeds", "seen_std", "unseen_std", "loo_all_std"])
    # a method that picks one setting for every task is named for what it is at this scale
    best = best_fixed_key(summaries)
    methods.index = [method_label(m, summaries[m], best) for m in methods.index]
    rows = []
    for task in problem.all_tasks:
        row: dict[str, Any] = {"task": task, "split": "seen" if task in problem.seen else "unseen"}
        for variant in ("reward-kernel", "measured", "best-fixed", "oracle"):
            key = summaries[variant]["predictions"]["0"][task]
            row[f"{variant} setting"] = key
            row[f"{variant} 5-NN %"] = summaries[variant]["per_task"]["0"][task]
        rows.append(row)
    return methods, pd.DataFrame(rows).set_index("task")


def fraction_predictions(prof: Profile, result: Mapping[str, Any]) -> pd.DataFrame:
    """Supplementary Table 1 analog: the setting ``reward-kernel`` (fitted on the small study's
    seen tasks) predicts from Task2Vec vectors computed on 100/50/20/10 % of a task's training data
    (``runs/<profile>/task2vec/fractions/<task>__f<fraction>.npz``, written by notebook 02), and the
    measured 5-NN % of that setting when the task is in the reward table."""
    from ..task2vec.embed import Embedding
    from .reward_kernel import fit_reward_kernel

    problem: PolicyProblem = result["problem"]
    fitted = fit_reward_kernel(problem)
    folder = prof.layout.task2vec_fractions
    rows = []
    for path in sorted(folder.glob("*__f*.npz")):
        task, fraction = path.stem.rsplit("__f", 1)
        vector = np.asarray(Embedding.load(path).hessian, dtype=np.float64)[None]
        column = int(fitted.scores(vector)[0].argmax())
        key = problem.table.keys[column]
        measured = problem.table.reward(task, key) if task in problem.table.tasks else float("nan")
        role = "seen" if task in problem.seen else ("unseen" if task in problem.unseen else "other")
        rows.append({"task": task, "role": role, "fraction": float(fraction), "predicted_setting": key, "5-NN % of that setting": measured})
    if not rows:
        raise T2SError(f"no fraction embeddings in {folder}", "run notebook 02 (task2vec.fraction_tasks) first")
    return pd.DataFrame(rows).sort_values(["task", "fraction"], ascending=[True, False]).set_index(["task", "fraction"])


def validation_rows(prof: Profile, problem: PolicyProblem, table=None) -> dict[str, np.ndarray] | None:
    """Per task, the seed-averaged 5-NN on a validation split of its training data for each setting of the
    live table (``rewards.validation``; ``table``: another table folder), in the table's column order;
    None when the table has none."""
    from ..rewards.analysis import load_rows

    table = table if table is not None else prof.layout.rewards
    if not (table / "rewards.csv").is_file():
        return None
    rows = load_rows(table)
    val = rows[rows["metric"] == "knn_val_top1"]
    if val.empty:
        return None
    wide = val.groupby(["task", "setting"])["value"].mean().unstack("setting")
    keys = list(problem.table.keys)
    missing = [t for t in problem.all_tasks if t not in wide.index or wide.loc[t, keys].isna().any()]
    if missing:
        return None
    return {t: wide.loc[t, keys].to_numpy(dtype=float) for t in problem.all_tasks}


def measured_k_curves(prof: Profile, small: Mapping[str, Any], budgets=None) -> dict[str, pd.DataFrame]:
    """Measured selection's K-curve on the published table (one number per cell: it selects and scores)
    and on the live table (selected by the validation-split 5-NN, scored by the test-split 5-NN)."""
    from .measured_report import k_curve_table
    from .problem import published_problem

    out = {"published": k_curve_table(published_problem(), budgets or tuple(range(1, 33)))}
    problem: PolicyProblem = small["problem"]
    live_budgets = tuple(range(1, len(problem.table.keys) + 1))
    out["live"] = k_curve_table(problem, live_budgets, measured_rows=validation_rows(prof, problem))
    return out


def live_premise(prof: Profile, problem: PolicyProblem) -> dict[str, Any]:
    """Task2Sim's premise measured on this study's table with the offline vectors: Spearman of
    pairwise Task2Vec similarity against pairwise reward-row correlation (Mantel permutation p),
    and how far apart tasks are in Task2Vec distance compared with two seeds of one task's vector
    (the ``1.0, seed+1`` rows of notebook 02's fraction experiment)."""
    from ..task2vec.distances import task2vec_distance
    from ..task2vec.report import seed_pair
    from ..task2vec.study import ProfileEmbedder
    from .analysis import similarity_vs_reward_correlation

    out: dict[str, Any] = {
        kind: similarity_vs_reward_correlation(problem, row_correlation=kind).to_dict() for kind in ("spearman", "pearson")}
    tasks = problem.all_tasks
    H = problem.matrix(tasks)
    between = [task2vec_distance(H[i], H[j]) for i in range(len(tasks)) for j in range(i + 1, len(tasks))]
    sec = prof.task2vec
    embedder = ProfileEmbedder(prof)
    seed_pairs = []
    for task in sec.fraction_tasks:  # the noise floor notebook 02 measured (from the results ledger)
        one, two = seed_pair(task, embedder)
        seed_pairs.append(task2vec_distance(one.hessian, two.hessian))
    out["between_task_distance_mean"] = float(np.mean(between))
    out["between_task_distance_min"] = float(np.min(between))
    if seed_pairs:
        out["seed_to_seed_distance_mean"] = float(np.mean(seed_pairs))
        out["between_over_seed_ratio"] = out["between_task_distance_mean"] / out["seed_to_seed_distance_mean"]
    out["n_tasks"] = len(tasks)
    return out
