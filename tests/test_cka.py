"""CKA: identity, symmetry, invariances, and the minibatch estimate against the full-batch value."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from t2s_lib.cka import MinibatchCKA, cka, cka_matrices, load_cka, minibatch_cka, save_cka
from t2s_lib.errors import T2SError


@pytest.fixture(scope="module")
def xy():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(800, 48, generator=g, dtype=torch.float64)
    y = torch.tanh(x @ torch.randn(48, 24, generator=g, dtype=torch.float64)) + 0.8 * torch.randn(800, 24, generator=g,
                                                                                                    dtype=torch.float64)
    return x, y


@pytest.mark.parametrize("kernel", ["linear", "rbf"])
def test_identity_and_symmetry(xy, kernel):
    x, y = xy
    assert cka(x, x, kernel) == pytest.approx(1.0, abs=1e-12)
    assert cka(x, y, kernel) == pytest.approx(cka(y, x, kernel), abs=1e-12)
    assert 0.05 < cka(x, y, kernel) < 0.95


def test_invariant_to_orthogonal_transform_and_isotropic_scaling(xy):
    x, y = xy
    q, _ = torch.linalg.qr(torch.randn(48, 48, generator=torch.Generator().manual_seed(1), dtype=torch.float64))
    base = cka(x, y)
    assert cka(x @ q, y) == pytest.approx(base, abs=1e-10)
    assert cka(7.5 * x, 0.01 * y) == pytest.approx(base, abs=1e-10)
    # RBF with a median-relative bandwidth is invariant to both as well
    assert cka(3.0 * (x @ q), y, "rbf") == pytest.approx(cka(x, y, "rbf"), abs=1e-8)
    # ...but CKA is not invariant to an arbitrary invertible linear map (sanity of the test itself)
    a = torch.randn(48, 48, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    assert abs(cka(x @ a, y) - base) > 1e-3


def test_minibatch_estimate_converges_to_full_batch(xy):
    x, y = xy
    full = cka(x, y)
    assert minibatch_cka(x, y, batch_size=800, epochs=1) == pytest.approx(full, abs=1e-10)  # one batch = full
    coarse = abs(minibatch_cka(x, y, batch_size=100, epochs=1) - full)
    fine = abs(minibatch_cka(x, y, batch_size=200, epochs=8, seed=1) - full)
    assert fine < 0.02 and fine <= coarse + 0.005


def test_matrix_accumulator_is_symmetric_with_unit_diagonal(xy):
    x, y = xy
    acc = MinibatchCKA(["x", "y", "x2"])
    for s in range(0, 800, 200):
        acc.update({"x": x[s:s + 200], "y": y[s:s + 200], "x2": 2 * x[s:s + 200]})
    m = acc.matrix()
    np.testing.assert_allclose(m, m.T, atol=1e-12)
    np.testing.assert_allclose(np.diag(m), 1.0, atol=1e-12)
    assert m[0, 2] == pytest.approx(1.0, abs=1e-12)
    with pytest.raises(T2SError, match="at least 4"):
        MinibatchCKA(["a", "b"]).update([x[:3], y[:3]])


def test_stage_cka_between_backbones_on_a_task(tmp_path):
    from t2s_lib.train.toy import ToyTask

    task = ToyTask(size=32)
    from t2s_lib.train import init_stage_model

    other = init_stage_model("resnet10t", seed=5)
    res = cka_matrices({"a": "scratch:resnet10t", "b": "scratch:resnet10t", "c": other}, [task], img_size=32,
                       batch_size=32, max_images=64, device="cpu")
    assert res["mean"].shape == (4, 3, 3) and res["tasks"] == ["sk-digits"]
    # a and b are initialised from the same seed: identical networks, CKA 1 at every stage
    np.testing.assert_allclose(res["mean"][:, 0, 1], 1.0, atol=1e-8)
    assert (res["mean"][:, 0, 2] < 0.999).all()
    path = save_cka(res, tmp_path / "cka")
    back = load_cka(path)
    np.testing.assert_allclose(back["mean"], res["mean"])
    assert back["names"] == ["a", "b", "c"]


def test_cli_cka_on_registered_offline_task(tmp_path, digits_task):
    from t2s_lib.cli import main

    rc = main(["cka", "A=scratch:resnet10t", "scratch:resnet18", "--task", "digits", "--img-size", "32",
               "--batch-size", "32", "--max-images", "64", "--out", str(tmp_path / "m"), "--device", "cpu"])
    assert rc == 0
    res = load_cka(tmp_path / "m")
    assert res["names"] == ["A", "scratch:resnet18"] and res["mean"].shape == (4, 2, 2)


def test_figure_1_finding_carries_a_t_interval_over_its_few_tasks():
    """Backbones agree at stage 1 and differ at stage 4 on every task; after fine-tuning 2 tasks they agree
    more. Each difference is a t interval over the tasks it has (2 fine-tuned tasks: 1 df, wide)."""
    import numpy as np

    from t2s_lib.cka import cka_finding

    def result(tasks, last):
        per = {t: np.stack([np.array([[1.0, c], [c, 1.0]]) for c in (0.9, 0.8, 0.7, last + 0.01 * i)])
               for i, t in enumerate(tasks)}
        return {"names": ["a", "b"], "stages": [1, 2, 3, 4], "tasks": list(tasks), "per_task": per,
                "mean": np.mean(np.stack(list(per.values())), axis=0)}

    tasks = ["t0", "t1", "t2", "t3", "t4"]
    verdict, sentence, falls = cka_finding(result(tasks, 0.3))
    assert verdict == "holds" and falls.low > 0 and "t over 5 tasks, 4 df" in falls.method
    verdict, sentence, _ = cka_finding(result(tasks, 0.3), result(["t0", "t1"], 0.3), result(["t0", "t1"], 0.5))
    assert "t over 2 tasks, 1 df (fine-tuned tasks)" in sentence and verdict == "holds"
