"""The supplementary's scaling studies (Figures 2-7, 9-11) at the profile's scale: how the compared
pre-training methods do as the number of classes, object models per class and images grows, and
with backbones of different sizes; evaluated by linear probing (the supplementary's protocol) and
5-NN, averaged over the seen and the unseen tasks, with seed-noise bands; every finding carries a
Student-t interval over the split's tasks (per-task quantities, seeds averaged first).

Methods (each a setting per task):

* ``task2sim``: the setting a Task2Vec policy predicts for the task (``policy.task2sim``):
  ``paper-256``, the paper's controller trained on the 256-setting table (notebook 09, first seed),
  or a variant of notebook 05's small study on the live table (e.g. ``reward-kernel``);
* ``measured``: measured selection's setting for the task (``scaling.measured_policy``, e.g.
  ``measured-k16-256``: notebook 09's K = 16 picks by validation-split 5-NN), at the base point and
  the points of ``scaling.measured_points`` only (:func:`methods_at`);
* ``domain_randomization``: everything varies;
* ``random``: ``random_draws`` settings drawn uniformly from the 256 (seeded), shared by all tasks;
  a task's score is the mean over the draws (the same expectation as independent per-task draws);
* ``scratch``: no pre-training (the randomly initialised backbone).

Each axis point is one reward table (:mod:`t2s_lib.rewards`, the same resumable cells) over the
union of the settings the methods need, with the point's change to the image set or architecture;
the profile's own scale is the shared ``base`` point. ImageNet pre-training (the paper's
ImageNet*) is not available offline and is left out of every figure.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from .errors import T2SError
from .paths import LIVE256_SUFFIX
from .profiles import Profile
from .settings import PRESETS, SimSetting
from .verdicts import Interval, combine, equivalence_verdict, t_interval_over_tasks, verdict

AXES = ("classes", "models_per_class", "images", "arch")
AXIS_LABELS = {"classes": "pre-training classes", "models_per_class": "object models per class",
               "images": "pre-training images", "arch": "backbone"}
METHOD_LABELS = {"task2sim": "Task2Sim", "measured": "measured selection",
                 "domain_randomization": "domain randomisation", "random": "random settings",
                 "scratch": "no pre-training"}


def random_settings(n: int, seed: int = 0) -> list[str]:
    """``n`` distinct settings drawn uniformly from the 256 (seeded)."""
    rng = np.random.default_rng([seed, 256])
    return [SimSetting.from_index(int(i)).key for i in rng.choice(256, size=n, replace=False)]


def _policy_summary(prof: Profile, method: str, variant: str) -> Path:
    """Where a policy method's picks are (:meth:`t2s_lib.paths.StudyLayout.policy_summary`)."""
    path = prof.layout.policy_summary(variant)
    if not path.is_file():
        fix = ("run notebook 09 (make table256) first" if variant.endswith(LIVE256_SUFFIX)
               else "run notebook 05 (the policy on this study's reward table) first")
        raise T2SError(f"{path} not found: the {method} settings come from the live table's policy ({variant})", fix)
    return path


def method_settings(prof: Profile) -> dict[str, dict[str, list[str]]]:
    """``{method: {task: [setting keys]}}`` (a list: random has several draws; scratch is ``["scratch"]``)."""
    from .files import read_json
    from .rewards.spec import SCRATCH

    sec = prof.scaling
    tasks = scaling_tasks(prof)
    out: dict[str, dict[str, list[str]]] = {}
    for method in sec.methods:
        if method in ("task2sim", "measured"):
            variant = prof.policy.task2sim if method == "task2sim" else sec.measured_policy
            path = _policy_summary(prof, method, variant)
            predictions = read_json(path)["predictions"]["0"]
            missing = [t for t in tasks if t not in predictions]
            if missing:
                raise T2SError(f"{path}: no prediction for task(s) {missing}", "scaling.tasks must be tasks of the reward table")
            out[method] = {t: [predictions[t]] for t in tasks}
        elif method == "domain_randomization":
            out[method] = {t: [PRESETS["domain_randomization"].key] for t in tasks}
        elif method == "random":
            draws = random_settings(sec.random_draws, prof.seed)
            out[method] = {t: list(draws) for t in tasks}
        else:
            out[method] = {t: [SCRATCH] for t in tasks}
    return out


