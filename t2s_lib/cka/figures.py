"""CKA figures and summaries (supplementary Figure 1 style)."""

from __future__ import annotations

from typing import Any, Mapping, Sequence


def plot_cka(result: Mapping[str, Any], title: str = "", matrix: Any = None, labels: Sequence[str] | None = None):
    """Four heat maps (stages 1-4) of a backbone x backbone CKA matrix, as in supplementary Figure 1."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    mats = result["mean"] if matrix is None else matrix
    labels = list(labels or result["names"])
    # long labels (setting names) would crush the panels: number the axes and print a key below
    short = [str(i + 1) for i in range(len(labels))] if max(map(len, labels)) > 8 else labels
    fig, axes = plt.subplots(1, len(mats), figsize=(3.0 * len(mats) + 1, 3.4), squeeze=False)
    for s, ax in enumerate(axes[0]):
        sns.heatmap(mats[s], vmin=0, vmax=1, cmap="magma", annot=len(labels) <= 6, fmt=".2f", square=True,
                    xticklabels=short, yticklabels=short if s == 0 else False, cbar=s == len(mats) - 1, ax=ax,
                    annot_kws={"fontsize": 7})
        ax.set_title(f"Stage {result['stages'][s]}")
    if short is not labels:
        fig.text(0.01, -0.02, "   ".join(f"{a} = {b}" for a, b in zip(short, labels)), fontsize=8, ha="left", va="top")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def mean_off_diagonal(result: Mapping[str, Any]) -> dict[str, float]:
    """Per stage, the mean CKA between different backbones (the off-diagonal entries)."""
    n = len(result["names"])
    if n < 2:
        return {}
    return {f"stage {s}": float((m.sum() - m.trace()) / (n * n - n)) for s, m in zip(result["stages"], result["mean"])}
