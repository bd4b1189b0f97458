"""5-NN as published agrees with a direct brute-force computation."""

from __future__ import annotations

import numpy as np
import torch

from t2s_lib.evaluate import knn_accuracy, knn_predict


def _brute_force(train, train_y, test, k=5, t=0.07, num_classes=None):
    train = train / np.linalg.norm(train, axis=1, keepdims=True)
    test = test / np.linalg.norm(test, axis=1, keepdims=True)
    num_classes = num_classes or train_y.max() + 1
    out = []
    for q in test:  # one query at a time, plain numpy: the definition, not the fast path
        sims = train @ q
        nn = np.argsort(-sims, kind="stable")[:k]
        votes = np.zeros(num_classes)
        for j in nn:
            votes[train_y[j]] += np.exp(sims[j] / t)
        out.append(int(np.argmax(votes)))
    return np.array(out)


def test_knn_matches_brute_force_and_is_chunk_invariant():
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(7, 32))
    train_y = rng.integers(0, 7, 600)
    test_y = rng.integers(0, 7, 250)
    train = centers[train_y] + 1.5 * rng.normal(size=(600, 32))
    test = centers[test_y] + 1.5 * rng.normal(size=(250, 32))
    expected = _brute_force(train, train_y, test, num_classes=7)
    for chunk in (1, 37, 4096):
        got = knn_predict(torch.tensor(train), torch.tensor(train_y), torch.tensor(test), num_classes=7,
                          chunk_size=chunk).numpy()
        np.testing.assert_array_equal(got, expected)
    acc = knn_accuracy(torch.tensor(train), torch.tensor(train_y), torch.tensor(test), torch.tensor(test_y))
    assert abs(acc - 100 * np.mean(expected == test_y)) < 1e-9
    assert acc > 100 / 7 * 2  # separable clusters: well above chance


def test_knn_weights_favour_close_neighbours():
    # two neighbours of class 1 very close beat three of class 0 further away, as exp(sim/0.07) says
    train = torch.tensor([[1.0, 0.0], [1.0, 0.02], [0.6, 0.8], [0.6, 0.81], [0.6, 0.79]])
    labels = torch.tensor([1, 1, 0, 0, 0])
    assert knn_predict(train, labels, torch.tensor([[1.0, 0.01]]), k=5).item() == 1
    # with a huge temperature the vote is a plain majority
    assert knn_predict(train, labels, torch.tensor([[1.0, 0.01]]), k=5, temperature=1e6).item() == 0
