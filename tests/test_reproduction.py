"""make demo's reproduction report: flips first, shared measurements against the committed seed noise."""

from __future__ import annotations

import json

from t2s_lib.ledger import Ledger, provenance
from t2s_lib.reproduction import compare_findings, compare_ledgers, seed_noise, write_reproduction


def _knn(led: Ledger, setting: str, seed: int, task: str, value: float) -> None:
    led.append("reward.knn", {"setting": setting, "seed": seed, "task": task, "split": "test"},
               {"value": value}, provenance(1.0, 1.0))


def test_seed_noise_and_differences_in_its_units(tmp_path):
    committed, rerun = Ledger(tmp_path / "a"), Ledger(tmp_path / "b")
    for seed, v in ((0, 50.0), (1, 52.0), (2, 54.0)):  # sd 2 on digits
        _knn(committed, "dr", seed, "digits", v)
    _knn(committed, "x", 0, "digits", 60.0)
    _knn(committed, "x", 0, "faces", 90.0)  # faces has no replicate: no noise estimate
    _knn(rerun, "dr", 0, "digits", 51.0)
    _knn(rerun, "x", 0, "digits", 66.0)
    _knn(rerun, "x", 0, "faces", 91.0)
    _knn(rerun, "y", 0, "digits", 10.0)  # only in the rerun: not shared
    assert seed_noise(committed) == {"digits": 2.0}
    rows = {(r["backbone"], r["task"]): r for r in compare_ledgers(committed, rerun)}
    assert set(rows) == {("dr", "digits"), ("x", "digits"), ("x", "faces")}
    assert rows[("x", "digits")]["in_seed_sd"] == 3.0 and rows[("dr", "digits")]["in_seed_sd"] == 0.5
    assert rows[("x", "faces")]["in_seed_sd"] is None and rows[("x", "faces")]["difference"] == 1.0


def test_the_report_lists_flips_first(tmp_path):
    committed = {"A": {"verdict": "holds", "interval": [0.1, 0.3]}, "B": {"verdict": "not resolved at this scale"},
                 "C": {"verdict": "does not hold", "interval": [-0.5, -0.1]}}
    rerun = {"A": {"verdict": "holds", "interval": [0.05, 0.2]}, "C": {"verdict": "holds", "interval": [0.1, 0.2]}}
    rows = compare_findings(committed, rerun)
    assert [r["item"] for r in rows] == ["C", "B", "A"] and rows[0]["flip"] and rows[1]["rerun"].startswith("not measured")
    for name, data in (("old", committed), ("new", rerun)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "findings.json").write_text(json.dumps(data))
    led = Ledger(tmp_path / "l")
    _knn(led, "dr", 0, "digits", 50.0)
    text = write_reproduction(tmp_path / "old", tmp_path / "l", tmp_path / "new", tmp_path / "l",
                              tmp_path / "reproduction.md").read_text()
    assert "**1 finding(s) flipped between holds and does not hold**: C" in text
    assert text.index("| C **(flipped)** |") < text.index("| A |")
    assert "1 measurements in both ledgers" in text