def methods_at(prof: Profile, axis: str | None, value: Any) -> list[str]:
    """The methods measured at a point (``axis`` None: the base): all of them, except measured
    selection outside the base and its ``scaling.measured_points``."""
    sec = prof.scaling
    chosen = sec.measured_points
    if axis is None or chosen is None:
        return list(sec.methods)
    return [m for m in sec.methods if m != "measured" or value in getattr(chosen, axis)]


def scaling_tasks(prof: Profile) -> list[str]:
    from .rewards.spec import spec_from_profile

    return list(prof.scaling.tasks if prof.scaling.tasks is not None else spec_from_profile(prof).tasks)


def point_profile(prof: Profile, axis: str, value: Any) -> Profile:
    """The profile with one scaling axis set to ``value``."""
    if axis == "arch":
        recipe = {**prof.pretrain.recipe, "arch": value}
        return dataclasses.replace(prof, pretrain=dataclasses.replace(prof.pretrain, recipe=recipe))
    if axis not in AXES:
        raise T2SError(f"unknown scaling axis {axis!r}", f"use one of: {', '.join(AXES)}")
    render = dataclasses.replace(prof.pretrain.render, **{axis: int(value)})
    pretrain = dataclasses.replace(prof.pretrain, render=render)
    if axis == "models_per_class" and pretrain.recipe.get("val_by") == "model":
        # holding out whole models would leave 1 of 2 models per class in training: hold out images
        # instead (the same 15 % of the images), so the backbone trains on every model of the point
        pretrain = dataclasses.replace(pretrain, recipe={**pretrain.recipe, "val_by": "image"})
    return dataclasses.replace(prof, pretrain=pretrain)


def base_value(prof: Profile, axis: str) -> Any:
    """The profile's own value of an axis (its point is shared by every axis)."""
    if axis == "arch":
        return prof.pretrain.config().arch
    if axis == "models_per_class":
        return prof.pretrain.render.models_per_class or mean_models_per_class(prof)
    return getattr(prof.pretrain.render, axis)


def mean_models_per_class(prof: Profile) -> float:
    """Mean number of 3D models per class of the profile's base set when it uses every model: where
    the base point sits on the models-per-class axis."""
    from .assets.library import load_library, select_classes

    render = prof.pretrain.render
    lib = load_library(prof.render.library)
    names = select_classes(lib, render.classes or len(lib.classes), render.class_rule)
    return round(float(np.mean([len(lib.classes[n]) for n in names])), 1)


def points(prof: Profile) -> list[tuple[str, Any, str]]:
    """``(axis, value, table name)`` of every point; the profile's own values are the ``base`` table."""
    out = []
    for axis in AXES:
        # (a base with every model is never one of the axis values: no need to read the library)
        base = prof.pretrain.render.models_per_class if axis == "models_per_class" else base_value(prof, axis)
        for value in getattr(prof.scaling.axes, axis):
            same = value == base
            out.append((axis, value, "base" if same else f"{axis}-{value}"))
    return out


def point_spec(prof: Profile, axis: str | None, value: Any):
    """The reward spec of one point: the methods' settings, the scaling seeds, 5-NN and linear probing."""
    from .rewards.spec import SCRATCH, spec_from_profile

    here = methods_at(prof, axis, value)
    settings = sorted({k for m, per_task in method_settings(prof).items() if m in here
                       for keys in per_task.values() for k in keys} - {SCRATCH})
    p = prof if axis is None else point_profile(prof, axis, value)
    spec = spec_from_profile(p, design="explicit", settings=settings, tasks=scaling_tasks(prof), seeds=list(prof.scaling.seeds),
                             replicate_settings=[], replicate_seeds=[], anchors=False)
    lin = prof.evaluate.options("linear")
    linear = {k: getattr(lin, k) for k in ("img_size", "epochs", "hparams", "lr", "batch_size", "weight_decay",
                                           "cache_features", "max_train", "max_test", "feature_batch", "workers")}
    scratch = list(prof.scaling.seeds) if "scratch" in prof.scaling.methods else []
    return dataclasses.replace(spec, linear=linear, validation=False, scratch_seeds=scratch)


