"""CKA figures and summaries (supplementary Figure 1 style)."""

from __future__ import annotations

from typing import Any, Mapping, Sequence


def plot_cka(result: Mapping[str, Any], title: str = "", matrix: Any = None, labels: Sequence[str] | None = None):
    """Four heat maps (stages 1-4) of a backbone x backbone CKA matrix, as in supplementary Figure 1."""
    import matplotlib.pyplot as plt

    mats = result["mean"] if matrix is None else matrix
    labels = list(labels or result["names"])
    # long labels (setting names) would crush the panels: number the axes and print a key below
    short = [str(i + 1) for i in range(len(labels))] if max(map(len, labels)) > 8 else labels
    fig, axes = plt.subplots(1, len(mats), figsize=(3.0 * len(mats) + 1, 3.4), squeeze=False)
    for s, ax in enumerate(axes[0]):
        _stage_heatmap(ax, mats[s], labels, short, first=s == 0, last=s == len(mats) - 1)
        ax.set_title(f"Stage {result['stages'][s]}")
    return _finish(fig, labels, short, title)


def _stage_heatmap(ax, mat, labels, short, *, first: bool, last: bool) -> None:
    """One stage's backbone x backbone CKA matrix (row labels on the first panel, colour bar on the last)."""
    import seaborn as sns

    sns.heatmap(mat, vmin=0, vmax=1, cmap="magma", annot=len(labels) <= 6, fmt=".2f", square=True,
                xticklabels=short, yticklabels=short if first else False, cbar=last, ax=ax, annot_kws={"fontsize": 7})


def _finish(fig, labels, short, title):
    """Legend of abbreviated backbone names, title, layout."""
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


def _off_diagonal_per_task(result: Mapping[str, Any]):
    """[tasks, stages] mean CKA between different backbones, per task."""
    import numpy as np

    n = len(result["names"])
    return np.asarray([[(m.sum() - m.trace()) / (n * n - n) for m in result["per_task"][t]] for t in result["tasks"]])


def cka_finding(before: Mapping[str, Any], before_ft: Mapping[str, Any] | None = None,
                after: Mapping[str, Any] | None = None):
    """Supplementary Figure 1's findings: backbones agree at early stages and differ later (CKA at the
    first stage minus the last > 0); after fine-tuning they are more similar at the last stage
    (after minus before > 0). Each difference is a mean over tasks with a 95 % Student-t interval
    over tasks (the fine-tuned tasks are few); the ImageNet comparison is not testable offline. Returns (verdict, sentence, interval
    of the first difference)."""
    import numpy as np

    from ..verdicts import combine, t_interval_over_tasks, verdict

    b = mean_off_diagonal(before)
    if not b:
        return "not testable here", "one backbone only", None
    stages = list(b)
    per = _off_diagonal_per_task(before)
    falls = t_interval_over_tasks(per[:, 0] - per[:, -1], "one backbone per setting")
    verdicts = [verdict(falls, +1)]
    text = (f"mean CKA between backbones {b[stages[0]]:.2f} at {stages[0]} -> {b[stages[-1]]:.2f} at {stages[-1]} "
            f"(difference {falls.text()}, 95 % {falls.method})")
    if before_ft is not None and after is not None:
        bf, af = _off_diagonal_per_task(before_ft), _off_diagonal_per_task(after)
        closer = t_interval_over_tasks(af[:, -1] - bf[:, -1], "fine-tuned tasks")
        verdicts.append(verdict(closer, +1))
        text += (f"; at {stages[-1]}, after minus before fine-tuning {closer.text()} (95 % {closer.method}, "
                 f"{len(bf)} task(s))")
    text += "; Task2Sim vs ImageNet features: not testable (no ImageNet weights offline)"
    return combine(verdicts), text, falls


def group_mean(result: Mapping[str, Any], tasks: Sequence[str]) -> Any:
    """The stage matrices averaged over a subset of the result's tasks (e.g. the seen ones)."""
    import numpy as np

    chosen = [t for t in result["tasks"] if t in set(tasks)]
    if not chosen:
        return None
    return np.mean(np.stack([result["per_task"][t] for t in chosen]), axis=0)


def plot_cka_groups(result: Mapping[str, Any], groups: Mapping[str, Sequence[str]], title: str = ""):
    """One row of stage heat maps per task group (e.g. seen / unseen), as supplementary Figure 1."""
    import matplotlib.pyplot as plt

    rows = [(label, group_mean(result, tasks), [t for t in result["tasks"] if t in set(tasks)])
            for label, tasks in groups.items()]
    rows = [r for r in rows if r[1] is not None]
    labels = list(result["names"])
    short = [str(i + 1) for i in range(len(labels))] if max(map(len, labels)) > 8 else labels
    n_stages = len(result["stages"])
    fig, axes = plt.subplots(len(rows), n_stages, figsize=(3.0 * n_stages + 1, 3.2 * len(rows)), squeeze=False)
    for r, (label, mats, tasks) in enumerate(rows):
        for s in range(n_stages):
            ax = axes[r, s]
            _stage_heatmap(ax, mats[s], labels, short, first=s == 0, last=s == n_stages - 1)
            ax.set_title(f"{label} ({len(tasks)} tasks), stage {result['stages'][s]}", fontsize=9)
    return _finish(fig, labels, short, title)
