"""Machine faults and hostile outputs (issue 21): read-only and full file systems, permissions,
memory, concurrent writers, foreign and cache folders, processes left behind.

Each probe ends in ``error: ... / fix: ...`` with exit status 2 and no traceback, checked before the
expensive work where the fault is foreseeable. The file-system probes mount a small tmpfs (read-only,
or a few hundred KB to fill) and are skipped with the reason where mounting is not allowed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cli_helpers import cli_error as _cli_error
from t2s_lib.errors import T2SError, os_fault
from t2s_lib.train.toy import make_toy_image_set

CLI = [sys.executable, "-m", "t2s_lib.cli"]


@contextlib.contextmanager
def _tmpfs(where: Path, options: str):
    """A tmpfs mounted at ``where`` with ``options`` (e.g. ``ro`` or ``size=256k``), or a skip."""
    where.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


@pytest.fixture(scope="module")
def toy_set(tmp_path_factory):
    return make_toy_image_set(tmp_path_factory.mktemp("toy") / "set", classes=3, per_class=8, size=32, seed=0)


def test_os_faults_become_clear_errors():
    ro = os_fault(OSError(errno.EROFS, "Read-only file system", "/x/y"))
    assert "/x/y" in ro.problem and "read-only" in ro.problem and "--out" in ro.fix
    assert "no space" in os_fault(OSError(errno.ENOSPC, "No space left on device", "/d")).problem
    assert "permission denied" in os_fault(PermissionError(errno.EACCES, "Permission denied", "/p")).problem
    assert "out of memory" in os_fault(MemoryError()).problem
    torch_full = RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")
    assert "disk is probably full" in os_fault(torch_full).problem
    # anything else is a bug and keeps its traceback
    assert os_fault(RuntimeError("shape mismatch")) is None
    assert os_fault(OSError(errno.ENOENT, "No such file", "/n")) is None
    assert os_fault(ValueError("x")) is None


def test_read_only_outputs_are_refused_before_any_work(tmp_path, capsys, toy_set, lib, digits_task):
    with _tmpfs(tmp_path / "ro", "ro,size=1m") as ro:
        _cli_error(capsys, ["render", "--setting", "all_off", "--images", "4", "--classes", "2", "--out", str(ro / "set")],
                   "read-only")
        _cli_error(capsys, ["pretrain", str(toy_set), "--out", str(ro / "run"), "--arch", "resnet10t", "--device", "cpu"],
                   "read-only")
        _cli_error(capsys, ["adapt", "--task", "digits", "--profile", "smoke", "--out", str(ro / "adapt")], "read-only")
        _cli_error(capsys, ["rewards", "build", "--profile", "smoke", "--out", str(ro / "table")], "read-only")
        t0 = time.perf_counter()
        _cli_error(capsys, ["evaluate", "scratch:resnet10t", "--task", "digits", "--profile", "smoke",
                            "--results", str(ro / "r.csv")], "read-only")
        assert time.perf_counter() - t0 < 5  # refused before the 5-NN ran, not after
        assert list(ro.iterdir()) == []


def test_unwritable_folder_names_the_permission(tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    if os.access(locked, os.W_OK):  # root may write anywhere: nothing to refuse
        pytest.skip("running as root: permissions do not stop writes")
    _cli_error(capsys, ["render", "--setting", "all_off", "--images", "4", "--out", str(locked / "set")], "no permission")


def test_full_disk_is_a_clear_error_and_leaves_nothing_half_written(tmp_path, capsys, toy_set, lib):
    with _tmpfs(tmp_path / "small", "size=160k") as small:
        # rendering: refused by the estimate, or by the error boundary when the disk fills mid-way
        err = _cli_error(capsys, ["render", "--setting", "all_off", "--images", "400", "--img-size", "64",
                                  "--classes", "2", "--out", str(small / "set")])
        assert "disk" in err or "no space" in err, err
        assert not (small / "set").exists()
        # pre-training: the checkpoint (~20 MB) cannot be written; torch's zip-writer error is named
        err = _cli_error(capsys, ["pretrain", str(toy_set), "--out", str(small / "run"), "--arch", "resnet10t",
                                  "--epochs", "1", "--batch-size", "8", "--img-size", "32", "--workers", "0",
                                  "--warmup-epochs", "0", "--device", "cpu"])
        assert "full" in err or "no space" in err, err
        assert not (small / "run" / "checkpoint.pt").exists()
        assert not list(small.rglob(".*.tmp"))  # nothing half-written left behind


def test_render_that_cannot_fit_in_memory_is_refused_at_once(tmp_path, capsys, lib):
    t0 = time.perf_counter()
    _cli_error(capsys, ["render", "--setting", "all_off", "--images", "100000000", "--out", str(tmp_path / "big")],
               "--images")
    assert time.perf_counter() - t0 < 5 and not (tmp_path / "big").exists()


def test_concurrent_adapt_into_one_out_is_refused(tmp_path, capsys, lib, digits_task):
    from t2s_lib.procs import output_lock

    out = tmp_path / "adapt"
    with output_lock(out, "a t2s adapt run"):
        _cli_error(capsys, ["adapt", "--task", "digits", "--profile", "smoke", "--out", str(out)],
                   f"in use by PID {os.getpid()}")


@pytest.mark.parametrize("command", ["policy train", "policy baselines", "task2vec", "cka", "render", "pretrain"])
def test_every_writing_command_takes_its_output_lock(command, tmp_path, capsys, toy_set, lib, digits_task):
    """One writer per output: a second command on an output that is being written is refused with the
    holder's PID before it computes anything (here the test holds the lock)."""
    from t2s_lib.procs import output_lock

    out = tmp_path / "out"
    argv, locked = {
        "policy train": (["policy", "train", "--variant", "best-fixed", "--seeds", "0", "--out", str(out)], out),
        "policy baselines": (["policy", "baselines", "--out", str(out)], out),
        "task2vec": (["task2vec", "--task", "digits", "--profile", "smoke", "--out", str(out) + ".npz"], Path(str(out) + ".npz")),
        "cka": (["cka", "scratch:resnet10t", "--task", "digits", "--out", str(out)], Path(str(out) + ".npz")),
        "render": (["render", "--setting", "all_off", "--images", "4", "--classes", "2", "--out", str(out)], out),
        "pretrain": (["pretrain", str(toy_set), "--out", str(out), "--arch", "resnet10t", "--device", "cpu"], out),
    }[command]
    with output_lock(locked, "a test writer"):
        _cli_error(capsys, argv, f"in use by PID {os.getpid()}")