def build_scaling(prof: Profile, *, log: Callable[[str], None] = print) -> dict[str, Path]:
    """Build (or finish, or reuse) every point's table; returns ``{table name: folder}``."""
    from .rewards.build import adopt_cells, adopt_scratch, build_table

    tables: dict[str, Path] = {}
    todo = [("base", None, None)] + [(name, axis, value) for axis, value, name in points(prof) if name != "base"]
    for name, axis, value in todo:
        if name in tables:
            continue
        folder = prof.layout.scaling_table(name)
        spec = point_spec(prof, axis, value)
        # the base point's backbones are the study's own cells (notebook 03's table, the 256-setting
        # table and its picks on fresh seeds): the same experiment, trained once
        for source in (prof.layout.rewards, prof.layout.rewards256, prof.layout.rewards256_picks):
            adopt_cells(folder, spec, source, log=log)
        if name != "base":  # the untrained backbone's numbers do not depend on the point's images
            adopt_scratch(folder, spec, prof.layout.scaling_table("base"), log=log)
        result = build_table(folder, spec, executor=prof.rewards.executor,
                             max_parallel=prof.rewards.max_parallel, render_workers=prof.render.workers,
                             slurm=prof.rewards.slurm, log=log)
        if result.failed:
            raise T2SError(f"scaling point {name}: {len(result.failed)} cell(s) failed: {result.failed}",
                           "fix the cause and rerun (completed cells are kept)")
        tables[name] = folder
    return tables


def scaling_frame(prof: Profile) -> pd.DataFrame:
    """Long table: axis, value, method, seed, task, split (seen/unseen), protocol, value (%)."""
    from .rewards.analysis import load_rows
    from .rewards.spec import SCRATCH

    methods = method_settings(prof)
    seen, unseen = set(prof.tasks.seen), set(prof.tasks.unseen)
    protocols = {"knn_top1": "5-NN", "linear_top1": "linear probe"}
    records = []
    entries = [("base", None, "base")] + [(axis, value, name) for axis, value, name in points(prof)]
    cache: dict[str, pd.DataFrame] = {}
    for axis, value, name in entries:
        if name not in cache:
            rows = load_rows(prof.layout.scaling_table(name))
            cache[name] = rows[rows["metric"].isin(list(protocols))]
        rows = cache[name]
        here = methods_at(prof, None if name == "base" else axis, value)
        for method, per_task in methods.items():
            if method not in here:
                continue
            for task, keys in per_task.items():
                sel = rows[(rows["task"] == task) & rows["setting"].isin([SCRATCH if k == SCRATCH else k for k in keys])]
                for (seed, metric), grp in sel.groupby(["seed", "metric"]):
                    records.append({"axis": axis, "value": value, "method": method, "seed": int(seed), "task": task,
                                    "split": "seen" if task in seen else "unseen" if task in unseen else "other",
                                    "protocol": protocols[metric], "accuracy": float(grp["value"].mean())})
    return pd.DataFrame(records)


