"""The reward-table builder on a tiny grid: schema, idempotence, resume after kill -9, failures that keep
the completed entries, designs of the stated resolution, and the Slurm job specification."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from t2s_lib.errors import T2SError
from t2s_lib.profiles import load_profile
from t2s_lib.rewards import (GENERATORS, build_table, design_settings, fractional_factorial, read_spec, resolution,
                             resolution_from_matrix, spec_from_profile, table_status)
from t2s_lib.rewards.cells import cell_dir
from t2s_lib.settings import PRESETS

def _table(path: Path) -> tuple[dict, list[str]]:
    rows = sorted(line for line in (path / "rewards.csv").read_text().splitlines()[1:] if ",pretrain," not in line
                  or "val_acc" in line or "train_loss" in line)
    return json.loads((path / "reward_table.json").read_text()), rows


def test_designs_have_the_stated_resolution():
    for name, runs in (("ff16", 16), ("ff32", 32)):
        x = fractional_factorial(GENERATORS[name])
        assert x.shape == (runs, 8) and len({tuple(r) for r in x}) == runs
        assert resolution(GENERATORS[name]) == 4 == resolution_from_matrix(x)
        # resolution IV: main effects are orthogonal to every two-factor interaction
        inter = np.stack([x[:, i] * x[:, j] for i in range(8) for j in range(i + 1, 8)], 1)
        assert np.all(x.T @ inter == 0) and np.all(x.T @ x == runs * np.eye(8))
    # resolution V: main effects and two-factor interactions are all mutually orthogonal
    x = fractional_factorial(GENERATORS["resv64"])
    assert x.shape == (64, 8) and len({tuple(r) for r in x}) == 64
    assert resolution(GENERATORS["resv64"]) == 5 == resolution_from_matrix(x)
    inter = np.stack([x[:, i] * x[:, j] for i in range(8) for j in range(i + 1, 8)], 1)
    model = np.concatenate([np.ones((64, 1)), x, inter], 1)
    assert np.array_equal(model.T @ model, 64 * np.eye(37))
    assert len(design_settings("resv64")) == 65  # DR is a run of the fraction, all-off is added
    keys = design_settings("ff16")
    assert len(keys) == 16 and keys[:2] == [PRESETS["domain_randomization"].key, PRESETS["all_off"].key]
    assert len(design_settings("full")) == 256
    sub = design_settings("subgrid", vary=["backgr", "materials"], fixed={"pose_scale": True})
    assert len(sub) == 2 + 4
    with pytest.raises(T2SError, match=r"unknown parameter\(s\) \['colour'\]"):
        design_settings("subgrid", vary=["colour"])
    with pytest.raises(T2SError, match="unknown design"):
        design_settings("latin-square")


def test_profile_rewards_section_is_validated():
    with pytest.raises(T2SError, match="unknown parameter 'shiny'"):
        load_profile("cpu", overrides={"rewards.vary": ["shiny"]})
    with pytest.raises(T2SError, match=r"rewards\.executor: 'cloud' is not allowed"):
        load_profile("cpu", overrides={"rewards.executor": "cloud"})


def test_build_schema_idempotence_and_status(tiny, reference, tmp_path, capsys):
    import shutil

    spec = spec_from_profile(tiny)
    assert [c.name for c in spec.cells()] == ["1_1_1_1_1_3_0_1_1/s0", "0_0_0_0_0_1_0_0_0/s0", "0_0_0_0_0_1_0_0_0/s1",
                                             "0_0_0_0_0_1_0_0_1/s0", "scratch/s0", "scratch/s1"]
    out = tmp_path / "table"
    shutil.copytree(reference, out)
    rewards, rows = _table(out)
    assert set(rewards) == {"digits", "faces"}
    assert set(rewards["digits"]) == {"1_1_1_1_1_3_0_1_1", "0_0_0_0_0_1_0_0_0", "0_0_0_0_0_1_0_0_1"}  # no scratch
    assert all(0 <= v <= 100 for by in rewards.values() for v in by.values())
    csv = (out / "rewards.csv").read_text().splitlines()
    assert csv[0] == "setting,seed,backbone,task,metric,value"
    knn = [line.split(",") for line in csv[1:] if ",knn_top1," in line]
    assert len(knn) == 6 * 2
    val = [line.split(",") for line in csv[1:] if ",knn_val_top1," in line]  # the validation-split 5-NN
    assert len(val) == 6 * 2 and all(0 <= float(r[5]) <= 100 for r in val)
    off = [float(r[5]) for r in knn if r[0] == "0_0_0_0_0_1_0_0_0" and r[3] == "digits"]
    assert rewards["digits"]["0_0_0_0_0_1_0_0_0"] == pytest.approx(np.mean(off), abs=1e-4)  # seed-averaged
    assert any(",pretrain_val_acc," in line for line in csv)
    # the stored backbones stay; rendered images do not
    assert (cell_dir(out, spec.cells()[0]) / "pretrain" / "checkpoint.pt").is_file()
    assert not (cell_dir(out, spec.cells()[0]) / "images").exists()
    # the policy reads the table unchanged (published reward_db schema)
    from t2s_lib.published import load_reward_table

    table = load_reward_table(out / "reward_table.json", tasks=("digits", "faces"), require_all_settings=False)
    assert len(table.keys) == 3
    # a second run does no work
    t0 = time.perf_counter()
    again = build_table(out, spec_from_profile(tiny), log=lambda *_: None)
    assert len(again.skipped) == 6 and time.perf_counter() - t0 < 20
    assert _table(out) == (rewards, rows)
    from t2s_lib.cli import main as cli

    assert cli(["rewards", "status", str(out)]) == 0
    assert "6/6 cells complete" in capsys.readouterr().out
    # a larger request in the same folder only adds the new cells / tasks
    more = spec_from_profile(tiny, tasks=["digits", "faces", "textures"])
    grown = build_table(out, more, log=lambda *_: None)
    assert len(grown.done) == 6 and "textures" in json.loads((out / "reward_table.json").read_text())
    # another recipe in the same folder is refused
    other = spec_from_profile(load_profile(tiny.profile_file, overrides={"pretrain.recipe.epochs": 2}))
    with pytest.raises(T2SError, match="another recipe"):
        build_table(out, other, log=lambda *_: None)


def test_killed_build_resumes_to_the_same_table(tiny, reference, tmp_path):
    ref = reference
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "t2s_lib.cli", "rewards", "build", "--profile", str(tiny.profile_file), "--out", str(out)]
    for marker in ("0_0_0_0_0_1_0_0_0/s0/pretrain/metrics.jsonl", "0_0_0_0_0_1_0_0_1/s0/.images.partial"):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.time() + 300
        while time.time() < deadline and not (out / "cells" / marker).exists() and proc.poll() is None:
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not read_spec(out).settings == []  # the spec was written before the kill
    assert table_status(out)["done"] < 6
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert _table(out) == _table(ref)
    assert len((out / "rewards.csv").read_text().splitlines()) == len((ref / "rewards.csv").read_text().splitlines())


def test_failed_cell_keeps_the_rest_and_the_next_run_finishes(tiny, tmp_path, capsys):
    from t2s_lib.cli import main as cli
    from t2s_lib.render import RenderJob, run_render_job

    spec = spec_from_profile(tiny, settings=["0_0_0_0_0_1_0_0_1"], seeds=[0], replicate_settings=[], replicate_seeds=[])
    out = tmp_path / "table"
    bad = next(c for c in spec.cells() if c.setting == "0_0_0_0_0_1_0_0_1")
    images = run_render_job(RenderJob.create(bad.setting, 16, 16, classes=2, msaa=0), cell_dir(out, bad) / "images",
                            progress=False)
    victim = sorted(images.glob("*/*.jpg"))[3]
    victim.write_bytes(b"not a jpeg")
    argv = ["rewards", "build", "--profile", str(tiny.profile_file), "--out", str(out), "--settings", "0_0_0_0_0_1_0_0_1",
            "--seeds", "0", "--replicate-settings"]
    assert cli(argv) == 2
    err = capsys.readouterr()
    assert "0_0_0_0_0_1_0_0_1/s0" in err.out and victim.name in err.out and "rerun the same command" in err.err
    failed = json.loads((out / "failed.json").read_text())
    assert list(failed) == ["0_0_0_0_0_1_0_0_1/s0"]
    rewards = json.loads((out / "reward_table.json").read_text())
    assert "0_0_0_0_0_1_0_0_0" in rewards["digits"] and "0_0_0_0_0_1_0_0_1" not in rewards["digits"]
    victim.unlink()  # the fix: remove the damaged file (or re-render the cell)
    import shutil

    shutil.rmtree(cell_dir(out, bad) / "images")
    assert cli(argv) == 0
    assert "0_0_0_0_0_1_0_0_1" in json.loads((out / "reward_table.json").read_text())["digits"]
    assert not (out / "failed.json").exists()


def test_missing_task_data_is_named_before_any_work(tiny, tmp_path, monkeypatch):
    spec = spec_from_profile(tiny, tasks=["digits", "mnist"])
    monkeypatch.setenv("T2S_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(T2SError, match="reward table task 'digits'.*not in the cache") as info:
        build_table(tmp_path / "t", spec, log=lambda *_: None)
    assert "t2s data fetch" in info.value.fix
    assert not (tmp_path / "t").exists()


def test_submitit_debug_executor_runs_the_cells(tiny, tmp_path):
    spec = spec_from_profile(tiny, settings=["0_0_0_0_0_1_0_0_1"], tasks=["digits"], seeds=[0],
                             replicate_settings=[], replicate_seeds=[])
    result = build_table(tmp_path / "t", spec, executor="debug", log=lambda *_: None)
    assert not result.failed and len(result.done) == 4


def test_slurm_job_array_specification(tiny, tmp_path, monkeypatch):
    """The submitted sbatch script: a job array capped at array_parallelism, GPUs, time, partition,
    the pre-emption signal (requeue), and jobs that requeue themselves as the same cell."""
    import submitit

    from t2s_lib.profiles import SlurmSpec
    from t2s_lib.rewards.build import CellJob, slurm_executor

    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "sbatch").write_text(f"#!/bin/sh\ncp \"$1\" {tmp_path}/submitted.sh\necho Submitted batch job 4242\n")
    (bindir / "sbatch").chmod(0o755)
    (bindir / "srun").write_text("#!/bin/sh\nexit 0\n")  # submitit checks that it is on a Slurm cluster
    (bindir / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    spec = spec_from_profile(tiny)
    jobs = [CellJob(str(tmp_path / "t"), c, gpus=4) for c in spec.cells()[:5]]
    slurm = SlurmSpec(partition="gpu", gpus_per_node=4, cpus_per_task=16, timeout_min=600, array_parallelism=2)
    executor = slurm_executor(tmp_path / "t", slurm, len(jobs))
    with executor.batch():
        handles = [executor.submit(job) for job in jobs]
    assert [h.job_id for h in handles] == [f"4242_{i}" for i in range(5)]
    script = (tmp_path / "submitted.sh").read_text()
    for line in ("#SBATCH --array=0-4%2", "#SBATCH --gpus-per-node=4", "#SBATCH --cpus-per-task=16",
                 "#SBATCH --partition=gpu", "#SBATCH --time=600", "#SBATCH --signal=USR2@90", "#SBATCH --ntasks-per-node=1"):
        assert line in script, line
    again = jobs[0].checkpoint()
    assert isinstance(again, submitit.helpers.DelayedSubmission)
    assert again.function.cell == jobs[0].cell and again.function.gpus == 4


def test_adopted_cells_reuse_backbones_and_agree_with_training_them(tiny, reference, tmp_path):
    """A table of the same experiment (here: with a linear probe added) adopts the reference's
    pre-trained cells instead of training them again; its 5-NN numbers are the reference's."""
    import dataclasses

    from t2s_lib.rewards.build import adopt_cells

    base = spec_from_profile(tiny)
    lin = {"img_size": 16, "epochs": 2, "hparams": "given", "lr": 0.1, "batch_size": 32, "weight_decay": 0.0,
           "cache_features": True, "max_train": 200, "max_test": 100, "feature_batch": 64, "workers": 0}
    spec = dataclasses.replace(base, linear=lin)
    out = tmp_path / "adopting"
    adopted = adopt_cells(out, spec, reference, log=lambda *_: None)
    assert sorted(adopted) == sorted(c.name for c in spec.cells() if not c.is_scratch)
    ckpt = cell_dir(out, spec.cells()[0]) / "pretrain" / "checkpoint.pt"
    assert ckpt.read_bytes() == (cell_dir(reference, spec.cells()[0]) / "pretrain" / "checkpoint.pt").read_bytes()
    assert json.loads((cell_dir(out, spec.cells()[0]) / "cell.json").read_text())["adopted_from"]
    result = build_table(out, spec, log=lambda *_: None)
    assert not result.failed
    assert json.loads((out / "reward_table.json").read_text()) == json.loads((reference / "reward_table.json").read_text())
    assert (cell_dir(out, spec.cells()[0]) / "linear" / "digits.json").is_file()
    # nothing pre-trained again: every adopted cell kept the reference's pre-training time
    for cell in spec.cells():
        if not cell.is_scratch:
            assert not (cell_dir(out, cell) / "images").exists()
            assert json.loads((cell_dir(out, cell) / "cell.json").read_text())["pretrain_seconds"] == json.loads(
                (cell_dir(reference, cell) / "cell.json").read_text())["pretrain_seconds"]
    # another experiment (a different recipe) adopts nothing
    other = spec_from_profile(load_profile(tiny.profile_file, overrides={"pretrain.recipe.epochs": 2}))
    assert adopt_cells(tmp_path / "other", other, reference, log=lambda *_: None) == []


