"""Test options: slow, GPU-only and large-data tests are skipped by default, with a visible reason."""

from __future__ import annotations

import os

import pytest


def pytest_configure(config):
    """The results ledger of a test session is its own (never the project's runs/ or results/)."""
    import tempfile

    os.environ["T2S_LEDGER"] = tempfile.mkdtemp(prefix="t2s-test-ledger-")
    os.environ.pop("T2S_LEDGER_MODE", None)
    os.environ.pop("T2S_DEADLINE", None)


@pytest.fixture(autouse=True)
def own_ledger(tmp_path_factory, monkeypatch):
    """Each test measures into an empty ledger of its own, so no test passes by replaying another's records."""
    monkeypatch.setenv("T2S_LEDGER", str(tmp_path_factory.mktemp("ledger")))


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", help="run tests marked slow")
    parser.addoption("--run-large-data", action="store_true", help="run tests that need T2S_DATA_ROOT datasets")
    parser.addoption("--run-objects", action="store_true",
                     help="run tests of the combined object library (needs t2s assets fetch --library objects)")


def _cuda_available() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:
        return False


def pytest_collection_modifyitems(config, items):
    run_slow = config.getoption("--run-slow") or os.environ.get("T2S_RUN_SLOW") == "1"
    run_large = config.getoption("--run-large-data")
    run_objects = config.getoption("--run-objects") or os.environ.get("T2S_RUN_OBJECTS") == "1"
    has_cuda = None
    for item in items:
        if "slow" in item.keywords and not run_slow:
            item.add_marker(pytest.mark.skip(reason="slow test: run with --run-slow"))
        if "large_data" in item.keywords and not run_large:
            item.add_marker(pytest.mark.skip(reason="needs a paper dataset under T2S_DATA_ROOT: run with --run-large-data"))
        if "objects_library" in item.keywords and not run_objects:
            item.add_marker(pytest.mark.skip(reason="needs the objects library (t2s assets fetch --library objects, "
                                                    "2.5 GB): run with --run-objects"))
        if "gpu" in item.keywords:
            if has_cuda is None:
                has_cuda = _cuda_available()
            if not has_cuda:
                item.add_marker(pytest.mark.skip(reason="needs a CUDA GPU (none on this machine)"))


@pytest.fixture(scope="session")
def lib():
    """The fetched Sweet Home 3D library (shared by the asset and renderer tests)."""
    from t2s_lib.assets import load_library
    from t2s_lib.errors import T2SError

    try:
        return load_library("sweethome3d")
    except T2SError as exc:
        pytest.fail(f"assets are not fetched: run `t2s assets fetch` (or `make assets`) first\n{exc}")


@pytest.fixture(scope="session")
def digits_task():
    """The offline ``digits`` task (built by ``t2s data fetch``), shared by the CLI tests."""
    from t2s_lib.errors import T2SError
    from t2s_lib.tasks import get_task

    try:
        task = get_task("digits")
        task.dataset("train")
    except T2SError as exc:
        pytest.fail(f"offline data are not fetched: run `t2s data fetch` (or `make data`) first\n{exc}")
    return task


#: A tiny reward-table profile (2 tasks, 3 settings, one replicate): shared by the builder and adapt tests.
TINY_PROFILE = {
    "name": "tiny", "seed": 0, "device": "cpu",
    "render": {"library": "sweethome3d", "msaa": 0, "workers": 1},
    "pretrain": {"render": {"images": 16, "classes": 2, "img_size": 16},
                 "recipe": {"arch": "resnet10t", "epochs": 1, "batch_size": 8, "img_size": 16, "warmup_epochs": 0,
                            "workers": 0, "mixup": 0.0, "cutmix": 0.0, "auto_augment": None, "val_fraction": 0.25}},
    "evaluate": {"tasks": ["digits", "faces"], "img_size": 16, "max_train": 80, "max_test": 40},
    "rewards": {"design": "explicit", "settings": ["0_0_0_0_0_1_0_0_1"], "seeds": [0], "validation": True,
                "replicates": {"settings": ["all_off"], "seeds": [1]}},
}


@pytest.fixture(scope="session")
def tiny(tmp_path_factory, lib, digits_task):
    """The tiny profile, loaded from a YAML file (its run folder in a temporary directory)."""
    import yaml

    from t2s_lib.profiles import load_profile

    folder = tmp_path_factory.mktemp("tiny")
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump({**TINY_PROFILE, "run_dir": str(folder / "runs")}))
    return load_profile(path)


@pytest.fixture(scope="session")
def reference(tiny, tmp_path_factory):
    """The tiny profile's reward table, built once, uninterrupted (6 cells x 2 tasks)."""
    from t2s_lib.rewards import build_table, spec_from_profile

    out = tmp_path_factory.mktemp("reference") / "table"
    result = build_table(out, spec_from_profile(tiny), log=lambda *_: None)
    assert not result.failed and len(result.done) == 6
    return out
