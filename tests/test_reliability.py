"""Reliability defects found in review (bad input, interruptions, concurrency), one test each.

Every bad input must end in a clear ``error: ... / fix: ...`` (exit 2, no traceback) with
nothing half-written; concurrent writers of one output folder are refused with the holder's PID;
killing a render leaves no worker behind; a corrupt cache file is detected and rebuilt.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from cli_helpers import cli_error as _cli_error
from t2s_lib.cli import main as cli
from t2s_lib.errors import T2SError
from t2s_lib.train import PretrainConfig, pretrain
from t2s_lib.train.toy import make_toy_image_set

CLI = [sys.executable, "-m", "t2s_lib.cli"]


@pytest.fixture(scope="module")
def toy_set(tmp_path_factory):
    return make_toy_image_set(tmp_path_factory.mktemp("toy") / "set", classes=3, per_class=8, size=32, seed=0)


def _cfg(data, out, **kw) -> PretrainConfig:
    base = dict(data=str(data), out=str(out), arch="resnet10t", epochs=1, batch_size=8, img_size=32, workers=0,
                warmup_epochs=0, device="cpu", progress=False, mixup=0.0, cutmix=0.0, auto_augment=None)
    base.update(kw)
    return PretrainConfig(**base)


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


# ----- settings, options ----------------------------------------------------------------------
def test_unicode_digits_in_a_setting_key_are_refused(capsys, tmp_path):
    from t2s_lib.settings import resolve_setting

    for key in ("١_1_1_1_1_3_0_1_1", "1_1_1_1_1_3_0_1_²", "٣"):
        with pytest.raises(T2SError, match="ASCII|not an integer|unknown setting"):
            resolve_setting(key)
    _cli_error(capsys, ["render", "--setting", "١_1_1_1_1_3_0_1_1", "--images", "4", "--out", str(tmp_path / "x")],
               "not an integer")


def test_render_options_are_validated_before_any_work(capsys, tmp_path, lib):
    with pytest.raises(SystemExit) as info:  # argparse: "invalid choice: 3 (choose from 0, 2, 4, 8)"
        cli(["render", "--setting", "all_off", "--images", "4", "--msaa", "3", "--out", str(tmp_path / "x")])
    assert info.value.code == 2 and "invalid choice: 3" in capsys.readouterr().err
    _cli_error(capsys, ["render", "--setting", "all_off", "--images", "4", "--seed", "-1", "--out", str(tmp_path / "x")],
               "seed=-1")
    _cli_error(capsys, ["render", "--setting", "all_off", "--images", "4", "--img-size", "0", "--out", str(tmp_path / "x")],
               "img_size=0")
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("stage", ["render", "pretrain", "policy", "cka", "task2vec"])
def test_out_under_or_equal_to_a_file_is_a_clear_error(stage, capsys, tmp_path, toy_set):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    for out in (blocker, blocker / "below"):
        argv = {
            "render": ["render", "--setting", "all_off", "--images", "4", "--classes", "2", "--out", str(out)],
            "pretrain": ["pretrain", str(toy_set), "--out", str(out), "--arch", "resnet10t", "--device", "cpu"],
            "policy": ["policy", "baselines", "--out", str(out)],
            "cka": ["cka", "scratch:resnet10t", "--task", "digits", "--out", str(out / "x" if out == blocker else out)],
            "task2vec": ["task2vec", "--task", "digits", "--out", str(out / "e.npz"), "--profile", "smoke"],
        }[stage]
        if stage in ("render", "pretrain", "policy") or out != blocker:
            _cli_error(capsys, argv, "file")
    assert blocker.read_text() == "x"


def test_seeds_must_be_non_negative(capsys, tmp_path):
    _cli_error(capsys, ["policy", "train", "--variant", "best-fixed", "--seeds", "-1", "--out", str(tmp_path / "p")],
               "bad seed list")


def test_missing_or_non_zip_vectors_file(capsys, tmp_path):
    rewards = tmp_path / "r.json"
    rewards.write_text(json.dumps({"a": {"0_0_0_0_0_1_0_0_0": 1.0}, "b": {"0_0_0_0_0_1_0_0_0": 2.0}}))
    junk = tmp_path / "v.npz"
    junk.write_text("not a zip")
    base = ["policy", "baselines", "--rewards", str(rewards), "--seen", "a,b", "--out", str(tmp_path / "o")]
    _cli_error(capsys, base + ["--vectors", str(tmp_path / "missing.npz")], "not found")
    _cli_error(capsys, base + ["--vectors", str(junk)], "not a readable .npz")


# ----- pre-training ------------------------------------------------------------------------------
def test_pretrain_options_are_bounded(capsys, toy_set, tmp_path):
    out = tmp_path / "run"
    for flag, value, match in (("--img-size", "0", "img_size: 0 is out of range"),
                               ("--img-size", "100000", "img_size: 100000 is out of range"),
                               ("--max-images", "-3", "max_images: -3 is out of range"),
                               ("--epochs", "0", "epochs: 0 is out of range")):
        _cli_error(capsys, ["pretrain", str(toy_set), "--out", str(out), "--device", "cpu", flag, value], match)
    assert not out.exists()


def test_bad_images_fail_clearly_and_leave_no_run_folder(toy_set, tmp_path):
    import shutil

    data = tmp_path / "set"
    shutil.copytree(toy_set, data)
    (data / "c001" / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(T2SError, match="broken.png"):
        pretrain(_cfg(data, tmp_path / "run"))
    assert not (tmp_path / "run").exists()


def test_two_pretrainings_on_one_folder_are_refused(toy_set, tmp_path):
    """A second writer is refused while the first runs; the first ends with every epoch once."""
    out = tmp_path / "run"
    code = ("import sys; from t2s_lib.train import PretrainConfig, pretrain; "
            f"pretrain(PretrainConfig(data={str(toy_set)!r}, out={str(out)!r}, arch='resnet10t', epochs=3, batch_size=8, "
            "img_size=32, workers=0, warmup_epochs=0, device='cpu', progress=False))")
    first = subprocess.Popen([sys.executable, "-c", code])
    lock = out.parent / ".run.lock"
    deadline = time.time() + 120
    while time.time() < deadline and not (lock.is_file() and lock.read_text().strip()):
        time.sleep(0.1)
    try:
        with pytest.raises(T2SError, match=rf"in use by PID {first.pid}"):
            pretrain(_cfg(toy_set, out, epochs=3))
    finally:
        assert first.wait(timeout=300) == 0
    epochs = [json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2, 3]


def test_crafted_checkpoint_cannot_run_code(tmp_path, capsys, digits_task):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "evil.pt"
    with open(evil, "wb") as fh:
        pickle.dump({"arch": "resnet10t", "model": Payload()}, fh)
    torch.save({"arch": "resnet10t", "model": {}, "extra": Payload()}, tmp_path / "evil2.pt")
    for path in (evil, tmp_path / "evil2.pt"):
        _cli_error(capsys, ["evaluate", str(path), "--task", "digits", "--profile", "smoke",
                            "--results", str(tmp_path / "r.csv")], "could not be read safely")
        err = _cli_error(capsys, ["cka", str(path), "--task", "digits", "--out", str(tmp_path / "c")],
                         "not a checkpoint this tool wrote")
        # torch's own message advises weights_only=False, i.e. running the payload: never passed on (issue 21)
        for advice in ("weights_only", "will likely succeed", "trusted source"):
            assert advice not in err, err
        assert "re-create" in err
    assert not marker.exists()


def test_checkpoint_arch_that_does_not_match_its_weights(toy_set, tmp_path, capsys, digits_task):
    from t2s_lib.train import load_checkpoint

    ckpt = load_checkpoint(pretrain(_cfg(toy_set, tmp_path / "run")))
    ckpt["arch"] = "resnet18"
    ckpt.pop("path")
    torch.save(ckpt, tmp_path / "liar.pt")
    _cli_error(capsys, ["evaluate", str(tmp_path / "liar.pt"), "--task", "digits", "--profile", "smoke",
                        "--results", str(tmp_path / "r.csv")], "do not fit a 'resnet18'")


# ----- evaluation --------------------------------------------------------------------------------
def test_evaluate_options_and_results_path_are_checked_first(capsys, tmp_path, digits_task):
    _cli_error(capsys, ["evaluate", "scratch:resnet10t", "--task", "digits", "--k", "0", "--profile", "smoke",
                        "--results", str(tmp_path / "r.csv")], "k: 0 is out of range")
    _cli_error(capsys, ["evaluate", "scratch:resnet10t", "--task", "digits", "--max-train", "-5", "--profile", "smoke",
                        "--results", str(tmp_path / "r.csv")], "max_train: -5 is out of range")
    t0 = time.perf_counter()
    _cli_error(capsys, ["evaluate", "scratch:resnet10t", "--task", "digits", "--profile", "smoke",
                        "--results", str(tmp_path)], "is an existing folder")
    assert time.perf_counter() - t0 < 5  # refused before any evaluation ran
    assert not (tmp_path / "r.csv").exists()


def test_empty_class_folder_is_not_a_class(tmp_path):
    from PIL import Image

    from t2s_lib.tasks import get_task

    for c in ("a", "b"):
        (tmp_path / "task" / c).mkdir(parents=True)
        for i in range(4):
            Image.new("RGB", (8, 8), (i * 40, 0, 0)).save(tmp_path / "task" / c / f"{i}.png")
    (tmp_path / "task" / "empty").mkdir()
    with pytest.raises(T2SError, match=r"\['empty'\] hold no images"):
        get_task(tmp_path / "task").classes


# ----- rendering -----------------------------------------------------------------------------------
def test_two_renders_on_one_output_are_refused(tmp_path, lib):
    from t2s_lib.render import render_dataset

    out = tmp_path / "ds"
    cmd = CLI + ["render", "--setting", "all_off", "--images", "256", "--img-size", "32", "--classes", "4",
                 "--out", str(out)]
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    parts = tmp_path / ".ds.partial" / ".parts"
    deadline = time.time() + 120
    while time.time() < deadline and not parts.is_dir():
        time.sleep(0.05)
    try:
        with pytest.raises(T2SError, match=rf"in use by PID {first.pid}"):
            render_dataset("domain_randomization", out, 256, 32, classes=4, progress=False)
    finally:
        assert first.wait(timeout=300) == 0
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["setting"] == "0_0_0_0_0_1_0_0_0" and meta["n_images"] == 256  # the first run finished intact


def test_killed_render_leaves_no_workers_behind(tmp_path, lib):
    cmd = CLI + ["render", "--setting", "domain_randomization", "--images", "2000", "--img-size", "32", "--classes", "4",
                 "--workers", "2", "--out", str(tmp_path / "ds")]
    parent = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    parts = tmp_path / ".ds.partial" / ".parts"
    deadline = time.time() + 120
    while time.time() < deadline and not (parts.is_dir() and any(parts.glob("*.jsonl"))):
        time.sleep(0.05)
    workers = [p for p in _children(parent.pid) if _alive(p)]
    assert workers, "the render should have spawned worker processes"
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.time() + 15
    while time.time() < deadline and any(_alive(p) for p in workers):
        time.sleep(0.1)
    assert not [p for p in workers if _alive(p)], "render workers outlived their parent"


def test_interrupted_write_never_reaches_the_finished_set(tmp_path, lib):
    from t2s_lib.render import render_dataset

    out = tmp_path / "ds"
    partial = render_dataset("all_off", out, 96, 16, classes=3, progress=False, max_chunks=1)
    assert partial == tmp_path / ".ds.partial" and not out.exists()
    some_class = next(p for p in partial.iterdir() if p.is_dir() and not p.name.startswith("."))
    (some_class / ".img_000099.jpg.abc123.tmp").write_bytes(b"half an image")  # what a kill -9 mid-write leaves
    render_dataset("all_off", out, 96, 16, classes=3, progress=False)
    assert not list(out.rglob("*.tmp")) and len(list(out.glob("*/*.jpg"))) == 96


def test_render_worker_failure_leaves_no_half_written_dataset(tmp_path):
    import trimesh

    from t2s_lib.assets import library
    from t2s_lib.render import render_dataset

    root = tmp_path / "shapes"
    for cls in ("box", "ball"):
        (root / cls).mkdir(parents=True)
        for i in range(2):
            (trimesh.creation.box(extents=(1, 1 + i, 2)) if cls == "box" else trimesh.creation.icosphere(radius=1 + i)
             ).export(root / cls / f"m{i}.obj")
    indexed = library.index_folder(root)
    model = indexed / "models" / "ball_m1.npz"
    model.write_bytes(b"\0" * model.stat().st_size)  # damaged in place after indexing (same size)
    library.load_library.cache_clear()
    with pytest.raises(T2SError, match="ball_m1.npz"):
        render_dataset("all_off", tmp_path / "ds", 16, 16, library=str(root), progress=False)
    assert not (tmp_path / "ds").exists()
    # a truncated model file is noticed by the index check, so the next use re-indexes the library
    model.write_bytes(b"damaged")
    assert library.read_index(indexed) is None
    library.load_library.cache_clear()
    out = render_dataset("all_off", tmp_path / "ds", 16, 16, library=str(root), progress=False)
    assert library.read_index(indexed) is not None and len(list(out.glob("*/*.jpg"))) == 16
    library.load_library.cache_clear()


# ----- corrupt cache files ----------------------------------------------------------------------
def test_corrupt_dataset_is_reported_and_rebuilt_by_fetch(tmp_path, monkeypatch, capsys):
    from t2s_lib.tasks import get_task
    from t2s_lib.tasks.fetch import fetch, is_fetched, task_dir

    monkeypatch.setenv("T2S_CACHE", str(tmp_path))
    fetch(["digits"], log=lambda *_: None)
    npz = task_dir("digits") / "data.npz"
    npz.write_bytes(npz.read_bytes()[:1000])  # truncated
    with pytest.raises(T2SError, match="corrupt"):
        get_task("digits").labels("train")
    assert not is_fetched("digits")
    status = fetch(["digits"], log=lambda *_: None)
    assert status == {"digits": "fetched"}
    assert len(get_task("digits").labels("train")) == 1252


def test_corrupt_library_index_is_a_clear_error(tmp_path):
    from t2s_lib.assets import library

    root = tmp_path / "shapes"
    (root / "box").mkdir(parents=True)
    import trimesh

    trimesh.creation.box().export(root / "box" / "m.obj")
    indexed = library.index_folder(root)
    (indexed / "index.json").write_text("{ not json")
    library.load_library.cache_clear()
    with pytest.raises(T2SError, match="corrupt"):
        library.load_library(str(indexed))
    assert library.read_index(indexed) is None  # so `t2s assets fetch` / indexing rebuilds it
    library.load_library.cache_clear()


def test_corrupt_hdri_index_is_detected(tmp_path):
    from t2s_lib.assets.hdri import hdri_cache_ok, hdri_index

    folder = tmp_path / "hdri"
    folder.mkdir()
    (folder / "index.json").write_text("{ nope")
    (folder / ".done.json").write_text(json.dumps({"format": 1}))
    assert not hdri_cache_ok(folder)
    hdri_index.cache_clear()
    with pytest.raises(T2SError, match="corrupt"):
        hdri_index(str(folder))
    hdri_index.cache_clear()


def test_lock_names_the_holder_and_is_released(tmp_path):
    from t2s_lib.procs import output_lock

    with output_lock(tmp_path / "out", "a test output") as lock_file:
        assert lock_file.read_text().strip() == str(os.getpid())
        code = f"from t2s_lib.procs import output_lock\nwith output_lock({str(tmp_path / 'out')!r}): pass"
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert res.returncode != 0 and f"in use by PID {os.getpid()}" in res.stderr
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    np.testing.assert_equal(lock_file.read_text(), "")


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        kids = _children(todo.pop())
        out += kids
        todo += kids
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _family_once_jobs_run(pid: int, timeout_s: float) -> list[int]:
    """The live processes under ``pid`` once a submitit cell job is among them (asserts it starts in time)."""
    deadline, jobs = time.time() + timeout_s, []
    while time.time() < deadline and not jobs:
        jobs = [p for p in _descendants(pid) if "submitit.core._submit" in _cmdline(p)]
        time.sleep(0.05)
    assert jobs, "the build should have started its cell jobs"
    return [p for p in _descendants(pid) if _alive(p)]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_terminated_build_cancels_its_jobs_and_a_rerun_finishes(sig, tmp_path, lib, digits_task):
    """SIGTERM or SIGINT to `t2s rewards build` with the local executor: the builder cancels its running cell
    jobs and exits quietly (130, no traceback); no job process is left holding a cell's lock, and the same
    command run straight after finishes every cell."""
    out = tmp_path / "table"
    cmd = CLI + ["rewards", "build", "--profile", "smoke", "--out", str(out), "--design", "explicit", "--settings",
                 "all_off", "domain_randomization", "--seeds", "0", "--tasks", "digits", "--executor", "local",
                 "--max-parallel", "2"]
    builder = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    family = _family_once_jobs_run(builder.pid, 120)
    time.sleep(1.0)  # inside the cells now (rendering or pre-training)
    os.kill(builder.pid, sig)
    _, err = builder.communicate(timeout=60)
    assert builder.returncode == 130, err.decode()
    assert "Traceback" not in err.decode() and "run the same command again" in err.decode()
    deadline = time.time() + 15
    while time.time() < deadline and any(_alive(p) for p in family):
        time.sleep(0.1)
    assert not [p for p in family if _alive(p)], "cell jobs outlived their cancelled build"
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert not (out / "failed.json").exists()
    table = json.loads((out / "reward_table.json").read_text())
    assert set(table["digits"]) == {"0_0_0_0_0_1_0_0_0", "1_1_1_1_1_3_0_1_1"}


def test_a_terminated_study_cancels_its_notebooks_build_jobs(tmp_path, lib, digits_task):
    """The same through `t2s study`: SIGTERM reaches the notebook's kernel as an interrupt, whose build
    cancels its cell jobs; nothing the study started is left running and no lock is held."""
    import fcntl

    env = {**os.environ, "T2S_RUNS": str(tmp_path / "runs"), "T2S_LEDGER": str(tmp_path / "ledger")}
    cmd = CLI + ["study", "--profile", "smoke", "--only", "03", "--set", "rewards.executor=local",
                 "--set", "rewards.max_parallel=2"]
    study = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True, env=env)
    family = _family_once_jobs_run(study.pid, 240)
    os.kill(study.pid, signal.SIGTERM)
    _, err = study.communicate(timeout=120)
    assert study.returncode != 0
    deadline = time.time() + 30
    while time.time() < deadline and any(_alive(p) for p in family):
        time.sleep(0.2)
    assert not [p for p in family if _alive(p)], [(p, _cmdline(p)) for p in family if _alive(p)]
    for lock in (tmp_path / "runs").rglob(".*.lock"):
        with open(lock) as fh:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises BlockingIOError while a process holds it
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
