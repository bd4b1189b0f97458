"""What a reward table says, with its noise: signal to noise, best setting vs no pre-training, main
effects of the 8 parameters (with seed-noise error bars, next to the published table's), and the
figures of the rewards notebook.

Noise model: a cell's 5-NN differs between seeds (render seed and initialisation); the pooled
within-setting standard deviation over the replicated settings, ``sigma``, is the noise of one
table entry. Signal: the standard deviation across settings of the seed-averaged reward. A main
effect is estimated by least squares on the +-1 coded parameters (for the balanced fractional
factorials this is the difference of the means with the parameter on and off), and its standard
error is ``2 sigma sqrt([(X'X)^-1]_ii)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..errors import T2SError
from ..settings import PARAMETER_LABELS, PARAMETERS, resolve_setting
from .spec import SCRATCH

MEAN = "mean"


def load_rows(table: str | Path) -> pd.DataFrame:
    path = Path(table) / "rewards.csv"
    if not path.is_file():
        raise T2SError(f"{path} not found", "build the table first: t2s rewards build --out DIR")
    return pd.read_csv(path, dtype={"setting": str})


def knn_frame(rows: pd.DataFrame) -> pd.DataFrame:
    """5-NN rows with a ``mean`` pseudo-task (the task average per setting and seed) appended."""
    knn = rows[rows["metric"] == "knn_top1"][["setting", "seed", "task", "value"]]
    per_seed = knn.groupby(["setting", "seed"])["value"].mean().reset_index().assign(task=MEAN)
    return pd.concat([knn, per_seed], ignore_index=True)


def reward_matrix(rows: pd.DataFrame) -> pd.DataFrame:
    """Tasks x settings (seed-averaged 5-NN %), scratch excluded; the ``mean`` row is the task average."""
    knn = knn_frame(rows)
    knn = knn[knn["setting"] != SCRATCH]
    return knn.groupby(["task", "setting"])["value"].mean().unstack("setting")


def pooled_seed_sd(rows: pd.DataFrame) -> pd.DataFrame:
    """Per task (and ``mean``): the pooled within-setting standard deviation over settings with >= 2
    seeds (``sd``) and its degrees of freedom (``dof``)."""
    knn = knn_frame(rows)
    knn = knn[knn["setting"] != SCRATCH]
    out = {}
    for task, grp in knn.groupby("task"):
        ss, dof = 0.0, 0
        for _, g in grp.groupby("setting"):
            if len(g) > 1:
                ss += float(((g["value"] - g["value"].mean()) ** 2).sum())
                dof += len(g) - 1
        out[task] = {"sd": float(np.sqrt(ss / dof)) if dof else float("nan"), "dof": dof}
    return pd.DataFrame.from_dict(out, orient="index", columns=["sd", "dof"])


def seed_sd(rows: pd.DataFrame) -> pd.Series:
    """Pooled within-setting standard deviation per task (and ``mean``) over settings with >= 2 seeds."""
    return pooled_seed_sd(rows)["sd"].rename("seed_sd")


def signal_table(rows: pd.DataFrame, chance_acc: float | None = None) -> pd.DataFrame:
    """Per task and ``mean``: sd across settings, pooled seed sd, their ratio (snr), best setting, its margin
    over no pre-training, and the pre-training held-out accuracy over chance (a property of pre-training,
    the same in every row)."""
    matrix = reward_matrix(rows)
    noise = seed_sd(rows)
    knn = knn_frame(rows)
    scratch = knn[knn["setting"] == SCRATCH].groupby("task")["value"].mean()
    val = rows[rows["metric"] == "pretrain_val_acc"]
    over_chance = float(val["value"].mean() / chance_acc) if chance_acc and len(val) else float("nan")
    out = []
    for task in list(matrix.index.drop(MEAN, errors="ignore")) + [MEAN]:
        row = matrix.loc[task].dropna()
        spread = float(row.std(ddof=1)) if len(row) > 1 else float("nan")
        best = str(row.idxmax())
        out.append({"task": task, "settings": len(row), "spread_sd": spread, "seed_sd": noise.get(task, float("nan")),
                    "snr": spread / noise[task] if noise.get(task, 0) else float("nan"), "best_setting": best,
                    "best": float(row.max()), "scratch": float(scratch.get(task, float("nan"))),
                    "best_minus_scratch": float(row.max() - scratch.get(task, float("nan"))),
                    "pretrain_val_acc_over_chance": over_chance})
    return pd.DataFrame(out).set_index("task")


def design_matrix(keys: Sequence[str]) -> np.ndarray:
    """+-1 coding of the 8 parameters (columns in PARAMETERS order) for setting keys."""
    return np.asarray([[1 if getattr(resolve_setting(k), p) else -1 for p in PARAMETERS] for k in keys], dtype=float)


def identifies_main_effects(keys: Sequence[str]) -> bool:
    """Whether settings ``keys`` vary every parameter independently enough to estimate all 8 main effects."""
    x = np.column_stack([np.ones(len(keys)), design_matrix(keys)]) if keys else np.zeros((0, 9))
    return len(keys) >= 9 and np.linalg.matrix_rank(x) == 9


def main_effects(matrix: pd.DataFrame, noise: pd.Series | None = None) -> pd.DataFrame:
    """Long table (task, parameter, effect, se): ON minus OFF by least squares on +-1 coded parameters."""
    keys = list(matrix.columns)
    x = np.column_stack([np.ones(len(keys)), design_matrix(keys)])
    if np.linalg.matrix_rank(x) < x.shape[1]:
        raise T2SError(f"the {len(keys)} settings of the table do not identify all 8 main effects",
                       "use a design that varies every parameter independently (ff16, ff32, full)")
    cov = np.linalg.inv(x.T @ x)
    rows = []
    for task, y in matrix.iterrows():
        beta = cov @ x.T @ y.to_numpy(dtype=float)
        sigma = float(noise.get(task, np.nan)) if noise is not None else np.nan
        for i, p in enumerate(PARAMETERS):
            rows.append({"task": task, "parameter": p, "effect": 2 * beta[i + 1],
                         "se": 2 * sigma * float(np.sqrt(cov[i + 1, i + 1]))})
    return pd.DataFrame(rows)


def published_main_effects() -> pd.DataFrame:
    """Main effects of the published 20 x 256 table (reference 4.3): seen, unseen and all-task averages."""
    from ..published import SEEN_TASKS, UNSEEN_TASKS, published_reward_table

    table = published_reward_table()
    frame = pd.DataFrame(table.values, index=list(table.tasks), columns=list(table.keys))
    groups = {"published seen": list(SEEN_TASKS), "published unseen": list(UNSEEN_TASKS),
              "published all": list(SEEN_TASKS) + list(UNSEEN_TASKS)}
    avg = pd.DataFrame({name: frame.loc[tasks].mean() for name, tasks in groups.items()}).T
    return main_effects(avg)


def effect_agreement(ours: pd.DataFrame, published: pd.DataFrame, task: str = MEAN,
                     reference: str = "published all") -> dict[str, Any]:
    """Sign agreement and correlation between our average main effects and the published ones."""
    a = ours[ours["task"] == task].set_index("parameter")["effect"]
    b = published[published["task"] == reference].set_index("parameter")["effect"].reindex(a.index)
    se = ours[ours["task"] == task].set_index("parameter")["se"]
    clear = (a.abs() > 2 * se).to_numpy() if se.notna().all() else np.ones(len(a), bool)
    return {"parameters": len(a), "same_sign": int((np.sign(a) == np.sign(b)).sum()),
            "same_sign_where_clear": f"{int(((np.sign(a) == np.sign(b)) & clear).sum())}/{int(clear.sum())}",
            "pearson": float(np.corrcoef(a, b)[0, 1]), "spearman": float(a.rank().corr(b.rank()))}


# ----- figures -------------------------------------------------------------------------------------
def plot_heatmap(matrix: pd.DataFrame, labels: dict[str, str] | None = None):
    """Tasks x settings heat-map of seed-averaged 5-NN %, each task's row centred on its mean (so the
    differences between settings are visible across tasks of different difficulty), values annotated."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    order = matrix.loc[MEAN].sort_values(ascending=False).index if MEAN in matrix.index else matrix.columns
    m = matrix[order]
    centred = m.sub(m.mean(axis=1), axis=0)
    fig, ax = plt.subplots(figsize=(0.55 * m.shape[1] + 3, 0.45 * m.shape[0] + 2))
    sns.heatmap(centred, cmap="RdBu_r", center=0, annot=m.round(1), fmt="", annot_kws={"fontsize": 6},
                cbar_kws={"label": "5-NN % minus the task's mean over settings"}, ax=ax)
    ax.set_xticklabels([(labels or {}).get(k, k) for k in order], rotation=90, fontsize=7)
    ax.set_xlabel("setting (sorted by mean 5-NN)")
    ax.set_ylabel("")
    ax.set_title("Reward table: 5-NN % per task and setting (colour: relative to the task's mean)")
    fig.tight_layout()
    return fig