def split_means(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean over the seen / unseen tasks per (axis, value, method, protocol), with the sd over seeds."""
    per_seed = frame.groupby(["axis", "value", "method", "protocol", "split", "seed"], dropna=False)["accuracy"].mean()
    grouped = per_seed.groupby(["axis", "value", "method", "protocol", "split"], dropna=False)
    return pd.DataFrame({"mean": grouped.mean(), "sd": grouped.std(ddof=1), "seeds": grouped.size()}).reset_index()


def _axis_order(values: list) -> list:
    """Numeric axes ascending; backbones by their forward cost (smallest first)."""
    try:
        return sorted(values, key=float)
    except (TypeError, ValueError):
        from .plan import throughput_table

        flops = throughput_table()["forward_gflops_224"]
        return sorted(values, key=lambda v: float(flops.get(str(v), float("inf"))))


def plot_axis(means: pd.DataFrame, axis: str, protocol: str, base: Any):
    """Two panels (seen, unseen): mean accuracy vs the axis, one line per method, +-1 sd over seeds."""
    import matplotlib.pyplot as plt

    data = means[(means["protocol"] == protocol) & ((means["axis"] == axis) | (means["axis"] == "base"))].copy()
    data.loc[data["axis"] == "base", "value"] = base
    data = data.drop_duplicates(["value", "method", "split"], keep="first")
    splits = [s for s in ("seen", "unseen") if s in set(data["split"])]
    fig, axes = plt.subplots(1, len(splits), figsize=(5.2 * len(splits), 3.6), squeeze=False)
    for ax, split in zip(axes[0], splits):
        for method, grp in data[data["split"] == split].groupby("method"):
            order = _axis_order(list(grp["value"]))
            g = grp.set_index("value").loc[order]
            xs = np.arange(len(order)) if axis == "arch" else np.asarray(order, dtype=float)
            ax.plot(xs, g["mean"], marker="o", label=METHOD_LABELS.get(method, method))
            sd = g["sd"].fillna(0).to_numpy()
            ax.fill_between(xs, g["mean"] - sd, g["mean"] + sd, alpha=0.15)
        if axis == "arch":
            ax.set_xticks(np.arange(len(order)), order)
        else:
            ax.set_xscale("log")
            # a base that uses every model is a float (the mean count): label it "all"
            labels = [f"all ({v})" if axis == "models_per_class" and v == base and isinstance(base, float)
                      else str(v) for v in order]
            ax.set_xticks(np.asarray(order, dtype=float), labels)
            ax.minorticks_off()
        ax.set_xlabel(AXIS_LABELS[axis])
        ax.set_ylabel(f"mean {protocol} accuracy (%)")
        ax.set_title(f"{split} tasks")
    axes[0][-1].legend(fontsize=8)
    fig.suptitle(f"{protocol}: {AXIS_LABELS[axis]} (bands: +-1 sd over seeds; ImageNet* not available offline)", fontsize=10)
    fig.tight_layout()
    return fig


def plot_per_task(frame: pd.DataFrame, protocol: str = "linear probe"):
    """Supplementary Figure 4: accuracy per task for each method at the base point (mean over seeds)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    base = frame[(frame["axis"] == "base") & (frame["protocol"] == protocol)]
    per = base.groupby(["task", "split", "method"])["accuracy"].mean().reset_index()
    per["method"] = per["method"].map(lambda m: METHOD_LABELS.get(m, m))
    per["task"] = per["task"] + per["split"].map({"seen": " (seen)", "unseen": " (unseen)", "other": ""})
    fig, ax = plt.subplots(figsize=(max(7, 0.9 * per["task"].nunique() + 3), 3.8))
    sns.barplot(per, x="task", y="accuracy", hue="method", ax=ax)
    ax.set_ylabel(f"{protocol} accuracy (%)")
    ax.set_xlabel("")
    ax.tick_params(axis="x", rotation=45)
    ax.legend(fontsize=7, bbox_to_anchor=(1.01, 1), loc="upper left")
    ax.set_title(f"Per task, {protocol}, at the profile's pre-training scale")
    fig.tight_layout()
    return fig


def slope(means: pd.DataFrame, axis: str, method: str, protocol: str, split: str, base: Any) -> float:
    """Accuracy change per doubling of the axis (least squares on log2 of the axis values)."""
    series = _at(means, axis, method, protocol, split, base)
    if len(series) < 2:
        return float("nan")
    x = np.log2(np.asarray(series.index, dtype=float))
    return float(np.polyfit(x, series.to_numpy(), 1)[0])


# ----- the supplementary's findings, measured ------------------------------------------------------
def _at(means: pd.DataFrame, axis: str, method: str, protocol: str, split: str, base: Any) -> pd.Series:
    """One method's mean accuracy along an axis, the base point included, in axis order."""
    d = means[(means["protocol"] == protocol) & (means["method"] == method) & (means["split"] == split)
              & ((means["axis"] == axis) | (means["axis"] == "base"))].copy()
    d.loc[d["axis"] == "base", "value"] = base
    d = d.drop_duplicates("value").set_index("value")
    return d["mean"].loc[_axis_order(list(d.index))]


#: non-inferiority margin of Figure 4 ("competitive or better"), points of accuracy
COMPETITIVE_MARGIN = 1.0
#: equivalence margin of Figure 5 / 9 ("similar rates"), points per doubling
SIMILAR_RATE_MARGIN = 0.5


def _grid(frame: pd.DataFrame, axis: str, method: str, protocol: str, split: str, base: Any) -> tuple[list, np.ndarray]:
    """(axis values in order, array [seeds, tasks, values]) of one method's accuracy along an axis,
    the base point included (NaN where a seed or task is missing)."""
    d = frame[(frame["protocol"] == protocol) & (frame["method"] == method) & (frame["split"] == split)
              & ((frame["axis"] == axis) | (frame["axis"] == "base"))].copy()
    d.loc[d["axis"] == "base", "value"] = base
    values = _axis_order(list(dict.fromkeys(d["value"])))
    seeds, tasks = sorted(set(d["seed"])), sorted(set(d["task"]))
    cube = np.full((len(seeds), len(tasks), len(values)), np.nan)
    for r in d.itertuples():
        cube[seeds.index(r.seed), tasks.index(r.task), values.index(r.value)] = r.accuracy
    return values, cube


def _per_task(cube: np.ndarray) -> np.ndarray:
    """[tasks, values]: each task's curve averaged over its seeds (the unit of the t intervals)."""
    return np.nanmean(cube, axis=0)


def _slopes(curves: np.ndarray, values: list) -> np.ndarray:
    """Points per doubling of each task's curve (least squares on log2 of the axis values)."""
    x = np.log2(np.asarray(values, dtype=float))
    return np.asarray([np.polyfit(x, c, 1)[0] if np.isfinite(c).all() else np.nan for c in curves])


def _pair(frame, axis, a, b, protocol, split, base) -> tuple[list, np.ndarray, int]:
    """Values, the stacked [2, tasks, values] seed-mean curves of two methods (common seeds and tasks)
    and the number of seeds."""
    va, ca = _grid(frame, axis, a, protocol, split, base)
    vb, cb = _grid(frame, axis, b, protocol, split, base)
    if va != vb or ca.shape != cb.shape:
        raise T2SError(f"scaling {axis}: methods {a} and {b} were measured at different points or seeds",
                       "rerun notebook 07 so every method has every point, seed and task")
    return va, np.stack([_per_task(ca), _per_task(cb)]), ca.shape[0]


def _over_tasks(per_task: np.ndarray, seeds: int) -> Interval:
    """Mean over tasks with its Student-t interval (few tasks per split: a bootstrap would be too narrow)."""
    return t_interval_over_tasks(per_task, f"{seeds} seed(s) averaged per task")


def axis_finding(frame: pd.DataFrame, axis: str, split: str, base: Any,
                 protocol: str = "linear probe") -> tuple[str, str, Interval]:
    """(verdict, sentence, interval) for the paper's finding on one axis and split (Figures 2/3,
    5-7, 9-11), from the per-seed, per-task accuracies of :func:`scaling_frame`. Each task's curve is
    averaged over its seeds; every quantity (a slope, a difference) is computed per task and carries
    a 95 % Student-t interval over the split's tasks (:func:`t2s_lib.verdicts.t_interval_over_tasks`:
    3 tasks give 2 degrees of freedom, so only large effects resolve). A finding of several quantities
    holds only when each does (:func:`t2s_lib.verdicts.combine`). The interval returned is the
    finding's first (main) quantity."""
    t2s, dr = "task2sim", "domain_randomization"
    values, both, seeds = _pair(frame, axis, t2s, dr, protocol, split, base)
    n = f"{both.shape[1]} tasks x {seeds} seeds"
    if axis == "arch":
        diffs = [_over_tasks(both[0, :, i] - both[1, :, i], seeds) for i in range(len(values))]
        gains = [_over_tasks(both[m, :, -1] - both[m, :, 0], seeds) for m in (0, 1)]
        parts = [verdict(iv, +1) for iv in diffs + gains]
        main = diffs[0]
        text = (f"{split}, {protocol}: Task2Sim minus DR per backbone "
                + ", ".join(f"{v}: {iv.text()}" for v, iv in zip(values, diffs))
                + f"; largest minus smallest backbone: Task2Sim {gains[0].text()}, DR {gains[1].text()}")
        return combine(parts), text + f" ({n}; 95 % {main.method})", main
    slope_t, slope_d = _slopes(both[0], values), _slopes(both[1], values)
    iv_t, iv_d, faster = _over_tasks(slope_t, seeds), _over_tasks(slope_d, seeds), _over_tasks(slope_d - slope_t, seeds)
    head = (f"{split}, {protocol}: points per doubling of {AXIS_LABELS[axis]}: {METHOD_LABELS[t2s]} {iv_t.text()}, "
            f"{METHOD_LABELS[dr]} {iv_d.text()}; DR minus Task2Sim {faster.text()}")
    if axis == "classes":  # all methods improve at similar rates
        similar = equivalence_verdict(faster, SIMILAR_RATE_MARGIN)
        return (combine([verdict(iv_t, +1), verdict(iv_d, +1), similar]),
                head + f" (similar: within +-{SIMILAR_RATE_MARGIN}; {n}; 95 % {iv_t.method})", iv_t)
    if axis == "models_per_class":  # both improve, DR slightly faster
        return (combine([verdict(iv_t, +1), verdict(iv_d, +1), verdict(faster, +1)]),
                head + f" ({n}; 95 % {faster.method})", faster)
    # images: DR improves faster but stays behind Task2Sim at the most images
    behind = _over_tasks(both[0, :, -1] - both[1, :, -1], seeds)
    return (combine([verdict(faster, +1), verdict(behind, +1)]),
            head + f"; at the most images Task2Sim minus DR {behind.text()} ({n}; 95 % {faster.method})", faster)


def per_task_finding(frame: pd.DataFrame, protocol: str = "linear probe") -> tuple[str, str, Interval]:
    """Figure 4: Task2Sim vs the baselines at the base point. "Competitive or better" as non-inferiority:
    the mean over tasks of Task2Sim minus each baseline (each task's difference averaged over seeds,
    a Student-t interval over tasks) must lie above ``-COMPETITIVE_MARGIN``; the interval returned is
    Task2Sim minus domain randomisation."""
    base = frame[(frame["axis"] == "base") & (frame["protocol"] == protocol)]
    others = [m for m in ("measured", "domain_randomization", "random", "scratch") if m in set(base["method"])]
    per = base.pivot_table(index=["seed", "task"], columns="method", values="accuracy")
    seeds, tasks = sorted(set(base["seed"])), sorted(set(base["task"]))
    parts, texts, intervals = [], [], {}
    for m in others:
        cube = np.full((len(seeds), len(tasks)), np.nan)
        for (seed, task), row in per.iterrows():
            cube[seeds.index(seed), tasks.index(task)] = row["task2sim"] - row[m]
        per_task = np.nanmean(cube, axis=0)
        iv = _over_tasks(per_task, len(seeds))
        intervals[m] = iv
        parts.append(verdict(iv, +1, threshold=-COMPETITIVE_MARGIN))
        wins = int((per_task > 0).sum())
        texts.append(f"{METHOD_LABELS[m]} {iv.text()} (better on {wins}/{len(tasks)} tasks)")
    main = intervals.get("domain_randomization") or next(iter(intervals.values()))
    return combine(parts), (f"{protocol}: {METHOD_LABELS['task2sim']} minus " + ", ".join(texts)
                            + f" ({len(tasks)} tasks x {len(seeds)} seeds; 95 % {main.method}; "
                            f"competitive: above -{COMPETITIVE_MARGIN})"), main
