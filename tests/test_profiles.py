"""The typed profile schema and the study layout: every section of every profile resolves, bad
values are refused naming the file, section and key, and every stage path comes from the layout."""

from __future__ import annotations

import dataclasses

import pytest

from t2s_lib.errors import T2SError
from t2s_lib.paths import StudyLayout, cache_layout
from t2s_lib.profiles import PROFILE_NAMES, SECTIONS, Profile, load_profile, profile_from_dict


@pytest.mark.parametrize("name", PROFILE_NAMES)
def test_every_section_of_every_profile_resolves(name):
    prof = load_profile(name)
    assert isinstance(prof, Profile) and prof.name == name
    for key, cls in SECTIONS.items():
        assert isinstance(getattr(prof, key), cls), (name, key)
    # the typed configs every stage builds from its section
    assert prof.task2vec.options().img_size == prof.task2vec.img_size
    cfg = prof.pretrain.config(data="d", out="o").check()
    assert cfg.img_size == prof.pretrain.recipe.get("img_size", cfg.img_size)
    for protocol in ("knn", "linear", "finetune"):
        opts = prof.evaluate.options(protocol).check()
        assert opts.protocol == protocol and opts.img_size == prof.evaluate.img_size
    assert len(prof.setting_keys()) == len(prof.pretrain.settings)
    assert isinstance(prof.layout, StudyLayout)


def test_smoke_figures_follow_the_runs_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("T2S_RUNS", str(tmp_path))
    smoke = load_profile("smoke")
    assert smoke.run_dir == tmp_path.resolve() / "smoke"
    assert smoke.figures_dir == smoke.run_dir / "figures"
    cpu = load_profile("cpu")  # a run never writes the committed figures/ (make figures does, from results/)
    assert cpu.figures_dir == cpu.run_dir / "figures"
    moved = smoke.with_run_dir(tmp_path / "elsewhere")
    assert moved.figures_dir == (tmp_path / "elsewhere").resolve() / "figures"


@pytest.mark.parametrize("override, message", [
    ({"render.msaa": 3}, r"render\.msaa: 3 is not allowed"),
    ({"render.size": 64}, r"render: unknown key\(s\) 'size'"),
    ({"task2vec.image_size": 32}, r"'image_size' was renamed: write 'img_size'"),
    ({"pretrain.recipe.img_size": 0}, r"pretrain\.recipe\.img_size: 0 is out of range"),
    ({"pretrain.recipe.img_size": 100000}, r"pretrain\.recipe\.img_size: 100000 is out of range"),
    ({"pretrain.recipe.lrr": 0.1}, r"did you mean 'lr'"),
    ({"pretrain.recipe.epochs": "ten"}, r"pretrain\.recipe\.epochs: expected an integer"),
    ({"pretrain.recipe.arch": "vgg"}, r"unknown architecture 'vgg'"),
    ({"pretrain.settings": ["1_1_1"]}, r"pretrain\.settings\[0\]: malformed setting key"),
    ({"evaluate.k": 0}, r"evaluate\.k: 0 is out of range"),
    ({"evaluate.max_train": -5}, r"evaluate\.max_train: -5 is out of range"),
    ({"tasks.unseen": ["nope"]}, r"tasks\.unseen\[0\]: unknown task 'nope'"),
    ({"cka.kernel": "poly"}, r"cka\.kernel: 'poly' is not allowed"),
    ({"task2vec.fractions": [0.0]}, r"task2vec\.fractions\[0\]: 0.0 is out of range"),
    ({"policy.variants": ["magic"]}, r"unknown policy variant 'magic'"),
    ({"seed": -1}, r"seed must be a non-negative integer"),
    ({"colour": "blue"}, r"unknown key\(s\) 'colour'"),
])
def test_bad_values_are_refused_naming_file_section_and_key(override, message):
    with pytest.raises(T2SError, match=message) as info:
        load_profile("cpu", overrides=override)
    assert "cpu.yaml" in info.value.problem and info.value.fix


def test_more_classes_than_the_library_has_is_refused(lib):
    with pytest.raises(T2SError, match=rf"asks for {len(lib.classes) + 1} classes but library 'sweethome3d' has {len(lib.classes)}"):
        load_profile("cpu", overrides={"pretrain.render.classes": len(lib.classes) + 1})
    # an unfetched library is checked when it is used, not at load time
    prof = load_profile("cpu", overrides={"render.library": "not-fetched-here", "pretrain.render.classes": 500})
    assert prof.pretrain.render.classes == 500


def test_profiles_are_frozen_plain_data():
    prof = load_profile("smoke")
    with pytest.raises(dataclasses.FrozenInstanceError):
        prof.seed = 3  # type: ignore[misc]
    plain = prof.as_dict()
    assert plain["pretrain"]["render"]["img_size"] == prof.pretrain.render.img_size
    again = profile_from_dict({k: v for k, v in plain.items() if k not in ("profile_file", "notebook")}, "round-trip")
    assert again.pretrain == prof.pretrain and again.evaluate == prof.evaluate


def test_layout_names_every_stage_output(tmp_path):
    layout = StudyLayout(tmp_path / "run", tmp_path / "figs")
    assert layout.image_set("0_0_0_0_0_1_0_0_0") == tmp_path / "run/render/0_0_0_0_0_1_0_0_0"
    assert layout.checkpoint("k") == tmp_path / "run/pretrain/k/checkpoint.pt"
    assert layout.task_vector("digits") == tmp_path / "run/task2vec/digits.npz"
    assert layout.task_vector("/data/my tasks/x") == tmp_path / "run/task2vec/data_my_tasks_x.npz"
    assert layout.results_csv == tmp_path / "run/evaluate/results.csv"
    assert layout.finetuned("a/b", "digits").name == "a_b__digits.pt"
    assert layout.provenance == tmp_path / "figs/provenance.json"
    cache = cache_layout()
    assert cache.library("x").parent == cache.libraries and cache.dataset("digits").parent == cache.datasets
    assert cache.package("apt", "gimp-data") == cache.packages / "apt" / "gimp-data"


def test_no_module_builds_run_or_cache_paths_by_hand():
    """Stage outputs and cache folders come from t2s_lib.paths only."""
    import re
    from pathlib import Path

    import t2s_lib

    root = Path(t2s_lib.__file__).parent
    pattern = re.compile(r"""Path\(\s*\w+\[["'](run_dir|figures_dir)["']\]|\bcache_dir\(\)\s*/|\bruns_dir\(\)\s*/""")
    offenders = [str(p.relative_to(root)) for p in root.rglob("*.py")
                 if p.name != "paths.py" and pattern.search(p.read_text())]
    assert offenders == []
