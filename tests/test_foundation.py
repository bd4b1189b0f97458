import os
import subprocess
import sys

import pytest

from t2s_lib.cli import main as cli_main
from t2s_lib.cli._common import parse_seeds
from t2s_lib.device import resolve_device
from t2s_lib.errors import T2SError
from t2s_lib.files import atomic_path, write_json
from t2s_lib.profiles import load_profile
from t2s_lib.study import select_notebooks, study_notebooks


def test_cli_help_lists_every_stage():
    result = subprocess.run([sys.executable, "-m", "t2s_lib.cli", "--help"], capture_output=True, text=True, check=True)
    for command in ("study", "policy", "render", "assets", "data", "task2vec", "pretrain", "evaluate", "cka"):
        assert command in result.stdout, command


def test_atomic_path_leaves_nothing_half_written(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("interrupted")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []
    write_json(target, {"a": 1})
    assert target.read_text().strip().startswith("{")
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's private 0600
    folder = tmp_path / "dataset"
    with pytest.raises(RuntimeError):
        with atomic_path(folder, is_dir=True) as tmp:
            (tmp / "x.txt").write_text("x")
            raise RuntimeError("interrupted")
    assert not folder.exists()


def test_seed_lists():
    assert parse_seeds("0-9") == list(range(10))
    assert parse_seeds("1,3,5") == [1, 3, 5]
    for bad in ("9-0", "a", "-1", "0,-3", "1--2"):
        with pytest.raises(T2SError):
            parse_seeds(bad)


def test_device_is_a_parameter():
    import torch

    assert resolve_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        assert resolve_device("auto").type == "cpu"
        with pytest.raises(T2SError, match="no usable CUDA GPU"):
            resolve_device("cuda")
    with pytest.raises(T2SError, match="unknown device"):
        resolve_device("tpu")


def test_study_notebooks_are_numbered_and_selectable():
    notebooks = study_notebooks()
    names = [nb.stem for nb in notebooks]
    # by number, except that 09 (the 256-setting table's controller) runs before 06 and 07, which can use it
    assert [n[:2] for n in names] == ["01", "02", "03", "04", "05", "09", "06", "07", "08"]
    assert [nb.stem for nb in select_notebooks(notebooks, ["06", "09"])] == ["09_table256", "06_cka"]
    assert [nb.stem for nb in select_notebooks(notebooks, ["03"])] == ["03_rewards"]
    with pytest.raises(T2SError, match="no notebook matches"):
        select_notebooks(notebooks, ["99"])


def test_cli_reports_errors_without_traceback(capsys):
    assert cli_main(["study", "--profile", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown profile") and "fix:" in err


def test_every_notebook_has_one_parameters_cell_with_profile():
    import nbformat

    for nb_path in study_notebooks():
        nb = nbformat.read(nb_path, as_version=4)
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, nb_path.name
        assert 'profile = "smoke"' in tagged[0].source, nb_path.name
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), f"{nb_path.name} has outputs committed"
