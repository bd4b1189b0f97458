"""Measured selection: the K-curve table, the optimism of same-number scoring, and its cost.

* :func:`k_curve_table`: seen / unseen / leave-one-task-out (all tasks) mean reward for every
  budget K, for one configuration (default the method's);
* :func:`optimism_curve`: on a table with one number per cell, the cell that selects a setting
  is also the score it is credited with. Treating the table as the truth, this simulates
  measurements ``true + noise`` (noise sd per cell), selects on them and compares the credited
  (measured) value of the chosen setting with its true value;
* :func:`selection_cost`: measured selection, one Task2Vec embedding and one pre-training, in
  ResNet-50 forward-image equivalents.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from ..errors import T2SError
from ..published import l2_normalize
from .measured import DEFAULT_CONFIG, MeasuredConfig, RowPrior, _kernel_weights, adapt_to_table, select
from .problem import PolicyProblem

K_CURVE_BUDGETS = tuple(range(1, 33))


def _selections(problem: PolicyProblem, train: Sequence[str], targets: Sequence[str], cfg: MeasuredConfig,
                budgets: Sequence[int], noise: np.ndarray | None = None,
                measured_rows: Mapping[str, np.ndarray] | None = None) -> dict[str, tuple[dict[int, int], np.ndarray, list[int]]]:
    """For each target task: chosen column per budget (prior from ``train`` rows), the row that was
    measured (``measured_rows[task]`` when given, e.g. a validation split's 5-NN, else the true row
    plus ``noise`` [n_targets, m]), and the measured columns."""
    train_rows = problem.rewards(train)
    uniform = RowPrior.fit(train_rows, problem.table.keys, cfg) if math.isinf(cfg.tau) else None
    rows = problem.rewards(targets)
    out = {}
    for i, task in enumerate(targets):
        prior = uniform
        if prior is None:  # Task2Vec-weighted prior mean, as FittedMeasured.prior_for
            sim = l2_normalize(problem.matrix([task]))[0] @ l2_normalize(problem.matrix(train)).T
            prior = RowPrior.fit(train_rows, problem.table.keys, cfg, _kernel_weights(sim, cfg.tau))
        base = np.asarray(measured_rows[task], dtype=float) if measured_rows is not None else rows[i]
        measured_row = base + (noise[i] if noise is not None else 0.0)
        sel = select(prior, lambda cols, r=measured_row: [r[j] for j in cols], max(budgets), cfg, budgets)
        out[task] = (sel.chosen, measured_row, sel.measured)
    return out


def k_curve_table(
    problem: PolicyProblem,
    budgets: Sequence[int] = K_CURVE_BUDGETS,
    config: MeasuredConfig | None = None,
    *,
    loo: bool = True,
    measured_rows: Mapping[str, np.ndarray] | None = None,
) -> pd.DataFrame:
    """Mean reward of measured selection for each budget K: on the seen tasks and the unseen
    tasks (prior from the seen rows) and, with ``loo``, leave-one-task-out over all tasks (prior
    from the other tasks' rows). Budgets above the table's number of settings are dropped.
    Equals ``run_variant("measured", ..., options={"budget": K, "config": config})`` for each K,
    computed in one pass (the measured sequence does not depend on K).

    ``measured_rows`` (task -> row over the table's settings): what a measurement observes when it
    differs from the reward that scores the choice (the live table: 5-NN on a validation split of
    the task's training data vs the test-split reward). The table then gains ``<column>_measured``
    columns: the measured value of the chosen setting (what one number per cell would credit)."""
    m = len(problem.table.keys)
    cfg = adapt_to_table(config or DEFAULT_CONFIG, m)
    budgets = sorted({int(k) for k in budgets if 1 <= int(k) <= m})
    if not budgets:
        raise T2SError(f"k_curve_table: no budget in 1..{m}")
    with threadpool_limits(limits=1):
        split = _selections(problem, problem.seen, problem.all_tasks, cfg, budgets, measured_rows=measured_rows)
        loo_sel = {}
        if loo:
            for task in problem.all_tasks:
                train = [t for t in problem.all_tasks if t != task]
                loo_sel.update(_selections(problem, train, [task], cfg, budgets, measured_rows=measured_rows))
    R = {t: problem.table.row(t) for t in problem.all_tasks}
    rows = []
    for k in budgets:
        row = {"K": k}
        for name, tasks in (("seen", problem.seen), ("unseen", problem.unseen)):
            if tasks:
                row[name] = float(np.mean([R[t][split[t][0][k]] for t in tasks]))
                if measured_rows is not None:
                    row[f"{name}_measured"] = float(np.mean([split[t][1][split[t][0][k]] for t in tasks]))
        if loo:
            row["loo_all"] = float(np.mean([R[t][loo_sel[t][0][k]] for t in problem.all_tasks]))
            if measured_rows is not None:
                row["loo_all_measured"] = float(np.mean([loo_sel[t][1][loo_sel[t][0][k]] for t in problem.all_tasks]))
        rows.append(row)
    return pd.DataFrame(rows).set_index("K")


def k_curve_per_task(problem: PolicyProblem, budgets: Sequence[int], config: MeasuredConfig | None = None, *,
                     measured_rows: Mapping[str, np.ndarray] | None = None) -> pd.DataFrame:
    """Long table (K, split, task, setting, reward) of measured selection: ``seen`` / ``unseen`` with the
    prior from the seen rows, ``loo`` with the prior from every other task's rows (the per-task values
    whose means :func:`k_curve_table` reports)."""
    m = len(problem.table.keys)
    cfg = adapt_to_table(config or DEFAULT_CONFIG, m)
    budgets = sorted({int(k) for k in budgets if 1 <= int(k) <= m})
    with threadpool_limits(limits=1):
        split = _selections(problem, problem.seen, problem.all_tasks, cfg, budgets, measured_rows=measured_rows)
        loo = {}
        for task in problem.all_tasks:
            loo.update(_selections(problem, [t for t in problem.all_tasks if t != task], [task], cfg, budgets,
                                   measured_rows=measured_rows))
    rows = []
    for k in budgets:
        for name, tasks, chosen in (("seen", problem.seen, split), ("unseen", problem.unseen, split),
                                    ("loo", problem.all_tasks, loo)):
            for t in tasks:
                col = chosen[t][0][k]
                rows.append({"K": k, "split": name, "task": t, "setting": problem.table.keys[col],
                             "reward": float(problem.table.row(t)[col])})
    return pd.DataFrame(rows)


def optimism_curve(
    problem: PolicyProblem,
    noise_sds: Sequence[float] = (0.5, 1.0, 2.0),
    budgets: Sequence[int] = (1, 2, 4, 8, 16, 32),
    config: MeasuredConfig | None = None,
    *,
    repeats: int = 10,
    seed: int = 0,
    tasks: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Optimism of scoring a selection with the number that selected it.

    The table is taken as the truth. For each held-out task (leave-one-task-out over ``tasks``,
    default all; prior from the other tasks' true rows), every cell gets one Gaussian measurement
    error of sd ``noise_sd``; K settings are measured and one chosen on the noisy values.
    Returns, per noise sd and K (means over tasks and ``repeats`` draws):

    * ``credited``: the noisy measured value of the chosen setting (what a one-number table reports);
    * ``true``: its true value (what a separate test split would report, in expectation);
    * ``optimism`` = credited - true;
    * ``noise_free``: the true value of the setting chosen without noise;
    * ``loss`` = noise_free - true (what the noise costs the selection itself).
    """
    m = len(problem.table.keys)
    cfg = adapt_to_table(config or DEFAULT_CONFIG, m)
    budgets = sorted({int(k) for k in budgets if 1 <= int(k) <= m})
    tasks = tuple(tasks) if tasks is not None else problem.all_tasks
    if len(tasks) < 3:
        raise T2SError("optimism_curve needs at least 3 tasks")
    rng = np.random.default_rng([seed, 29])
    records = []
    with threadpool_limits(limits=1):
        clean = {}
        for task in tasks:
            train = [t for t in tasks if t != task]
            clean.update(_selections(problem, train, [task], cfg, budgets))
        for sd in noise_sds:
            # The configuration assumes the noise it faces (it matters for the model-based rules).
            noisy_cfg = replace(cfg, noise_sd=float(sd))
            acc = {k: np.zeros(3) for k in budgets}
            for _ in range(repeats):
                for task in tasks:
                    train = [t for t in tasks if t != task]
                    noise = rng.normal(0.0, sd, size=(1, m))
                    chosen, measured_row, _ = _selections(problem, train, [task], noisy_cfg, budgets, noise)[task]
                    true_row = problem.table.row(task)
                    for k in budgets:
                        j = chosen[k]
                        acc[k] += (measured_row[j], true_row[j], true_row[clean[task][0][k]])
            n = repeats * len(tasks)
            for k in budgets:
                credited, true, noise_free = acc[k] / n
                records.append({"noise_sd": float(sd), "K": k, "credited": credited, "true": true, "optimism": credited - true,
                                "noise_free": noise_free, "loss": noise_free - true})
    return pd.DataFrame(records).set_index(["noise_sd", "K"])


# ----- cost -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FlopAssumptions:
    """Forward FLOPs per 224 px image (GFLOPs, multiply-accumulates as usually quoted) and the
    backward/forward ratio."""

    resnet18_gflops: float = 1.8
    resnet50_gflops: float = 4.1
    backward_over_forward: float = 2.0


def selection_cost(
    budget: int,
    task_images: int,
    *,
    task2vec_images: int = 10_000,
    fisher_samples: int = 10_000,
    pretrain_images: int = 40_000,
    pretrain_epochs: int = 100,
    flops: FlopAssumptions = FlopAssumptions(),
) -> dict[str, float]:
    """Cost in ResNet-50 forward-image equivalents (one ResNet-50 forward pass of one 224 px image
    = 1; ResNet-18 forward = 1.8 / 4.1 = 0.44; forward + backward = 3x forward).

    * measured selection: ``budget`` stored backbones, each a ResNet-50 forward pass over the
      task's ``task_images`` (the train part of the validation split + the validation images) for
      the 5-NN; the k-NN itself (a similarity matrix) is negligible;
    * one Task2Vec embedding (awslabs code): a ResNet-18 feature pass over min(task_images,
      ``task2vec_images``) images, the classifier fitted on cached features (negligible), and a
      Monte-Carlo Fisher pass of ``fisher_samples`` images forward + backward;
    * one pre-training: ``pretrain_images`` x ``pretrain_epochs`` ResNet-50 forward + backward
      (the published 40k images x 100 epochs); the reward table needs 256 of them.
    """
    if budget < 0 or task_images < 0:
        raise T2SError("selection_cost: budget and task_images must be >= 0")
    r18 = flops.resnet18_gflops / flops.resnet50_gflops
    train_step = 1.0 + flops.backward_over_forward
    measured = float(budget * task_images)
    task2vec = r18 * (min(task_images, task2vec_images) + train_step * fisher_samples)
    pretrain = float(pretrain_images * pretrain_epochs * train_step)
    return {
        "budget": budget,
        "task_images": task_images,
        "measured_selection": measured,
        "per_measurement": float(task_images),
        "task2vec_embedding": task2vec,
        "pretraining": pretrain,
        "reward_table_256_pretrainings": 256 * pretrain,
        "measured_over_task2vec": measured / task2vec if task2vec else float("nan"),
        "measured_over_pretraining": measured / pretrain,
        "resnet18_over_resnet50": r18,
    }


def cost_table(budgets: Sequence[int] = (1, 2, 4, 8, 16, 32), task_images: Sequence[int] = (1_000, 5_000, 10_000)) -> pd.DataFrame:
    """:func:`selection_cost` for several budgets and task sizes."""
    return pd.DataFrame([selection_cost(k, n) for n in task_images for k in budgets]).set_index(["task_images", "budget"])


def baseline_lines(summaries: Mapping[str, Mapping]) -> dict[str, tuple[float, float, float]]:
    """{name: (seen, unseen, loo_all)} from ``summary.json`` dicts (for the K-curve figure)."""
    out = {}
    for name, s in summaries.items():
        out[name] = (s.get("seen_mean", np.nan), s.get("unseen_mean", np.nan), (s.get("loo") or {}).get("mean", np.nan))
    return out


# ----- honesty check of the design selection ----------------------------------------------------
def nested_design_check(problem: PolicyProblem, grid: Sequence[MeasuredConfig] | None = None,
                        budgets: Sequence[int] = (1, 2, 4, 8, 16, 32)) -> pd.DataFrame:
    """Nested leave-one-task-out over the seen tasks of the whole design procedure: for each seen
    task, :func:`design_study` runs on the other seen tasks only, and the configuration it
    chooses predicts the held-out task. Its mean is an unbiased estimate of what the chosen
    design gives on a new task; the gap to the plain seen-LOO of the chosen configuration is
    the optimism of choosing among many configurations on 12 tasks. Slow (one design study per
    seen task)."""
    from .measured import design_study

    rows = []
    for task in problem.seen:
        inner = problem.with_split([t for t in problem.seen if t != task], ())
        _, chosen = design_study(inner, grid, budgets)
        sel = _selections(problem, inner.seen, [task], chosen, budgets)[task]
        row = problem.table.row(task)
        rows.append({"task": task, **{f"K={k}": float(row[sel[0][k]]) for k in budgets}, "chosen": str(chosen.to_dict())})
    return pd.DataFrame(rows).set_index("task")


# ----- the whole report -------------------------------------------------------------------------
def _write(table: pd.DataFrame, out, name: str, floatfmt: str = ".2f", md_rows: int | None = None) -> list:
    """``name.csv`` (the whole table) and ``name.md`` (its first ``md_rows`` rows, default all)."""
    from ..files import atomic_path

    out.mkdir(parents=True, exist_ok=True)
    paths = []
    md = table if md_rows is None or len(table) <= md_rows else table.head(md_rows)
    note = "" if md is table else f"\n(first {md_rows} of {len(table)} rows; all in {name}.csv)\n"
    for suffix, text in ((".md", md.to_markdown(floatfmt=floatfmt) + "\n" + note), (".csv", table.to_csv())):
        with atomic_path(out / f"{name}{suffix}") as tmp:
            tmp.write_text(text)
        paths.append(out / f"{name}{suffix}")
    return paths


def measured_study(problem: PolicyProblem | None = None, summaries: Mapping[str, Mapping] | None = None, *,
                   design: bool = True, nested: bool = False, optimism_repeats: int = 10) -> dict:
    """The measured-selection study of a table, in this order (the unseen tasks are only read in step 3):

    1. ``design_table`` / ``design``: every configuration of the wide grid scored by leave-one-task-out
       over the seen tasks only (a problem holding only the seen tasks), and the chosen one (must be
       :data:`DEFAULT_CONFIG`); with ``nested``, the nested check (``design_nested``). ``design=False``
       skips the search (minutes) and uses :data:`DEFAULT_CONFIG`;
    2. ``premise``: Task2Vec similarity vs reward-row correlation;
    3. ``k_curve`` (K = 1..32), ``comparison`` (K = 1, 2, 4, 8, 16, 32 next to ``summaries``'
       methods; missing baselines are run here) and the K-curve ``figure``;
    4. ``optimism`` and ``cost``.
    """
    from .analysis import similarity_vs_reward_correlation
    from .measured import design_study, wide_grid
    from .plots import plot_k_curve
    from .problem import published_problem
    from .runner import run_variant

    problem = problem or published_problem()
    result: dict = {}
    chosen = adapt_to_table(DEFAULT_CONFIG, len(problem.table.keys))
    if design:
        seen_only = PolicyProblem(problem.table.subset(problem.seen), {t: problem.vectors[t] for t in problem.seen},
                                  problem.seen, (), problem.name + "-seen-only")
        with threadpool_limits(limits=1):
            frame, chosen = design_study(seen_only, wide_grid())
        frame = frame.sort_values("mean_over_K", ascending=False, kind="stable")
        chosen_row = frame.iloc[0]
        result["design_table"] = frame.reset_index(drop=True)
        result["design"] = {
            "procedure": "leave-one-task-out over the seen tasks only (fit the prior on the other seen tasks, measure K "
                         "settings of the held-out one by table lookup, score its true reward of the chosen setting); "
                         "criterion: mean over K = 1, 2, 4, 8, 16, 32; ties: earlier configuration of wide_grid()",
            "seen_tasks": list(problem.seen), "n_configurations": len(frame), "chosen": chosen.to_dict(),
            "chosen_is_default": chosen == adapt_to_table(DEFAULT_CONFIG, len(problem.table.keys)),
            "chosen_seen_loo": {c: float(chosen_row[c]) for c in frame.columns if c.startswith("K=") or c == "mean_over_K"},
        }
        if nested:
            with threadpool_limits(limits=1):
                result["design_nested"] = nested_design_check(problem)
            result["design"]["nested_seen_loo"] = {c: float(result["design_nested"][c].mean())
                                                   for c in result["design_nested"].columns if c.startswith("K=")}
    premise = {kind: similarity_vs_reward_correlation(problem, row_correlation=kind).to_dict() for kind in ("pearson", "spearman")}
    premise["seen_only_pearson"] = similarity_vs_reward_correlation(problem, problem.seen).to_dict()
    result["premise"] = premise
    curve = k_curve_table(problem, K_CURVE_BUDGETS, chosen)
    result["k_curve"] = curve
    summaries = dict(summaries or {})
    for name in ("best-fixed", "nearest-seen", "reward-kernel", "oracle"):
        if name not in summaries:
            summaries[name] = run_variant(name, problem, [0], loo_seeds=[0])[0]
    lines = baseline_lines({("paper controller" if n == "paper" else n): s for n, s in summaries.items()
                            if n in ("paper", "best-fixed", "nearest-seen", "reward-kernel", "oracle")})
    result["figure"] = plot_k_curve(curve, lines)
    rows = {f"measured K={k}": curve.loc[k].to_dict() for k in REPORT if k in curve.index}
    rows.update({name: {"seen": s, "unseen": u, "loo_all": l} for name, (s, u, l) in lines.items()})
    result["comparison"] = pd.DataFrame(rows).T[["seen", "unseen", "loo_all"]]
    result["optimism"] = optimism_curve(problem, config=chosen, repeats=optimism_repeats)
    result["cost"] = cost_table()
    return result


def write_measured_report(out_dir, problem: PolicyProblem | None = None, *, paper_summary: Mapping | None = None,
                          nested: bool = False, optimism_repeats: int = 10) -> dict:
    """:func:`measured_study` written into ``out_dir`` (``policy_measured_*`` tables, the K-curve PNG, JSON)."""
    import json
    from pathlib import Path

    from ..files import write_json

    out = Path(out_dir)
    summaries = {"paper": dict(paper_summary)} if paper_summary is not None else None
    result = measured_study(problem, summaries, nested=nested, optimism_repeats=optimism_repeats)
    _write(result["design_table"], out, "policy_measured_design", md_rows=60)
    if nested:
        _write(result["design_nested"], out, "policy_measured_design_nested")
    write_json(out / "policy_measured_design.json", result["design"])
    write_json(out / "policy_premise.json", result["premise"])
    _write(result["k_curve"], out, "policy_measured_k_curve")
    result["figure"].savefig(out / "policy_measured_k_curve.png", dpi=150)
    _write(result["comparison"], out, "policy_measured_vs_baselines")
    _write(result["optimism"], out, "policy_measured_optimism")
    _write(result["cost"], out, "policy_measured_cost", floatfmt=".4g")
    (out / "policy_measured_summary.json").write_text(json.dumps(
        {"design": result["design"], "premise": result["premise"],
         "comparison": result["comparison"].to_dict(orient="index")}, indent=2) + "\n")
    return result


REPORT = (1, 2, 4, 8, 16, 32)


def main(argv: Sequence[str] | None = None) -> int:
    import argparse
    import json
    from pathlib import Path

    parser = argparse.ArgumentParser(description="measured selection on the published table: design record, K-curve, "
                                                 "optimism, cost, premise")
    parser.add_argument("--out", required=True)
    parser.add_argument("--paper-summary", default=None, help="summary.json of `t2s policy train --variant paper --loo`")
    parser.add_argument("--nested", action="store_true", help="also the nested check of the design selection (slow)")
    parser.add_argument("--optimism-repeats", type=int, default=10)
    args = parser.parse_args(argv)
    paper = json.loads(Path(args.paper_summary).read_text()) if args.paper_summary else None
    result = write_measured_report(args.out, paper_summary=paper, nested=args.nested, optimism_repeats=args.optimism_repeats)
    print(json.dumps(result["design"], indent=2))
    print(result["comparison"].to_markdown(floatfmt=".2f"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
