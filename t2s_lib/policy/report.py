"""Tables of methods vs baselines (seen / unseen / leave-one-task-out over all tasks)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from ..files import atomic_path, write_json
from .baselines import BASELINES
from .problem import PolicyProblem
from .runner import run_variant


def summary_row(summary: dict[str, Any]) -> dict[str, Any]:
    row = {
        "method": summary["variant"],
        "seeds": len(summary["seeds"]),
        "seen": summary.get("seen_mean", np.nan),
        "seen_std": summary.get("seen_std", np.nan),
        "unseen": summary.get("unseen_mean", np.nan),
        "unseen_std": summary.get("unseen_std", np.nan),
    }
    if "loo" in summary:
        row["loo_all"] = summary["loo"]["mean"]
        row["loo_all_std"] = summary["loo"]["std"]
    else:
        row["loo_all"] = row["loo_all_std"] = np.nan
    return row


def predictions(summary: Mapping[str, Any], split: str = "all") -> set[str]:
    """Every setting a method predicted (any seed; ``loo``: its leave-one-out predictions)."""
    per = summary["loo"]["predictions"] if split == "loo" else summary["predictions"]
    return {k for by_task in per.values() for k in by_task.values() if k}


def best_fixed_key(summaries: Mapping[str, Mapping]) -> str:
    """The best fixed setting of the seen tasks (the ``best-fixed`` baseline's choice)."""
    return next(iter(summaries["best-fixed"]["predictions"]["0"].values()))


def method_label(method: str, summary: Mapping[str, Any], best_fixed: str) -> str:
    """The method's name, plus what it is at this scale when it picks one setting for every task."""
    picked = predictions(summary) | predictions(summary, "loo")
    if method in BASELINES or len(picked) != 1:  # baselines are named by what they are already
        return method
    (key,) = picked
    return f"{method} (= best fixed here)" if key == best_fixed else f"{method} (= fixed {key} here)"


def results_table(summaries: Iterable[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame([summary_row(s) for s in summaries]).set_index("method")


def baseline_table(problem: PolicyProblem, workers: int = 1) -> pd.DataFrame:
    """Every baseline on seen, unseen and leave-one-task-out over all tasks (deterministic)."""
    return results_table(run_variant(b, problem, [0], loo_seeds=[0], workers=workers)[0] for b in BASELINES).drop(
        columns=["seeds", "seen_std", "unseen_std", "loo_all_std"]
    )


def write_table(table: pd.DataFrame, out_dir: str | os.PathLike, name: str) -> list[Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path = write_json(out / f"{name}.json", {m: {k: (None if pd.isna(v) else float(v)) for k, v in row.items()} for m, row in table.iterrows()})
    md_path = out / f"{name}.md"
    with atomic_path(md_path) as tmp:
        tmp.write_text(table.to_markdown(floatfmt=".2f") + "\n")
    return [json_path, md_path]
