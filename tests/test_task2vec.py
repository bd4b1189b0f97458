"""Task2Vec: layout, determinism, seed agreement, task separation, caching, bad input.

Embeddings use the smoke settings (32 px, 200 feature images, 256 Fisher draws in batches of 16)
on real offline tasks, with one torch thread (much faster than two on a shared 2-core machine).
"""

from __future__ import annotations

import dataclasses
import json
import time

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from t2s_lib.cli import main as cli_main
from t2s_lib.errors import T2SError
from t2s_lib.task2vec import (
    EXPECTED_DIM,
    Embedding,
    Task2VecOptions,
    build_probe,
    cosine_similarity,
    cosine_similarity_matrix,
    distance_matrix,
    embed_task,
    layout,
    published_layout,
    published_vectors,
    task2vec_distance,
)
from t2s_lib.tasks.fetch import is_fetched

SMOKE = Task2VecOptions(img_size=32, max_samples=200, fisher_samples=256, fisher_batch_size=16,
                        classifier_epochs=2, classifier_samples=2000)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def isolated_cache(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    # embeddings go to a private cache; datasets are still read from the shared cache
    from t2s_lib.task2vec import embed as embed_mod

    cache = tmp_path_factory.mktemp("t2v_cache")
    mp.setattr(embed_mod, "embedding_cache_dir", lambda: cache)
    yield cache
    mp.undo()


@pytest.fixture(scope="module")
def embs(isolated_cache):
    for n in ("digits", "textures"):
        if not is_fetched(n):
            pytest.fail(f"offline task {n!r} missing: run `t2s data fetch` (or `make data`) first")
    out = {
        "digits0": embed_task("digits", SMOKE, device="cpu", cache=False),
        "digits0b": embed_task("digits", SMOKE, device="cpu", cache=False),
        "digits1": embed_task("digits", SMOKE, seed=1, device="cpu", cache=False),
        "textures0": embed_task("textures", SMOKE, device="cpu", cache=False),
    }
    return out


def test_probe_layout_matches_published_layout():
    model, info = build_probe("resnet18")
    assert layout(model) == published_layout()
    assert layout(model)[-1]["end"] == 9600 == EXPECTED_DIM["resnet18"]
    assert info["weights"] == "random-init"
    m34, _ = build_probe("resnet34")
    assert layout(m34)[-1]["end"] == EXPECTED_DIM["resnet34"]
    # the random-init probe is the same for every call (seeded), so tasks are comparable
    a, _ = build_probe("resnet18")
    assert torch.equal(a.conv1.weight, model.conv1.weight)


def test_embedding_dimension_values_and_metadata(embs):
    e = embs["digits0"]
    _, pub = published_vectors()
    assert e.hessian.shape == pub.shape[1:] == (9600,)
    assert e.hessian.dtype == np.float32 and np.all(np.isfinite(e.hessian)) and np.all(e.hessian >= 0)
    assert np.all(e.scale == 1.0) and e.hessian.max() > 0
    meta = e.meta
    assert meta["probe"] == "resnet18" and meta["weights"]["weights"] == "random-init"
    assert "not ImageNet" in meta["weights"]["note"]
    assert meta["options"]["fisher_samples"] == 256 and meta["seed"] == 0 and meta["data_fingerprint"]
    assert meta["fisher_images"] == 256 and 190 <= meta["images_used"] <= 200  # stratified cap


def test_same_seed_is_bit_identical(embs):
    assert np.array_equal(embs["digits0"].hessian, embs["digits0b"].hessian)


def test_seeds_agree_and_tasks_differ(embs):
    seed_cos = cosine_similarity(embs["digits0"].hessian, embs["digits1"].hessian)
    task_cos = cosine_similarity(embs["digits0"].hessian, embs["textures0"].hessian)
    seed_d = task2vec_distance(embs["digits0"].hessian, embs["digits1"].hessian)
    task_d = task2vec_distance(embs["digits0"].hessian, embs["textures0"].hessian)
    print(f"\nseed-to-seed cosine {seed_cos:.3f} (distance {seed_d:.3f}); digits-textures cosine {task_cos:.3f} (distance {task_d:.3f})")
    assert seed_cos > 0.85
    assert task_cos < seed_cos - 0.03
    # the symmetric Task2Vec distance separates these less than the cosine with a random-init probe (printed only)


def test_save_load_roundtrip_and_cache(tmp_path, embs, isolated_cache):
    path = embs["digits0"].save(tmp_path / "d.npz")
    back = Embedding.load(path)
    assert np.array_equal(back.hessian, embs["digits0"].hessian) and back.meta["task"] == "digits"
    assert json.loads((tmp_path / "d.json").read_text())["probe"] == "resnet18"
    opts = Task2VecOptions(img_size=32, max_samples=60, fisher_samples=32, fisher_batch_size=16,
                           classifier_epochs=1, classifier_samples=200)
    first = embed_task("faces", opts, device="cpu")
    again = embed_task("faces", opts, device="cpu")
    assert "from_cache" in again.meta and np.array_equal(first.hessian, again.hessian)
    other = embed_task("faces", opts, seed=5, device="cpu")
    assert "from_cache" not in other.meta  # a different option is a different cache key


def test_fraction_is_stratified(isolated_cache):
    opts = Task2VecOptions(img_size=32, max_samples=None, fisher_samples=32, fisher_batch_size=16,
                           classifier_epochs=1, classifier_samples=200, fraction=0.2)
    e = embed_task("digits", opts, device="cpu", cache=False)
    from t2s_lib.tasks import get_task

    counts = np.bincount(get_task("digits").labels("train"))
    assert e.meta["images_used"] == int(np.maximum(1, np.round(counts * 0.2)).sum())


def test_probe_checkpoint_right_and_wrong_architecture(tmp_path, isolated_cache):
    good = tmp_path / "r18.pt"
    torch.manual_seed(1)
    torch.save({"state_dict": {f"module.{k}": v for k, v in torchvision.models.resnet18().state_dict().items()}}, good)
    opts = Task2VecOptions(img_size=32, max_samples=40, fisher_samples=32, fisher_batch_size=16,
                           classifier_epochs=1, classifier_samples=100, probe_checkpoint=str(good))
    e = embed_task("faces", opts, device="cpu", cache=False)
    assert e.meta["weights"]["weights"] == "checkpoint" and len(e.meta["weights"]["checkpoint_sha256"]) == 64
    bad = tmp_path / "r34.pt"
    torch.save(torchvision.models.resnet34().state_dict(), bad)
    with pytest.raises(T2SError, match="does not match a torchvision resnet18.*") as exc:
        embed_task("faces", opts, probe_checkpoint=str(bad), device="cpu", cache=False)
    assert "resnet34" in str(exc.value)
    r50 = tmp_path / "r50.pt"
    torch.save(torchvision.models.resnet50().state_dict(), r50)
    with pytest.raises(T2SError, match="shape mismatches|missing keys"):
        build_probe("resnet18", r50)
    with pytest.raises(T2SError, match="not found"):
        build_probe("resnet18", tmp_path / "absent.pt")
    with pytest.raises(T2SError, match="unknown probe"):
        build_probe("vgg11")


def test_bad_images_are_skipped_and_counted_or_fail(tmp_path, isolated_cache):
    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (tmp_path / "t" / "train" / c).mkdir(parents=True)
        (tmp_path / "t" / "test" / c).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(tmp_path / "t" / "train" / c / f"{i}.png")
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(tmp_path / "t" / "test" / c / "0.png")
    (tmp_path / "t" / "train" / "a" / "broken.png").write_bytes(b"\x89PNG not really")
    opts = Task2VecOptions(img_size=32, fisher_samples=16, fisher_batch_size=4, batch_size=4,
                           classifier_epochs=1, classifier_samples=16)
    with pytest.raises(T2SError, match="broken.png"):
        embed_task(tmp_path / "t", opts, device="cpu", cache=False)
    e = embed_task(tmp_path / "t", opts, on_bad_image="skip", device="cpu", cache=False)
    assert e.meta["bad_images_skipped"] == 1 and e.meta["images_used"] == 12


def test_bad_options():
    with pytest.raises(T2SError, match="fraction"):
        Task2VecOptions(fraction=1.5).check()
    with pytest.raises(T2SError, match="not implemented"):
        Task2VecOptions(method="variational").check()
    with pytest.raises(T2SError, match="unknown Task2Vec option"):
        embed_task("faces", fisher_sampels=10)


def test_distances_on_published_vectors():
    names, H = published_vectors()
    assert names[:3] == ["CropDisease", "Flowers102", "DeepWeeds"] and len(names) == 20
    S = cosine_similarity_matrix(H)
    off = S[~np.eye(20, dtype=bool)]
    assert np.allclose(np.diag(S), 1.0)
    assert 0.05 < off.min() < 0.15 and 0.95 < off.max() <= 0.99 and abs(off.mean() - 0.51) < 0.03  # reference section 1
    D = distance_matrix(H[:4])
    assert np.allclose(D, D.T) and np.allclose(np.diag(D), 0) and np.all(D[~np.eye(4, dtype=bool)] > 0)
    assert task2vec_distance(H[0], H[0]) == pytest.approx(0.0, abs=1e-9)


def test_cli_writes_embedding_and_reports_errors(tmp_path, isolated_cache, capsys):
    out = tmp_path / "faces.npz"
    rc = cli_main(["task2vec", "--task", "faces", "--out", str(out), "--profile", "smoke", "--fisher-samples", "32",
                   "--max-samples", "40", "--threads", "1", "--device", "cpu"])
    assert rc == 0 and out.is_file() and out.with_suffix(".json").is_file()
    assert Embedding.load(out).hessian.shape == (9600,)
    assert cli_main(["task2vec", "--task", "no-such-task", "--out", str(out), "--profile", "smoke"]) == 2
    assert "unknown task" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["SVHN", "PacsC"])
