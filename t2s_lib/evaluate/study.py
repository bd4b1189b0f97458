"""Notebook 05 logic: 5-NN (the reward) of every pre-trained backbone on the profile's tasks, the
reward table in the published ``reward_db`` format, linear probes and fine-tuning."""

from __future__ import annotations

from typing import Any, Mapping

from ..profiles import Profile
from .run import EvalOptions, evaluate_backbone


def options_for(prof: Profile, protocol: str, **override: Any) -> EvalOptions:
    """EvalOptions from the profile's ``evaluate:`` section (+ its per-protocol block)."""
    return prof.evaluate.options(protocol, device=prof.device, seed=prof.seed, **override)


def protocol_tasks(prof: Profile, protocol: str) -> list[str]:
    return prof.evaluate.protocol_tasks(protocol)


def run_protocol(prof: Profile, backbones: Mapping[str, Any], protocol: str, *, progress: bool = True):
    """Evaluate every backbone on the protocol's tasks (rows upserted into results.csv); returns the rows."""
    from tqdm.auto import tqdm

    layout = prof.layout
    rows = []
    jobs = [(name, spec, task) for task in protocol_tasks(prof, protocol) for name, spec in backbones.items()]
    for name, spec, task in tqdm(jobs, desc=protocol, disable=not progress):
        extra = {}
        if protocol == "finetune" and not str(spec).startswith("scratch:"):
            extra["save_model"] = str(layout.finetuned(name, task))
        rows.append(evaluate_backbone(spec, task, options_for(prof, protocol, **extra), name=name,
                                      results=layout.results_csv))
    return rows


def study_reward_table(prof: Profile, keys: list[str]) -> dict[str, dict[str, float]]:
    """``{task: {setting_key: 5-NN %}}`` for the given setting keys, written to evaluate/reward_table.json."""
    from .results import options_key, read_results, reward_table, write_reward_table
    from .run import recorded_options

    layout = prof.layout
    table = read_results(layout.results_csv)
    table = table[table["backbone"].isin(keys) & table["task"].isin(protocol_tasks(prof, "knn"))]
    rewards = reward_table(table, options=options_key(recorded_options(options_for(prof, "knn"))))
    write_reward_table(layout.reward_table, rewards)
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