def plot_main_effects(ours: pd.DataFrame, published: pd.DataFrame, tasks: Sequence[str] | None = None):
    """Main effect of each parameter: ours per task (small markers) and on average (bars, +-2 SE from seed
    noise), next to the published table's average effects."""
    import matplotlib.pyplot as plt

    params = list(PARAMETERS)
    xs = np.arange(len(params))
    fig, ax = plt.subplots(figsize=(10, 4))
    avg = ours[ours["task"] == MEAN].set_index("parameter").reindex(params)
    ax.bar(xs - 0.2, avg["effect"], 0.38, yerr=2 * avg["se"], capsize=3, color="tab:blue",
           label="this study, mean over tasks (+-2 SE, seed noise)")
    pub = published[published["task"] == "published all"].set_index("parameter").reindex(params)
    ax.bar(xs + 0.2, pub["effect"], 0.38, color="tab:orange", label="published table (20 tasks, 256 settings)")
    for task in (tasks if tasks is not None else sorted(set(ours["task"]) - {MEAN})):
        t = ours[ours["task"] == task].set_index("parameter").reindex(params)
        ax.plot(xs - 0.2, t["effect"], "k.", ms=4, alpha=0.5)
    ax.plot([], [], "k.", ms=4, alpha=0.5, label="this study, single tasks")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xticks(xs, [PARAMETER_LABELS[p] for p in params], rotation=20)
    ax.set_ylabel("5-NN % with the parameter varying\nminus fixed")
    ax.legend(fontsize=8)
    ax.set_title("Main effects of the 8 simulation parameters")
    fig.tight_layout()
    return fig