def test_embeds_a_paper_task_from_its_layout(name, tmp_path, isolated_cache):
    from test_tasks_paper import WRITERS

    WRITERS[name](tmp_path)
    opts = Task2VecOptions(img_size=32, fisher_samples=8, fisher_batch_size=4, batch_size=4,
                           classifier_epochs=1, classifier_samples=8)
    e = embed_task(name, opts, root=str(tmp_path), device="cpu", cache=False)
    assert e.hessian.shape == (9600,) and e.meta["task_kind"] == "paper" and np.all(np.isfinite(e.hessian))


def test_trained_probe_is_cached_and_its_vectors_are_not_compared_with_other_probes(tmp_path, monkeypatch, lib,
                                                                                     isolated_cache):
    from t2s_lib.paths import CacheLayout, cache_layout
    from t2s_lib.task2vec import trained_probe
    from t2s_lib.task2vec.distances import check_comparable

    real = cache_layout()
    monkeypatch.setattr(trained_probe, "cache_layout", lambda: CacheLayout(tmp_path))  # probes in a private folder
    recipe = trained_probe.ProbeRecipe(images=24, classes=3, img_size=32, train={
        "arch": "resnet18", "epochs": 1, "batch_size": 8, "img_size": 32, "warmup_epochs": 0, "workers": 0,
        "mixup": 0.0, "cutmix": 0.0, "auto_augment": None})
    ckpt = trained_probe.probe_checkpoint(recipe, device="cpu", log=lambda *_: None)
    assert ckpt == tmp_path / "probes" / recipe.key / "pretrain" / "checkpoint.pt" and ckpt.is_file()
    assert not (ckpt.parent.parent / "images").exists()
    t0 = time.perf_counter()
    assert trained_probe.probe_checkpoint(recipe, device="cpu") == ckpt and time.perf_counter() - t0 < 1
    opts = dataclasses.replace(SMOKE, fisher_samples=32)
    trained = embed_task("digits", dataclasses.replace(opts, probe_checkpoint=str(ckpt)), threads=1)
    plain = embed_task("digits", opts, threads=1)
    assert trained.meta["comparability"]["weights"] == trained.meta["weights"]["checkpoint_sha256"]
    assert plain.meta["comparability"]["weights"] == "random-init:0"
    assert not np.allclose(trained.hessian, plain.hessian)
    with pytest.raises(T2SError, match="not comparable.*weights"):
        check_comparable({"a": trained.meta, "b": plain.meta})
    other_batch = dict(plain.meta, comparability={**plain.meta["comparability"], "fisher_batch_size": 64})
    with pytest.raises(T2SError, match="fisher_batch_size"):
        check_comparable({"a": plain.meta, "b": other_batch})
    assert check_comparable({"a": plain.meta, "b": plain.meta})["probe"] == "resnet18"
    assert real.root != tmp_path
