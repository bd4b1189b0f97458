"""Faults and hostile input at the reward table, the policy's inputs and the profile (issue 21), one
test per defect, on real data: impossible rewards, damaged JSON in a table folder, two builds on one
folder, the vectors ``t2s task2vec`` writes and ``--set`` errors (the refused checkpoint pickle: test_reliability.py)."""

from __future__ import annotations

import copy
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from cli_helpers import cli_error as _cli_error
from conftest import TINY_PROFILE
from t2s_lib.cli import main as cli
from t2s_lib.errors import T2SError
from t2s_lib.profiles import load_profile
from t2s_lib.published import VECTOR_FILES, load_reward_table, load_task2vec_vectors
from t2s_lib.rewards import build_table, read_spec, spec_from_profile
from t2s_lib.rewards.cells import cell_dir, knn_path
from t2s_lib.rewards.spec import Cell
from t2s_lib.settings import PRESETS

ALL_OFF = PRESETS["all_off"].key
DR = PRESETS["domain_randomization"].key

#: The smallest useful table: the two anchors (DR, all-off), one seed, one task, no scratch cell.
SMALL_PROFILE = {**copy.deepcopy(TINY_PROFILE), "name": "faults",
                 "evaluate": {**TINY_PROFILE["evaluate"], "tasks": ["digits"]},
                 "rewards": {"design": "explicit", "settings": [], "seeds": [0], "scratch": False}}


@pytest.fixture(scope="module")
def small_table(tmp_path_factory, lib, digits_task) -> tuple[Path, Path]:
    """``(profile YAML, complete table folder)``: built once through the CLI; tests work on copies."""
    folder = tmp_path_factory.mktemp("faults-table")
    profile = folder / "faults.yaml"
    profile.write_text(yaml.safe_dump({**SMALL_PROFILE, "run_dir": str(folder / "runs")}))
    table = folder / "table"
    assert cli(["rewards", "build", "--profile", str(profile), "--out", str(table)]) == 0
    assert sorted(json.loads((table / "reward_table.json").read_text())["digits"]) == sorted([DR, ALL_OFF])
    return profile, table


def _copy(table: Path, tmp_path: Path) -> Path:
    out = tmp_path / "table"
    shutil.copytree(table, out)
    return out


def _build_argv(profile: Path, out: Path) -> list[str]:
    return ["rewards", "build", "--profile", str(profile), "--out", str(out)]


# ----- 1. impossible rewards --------------------------------------------------------------------
@pytest.mark.parametrize("bad", [-5, 100.5])
def test_rewards_outside_0_to_100_are_refused(tmp_path, capsys, bad):
    from t2s_lib.published import published_reward_table

    table = published_reward_table()
    tasks, keys = ("CropDisease", "EuroSAT", "SVHN"), list(table.keys[:3])
    data = {t: {k: table.reward(t, k) for k in keys} for t in tasks}
    data["EuroSAT"][keys[1]] = bad
    path = tmp_path / "rewards.json"
    path.write_text(json.dumps(data))
    with pytest.raises(T2SError) as info:
        load_reward_table(path, tasks=tasks, require_all_settings=False)
    assert "'EuroSAT'" in info.value.problem and repr(keys[1]) in info.value.problem
    assert repr(bad) in info.value.problem and "0..100" in info.value.problem and info.value.fix
    out = tmp_path / "policy"
    err = _cli_error(capsys, ["policy", "train", "--rewards", str(path), "--vectors", str(VECTOR_FILES[0]),
                              "--seen", "CropDisease,EuroSAT", "--unseen", "SVHN", "--out", str(out)], "'EuroSAT'")
    assert repr(bad) in err and keys[1] in err
    assert not (out / "summary.json").exists()
    # the bounds themselves are possible accuracies
    data["EuroSAT"][keys[1]], data["SVHN"][keys[0]] = 0, 100.0
    path.write_text(json.dumps(data))
    assert load_reward_table(path, tasks=tasks, require_all_settings=False).reward("SVHN", keys[0]) == 100.0


# ----- 2. damaged JSON in a table folder --------------------------------------------------------
def test_damaged_cell_results_are_recomputed(small_table, tmp_path, capsys):
    profile, reference = small_table
    out = _copy(reference, tmp_path)
    emptied = knn_path(out, Cell(ALL_OFF, 0), "digits")
    emptied.write_text("")
    truncated = cell_dir(out, Cell(DR, 0)) / "cell.json"
    truncated.write_text(truncated.read_text()[:40])
    assert cli(["rewards", "status", str(out)]) == 0  # damaged cells show as not done
    assert "0/2 cells complete" in capsys.readouterr().out
    assert cli(_build_argv(profile, out)) == 0
    assert "damaged" in capsys.readouterr().out
    assert json.loads(emptied.read_text())["value"] == json.loads(knn_path(reference, Cell(ALL_OFF, 0), "digits").read_text())["value"]
    assert json.loads(truncated.read_text())["final_epoch"] == json.loads(
        (cell_dir(reference, Cell(DR, 0)) / "cell.json").read_text())["final_epoch"]
    for name in ("reward_table.json", "rewards.csv"):
        assert (out / name).read_text() == (reference / name).read_text(), name
    assert not (out / "failed.json").exists()


