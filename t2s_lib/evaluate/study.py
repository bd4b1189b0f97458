"""Notebook 05 logic: 5-NN (the reward) of every pre-trained backbone on the profile's tasks, the
reward table in the published ``reward_db`` format, linear probes and fine-tuning."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping

from ..profiles import section
from .run import EvalOptions, evaluate_backbone


def results_path(prof: Mapping[str, Any]) -> Path:
    return Path(prof["run_dir"]) / "evaluate" / "results.csv"


def finetuned_path(prof: Mapping[str, Any], backbone: str, task: str) -> Path:
    return Path(prof["run_dir"]) / "evaluate" / "finetuned" / f"{backbone}__{task}.pt"


def options_for(prof: Mapping[str, Any], protocol: str, **override: Any) -> EvalOptions:
    """EvalOptions from the profile's ``evaluate:`` section (+ its per-protocol sub-section)."""
    sec = section(prof, "evaluate")
    fields = {f.name for f in dataclasses.fields(EvalOptions)}
    values = {k: v for k, v in {**sec, **dict(sec.get(protocol) or {})}.items() if k in fields}
    values.setdefault("device", prof.get("device", "auto"))
    values.setdefault("seed", int(prof.get("seed", 0)))
    values.update(protocol=protocol, **override)
    return EvalOptions(**values)


def protocol_tasks(prof: Mapping[str, Any], protocol: str) -> list[str]:
    sec = section(prof, "evaluate")
    sub = dict(sec.get(protocol) or {})
    return list(sub["tasks"] if "tasks" in sub else sec.get("tasks", []))


def run_protocol(prof: Mapping[str, Any], backbones: Mapping[str, Any], protocol: str, *, progress: bool = True):
    """Evaluate every backbone on the protocol's tasks (rows upserted into results.csv); returns the rows."""
    from tqdm.auto import tqdm

    rows = []
    jobs = [(name, spec, task) for task in protocol_tasks(prof, protocol) for name, spec in backbones.items()]
    for name, spec, task in tqdm(jobs, desc=protocol, disable=not progress):
        extra = {}
        if protocol == "finetune" and not str(spec).startswith("scratch:"):
            extra["save_model"] = str(finetuned_path(prof, name, task))
        rows.append(evaluate_backbone(spec, task, options_for(prof, protocol, **extra), name=name,
                                      results=results_path(prof)))
    return rows


def study_reward_table(prof: Mapping[str, Any], keys: list[str]) -> dict[str, dict[str, float]]:
    """``{task: {setting_key: 5-NN %}}`` for the given setting keys, written to evaluate/reward_table.json."""
    from .results import options_key, read_results, reward_table, write_reward_table

    table = read_results(results_path(prof))
    opts = options_for(prof, "knn")
    # the same options evaluate_backbone records for k-NN with this profile
    wanted = {"img_size": opts.img_size, "k": opts.k, "T": opts.temperature,
              "feature_mode": "train" if opts.train_mode else "eval"}
    if opts.max_train:
        wanted["max_train"] = opts.max_train
    if opts.max_test:
        wanted["max_test"] = opts.max_test
    table = table[table["backbone"].isin(keys) & table["task"].isin(protocol_tasks(prof, "knn"))]
    rewards = reward_table(table, options=options_key(wanted))
    write_reward_table(Path(prof["run_dir"]) / "evaluate" / "reward_table.json", rewards)
    return rewards


def plot_accuracy_bars(rows, title: str):
    """Grouped bars: accuracy per task, one bar per backbone (the paper's per-task figure style)."""
    import matplotlib.pyplot as plt
    import pandas as pd
    import seaborn as sns

    df = pd.DataFrame(rows)[["backbone", "task", "value"]]
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * df["task"].nunique() + 2), 3.8))
    sns.barplot(df, x="task", y="value", hue="backbone", ax=ax)
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_xlabel("")
    ax.set_title(title)
    ax.legend(fontsize=7, title="pre-training set", title_fontsize=8, bbox_to_anchor=(1.01, 1), loc="upper left")
    fig.tight_layout()
    return fig
