"""Train/evaluate policy variants over seeds, leave-one-task-out, and write summaries.

``summary.json`` (one per variant) holds: ``variant``, ``problem``, ``seeds``, ``seen_mean``,
``seen_std``, ``unseen_mean``, ``unseen_std``, ``seen_per_seed``, ``unseen_per_seed``,
``predictions`` (per seed: task -> setting key), ``per_task`` (per seed: task -> reward),
``p_vary`` (per seed: task -> {parameter: P(vary)}, controller variants), the distance-weighted
unseen numbers for controller variants, ``loo`` (leave-one-task-out over all tasks, when asked),
``options`` and ``seconds``; for ``measured`` also ``budget`` and ``measured`` (per seed: task ->
the setting keys measured, in order). Learning curves go to ``curves.json`` beside it.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import T2SError
from ..files import write_json
from ..ledger import current as current_ledger
from ..settings import HEAD_ORDER, SimSetting
from .methods import METHODS
from .problem import PolicyProblem

CONTROLLER_VARIANTS = ("paper", "per-task")
POLICY_KIND = "policy.run"


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    arr = np.asarray(values, dtype=np.float64)
    return float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else 0.0


def _run_one(variant: str, problem: PolicyProblem, seed: int, options: dict[str, Any]) -> dict[str, Any]:
    start = time.perf_counter()
    fitted = METHODS.get(variant)(problem, seed, **options)
    record: dict[str, Any] = {"seed": seed}
    for split, tasks in (("seen", problem.seen), ("unseen", problem.unseen)):
        if not tasks:
            continue
        pred = fitted.predict(tasks)
        rewards = pred.rewards(problem)
        record[f"{split}_mean"] = float(rewards.mean())
        record[f"{split}_keys"] = pred.keys(problem)
        record[f"{split}_rewards"] = {t: float(r) for t, r in zip(tasks, rewards)}
        if pred.p_vary is not None:
            record[f"{split}_p_vary"] = {
                t: {name: float(p) for name, p in zip(HEAD_ORDER, row)} for t, row in zip(tasks, pred.p_vary)
            }
        if "distance_weighted_indices" in pred.extras and split == "unseen":
            idx = pred.extras["distance_weighted_indices"]
            R = problem.rewards(tasks)
            dw_rewards = R[np.arange(len(tasks)), idx]
            record["unseen_distance_weighted_mean"] = float(dw_rewards.mean())
            record["unseen_distance_weighted_keys"] = {t: SimSetting.from_index(int(i)).key for t, i in zip(tasks, idx)}
        if "config" in pred.extras:
            record["config"] = pred.extras["config"]
            record["selection_loo_seen"] = pred.extras["selection_loo_seen"]
        if "budget" in pred.extras:
            record["budget"] = pred.extras["budget"]
            record[f"{split}_measured"] = pred.extras["measured"]
    curves = getattr(fitted, "curves", None)
    if curves:
        record["curves"] = curves
    record["seconds"] = time.perf_counter() - start
    return record


def _loo_one(variant: str, problem: PolicyProblem, seed: int, held_out: str, options: dict[str, Any]) -> tuple[str, int, float, str | None]:
    train = tuple(t for t in problem.all_tasks if t != held_out)
    sub = problem.with_split(train, (held_out,))
    # Every method accepts (and all but the controller ignore) record_curves.
    fitted = METHODS.get(variant)(sub, seed, record_curves=False, **options)
    pred = fitted.predict((held_out,))
    return held_out, seed, float(pred.rewards(sub)[0]), pred.keys(sub)[held_out]


def _map(fn, jobs: list[tuple], workers: int) -> list:
    if workers <= 1 or len(jobs) <= 1:
        return [fn(*job) for job in jobs]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, *zip(*jobs)))


def run_variant(
    variant: str,
    problem: PolicyProblem,
    seeds: Sequence[int],
    *,
    options: dict[str, Any] | None = None,
    loo_seeds: Sequence[int] | None = None,
    workers: int = 1,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fit ``variant`` once per seed on the seen tasks; evaluate on seen and unseen tasks.

    With ``loo_seeds``, also leave each of the problem's tasks out in turn (fit on all others)
    and report the mean reward of the held-out predictions. Returns (summary, curves). Inside a study
    the run goes through the results ledger (identity: the method, the problem's digest, seeds, options).
    """
    METHODS.get(variant)  # unknown variant -> clear error before any work
    led = current_ledger()
    if led is None:
        return _run_variant(variant, problem, seeds, options=options, loo_seeds=loo_seeds, workers=workers)
    identity = {"variant": variant, "problem": problem.name, "problem_digest": problem.digest(), "seeds": list(seeds),
                "options": dict(options or {}), "loo_seeds": list(loo_seeds or [])}

    def measure() -> dict[str, Any]:
        summary, curves = _run_variant(variant, problem, seeds, options=options, loo_seeds=loo_seeds, workers=workers)
        return {"summary": summary, "curves": curves}

    value = led.measure(POLICY_KIND, identity, measure, what=f"{variant} on {problem.name}")
    return value["summary"], value["curves"]


