"""`t2s study --plan`: validates the profile, data, assets and devices and costs each stage, running nothing."""

from __future__ import annotations

import json

import pytest

from t2s_lib.cli import main as cli
from t2s_lib.plan import NOTEBOOK_STAGES, plan_study


def test_smoke_and_cpu_plans_are_complete_here(lib, digits_task, tmp_path, monkeypatch):
    monkeypatch.setenv("T2S_RUNS", str(tmp_path / "runs"))
    for name in ("smoke", "cpu"):
        plan = plan_study(name)
        assert plan.ok, plan.missing
        assert [s.notebook for s in plan.stages] == list(NOTEBOOK_STAGES)
        assert all(s.seconds("cpu") >= 0 for s in plan.stages)
    assert not (tmp_path / "runs").exists()  # planning runs nothing and writes nothing


def test_scaling_cost_counts_the_settings_the_policy_picked(lib, digits_task, tmp_path, monkeypatch):
    """Before the policy has run, the scaling plan assumes one setting per policy method; once its
    summary exists it counts the distinct settings it predicted (each costs a cell per point and seed)."""
    from t2s_lib.profiles import load_profile
    from t2s_lib.scaling import scaling_tasks

    monkeypatch.setenv("T2S_RUNS", str(tmp_path / "runs"))
    overrides = {"scaling.methods": ["task2sim", "domain_randomization", "scratch"], "policy.task2sim": "paper-256"}
    guess = next(s for s in plan_study(load_profile("smoke", overrides)).stages if s.stage == "scaling")
    assert "assume one distinct setting per policy method" in guess.actions[1] and "base 2, classes-2 2" in guess.actions[1]
    prof = load_profile("smoke", overrides)
    tasks = scaling_tasks(prof)
    picks = ["0_0_0_0_0_1_0_0_0", "1_0_0_0_0_1_0_0_0", "0_1_0_0_0_1_0_0_0"]
    summary = prof.layout.policy_live256 / "paper" / "summary.json"
    summary.parent.mkdir(parents=True)
    summary.write_text(json.dumps({"predictions": {"0": {t: picks[i % 3] for i, t in enumerate(tasks)}}}))
    counted = next(s for s in plan_study(prof).stages if s.stage == "scaling")
    n = len({picks[i % 3] for i in range(len(tasks))}) + 1  # + domain randomisation
    assert f"counted from the policies' predictions: base {n}, classes-2 {n}" in counted.actions[1]
    assert counted.seconds("cpu") > guess.seconds("cpu") or n == 2
    # measured selection only where scaling.measured_points puts it (here: the base alone)
    both = load_profile("smoke", {**overrides, "scaling.methods": ["task2sim", "measured", "domain_randomization", "scratch"],
                                  "scaling.measured_points": {"classes": []}})
    guess = next(s for s in plan_study(both).stages if s.stage == "scaling")
    assert "base 3, classes-2 2" in guess.actions[1]


def test_paper_plan_names_only_datasets_gpu_and_unfetched_assets(monkeypatch, capsys):
    import torch

    monkeypatch.delenv("T2S_DATA_ROOT", raising=False)
    plan = plan_study("paper")
    kinds = {m["what"].split(" ")[0] for m in plan.missing}
    assert sum(m["what"].startswith("paper dataset") for m in plan.missing) == 20
    allowed = {"paper", "object"} | ({"a"} if not torch.cuda.is_available() else set())
    assert kinds <= allowed, plan.missing
    for m in plan.missing:
        assert m["fix"], m
    # paper scale: 256 pre-trainings of ResNet-50 on 40k images for 100 epochs: GPU-days, CPU-centuries
    rewards = next(s for s in plan.stages if s.stage == "rewards")
    assert 20 * 3600 < rewards.seconds("cuda") < 1000 * 3600
    assert rewards.seconds("cpu") > 500 * rewards.seconds("cuda")
    assert cli(["study", "--profile", "paper", "--plan", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["profile"] == "paper" and not out["ok"] and len(out["stages"]) == 8
    # the scaling studies (notebook 07) are costed too: more points than the base, each a pre-training
    scaling = next(s for s in plan.stages if s.stage == "scaling")
    assert 0.2 * rewards.seconds("cuda") < scaling.seconds("cuda") < 2 * rewards.seconds("cuda")
    assert "11 points" in scaling.actions[0]
    assert out["throughput"]["cuda"]["source"] == "assumed"


def test_plan_of_an_invalid_profile_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\npretrain: {recipe: {img_size: 0}}\n")
    assert cli(["study", "--profile", str(bad), "--plan"]) == 2
    assert "pretrain.recipe.img_size: 0 is out of range" in capsys.readouterr().err


def test_costs_scale_with_the_work():
    from t2s_lib.plan import _rewards_stage
    from t2s_lib.profiles import load_profile

    sizes = {t: (1000, 500, 10) for t in load_profile("cpu").evaluate.tasks}
    small = _rewards_stage(load_profile("cpu"), sizes)
    epochs = load_profile("cpu").pretrain.recipe["epochs"]
    double = _rewards_stage(load_profile("cpu", overrides={"pretrain.recipe.epochs": 2 * epochs}), sizes)
    assert double.train_gflop == pytest.approx(2 * small.train_gflop)
