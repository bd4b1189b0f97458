"""Notebook 09's scoring of methods on measurements: cross-fitting, intervals over few tasks, the
picks that are pre-trained on fresh seeds, and the premise's permutation interval."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from t2s_lib.errors import T2SError
from t2s_lib.policy import live256
from t2s_lib.policy.analysis import premise_test
from t2s_lib.profiles import load_profile
from t2s_lib.rewards.spec import picks_spec
from t2s_lib.verdicts import HOLDS, NOT_RESOLVED, verdict


def _noise_world(tasks: int = 11, settings: int = 256, seed: int = 0):
    """Every setting equally good: a table entry (the seeds methods choose on) and fresh-seed measurements
    are independent noise around each task's level."""
    rng = np.random.default_rng(seed)
    names = [f"t{i}" for i in range(tasks)]
    keys = [f"s{j}" for j in range(settings)]
    level = rng.normal(60, 10, size=(tasks, 1))
    table = pd.DataFrame(level + rng.normal(0, 1.5, size=(tasks, settings)), index=names, columns=keys)
    fresh = pd.DataFrame(level + rng.normal(0, 1.5, size=(tasks, settings)), index=names, columns=keys)
    return names, table, fresh


def test_cross_fitting_removes_a_planted_winners_curse():
    """The oracle over pure noise: in-sample it looks ~4 points better than a typical setting (the maximum
    of 256 noisy entries); scored on fresh seeds its picks are as good as any setting."""
    names, table, fresh = _noise_world()
    summary = {"predictions": {"0": {t: str(table.loc[t].idxmax()) for t in names}}}
    scores = live256.PickScores(fresh, pd.Series(3, index=fresh.columns), pd.Series(dtype=float))
    fake = type("R", (), {"table": table})()
    chosen_on = live256.in_sample(summary, "seen", names, fake)[0]
    scored = live256.scored(summary, "seen", names, scores)[0]
    typical = table.mean(axis=1).to_numpy()
    assert (chosen_on - typical).mean() > 3.0
    assert abs((scored - fresh.mean(axis=1).to_numpy()).mean()) < 1.0


def test_an_unmeasured_pick_scores_nothing():
    names, _, fresh = _noise_world(tasks=3, settings=4)
    scores = live256.PickScores(fresh.drop(columns=["s3"]), pd.Series(3, index=["s0", "s1", "s2"]), pd.Series(dtype=float))
    summary = {"predictions": {"0": {"t0": "s0", "t1": "s3", "t2": "s2"}}}
    grid = live256.scored(summary, "seen", names, scores)
    assert np.isfinite(grid[0, [0, 2]]).all() and np.isnan(grid[0, 1])


def test_picks_are_pre_trained_on_the_fresh_seeds_only():
    prof = load_profile("cpu")
    picks = ["1_1_0_0_1_3_0_0_1", "domain_randomization", "1_1_0_0_1_3_0_0_1"]
    spec = picks_spec(prof, picks)
    cells = {(c.setting, c.seed) for c in spec.cells()}
    assert cells == {(k, s) for k in ("1_1_0_0_1_3_0_0_1", "1_1_1_1_1_3_0_1_1") for s in (100, 101, 102)}
    assert not spec.scratch_seeds and spec.recipe == picks_spec(prof, ["0_0_0_0_0_1_0_0_0"]).recipe
    run = {"summaries": {"a": {"predictions": {"0": {"x": "k1", "y": "k2"}}, "loo": {"predictions": {"0": {"x": "k3"}}}},
                         "random": {"predictions": {"0": {"x": None}}, "loo": {"predictions": {"0": {}}}}},
           "fractions": {0.5: {"predictions": {"0": {"x": "k4"}}, "loo": {"predictions": {}}}}}
    assert live256.picked_settings(run) == ["k1", "k2", "k3", "k4"]
    run["summaries"]["paper"] = {"predictions": {"0": {"x": "k9"}}, "loo": {"predictions": {"0": {"x": "k1"}}}}
    assert live256.picked_settings(run) == ["k1", "k9", "k2", "k3", "k4"]  # the paper controller's picks first


