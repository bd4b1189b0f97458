"""The scaling studies' pure parts: axis points, where the base sits on each axis, per-doubling
slopes and the verdicts recorded in figures/INDEX.md (the tables themselves are built by the
reward-table builder, tested in test_rewards.py, and notebook 07 runs at the smoke profile under nbval)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from t2s_lib import scaling
from t2s_lib.profiles import load_profile


@pytest.fixture(scope="module")
def cpu(lib):
    return load_profile("cpu")


def test_points_share_the_base_and_change_one_thing(cpu):
    pts = scaling.points(cpu)
    names = [name for _, _, name in pts]
    assert len(set(names) - {"base"}) == len([n for n in names if n != "base"])  # one table per non-base point
    for axis in scaling.AXES:
        values = getattr(cpu.scaling.axes, axis)
        if values:
            assert len(set(values) | {scaling.base_value(cpu, axis)}) >= (3 if axis == "arch" else 4)
    p = scaling.point_profile(cpu, "classes", 5)
    assert p.pretrain.render.classes == 5 and p.pretrain.recipe == cpu.pretrain.recipe
    a = scaling.point_profile(cpu, "arch", "resnet18t_w32")
    assert a.pretrain.recipe["arch"] == "resnet18t_w32" and a.pretrain.render == cpu.pretrain.render


def test_models_axis_holds_out_images_so_every_model_is_trained_on(cpu):
    p = scaling.point_profile(cpu, "models_per_class", 2)
    assert p.pretrain.render.models_per_class == 2
    assert cpu.pretrain.recipe["val_by"] == "model" and p.pretrain.recipe["val_by"] == "image"
    # the base uses every model: it sits at the mean model count of its classes
    base = scaling.base_value(cpu, "models_per_class")
    assert isinstance(base, float) and base >= 6  # most_models picks classes with >= 6 models


def test_random_settings_are_seeded_distinct_settings():
    a, b = scaling.random_settings(4, seed=0), scaling.random_settings(4, seed=0)
    assert a == b and len(set(a)) == 4 and scaling.random_settings(4, seed=1) != a


def _means(values, methods):
    rows = []
    for method, accs in methods.items():
        for v, acc in zip(values, accs):
            rows.append({"axis": "images", "value": v, "method": method, "protocol": "linear probe", "split": "seen",
                         "mean": acc, "sd": 0.5, "seeds": 2})
    return pd.DataFrame(rows)


def _frame(values, methods, *, noise=0.0, seeds=(0, 1, 2), tasks=("a", "b", "c"), base=4000):
    """Per-seed, per-task accuracies (scaling_frame's layout) around given curves, with Gaussian noise."""
    rng = np.random.default_rng(0)
    rows = []
    for method, accs in methods.items():
        for v, acc in zip(values, accs):
            for seed in seeds:
                for task in tasks:
                    rows.append({"axis": "base" if v == base else "images", "value": None if v == base else v,
                                 "method": method, "seed": seed, "task": task, "split": "seen",
                                 "protocol": "linear probe", "accuracy": acc + noise * rng.normal()})
    return pd.DataFrame(rows)


def test_slope_is_points_per_doubling():
    values = [1000, 2000, 4000, 8000]
    means = _means(values, {"task2sim": [50, 52, 54, 56], "domain_randomization": [40, 44, 48, 52]})
    assert scaling.slope(means, "images", "task2sim", "linear probe", "seen", base=4000) == pytest.approx(2.0)
    assert scaling.slope(means, "images", "domain_randomization", "linear probe", "seen", base=4000) == pytest.approx(4.0)
    assert np.isnan(scaling.slope(means.iloc[:1], "images", "task2sim", "linear probe", "seen", base=1000))


def test_verdicts_follow_the_numbers_and_their_noise():
    values = [1000, 2000, 4000, 8000]
    clear = _frame(values, {"task2sim": [50, 52, 54, 56], "domain_randomization": [40, 44, 48, 52]}, noise=0.3)
    verdict, sentence, interval = scaling.axis_finding(clear, "images", "seen", base=4000)
    assert verdict == "holds" and interval.low > 0  # DR faster, still behind, both beyond the noise
    assert "Task2Sim minus DR" in sentence and "t over 3 tasks, 2 df" in sentence and "3 tasks x 3 seeds" in sentence
    # the same means buried in noise: the intervals contain zero, so nothing is claimed
    noisy = _frame(values, {"task2sim": [50, 50.3, 50.6, 50.9], "domain_randomization": [50, 50.4, 50.8, 51.2]},
                   noise=4.0)
    assert scaling.axis_finding(noisy, "images", "seen", base=4000)[0] == "not resolved at this scale"
    # DR faster and ahead at the most images: the parts disagree, so the finding is not held
    overtakes = _frame(values, {"task2sim": [50, 52, 54, 56], "domain_randomization": [40, 50, 60, 70]}, noise=0.3)
    assert scaling.axis_finding(overtakes, "images", "seen", base=4000)[0] == "not resolved at this scale"
    # DR slower and still ahead at the most images: both parts refuted beyond their noise
    slower = _frame(values, {"task2sim": [40, 46, 52, 58], "domain_randomization": [60, 61, 62, 63]}, noise=0.3)
    verdict, _, iv = scaling.axis_finding(slower, "images", "seen", base=4000)
    assert iv.high < 0 and verdict == "does not hold"


def test_per_task_finding_is_non_inferiority_with_its_interval():
    rows = []
    for seed in (0, 1):
        for task, (t2s, dr) in {"a": (60, 59.7), "b": (70, 70.2), "c": (50, 49.8)}.items():
            for method, acc in (("task2sim", t2s), ("domain_randomization", dr), ("scratch", acc_s := t2s - 10)):
                rows.append({"axis": "base", "value": None, "method": method, "seed": seed, "task": task, "split": "seen",
                             "protocol": "linear probe", "accuracy": acc + 0.1 * seed})
    verdict, sentence, iv = scaling.per_task_finding(pd.DataFrame(rows))
    assert verdict == "holds" and iv.low > -scaling.COMPETITIVE_MARGIN and "better on 2/3 tasks" in sentence
    assert "3 tasks x 2 seeds" in sentence and "t over 3 tasks, 2 df" in iv.method


def test_measured_selection_runs_at_the_base_and_its_chosen_points_only(cpu):
    chosen = cpu.scaling.measured_points
    for axis, value, name in scaling.points(cpu):
        here = scaling.methods_at(cpu, None if name == "base" else axis, value)
        assert ("measured" in here) == (name == "base" or value in getattr(chosen, axis))
        assert {"task2sim", "domain_randomization"} <= set(here)
    assert "measured" in scaling.methods_at(cpu, None, None)
    assert sum("measured" in scaling.methods_at(cpu, a, v) for a, v, _ in scaling.points(cpu)) == 4  # one per axis


def test_a_measured_point_off_its_axis_is_refused_with_the_axis_named():
    from t2s_lib.errors import T2SError
    from t2s_lib.profiles import load_profile as load

    with pytest.raises(T2SError, match="measured_points.images.*not among the axis values"):
        load("cpu", overrides={"scaling.measured_points": {"images": [999]}})


def test_base_with_every_model_plots_at_its_mean_count(cpu):
    import matplotlib

    matplotlib.use("Agg")
    base = scaling.base_value(cpu, "models_per_class")
    means = _means([1, 2, 4], {"task2sim": [50, 52, 54], "domain_randomization": [40, 44, 48]})
    means["axis"] = "models_per_class"
    extra = means.iloc[:2].copy()
    extra["axis"], extra["value"], extra["mean"] = "base", "base", [57.0, 50.0]
    means = pd.concat([means, extra], ignore_index=True)
    fig = scaling.plot_axis(means, "models_per_class", "linear probe", base)
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels == ["1", "2", "4", f"all ({base})"]
    assert scaling.slope(means, "models_per_class", "task2sim", "linear probe", "seen", base) > 0


def test_backbones_are_ordered_by_size():
    assert scaling._axis_order(["resnet10t_w32", "resnet10t_w16", "resnet18t_w32"]) == [
        "resnet10t_w16", "resnet10t_w32", "resnet18t_w32"]
    assert scaling._axis_order([4500, 563, 1125]) == [563, 1125, 4500]