def test_scratch_results_are_shared_by_tables_of_one_backbone(tiny, reference, tmp_path):
    """The untrained backbone's numbers depend on architecture, seed and evaluation options only:
    another image set (here: other images per set) with the same backbone adopts them unchanged."""
    from t2s_lib.rewards.build import adopt_scratch
    from t2s_lib.rewards.cells import knn_path

    more = spec_from_profile(load_profile(tiny.profile_file, overrides={"pretrain.render.images": 24}))
    out = tmp_path / "more-images"
    assert sorted(adopt_scratch(out, more, reference, log=lambda *_: None)) == ["scratch/s0", "scratch/s1"]
    scratch = [c for c in more.cells() if c.is_scratch]
    for cell in scratch:
        for task in more.tasks:
            assert knn_path(out, cell, task).read_bytes() == knn_path(reference, cell, task).read_bytes()
    # another architecture shares nothing
    arch = spec_from_profile(load_profile(tiny.profile_file, overrides={"pretrain.recipe.arch": "resnet10t_w16"}))
    assert adopt_scratch(tmp_path / "other-arch", arch, reference, log=lambda *_: None) == []


def _model_rows(keys, beta_main, beta_pairs, noise, seeds=(0,), rng=None):
    """rewards.csv rows of two tasks whose 5-NN follows a known main + two-factor model plus noise."""
    import pandas as pd

    from t2s_lib.rewards.table256 import model_matrix

    rng = rng or np.random.default_rng(0)
    x = model_matrix(keys, 2)
    rows = []
    for t, sign in (("alpha", 1.0), ("beta", -1.0)):  # the second task's effects are mirrored
        beta = np.concatenate([[60.0], sign * np.asarray(beta_main), np.asarray(beta_pairs)])
        for seed in seeds:
            y = x @ beta + noise * rng.normal(size=len(keys))
            rows += [{"setting": k, "seed": seed, "backbone": k, "task": t, "metric": "knn_top1", "value": v}
                     for k, v in zip(keys, y)]
    return pd.DataFrame(rows)


