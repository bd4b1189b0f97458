"""Figures of the policy stage."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..settings import PARAMETER_LABELS


def plot_p_vary_heatmap(p_vary: pd.DataFrame, title: str, seen: tuple[str, ...] = ()):
    """Tasks x parameters heat-map of P(vary) (the poster's soft-output figure)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    frame = p_vary.rename(columns=PARAMETER_LABELS)
    frame.index = [f"{t} *" if t in seen else t for t in frame.index]
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(frame) + 1.5))
    sns.heatmap(frame, vmin=0, vmax=1, cmap="viridis", annot=True, fmt=".2f", annot_kws={"size": 7}, ax=ax,
                cbar_kws={"label": "P(vary)"})
    ax.set_title(title + ("  (* seen task)" if seen else ""))
    ax.set_xlabel("")
    fig.tight_layout()
    return fig


def plot_learning_curves(curves: dict[str, dict[str, dict[str, list[float]]]], references: dict[str, tuple[float, float]] | None = None):
    """Mean greedy reward per epoch (mean +- sd over seeds), seen and unseen, per variant."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharex=True)
    for variant, per_seed in curves.items():
        for ax, split in zip(axes, ("seen", "unseen")):
            runs = np.array([c[split] for c in per_seed.values() if split in c])
            if runs.size == 0:
                continue
            mean, sd = runs.mean(0), runs.std(0)
            epochs = np.arange(1, runs.shape[1] + 1)
            ax.plot(epochs, mean, label=f"{variant} ({len(runs)} seeds)")
            ax.fill_between(epochs, mean - sd, mean + sd, alpha=0.2)
    for ax, split in zip(axes, ("seen", "unseen")):
        for name, (seen_value, unseen_value) in (references or {}).items():
            value = seen_value if split == "seen" else unseen_value
            ax.axhline(value, ls="--", lw=1, color="gray")
            ax.text(1, value, f" {name}", va="bottom", fontsize=7, color="gray")
        ax.set_title(f"{split} tasks")
        ax.set_xlabel("epoch")
        ax.set_ylabel("mean 5-NN accuracy of greedy setting (%)")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_k_curve(table: pd.DataFrame, baselines: dict[str, tuple[float, float, float]] | None = None, title: str = "measured selection"):
    """Mean 5-NN accuracy of measured selection vs the budget K (``k_curve_table``): seen, unseen
    and leave-one-task-out over all tasks, with other methods as horizontal lines
    (``baselines``: name -> (seen, unseen, loo_all)); one legend, right of the panels."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import ScalarFormatter

    panels = [(c, label) for c, label in (("seen", "seen tasks"), ("unseen", "unseen tasks"), ("loo_all", "leave-one-task-out (all)"))
              if c in table.columns]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.9 * len(panels) + 1.8, 3.6), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (column, label) in zip(axes[0], panels):
        ax.plot(table.index, table[column], marker="o", ms=3, color="black", label=title)
        for i, (name, values) in enumerate((baselines or {}).items()):
            value = values[("seen", "unseen", "loo_all").index(column)]
            if value is not None and np.isfinite(value):
                ax.axhline(value, ls="--", lw=1, color=colours[i % len(colours)], label=name)
        ax.set_xscale("log", base=2)
        ax.set_xticks([k for k in (1, 2, 4, 8, 16, 32, 64, 128, 256) if table.index.min() <= k <= table.index.max()])
        ax.get_xaxis().set_major_formatter(ScalarFormatter())
        ax.set_title(label)
        ax.set_xlabel("settings measured per task (K)")
        ax.set_ylabel("mean 5-NN accuracy (%)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center right", fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0, 1 - 1.7 / fig.get_figwidth(), 1))
    return fig
