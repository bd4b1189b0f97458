"""The policy stage of the study (notebook 03): run every variant and baseline, cached on disk.

Layout under ``runs/<profile>/policy/``: ``<variant>/summary.json`` and ``curves.json`` per
variant (see :mod:`t2s_lib.policy.runner`), ``baselines.json``/``.md``. A cached summary is reused
when its seeds, leave-one-out seeds and options match the profile; otherwise it is recomputed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from ..profiles import Profile
from .baselines import BASELINES
from .problem import PolicyProblem, published_problem
from .report import results_table
from .runner import CONTROLLER_VARIANTS, run_variant, write_summary


def _cached(path: Path, seeds: list[int], loo_seeds: list[int], options: dict) -> dict | None:
    if not path.is_file():
        return None
    try:
        summary = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None
    same_loo = (summary.get("loo") or {}).get("seeds", []) == list(loo_seeds)
    if summary.get("seeds") == list(seeds) and same_loo and summary.get("options") == options:
        return summary
    return None


def run_policy_stage(prof: Profile, problem: PolicyProblem | None = None, out: Path | None = None) -> dict[str, Any]:
    """Run (or load) every configured variant and every baseline; return summaries and curves.

    Results are cached under ``out`` (default: the profile's ``policy/`` folder).
    """
    cfg = prof.policy
    problem = problem or published_problem()
    out = Path(out) if out is not None else prof.layout.policy
    seeds, loo_seeds, workers = list(cfg.seeds), list(cfg.loo_seeds), cfg.workers
    summaries: dict[str, dict] = {}
    curves: dict[str, dict] = {}
    # Only the controller depends on the seed; the other methods are deterministic: one run each.
    jobs = [(v, seeds, {"epochs": cfg.epochs}) if v in CONTROLLER_VARIANTS else (v, [0], {}) for v in cfg.variants]
    jobs += [(b, [0], {}) for b in BASELINES]
    for variant, variant_seeds, options in jobs:
        variant_loo = loo_seeds[:1] if variant not in CONTROLLER_VARIANTS and loo_seeds else loo_seeds
        path = out / variant / "summary.json"
        summary = _cached(path, variant_seeds, variant_loo, options)
        if summary is None:
            summary, variant_curves = run_variant(variant, problem, variant_seeds, options=options, loo_seeds=variant_loo, workers=workers)
            write_summary(path.parent, summary, variant_curves)
        curves_path = path.parent / "curves.json"
        if curves_path.is_file():
            curves[variant] = json.loads(curves_path.read_text())
        summaries[variant] = summary
        print(f"[policy] {variant:<22} seen {summary['seen_mean']:6.2f}  unseen {summary['unseen_mean']:6.2f}"
              + (f"  loo {summary['loo']['mean']:6.2f}" if "loo" in summary else ""), flush=True)
    return {"problem": problem, "summaries": summaries, "curves": curves}


def comparison_table(summaries: dict[str, dict]) -> pd.DataFrame:
    """Methods and baselines: seen, unseen, leave-one-task-out over all tasks (mean and std over seeds)."""
    table = results_table(summaries.values())
    paper_dw = summaries.get("paper", {})
    if "unseen_distance_weighted_mean" in paper_dw:
        table.loc["paper (distance-weighted unseen)"] = {
            "seeds": len(paper_dw["seeds"]),
            "seen": float("nan"),
            "unseen": paper_dw["unseen_distance_weighted_mean"],
            "unseen_std": paper_dw["unseen_distance_weighted_std"],
        }
    table["seeds"] = table["seeds"].astype(int)
    return table


def predictions_table(summaries: dict[str, dict], seed: str = "0") -> pd.DataFrame:
    """Task x method table of predicted setting keys (first seed)."""
    data = {name: s["predictions"].get(seed, next(iter(s["predictions"].values()))) for name, s in summaries.items()}
    return pd.DataFrame(data)


def p_vary_table(summary: dict) -> pd.DataFrame:
    """Tasks x parameters P(vary), averaged over seeds."""
    frames = [pd.DataFrame(per_seed).T for per_seed in summary["p_vary"].values()]
    return sum(frames) / len(frames)