def test_table256_recovers_a_known_model_and_validates_on_held_out_settings():
    import pandas as pd

    from t2s_lib.rewards import table256 as t256
    from t2s_lib.rewards.analysis import MEAN

    fraction = design_settings("resv64")
    heldout = [k for k in design_settings("ff16") if k not in fraction]
    main = [1.5, 0.0, 0.0, 0.0, 0.0, -0.2, 2.0, 0.3]  # half effects: ON minus OFF = 2 x beta
    pairs = np.zeros(28)
    pairs[0] = 0.8  # pose_rot x pose_scale
    keys = fraction + heldout
    rows = pd.concat([_model_rows(keys, main, pairs, 0.3),
                      _model_rows(keys[:6], main, pairs, 0.3, seeds=(1,), rng=np.random.default_rng(1))])
    result = t256.analyse_table256(rows, fraction, heldout, n_test=2000, bootstrap=300)
    assert result.model.name == "logit, main + two-factor" and result.table.shape == (3, 256)
    assert (result.source == t256.MEASURED).sum() == len(set(keys))
    eff = result.effects.set_index(["task", "term"])
    assert eff.loc[("alpha", "backgr"), "effect"] == pytest.approx(4.0, abs=0.5)
    assert eff.loc[("beta", "backgr"), "effect"] == pytest.approx(-4.0, abs=0.5)
    assert eff.loc[("alpha", "backgr"), "resolved"] and not eff.loc[("alpha", "lighting_color"), "resolved"]
    assert eff.loc[("alpha", "pose_rot x pose_scale"), "effect"] == pytest.approx(1.6, abs=0.5)
    assert result.validation.loc["alpha", "spearman"] > 0.8  # predictions rank the held-out settings
    # an unmeasured entry is the model's prediction, with a standard error
    unmeasured = next(k for k in result.table.columns if result.source[k] == t256.PREDICTED)
    assert np.isfinite(result.entry_se.loc["alpha", unmeasured])
    # the tasks disagree on background beyond the noise: the finding holds, with its interval
    verdict, sentence, iv = t256.disagreement_finding(result)
    assert verdict == "holds" and iv.low > 0 and "Background" in sentence
    assert t256.fidelity_table(result, 1.0, 30).loc["model", "settings"] == len(heldout)
    assert set(t256.resolved_counts(result.effects).index) == {"main", "interaction"}
    # buried in noise, nothing is resolved and the verdict says so
    noisy = t256.analyse_table256(_model_rows(keys, [0.05] * 8, np.zeros(28), 5.0), fraction, heldout, n_test=2000,
                                  bootstrap=200)
    assert noisy.effects[noisy.effects["task"] != MEAN]["resolved"].mean() < 0.15
    assert not noisy.effects["resolved_bh"].any()  # what chance resolves does not survive Benjamini-Hochberg
    assert t256.disagreement_finding(noisy)[0] == "not resolved at this scale"
    with pytest.raises(T2SError, match="lacks 1 measured setting"):
        t256.analyse_table256(rows[rows["setting"] != heldout[0]], fraction, heldout, n_test=2000)