def _run_variant(variant: str, problem: PolicyProblem, seeds: Sequence[int], *, options: dict[str, Any] | None,
                 loo_seeds: Sequence[int] | None, workers: int) -> tuple[dict[str, Any], dict[str, Any]]:
    options = dict(options or {})
    seeds = list(seeds)
    if not seeds:
        raise T2SError("no seeds given", "pass e.g. --seeds 0-9")
    start = time.perf_counter()
    records = _map(_run_one, [(variant, problem, s, options) for s in seeds], workers)
    summary: dict[str, Any] = {"variant": variant, "problem": problem.name, "seeds": seeds}
    for split in ("seen", "unseen"):
        key = f"{split}_mean"
        if key in records[0]:
            per_seed = [r[key] for r in records]
            summary[f"{split}_mean"], summary[f"{split}_std"] = _mean_std(per_seed)
            summary[f"{split}_per_seed"] = per_seed
    if "unseen_distance_weighted_mean" in records[0]:
        per_seed = [r["unseen_distance_weighted_mean"] for r in records]
        summary["unseen_distance_weighted_mean"], summary["unseen_distance_weighted_std"] = _mean_std(per_seed)
        summary["unseen_distance_weighted_per_seed"] = per_seed
    summary["predictions"] = {str(r["seed"]): {**r.get("seen_keys", {}), **r.get("unseen_keys", {})} for r in records}
    summary["per_task"] = {str(r["seed"]): {**r.get("seen_rewards", {}), **r.get("unseen_rewards", {})} for r in records}
    if "seen_p_vary" in records[0]:
        summary["p_vary"] = {str(r["seed"]): {**r.get("seen_p_vary", {}), **r.get("unseen_p_vary", {})} for r in records}
    if "config" in records[0]:
        summary["selected_config"] = records[0]["config"]
        summary["selection_loo_seen"] = records[0]["selection_loo_seen"]
    if "budget" in records[0]:
        summary["budget"] = records[0]["budget"]
        summary["measured"] = {str(r["seed"]): {**r.get("seen_measured", {}), **r.get("unseen_measured", {})} for r in records}
    if loo_seeds:
        loo_jobs = [(variant, problem, s, t, options) for s in loo_seeds for t in problem.all_tasks]
        loo = _map(_loo_one, loo_jobs, workers)
        per_seed = []
        per_task: dict[str, dict[str, float]] = {}
        keys: dict[str, dict[str, str]] = {}
        for s in loo_seeds:
            rows = [r for r in loo if r[1] == s]
            per_seed.append(float(np.mean([r[2] for r in rows])))
            per_task[str(s)] = {r[0]: r[2] for r in rows}
            keys[str(s)] = {r[0]: r[3] for r in rows}
        mean, std = _mean_std(per_seed)
        summary["loo"] = {
            "tasks": list(problem.all_tasks),
            "seeds": list(loo_seeds),
            "mean": mean,
            "std": std,
            "per_seed": per_seed,
            "per_task": per_task,
            "predictions": keys,
        }
    summary["options"] = options
    summary["seconds"] = round(time.perf_counter() - start, 2)
    curves = {str(r["seed"]): r["curves"] for r in records if "curves" in r}
    return summary, curves


def write_summary(out_dir: str | os.PathLike, summary: dict[str, Any], curves: dict[str, Any] | None = None) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if curves:
        write_json(out / "curves.json", curves, indent=None)
    return write_json(out / "summary.json", summary)


def format_summary(summary: dict[str, Any]) -> str:
    """A short readable table of one variant's results."""
    lines = [f"variant {summary['variant']} on {summary['problem']} ({len(summary['seeds'])} seed(s))"]
    for label, key in (("seen", "seen"), ("unseen", "unseen"), ("unseen, distance-weighted", "unseen_distance_weighted")):
        if f"{key}_mean" in summary:
            lines.append(f"  {label:<26} {summary[f'{key}_mean']:6.2f} +- {summary[f'{key}_std']:.2f}")
    if "loo" in summary:
        lines.append(f"  {'leave-one-task-out (all)':<26} {summary['loo']['mean']:6.2f} +- {summary['loo']['std']:.2f}")
    if "budget" in summary:
        lines.append(f"  measurement budget K = {summary['budget']}")
    if "selected_config" in summary:
        lines.append(f"  selected by seen-task LOO: {summary['selected_config']} ({summary['selection_loo_seen']:.2f})")
    return "\n".join(lines)
