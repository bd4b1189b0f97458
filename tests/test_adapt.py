"""`t2s adapt`: a user's own ImageFolder, measured selection with a reward table's stored backbones,
recommendation.json + a self-contained report.html; clear errors for bad input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from t2s_lib.cli import main as cli
from t2s_lib.errors import T2SError


@pytest.fixture(scope="module")
def user_task(tmp_path_factory):
    """A small ImageFolder of real images (three texture classes, written as PNG files)."""
    from t2s_lib.tasks import get_task

    src = get_task("textures")
    data = src.dataset("train")
    labels = np.asarray(src.labels("train"))
    root = tmp_path_factory.mktemp("user") / "my_textures"
    for c in (0, 4, 9, 10):
        (root / src.classes[c]).mkdir(parents=True)
        for n, i in enumerate(np.flatnonzero(labels == c)[:20]):
            data[int(i)][0].save(root / src.classes[c] / f"{n:03d}.png")
    return root


def test_adapt_recommends_a_measured_setting_with_a_report(tiny, reference, user_task, tmp_path, capsys):
    out = tmp_path / "advice"
    assert cli(["adapt", "--task", str(user_task), "--profile", str(tiny.profile_file), "--rewards", str(reference),
                "--budget", "2", "--out", str(out)]) == 0
    rec = json.loads((out / "recommendation.json").read_text())
    assert rec["budget"] == 2 and len(rec["measured"]) == 2
    assert rec["setting"] in rec["measured"] and rec["measured"][rec["setting"]] == max(rec["measured"].values())
    assert len(rec["setting"].split("_")) == 9
    assert set(rec["baselines"]) >= {"domain_randomization", "best_fixed"}
    assert rec["validation"]["queries"] > 0 and rec["table_settings"] == 3
    report = (out / "report.html").read_text()
    assert report.startswith("<!doctype html>") and "data:image/png;base64," in report and rec["setting"] in report
    assert "Recommended simulator setting" in report and "<script" not in report
    assert "[adapt]" in capsys.readouterr().out
    # deterministic: the same call measures and recommends the same
    again = tmp_path / "again"
    cli(["adapt", "--task", str(user_task), "--profile", str(tiny.profile_file), "--rewards", str(reference),
         "--budget", "2", "--out", str(again)])
    assert json.loads((again / "recommendation.json").read_text())["measured"] == rec["measured"]


def test_adapt_bad_input(tiny, reference, user_task, tmp_path, capsys):
    def error(argv, match):
        assert cli(argv) == 2
        err = capsys.readouterr().err
        assert match in err and "fix:" in err, err

    base = ["adapt", "--profile", str(tiny.profile_file), "--out", str(tmp_path / "o")]
    error(base + ["--task", str(tmp_path / "nothing-here"), "--rewards", str(reference)], "unknown task")
    empty = tmp_path / "empty_task"
    (empty / "a").mkdir(parents=True)
    (empty / "b").mkdir()
    error(base + ["--task", str(empty), "--rewards", str(reference)], "hold no images")
    error(base + ["--task", str(user_task), "--rewards", str(reference), "--budget", "9"], "exceeds the 3 settings")
    bare = tmp_path / "bare"
    shutil.copytree(reference, bare, ignore=shutil.ignore_patterns("checkpoint.pt"))
    error(base + ["--task", str(user_task), "--rewards", str(bare)], "no stored backbones")
    error(base + ["--task", str(user_task), "--rewards", str(reference), "--pretrain"], "--pretrain needs --render")
    assert not (tmp_path / "o" / "recommendation.json").exists()