def test_table256_section_refuses_settings_in_the_wrong_role():
    with pytest.raises(T2SError, match=r"table256\.heldout_settings.*settings of the fraction"):
        load_profile("cpu", overrides={"table256.heldout_settings": ["domain_randomization"]})
    with pytest.raises(T2SError, match=r"table256\.replicates\.settings.*not settings of design"):
        load_profile("cpu", overrides={"table256.replicates.settings": ["1_1_0_1_1_1_0_0_0"]})
    with pytest.raises(T2SError, match="table256.design"):
        load_profile("cpu", overrides={"table256.design": "latin"})


def test_table256_bounded_model_recovers_a_planted_table_with_a_ceiling():
    """A task whose accuracy follows a logit-linear model up to a hard ceiling (many measured entries
    at 100 %, like faces): the table's predictions never leave 0..100, rank the unmeasured settings
    as the planted model does, and the points-scale linear model (not eligible) would have left 0..100."""
    import pandas as pd
    from scipy import special, stats

    from t2s_lib.published import reward_table_from_mapping
    from t2s_lib.rewards import table256 as t256

    fraction = design_settings("resv64")
    heldout = [k for k in design_settings("ff16") if k not in fraction]
    x = t256.model_matrix(list(t256.ALL_KEYS), 1)
    beta = np.array([6.0, 1.6, 1.2, 0.4, 0.0, 0.0, -0.3, 2.0, 0.0])  # logit scale: most settings near 100 %
    truth = pd.Series(100 * special.expit(x @ beta), index=t256.ALL_KEYS)
    rng = np.random.default_rng(3)
    rows = []
    for task, shift in (("ceiling", 0.0), ("middle", -5.0)):
        for k in fraction + heldout:
            value = float(100 * special.expit(np.log(truth[k] / (100 - truth[k])) + shift) + rng.normal(0, 0.3))
            rows.append({"setting": k, "seed": 0, "backbone": k, "task": task, "metric": "knn_top1",
                         "value": min(max(round(value, 2), 0.0), 100.0)})
    rows = pd.DataFrame(rows)
    result = t256.analyse_table256(rows, fraction, heldout, n_test=2000, bootstrap=100)
    assert result.model.bounded
    assert float(result.table.min().min()) >= 0.0 and float(result.table.max().max()) <= 100.0
    assert result.validation.loc["ceiling", "ceiling_share"] > 0.1
    predicted = [k for k in t256.ALL_KEYS if result.source[k] == t256.PREDICTED]
    assert stats.spearmanr(result.table.loc["ceiling", predicted].astype(float), truth[predicted]).statistic > 0.8
    assert result.selection.loc["points, main + two-factor", "predictions_outside_0_100"] > 0
    assert not result.selection.loc["points, main + two-factor", "bounded"]
    summary = t256.validation_summary(result)
    assert summary["tasks"] == 2 and summary["tasks_over_10pct_at_ceiling"] == ["ceiling"]
    reward_table_from_mapping({t: result.table.loc[t].to_dict() for t in ("ceiling", "middle")}, source="test")