def test_foreign_and_cache_folders_are_refused(tmp_path, capsys, toy_set, monkeypatch):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    _cli_error(capsys, ["pretrain", str(toy_set), "--out", str(foreign), "--arch", "resnet10t", "--device", "cpu"],
               "did not write")
    _cli_error(capsys, ["rewards", "build", "--profile", "smoke", "--out", str(foreign)], "did not write")
    _cli_error(capsys, ["adapt", "--task", "digits", "--profile", "smoke", "--out", str(foreign)], "did not write")
    assert (foreign / "thesis.tex").read_text() == "precious" and len(list(foreign.iterdir())) == 1
    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setenv("T2S_CACHE", str(cache))
    _cli_error(capsys, ["render", "--setting", "all_off", "--images", "4", "--out", str(cache / "datasets" / "x")],
               "inside the cache")


def test_render_leaves_no_process_of_its_group_behind(tmp_path, lib):
    proc = subprocess.Popen([*CLI, "render", "--setting", "all_off", "--images", "16", "--img-size", "32",
                             "--classes", "2", "--workers", "2", "--out", str(tmp_path / "set")],
                            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    group = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[3]) == proc.pid:  # field 5: process group
                group.append(stat.parent.name)
    assert group == [], f"processes of t2s render's group still there: {group}"


def test_notebook_kernel_names_machine_faults(capsys):
    from IPython.core.interactiveshell import InteractiveShell

    from t2s_lib.notebook import install_fault_handler

    shell = InteractiveShell.instance()
    try:
        assert install_fault_handler(shell)
        result = shell.run_cell("import errno\nraise OSError(errno.ENOSPC, 'No space left on device', '/data/x')")
        assert result.error_in_exec is not None  # the cell still fails (papermill stops there)
        err = capsys.readouterr().err
        assert "error: /data/x: no space left on the device" in err and "fix:" in err
    finally:
        InteractiveShell.clear_instance()


def test_t2s_errors_pass_the_boundary_unchanged():
    error = T2SError("p", "f")
    assert os_fault(error) is error
