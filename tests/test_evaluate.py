"""Downstream evaluation: linear probe beats chance, tidy results, hyper-parameter table, saved heads."""

from __future__ import annotations

import json

import pytest
import torch

from t2s_lib.errors import T2SError
from t2s_lib.evaluate import (EvalOptions, append_results, best_hparams, evaluate_backbone, extract_features,
                              load_finetuned, make_head, read_results, reward_table, save_finetuned, stratified_split)
from t2s_lib.evaluate.features import Transformed
from t2s_lib.evaluate.hparams import hparam_table
from t2s_lib.train import create_backbone
from t2s_lib.train.data import eval_transform
from t2s_lib.train.toy import ToyTask


@pytest.fixture(scope="module")
def digits():
    return ToyTask(size=32, seed=0)


def _opts(**kw) -> EvalOptions:
    base = dict(img_size=32, device="cpu", workers=0, seed=0)
    base.update(kw)
    return EvalOptions(**base)


def test_linear_probe_beats_chance_on_offline_digits(digits, tmp_path):
    results = tmp_path / "results.csv"
    row = evaluate_backbone("scratch:resnet10t", digits, _opts(protocol="linear", epochs=15, cache_features=True,
                                                               max_train=600, max_test=300), results=results)
    assert row["value"] > 50.0  # chance is 10 %
    assert row["options"]["hparams"] == "default"  # sk-digits is not in the published table
    knn = evaluate_backbone("scratch:resnet10t", digits, _opts(protocol="knn", max_train=600, max_test=300),
                            results=results)
    assert knn["value"] > 50.0
    table = read_results(results)
    assert list(table.columns[:6]) == ["backbone", "task", "protocol", "options", "metric", "value"]
    assert set(table["protocol"]) == {"linear", "knn"} and len(table) == 2


def test_results_upsert_and_reward_table(tmp_path):
    path = tmp_path / "r.csv"
    row = dict(backbone="0_0_0_0_0_1_0_0_0", task="digits", protocol="knn", options={"k": 5}, metric="top1", value=50.0)
    append_results(path, [row])
    append_results(path, [{**row, "value": 60.0}])  # same key: replaced
    append_results(path, [{**row, "options": {"k": 10}, "value": 70.0}])  # other options: a new row
    table = read_results(path)
    assert len(table) == 2 and sorted(table["value"]) == [60.0, 70.0]
    rewards = reward_table(table, options=json.dumps({"k": 5}, separators=(",", ":")))
    assert rewards == {"digits": {"0_0_0_0_0_1_0_0_0": 60.0}}


def test_published_hparam_table():
    assert len(hparam_table()) == 40
    assert best_hparams("ChestXPneumonia", "finetune") == {"lr": 0.001, "batch_size": 32, "weight_decay": 0.0,
                                                           "source": "paper"}
    assert best_hparams("omniglot", "finetune")["lr"] == 0.1
    assert best_hparams("Sketch", "linear") == {"lr": 0.01, "batch_size": 32, "weight_decay": 1e-5, "source": "paper"}
    assert best_hparams("digits", "linear")["source"] == "default"
    with pytest.raises(T2SError, match="not in the published"):
        best_hparams("digits", "linear", strict=True)


def test_stratified_split_holds_out_30_percent_per_class():
    labels = [0] * 10 + [1] * 20 + [2] * 3
    tr, va = stratified_split(labels, 0.3, seed=1)
    assert sorted(tr + va) == list(range(33))
    held = [labels[i] for i in va]
    assert held.count(0) == 3 and held.count(1) == 6 and held.count(2) == 1


def test_grid_search_mode_records_trials(digits):
    grid = {"lr": [1e-5, 1e-2], "weight_decay": [0.0], "batch_size": [32]}
    row = evaluate_backbone("scratch:resnet10t", digits, _opts(protocol="linear", hparams="grid", grid=grid, epochs=4,
                                                               cache_features=True, max_train=200, max_test=100))
    assert row["options"]["hparams"] == "grid" and len(row["grid_trials"]) == 2
    assert row["options"]["lr"] == max(row["grid_trials"], key=lambda t: t["val_top1"])["lr"]


class _Task:
    def __init__(self, name, classes):
        self.name, self.classes, self.num_classes = name, classes, len(classes)


def test_finetune_saves_a_head_that_refuses_other_classes(digits, tmp_path):
    out = tmp_path / "ft.pt"
    row = evaluate_backbone("scratch:resnet10t", digits, _opts(protocol="finetune", epochs=1, max_train=64, max_test=32,
                                                               batch_size=32, save_model=str(out)))
    assert 0.0 <= row["value"] <= 100.0 and out.is_file()
    backbone, head = load_finetuned(out, digits)
    assert head[-1].out_features == 10
    with pytest.raises(T2SError, match="classes"):
        load_finetuned(out, _Task("other", [f"x{i}" for i in range(10)]))
    with pytest.raises(T2SError, match="3 classes"):
        load_finetuned(out, _Task("three", ["a", "b", "c"]))


def test_train_mode_features_are_reproducible_and_differ_from_eval(digits):
    model = create_backbone("resnet10t", 0, drop_path_rate=0.1).eval()
    ds = Transformed(torch.utils.data.Subset(digits.dataset("test"), range(40)), eval_transform(32))
    f_eval, _ = extract_features(model, ds, batch_size=20)
    f_train1, _ = extract_features(model, ds, batch_size=20, train_mode=True, seed=1)
    f_train2, _ = extract_features(model, ds, batch_size=20, train_mode=True, seed=1)
    assert torch.equal(f_train1, f_train2) and not torch.allclose(f_eval, f_train1)
    assert not model.training  # the caller's mode is restored


def test_bad_protocol_and_missing_checkpoint(digits, tmp_path):
    with pytest.raises(T2SError, match="protocol"):
        evaluate_backbone("scratch:resnet10t", digits, _opts(protocol="svm"))
    with pytest.raises(T2SError, match="not found"):
        evaluate_backbone(tmp_path / "nope.pt", digits, _opts())


def test_cli_evaluate_on_registered_offline_task(tmp_path, digits_task):
    from t2s_lib.cli import main

    results = tmp_path / "res.csv"
    rewards = tmp_path / "reward.json"
    rc = main(["evaluate", "scratch:resnet10t", "--task", "digits", "--protocol", "knn", "--profile", "smoke",
               "--results", str(results), "--reward-table", str(rewards), "--device", "cpu"])
    assert rc == 0
    assert json.loads(rewards.read_text())["digits"]["scratch:resnet10t"] > 30.0


def test_released_knn_loader_leaves_the_dropped_tail_as_zero_features_of_class_0(digits):
    model = create_backbone("resnet10t", 0, drop_path_rate=0.1)
    ds = Transformed(torch.utils.data.Subset(digits.dataset("train"), range(50)), eval_transform(32))
    labels = [int(ds[i][1]) for i in range(50)]
    f, y = extract_features(model, ds, batch_size=16, train_mode=True, seed=0, released_loader=True)
    kept = 50 // 16 * 16
    assert f.shape[0] == 50 and torch.all(f[kept:] == 0) and torch.all(y[kept:] == 0)
    assert torch.all(f[:kept].abs().sum(1) > 0)
    assert sorted(y[:kept].tolist()) != sorted(labels[:kept])  # a shuffled subset, not the first 48
    again, _ = extract_features(model, ds, batch_size=16, train_mode=True, seed=0, released_loader=True)
    assert torch.equal(f, again)