def test_table256_refuses_a_task_whose_every_measured_entry_is_at_the_ceiling():
    from t2s_lib.rewards import table256 as t256

    fraction = design_settings("resv64")
    rows = _model_rows(fraction, [1.0] * 8, np.zeros(28), 0.3)
    rows.loc[rows["task"] == "alpha", "value"] = 100.0
    with pytest.raises(T2SError, match=r"task\(s\) \['alpha'\] is at 100|\['alpha'\]"):
        t256.analyse_table256(rows, fraction, [], n_test=2000)


def test_table256_drops_the_tasks_it_is_told_to_and_says_how_far_they_sat_at_the_ceiling():
    from t2s_lib.rewards import table256 as t256

    fraction = design_settings("resv64")
    rows = _model_rows(fraction, [1.0] * 8, np.zeros(28), 0.3)
    rows.loc[(rows["task"] == "alpha") & (rows["setting"].isin(fraction[:16])), "value"] = 100.0
    result = t256.analyse_table256(rows, fraction, [], n_test=2000, drop_tasks=["alpha"])
    assert result.tasks == ["beta"] and result.extras["dropped"] == {"alpha": pytest.approx(16 / len(fraction))}
    with pytest.raises(T2SError, match=r"drop_tasks \['gamma'\] are not tasks of the table"):
        t256.analyse_table256(rows, fraction, [], n_test=2000, drop_tasks=["gamma"])


def test_table256_effect_noise_is_the_larger_of_residual_and_replicate_sd():
    """Replicates far noisier than the model's residual: the effects' intervals use the replicate SD."""
    import pandas as pd

    from t2s_lib.rewards import table256 as t256

    fraction = design_settings("resv64")
    rows = _model_rows(fraction, [1.0] * 8, np.zeros(28), 0.1)
    extra = _model_rows(fraction[:8], [1.0] * 8, np.zeros(28), 4.0, seeds=(1,), rng=np.random.default_rng(5))
    result = t256.analyse_table256(pd.concat([rows, extra]), fraction, [], n_test=2000)
    alpha = result.effects[result.effects["task"] == "alpha"]
    assert set(alpha["noise"]) == {"replicate"} and int(alpha["dof"].iloc[0]) == 8