def test_pick_seeds_that_the_table_uses_are_refused():
    with pytest.raises(T2SError, match=r"pick_seeds \[0\] are seeds of the table"):
        load_profile("cpu", overrides={"table256.pick_seeds": [0, 100]})
    with pytest.raises(T2SError, match="pick_seeds is empty"):
        load_profile("cpu", overrides={"table256.pick_seeds": []})


def test_premise_interval_excludes_zero_exactly_when_the_permutation_test_rejects():
    rng = np.random.default_rng(0)
    n = 11
    v = rng.normal(size=(n, 5))
    sim = v @ v.T
    related = sim + rng.normal(0, 0.3, size=(n, n))
    related = (related + related.T) / 2
    unrelated = rng.normal(size=(n, n))
    unrelated = (unrelated + unrelated.T) / 2
    for corr, expected in ((related, HOLDS), (unrelated, NOT_RESOLVED)):
        res = premise_test(sim, corr, permutations=1999)
        assert res.null_low < 0 < res.null_high
        iv = (res.spearman - res.null_high, res.spearman - res.null_low)
        assert verdict(iv, +1) == expected
        assert (verdict(iv, +1) == HOLDS) == (res.spearman > res.null_high)


def test_figure_1_names_the_setting_behind_its_task2sim_backbone():
    from types import SimpleNamespace

    from t2s_lib.rewards.study import name_task2sim_backbones

    cells = {f"t{i}": SimpleNamespace(name="1_1_1_0_0_1_0_0_1") for i in range(10)}
    cells["t10"] = SimpleNamespace(name="1_1_0_0_1_3_0_0_1")
    text = name_task2sim_backbones(load_profile("smoke"), cells)
    assert "1_1_1_0_0_1_0_0_1 for 10 of 11 task(s), 1_1_0_0_1_3_0_0_1 for 1 of 11" in text
    assert "reward-kernel policy's pick on notebook 03's table" in text
    cpu = load_profile("cpu")  # Task2Sim is notebook 09's paper controller there, scored on its fresh pick seeds
    assert "paper-256 policy's pick on the 256-setting table" in name_task2sim_backbones(cpu, cells)
    assert "has not run (make table256, notebook 09)" in name_task2sim_backbones(cpu, None)


def test_task2sim_backbones_are_the_paper_controllers_picks_on_their_fresh_seeds(tmp_path, monkeypatch):
    """With policy.task2sim paper-256, notebook 06's Task2Sim backbone of a task is the pick cell (first
    fresh seed) of the setting notebook 09's controller chose for it; no summary yet: None; a task the
    controller has no pick for is refused with the task named."""
    import json

    from t2s_lib.rewards.spec import write_spec
    from t2s_lib.rewards.study import task2sim_cells

    monkeypatch.setenv("T2S_RUNS", str(tmp_path))
    prof = load_profile("smoke", {"policy.task2sim": "paper-256"})
    tasks = list(prof.tasks.seen[:2])
    assert task2sim_cells(prof, tasks) is None
    picks = {tasks[0]: "1_1_0_0_1_3_0_0_1", tasks[1]: "1_1_1_1_1_3_0_1_1"}
    summary = prof.layout.policy_summary("paper-256")
    summary.parent.mkdir(parents=True)
    summary.write_text(json.dumps({"predictions": {"0": picks}}))
    write_spec(prof.layout.rewards256_picks, picks_spec(prof, sorted(set(picks.values()))))
    cells = task2sim_cells(prof, tasks)
    first = prof.table256.pick_seeds[0]
    assert {t: (bb.name, bb.cell.seed, bb.table) for t, bb in cells.items()} == {
        t: (k, first, prof.layout.rewards256_picks) for t, k in picks.items()}
    with pytest.raises(T2SError, match="no pick for task 'faces'"):
        task2sim_cells(prof, tasks + ["faces"])