def pretrain_curves(table: str | Path, spec) -> pd.DataFrame:
    """Per-epoch metrics (train loss, held-out accuracy) of every pre-trained cell."""
    from ..train.loop import read_metrics
    from .cells import cell_dir

    frames = []
    for cell in spec.cells():
        run = cell_dir(Path(table), cell) / "pretrain"
        if (run / "metrics.jsonl").is_file():
            frames.append(read_metrics(run).assign(setting=cell.setting, seed=cell.seed))
    if not frames:
        raise T2SError(f"no pre-training metrics in {table}", "build the table first")
    return pd.concat(frames, ignore_index=True)


def plot_pretrain_curves(curves: pd.DataFrame, chance: float | None = None):
    """Training loss and held-out accuracy per epoch, one line per cell."""
    import matplotlib.pyplot as plt

    df = curves[curves["epoch"] > 0]
    has_val = "val_acc" in df
    fig, axes = plt.subplots(1, 2 if has_val else 1, figsize=(11 if has_val else 6, 3.6), squeeze=False)
    for (setting, seed), g in df.groupby(["setting", "seed"]):
        axes[0, 0].plot(g["epoch"], g["train_loss"], lw=1, alpha=0.7)
        if has_val:
            axes[0, 1].plot(g["epoch"], g["val_acc"], lw=1, alpha=0.7)
    axes[0, 0].set(xlabel="epoch", ylabel="training loss", title=f"Pre-training loss ({df.groupby(['setting', 'seed']).ngroups} runs)")
    if has_val:
        if chance:
            axes[0, 1].axhline(chance, color="k", ls="--", lw=0.8, label=f"chance ({chance:.1f} %)")
            axes[0, 1].axhline(4 * chance, color="k", ls=":", lw=0.8, label="4x chance")
            axes[0, 1].legend(fontsize=8)
        axes[0, 1].set(xlabel="epoch", ylabel="held-out accuracy (%)", title="Accuracy on held-out rendered images")
    fig.tight_layout()
    return fig
