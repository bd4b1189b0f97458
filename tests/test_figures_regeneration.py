"""make figures: a study's figures regenerated from its results ledger alone equal the measured ones, and
the CI comparison fails on a planted change."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from conftest import TINY_PROFILE
from t2s_lib.regenerate import RENDERED_IMAGES, compare_figures, regenerate_figures
from t2s_lib.study import run_study


@pytest.fixture(scope="module")
def measured(tmp_path_factory, lib, digits_task):
    """The tiny profile's notebook 03 measured into its own ledger (figures under its run folder)."""
    import os

    root = tmp_path_factory.mktemp("measured")
    path = root / "tiny.yaml"
    path.write_text(yaml.safe_dump({**TINY_PROFILE, "run_dir": str(root / "runs" / "tiny"), "figures_dir": None}))
    old = {k: os.environ.get(k) for k in ("T2S_LEDGER", "T2S_RUNS")}
    os.environ.update(T2S_LEDGER=str(root / "ledger"), T2S_RUNS=str(root / "runs"))
    try:
        run_study(str(path), only=["03", "08"])
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    return path, root / "ledger", root / "runs" / "tiny" / "figures"


def test_figures_from_the_ledger_alone_equal_the_measured_ones(measured, tmp_path, monkeypatch):
    from t2s_lib.rewards import cells

    profile, ledger, figures = measured
    monkeypatch.setenv("T2S_RUNS", str(tmp_path / "runs"))  # a fresh machine: no run folder
    monkeypatch.setattr(cells, "_pretrain", lambda *a, **k: pytest.fail("make figures pre-trained a backbone"))
    out = tmp_path / "figures"
    result = regenerate_figures(str(profile), ledger_root=ledger, figures_dir=out, only=["03", "08"], log=lambda *_: None)
    assert result.regenerated == ["03_rewards", "08_index"] and not result.not_in_ledger
    assert (out / "rewards_table.csv").read_text() == (figures / "rewards_table.csv").read_text()
    differences = compare_figures(figures, out)
    # the measured folder has no regeneration record (and INDEX.md no paragraph on it); all else is the same
    assert differences == ["INDEX.md: differs from what the ledger gives at HEAD",
                           "regeneration.json: regenerated at HEAD but not committed"]
    index = (out / "INDEX.md").read_text()
    assert index.startswith((figures / "INDEX.md").read_text().rstrip("\n"))
    assert "Regenerated from the results ledger `results/tiny/`" in index and "(make figures): 03_rewards." in index


def test_the_comparison_names_a_planted_change(measured, tmp_path):
    _, _, figures = measured
    copy = tmp_path / "copy"
    shutil.copytree(figures, copy)
    assert compare_figures(figures, copy) == []
    table = copy / "rewards_table.csv"
    table.write_text(table.read_text().replace(".", ",", 1))
    findings = json.loads((copy / "provenance.json").read_text())
    findings[next(iter(findings))]["commit"] = "0123456789ab"  # a commit hash is no difference
    (copy / "provenance.json").write_text(json.dumps(findings))
    png = next(p for p in copy.glob("*.png") if p.name not in RENDERED_IMAGES)
    png.write_bytes(png.read_bytes() + b"\0")
    (copy / "rewards_signal.md").unlink()
    assert compare_figures(figures, copy) == [
        f"{png.name}: differs from what the ledger gives at HEAD",
        "rewards_signal.md: committed but not regenerated from the ledger at HEAD",
        "rewards_table.csv: differs from what the ledger gives at HEAD",
    ] or sorted(compare_figures(figures, copy)) == sorted([
        f"{png.name}: differs from what the ledger gives at HEAD",
        "rewards_signal.md: committed but not regenerated from the ledger at HEAD",
        "rewards_table.csv: differs from what the ledger gives at HEAD"])


def test_a_missing_ledger_is_named(tmp_path):
    from t2s_lib.errors import T2SError

    with pytest.raises(T2SError, match="no results ledger for profile 'smoke'"):
        regenerate_figures("smoke", ledger_root=tmp_path, figures_dir=tmp_path / "f")