def test_corrupt_spec_json_is_a_clear_error_and_a_rebuild_repairs_it(small_table, tmp_path, capsys):
    profile, reference = small_table
    out = _copy(reference, tmp_path)
    for text in ("{\"settings\": [", "", "[1, 2]", "{\"settings\": []}"):
        (out / "spec.json").write_text(text)
        err = _cli_error(capsys, ["rewards", "status", str(out)], str(out / "spec.json"))
        assert "t2s rewards build" in err
    # the fix it names: the same build rewrites the record and keeps every finished cell
    assert cli(_build_argv(profile, out)) == 0
    assert "2 complete, 0 to run" in capsys.readouterr().out
    assert read_spec(out).identity == read_spec(reference).identity
    # while the record is damaged, a build with another recipe is still refused (the cells record theirs)
    (out / "spec.json").write_text("")
    other = spec_from_profile(load_profile(profile, overrides={"pretrain.recipe.epochs": 2}))
    with pytest.raises(T2SError, match="another recipe"):
        build_table(out, other, log=lambda *_: None)


# ----- 3. two builds on one folder --------------------------------------------------------------
def test_a_build_refused_by_the_table_lock_writes_nothing(small_table, tmp_path, capsys):
    from t2s_lib.procs import output_lock

    profile, reference = small_table
    out = _copy(reference, tmp_path)
    knn_path(out, Cell(ALL_OFF, 0), "digits").unlink()  # a cell left to do
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with output_lock(out, "a reward table being built"):
        _cli_error(capsys, _build_argv(profile, out), f"is in use by PID {os.getpid()}")
    assert not (out / "failed.json").exists()
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_failed_json_never_lists_a_complete_cell(small_table, tmp_path):
    """A cell another process holds (here: the test) and finishes while this build runs is no failure."""
    from contextlib import ExitStack

    from t2s_lib.procs import output_lock

    profile, reference = small_table
    out = _copy(reference, tmp_path)
    cell = Cell(ALL_OFF, 0)
    knn_path(out, cell, "digits").unlink()
    held, taken = ExitStack(), []

    def other_writer(message: str) -> None:
        # once this build has chosen its pending cells, the other writer takes the cell and finishes it
        if "to run" in message and not taken:
            taken.append(held.enter_context(output_lock(cell_dir(out, cell), "another writer")))
            shutil.copy2(knn_path(reference, cell, "digits"), knn_path(out, cell, "digits"))

    with held:
        result = build_table(out, read_spec(out), log=other_writer)
    assert taken
    assert cell.name not in result.failed and not result.failed
    assert not (out / "failed.json").exists()
    assert (out / "reward_table.json").read_text() == (reference / "reward_table.json").read_text()


# ----- 4. the vectors `t2s task2vec` writes -----------------------------------------------------
def test_task2vec_output_feeds_policy_train_vectors(tmp_path, capsys, digits_task):
    files = {}
    for task in ("digits", "faces"):
        files[task] = tmp_path / f"{task}.npz"
        assert cli(["task2vec", "--task", task, "--out", str(files[task]), "--profile", "smoke", "--no-cache"]) == 0
    capsys.readouterr()
    with np.load(files["digits"]) as npz:
        assert sorted(npz.files) == ["hessian", "scale"]  # the per-task format of Embedding.save
    vectors = load_task2vec_vectors(list(files.values()))
    assert sorted(vectors) == ["digits", "faces"] and vectors["digits"].shape == (9600,)
    # the task is the one the metadata records, whatever the file is called; without metadata, the stem
    renamed = tmp_path / "renamed.npz"
    shutil.copy2(files["faces"], renamed)
    shutil.copy2(files["faces"].with_suffix(".json"), renamed.with_suffix(".json"))
    assert list(load_task2vec_vectors([renamed])) == ["faces"]
    bare = tmp_path / "bare" / "letters.npz"
    bare.parent.mkdir()
    shutil.copy2(files["faces"], bare)
    assert list(load_task2vec_vectors([bare])) == ["letters"]
    # mixed with the published multi-task format
    mixed = load_task2vec_vectors([files["digits"], VECTOR_FILES[1]])
    assert "digits" in mixed and "CUB" in mixed
    # the documented workflow: a reward table of those tasks, their vectors, policy train
    rewards = tmp_path / "rewards.json"
    rewards.write_text(json.dumps({"digits": {DR: 61.5, ALL_OFF: 40.0}, "faces": {DR: 33.0, ALL_OFF: 35.5},
                                   "letters": {DR: 50.0, ALL_OFF: 45.0}}))
    out = tmp_path / "policy"
    assert cli(["policy", "train", "--rewards", str(rewards), "--vectors", str(files["digits"]), str(files["faces"]),
                str(bare), "--seen", "digits,faces", "--unseen", "letters", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary and "letters" in json.dumps(summary)


# ----- 5. --set errors --------------------------------------------------------------------------
@pytest.mark.parametrize("override, message", [
    ({"rewards.executor": "cloud"}, "--set rewards.executor=cloud"),
    ({"pretrain.recipe.epochs": -2}, "--set pretrain.recipe.epochs=-2"),
    ({"evaluate.tasks": ["nope"]}, "--set evaluate.tasks=[nope]"),
    ({"device.x": 1}, "--set device.x=1"),
    ({"render.msaa": 0, "rewards.executor": "cloud"}, "--set rewards.executor=cloud"),
])
def test_set_errors_name_the_set_option(override, message):
    with pytest.raises(T2SError) as info:
        load_profile("smoke", overrides=override)
    assert message in info.value.problem and info.value.fix
    assert "render.msaa" not in info.value.problem  # the valid override is not blamed


def test_set_error_on_the_command_line_and_a_file_error_stays_the_files(tmp_path, capsys):
    _cli_error(capsys, ["study", "--plan", "--profile", "smoke", "--set", "rewards.executor=cloud"],
               "--set rewards.executor=cloud")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"name": "bad", "rewards": {"executor": "cloud"}}))
    with pytest.raises(T2SError) as info:
        load_profile(bad, overrides={"render.msaa": 0})
    assert str(bad) in info.value.problem and "--set" not in info.value.problem

