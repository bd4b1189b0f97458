"""The synthetic image generator: parameter semantics checked on rendered images, determinism
across workers, resume after a killed run, the TDW command stream and bad input.

Needs ``t2s assets fetch`` (the Makefile's test target runs it first).
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from t2s_lib.errors import T2SError
from t2s_lib.settings import SimSetting, parse_key

SIZE = 64


@pytest.fixture(scope="module")
def renderer(lib):
    from t2s_lib.assets import load_hdri
    from t2s_lib.render.gl import GLRenderer

    r = GLRenderer(SIZE, lib.mesh, load_hdri, msaa=4)
    yield r
    r.release()


def _scenes(setting: SimSetting, n: int = 6, model_stride: int = 1, classes: int = 3):
    from t2s_lib.render import sample_scenes

    return sample_scenes(setting, n * model_stride, classes=classes)[::model_stride][:n]


def _same_model(setting: SimSetting, n: int = 6):
    """n scenes of one model (the first class's first model), differing by image index."""
    from t2s_lib.render import sample_scenes

    scenes = sample_scenes(setting, 60, classes=1)
    first = scenes[0].model
    return [s for s in scenes if s.model == first][:n]


# ----- scene sampling (no rendering) ------------------------------------------------------------
def test_scene_sampling_ranges_and_determinism(lib):
    from t2s_lib.render import sample_scenes
    from t2s_lib.render.scene import APERTURE_SHARP

    dr = parse_key("1_1_1_1_1_3_0_1_1")
    a = sample_scenes(dr, 400, seed=3, classes=4)
    b = sample_scenes(dr, 400, seed=3, classes=4)
    assert a == b
    rot = np.array([s.rotation_deg for s in a])
    assert rot.min() >= -180 and rot.max() <= 180 and rot.std() > 60
    d = np.array([s.distance_factor for s in a])
    assert d.min() >= 0.4 and d.max() <= 1.5
    col = np.array([s.light_color for s in a])
    assert col.min() >= 0.05 and col.max() <= 1.0
    inten = np.array([s.light_intensity for s in a])
    assert inten.min() >= 0.4 and inten.max() <= 1.6
    shallow = np.mean([s.aperture < APERTURE_SHARP for s in a])
    assert 0.65 < shallow < 0.85  # p = 0.75
    assert all(0.5 <= s.aperture <= 1.2 for s in a if s.aperture < APERTURE_SHARP)
    # background: the HDRI changes about every 2 images of a model; a random view direction
    first_model = [s for s in a if s.model == a[0].model]
    runs = sum(1 for x, y in zip(first_model, first_model[1:]) if x.hdri != y.hdri)
    assert len(first_model) >= 6 and runs >= len(first_model) // 2 - 1
    assert all(all(x.hdri == y.hdri for x, y in [first_model[i:i + 2]]) for i in range(0, len(first_model) - 1, 2))
    off = sample_scenes(SimSetting(), 40, classes=4)
    assert {s.hdri for s in off} == {off[0].hdri} and all(s.view_dir is None and s.materials is None for s in off)
    assert all(s.rotation_deg == (0.0, 0.0, 0.0) and s.distance_factor == 1.0 for s in off)
    # common random numbers: switching one parameter changes only its fields
    only_rot = sample_scenes(SimSetting(pose_rot=True), 40, classes=4)
    for x, y in zip(off, only_rot):
        assert dataclasses.replace(y, rotation_deg=x.rotation_deg, setting=x.setting) == x


def test_plan_splits_images_evenly(lib):
    from t2s_lib.render import make_plan

    plan = make_plan({"a": ["m1", "m2", "m3"], "b": ["n1"]}, 11)
    assert len(plan) == 11
    per = {}
    for it in plan:
        per[it.model] = per.get(it.model, 0) + 1
    assert per == {"m1": 2, "m2": 2, "m3": 2, "n1": 5}


# ----- parameter semantics on rendered images ---------------------------------------------------
def test_camera_distance_changes_projected_size(renderer):
    fixed = _same_model(SimSetting(lighting_color=True, materials=True), 5)
    areas_off = [renderer.object_mask(s).sum() for s in fixed]
    assert len(set(areas_off)) == 1 and areas_off[0] > 0.02 * SIZE * SIZE
    varied = _same_model(SimSetting(pose_scale=True), 6)
    areas = np.array([renderer.object_mask(s).sum() for s in varied], float)
    d = np.array([s.distance_factor for s in varied])
    assert areas.max() / areas.min() > 1.5
    # nearer camera (smaller d) -> bigger object: rank correlation is negative
    rank = np.corrcoef(np.argsort(np.argsort(d)), np.argsort(np.argsort(areas)))[0, 1]
    assert rank < -0.8
    # unclipped sizes scale like 1/d^2 relative to the fitted distance
    for a, dd in zip(areas, d):
        if dd > 0.9:
            assert 0.6 < a * dd ** 2 / areas_off[0] < 1.6


def test_background_off_keeps_background_pixels(renderer):
    # everything that does not touch the background varies (blur off, background off)
    setting = parse_key("0_0_1_1_1_3_0_1_1")
    scenes = _scenes(setting, 5, model_stride=7)
    imgs = [renderer.render(s).astype(int) for s in scenes]
    union = np.zeros((SIZE, SIZE), bool)
    for s in scenes:
        union |= renderer.object_mask(s, coverage=0)
    bg = ~union
    assert bg.sum() > 0.2 * SIZE * SIZE
    for img in imgs[1:]:
        assert np.array_equal(img[bg], imgs[0][bg])
    on = [renderer.render(s).astype(int) for s in _scenes(parse_key("1_0_1_1_1_3_0_1_1"), 5, model_stride=7)]
    assert any(np.abs(img[bg] - on[0][bg]).mean() > 5 for img in on[1:])


def test_rotation_off_keeps_object_mask(renderer):
    # rotation and camera distance off; background, lights, materials and blur vary
    setting = parse_key("1_1_1_1_1_3_0_0_0")
    masks = [renderer.object_mask(s) for s in _same_model(setting, 5)]
    assert all(np.array_equal(m, masks[0]) for m in masks[1:])
    rot = [renderer.object_mask(s) for s in _same_model(SimSetting(pose_rot=True), 5)]
    assert any(not np.array_equal(m, rot[0]) for m in rot[1:])


@pytest.mark.parametrize("param", ["lighting_intensity", "lighting_color", "lighting_dir", "materials"])
def test_lights_and_materials_change_object_pixels_only_when_on(renderer, param):
    base = _scenes(SimSetting(), 4, model_stride=5)
    varied = _scenes(SimSetting(**{param: True}), 4, model_stride=5)
    changed = 0
    for s0, s1 in zip(base, varied):
        a, b = renderer.render(s0).astype(int), renderer.render(s1).astype(int)
        mask = renderer.object_mask(s0)
        assert np.array_equal(mask, renderer.object_mask(s1))
        bg = ~renderer.object_mask(s0, coverage=0)
        assert np.array_equal(a[bg], b[bg]), "background must not change"
        changed += np.abs(a[mask] - b[mask]).mean() > 1.0
    assert changed >= 3
    # and off means off: rendering the all-off scenes again gives the same pixels
    again = _scenes(SimSetting(), 4, model_stride=5)
    assert all(np.array_equal(renderer.render(x), renderer.render(y)) for x, y in zip(base, again))


def test_blur_softens_background(renderer):
    sharp = _same_model(SimSetting(), 1)[0]
    blurred = dataclasses.replace(sharp, aperture=0.5, focus_distance=2.0)
    a, b = renderer.render(sharp).astype(float), renderer.render(blurred).astype(float)
    mask = renderer.object_mask(sharp)

    def detail(x):
        return np.abs(np.diff(x, axis=1))[~mask[:, 1:]].mean()

    assert detail(b) < 0.8 * detail(a)


# ----- dataset writer --------------------------------------------------------------------------
def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def rows_file(root: Path, index: int) -> str:
    from t2s_lib.render import read_manifest

    return next(r["file"] for r in read_manifest(root) if r["index"] == index)


def test_dataset_layout_and_worker_determinism(tmp_path, lib):
    from t2s_lib.render import read_manifest, render_dataset

    key = "1_1_1_1_1_3_0_1_1"
    a = render_dataset(key, tmp_path / "w1", images=40, img_size=32, classes=4, workers=1, progress=False)
    b = render_dataset(key, tmp_path / "w2", images=40, img_size=32, classes=4, workers=2, progress=False)
    ta, tb = _tree(a), _tree(b)
    assert ta == tb
    # the same scenes rendered in this process (the notebooks' path) give the same pixels
    from t2s_lib.render import render_scene_images, sample_scenes

    scenes = sample_scenes(key, 40, classes=4)
    from PIL import Image

    first = np.asarray(Image.open(a / rows_file(a, 0)))
    assert np.abs(first.astype(int) - render_scene_images(scenes[:1], 32)[0].astype(int)).mean() < 2  # JPEG q95 round trip
    rows = read_manifest(a)
    assert len(rows) == 40 and len(list(a.glob("*/*.jpg"))) == 40
    meta = json.loads((a / "dataset.json").read_text())
    assert meta["setting"] == key and meta["n_classes"] == 4 and sum(meta["images_per_class"].values()) == 40
    for r in rows:
        assert (a / r["file"]).is_file() and r["file"].startswith(r["class_name"] + "/")
        assert r["file"].endswith(f"{r['model']}_{r['index']:06d}.jpg")
        assert {"rotation_deg", "distance_factor", "light_color", "light_dir", "light_intensity", "hdri", "aperture",
                "focus_distance", "view_dir", "materials", "seed"} <= set(r)
    # idempotent: a second call keeps the finished dataset
    t0 = time.perf_counter()
    render_dataset(key, tmp_path / "w1", images=40, img_size=32, classes=4, workers=1, progress=False)
    assert time.perf_counter() - t0 < 2.0  # nothing rendered, no worker started


def test_resume_after_killed_run_is_byte_identical(tmp_path, lib):
    from t2s_lib.render import render_dataset

    args = dict(images=160, img_size=32, classes=5, workers=1, progress=False)
    ref = render_dataset("all_off", tmp_path / "ref", **args)
    out = tmp_path / "killed"
    parts = tmp_path / ".killed.partial" / ".parts"
    cmd = [sys.executable, "-m", "t2s_lib.cli", "render", "--setting", "all_off", "--images", "160", "--size", "32",
           "--classes", "5", "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline and not (parts.is_dir() and any(parts.glob("*.jsonl"))):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not out.exists(), "an interrupted run must not leave a dataset under the final name"
    n_parts = len(list(parts.glob("*.jsonl")))
    assert 1 <= n_parts < 5
    render_dataset("all_off", out, **args)
    assert _tree(out) == _tree(ref)
    assert not (tmp_path / ".killed.partial").exists()


# ----- TDW command stream ----------------------------------------------------------------------
def test_tdw_command_stream():
    from t2s_lib.render.scene import Scene
    from t2s_lib.render.tdw import TDW_DEFAULT_SKYBOX, scene_commands, tdw_objects, tdw_skyboxes

    assert len(tdw_objects()) == 100 and len(tdw_skyboxes()) == 43
    model = tdw_objects()["n03001627"][0]
    off = Scene(0, 0, "n03001627", model, "default", (0.0, 0.0, 0.0), 1.0, 1.0, (1.0, 1.0, 1.0), None, 2.0, 70.0,
                None, None)
    cmds = scene_commands(off, first=True)
    types = [c["$type"] for c in cmds]
    assert types[0] == "create_empty_environment" and types[-1] == "send_images"
    assert {"$type": "add_hdri_skybox", "name": TDW_DEFAULT_SKYBOX} in cmds
    assert {"$type": "set_field_of_view", "field_of_view": 60, "avatar_id": "a"} in cmds
    assert "rotate_object_by" not in types and "set_focus_distance" not in types and "set_visual_material" not in types
    on = dataclasses.replace(off, rotation_deg=(10.0, -20.0, 30.0), distance_factor=0.5, light_intensity=1.3,
                             light_color=(0.2, 0.5, 0.9), light_dir=(0.0, 1.0, 0.0), aperture=0.7, focus_distance=1.5,
                             view_dir=(1.0, 0.0, 0.0), materials=(3, 7), hdri=tdw_skyboxes()[3])
    c2 = scene_commands(on, previous=off)
    t2 = [c["$type"] for c in c2]
    assert "add_object" not in t2  # same model: kept
    assert [c["axis"] for c in c2 if c["$type"] == "rotate_object_by"] == ["pitch", "yaw", "roll"]
    tele = next(c for c in c2 if c["$type"] == "teleport_object")["position"]
    assert tele == pytest.approx({"x": 0.5, "y": 1.25, "z": 0.9})  # halfway along camera -> object
    assert {"$type": "add_hdri_skybox", "name": tdw_skyboxes()[3]} in c2
    assert "parent_object_to_avatar" in t2 and "set_focus_distance" in t2
    assert sum(t == "set_visual_material" for t in t2) == 2
    assert next(c for c in c2 if c["$type"] == "adjust_directional_light_intensity_by")["intensity"] == pytest.approx(0.3)
    json.dumps(c2)


# ----- bad input -------------------------------------------------------------------------------
def test_bad_input_errors(tmp_path, lib, monkeypatch):
    from t2s_lib.render import render_dataset

    with pytest.raises(T2SError, match="malformed setting key"):
        render_dataset("1_1_1", tmp_path / "a", images=10, img_size=32)
    with pytest.raises(T2SError, match="unknown class"):
        render_dataset("all_off", tmp_path / "a", images=10, img_size=32, classes=["no_such_class"])
    with pytest.raises(T2SError, match="image_format"):
        render_dataset("all_off", tmp_path / "a", images=10, img_size=32, image_format="gif")
    with pytest.raises(T2SError, match="unknown render backend"):
        render_dataset("all_off", tmp_path / "a", images=10, img_size=32, backend="blender")
    assert not (tmp_path / "a").exists()


def test_missing_assets_name_the_command(tmp_path, monkeypatch):
    from t2s_lib.assets import hdri, library

    monkeypatch.setenv("T2S_CACHE", str(tmp_path / "empty"))
    library.load_library.cache_clear()
    hdri.hdri_index.cache_clear()
    try:
        with pytest.raises(T2SError, match="t2s assets fetch"):
            library.load_library("sweethome3d")
        with pytest.raises(T2SError, match="t2s assets fetch"):
            hdri.hdri_index()
    finally:
        library.load_library.cache_clear()
        hdri.hdri_index.cache_clear()


def test_no_egl_names_apt_packages(monkeypatch):
    import moderngl

    from t2s_lib.render import gl

    def boom(**kw):
        raise RuntimeError("eglGetDisplay failed")

    monkeypatch.setattr(moderngl, "create_context", boom)
    with pytest.raises(T2SError) as err:
        gl.create_context()
    assert "libegl1" in str(err.value) and "libgl1-mesa-dri" in str(err.value)


def test_unreadable_hdri(tmp_path):
    from t2s_lib.assets.hdri import read_exr

    bad = tmp_path / "bad.exr"
    bad.write_bytes(b"not an exr")
    with pytest.raises(T2SError, match="unreadable"):
        read_exr(bad)


def test_folder_library_indexes_and_excludes_with_reason(tmp_path):
    import trimesh

    from t2s_lib.assets import library
    from t2s_lib.render import render_dataset

    root = tmp_path / "shapes"
    for cls, make in {"box": lambda i: trimesh.creation.box(extents=(1, 1 + i, 2)),
                      "sphere": lambda i: trimesh.creation.icosphere(subdivisions=2 + i % 2, radius=1 + i)}.items():
        (root / cls).mkdir(parents=True)
        for i, ext in enumerate(["obj", "ply", "glb"]):
            make(i).export(root / cls / f"m{i}.{ext}")
    (root / "box" / "broken.obj").write_text("this is not a mesh\n")
    (root / "box" / "empty.ply").write_bytes(b"")
    path = library.index_folder(root)
    idx = json.loads((path / "index.json").read_text())
    assert idx["classes"] == {"box": ["box_m0", "box_m1", "box_m2"], "sphere": ["sphere_m0", "sphere_m1", "sphere_m2"]}
    assert set(idx["excluded"]) == {"box_broken", "box_empty"} and all(idx["excluded"].values())
    out = render_dataset("domain_randomization", tmp_path / "ds", images=12, img_size=32, library=str(root), progress=False)
    assert len(list(out.glob("*/*.jpg"))) == 12
    library.load_library.cache_clear()


def test_tdw_library_plans_the_papers_objects():
    from t2s_lib.render import sample_scenes
    from t2s_lib.render.tdw import scene_commands, tdw_objects

    scenes = sample_scenes("domain_randomization", 400, library="tdw")
    assert len({s.class_name for s in scenes}) == 100
    assert all(s.model in tdw_objects()[s.class_name] for s in scenes)
    cmds = scene_commands(scenes[0], first=True)
    assert {"$type": "add_object", "name": scenes[0].model, "id": 1, "position": {"x": 0, "y": 0, "z": 0},
            "rotation": {"x": 0, "y": 0, "z": 0}} in cmds
    with pytest.raises(T2SError, match="backend tdw"):
        from t2s_lib.assets import load_library

        load_library("tdw").mesh(scenes[0].model)


def test_tdw_backend_without_tdw_is_a_clear_error(lib):
    import importlib.util

    from t2s_lib.render import make_renderer

    if importlib.util.find_spec("tdw") is not None:
        pytest.skip("tdw is installed here")
    with pytest.raises(T2SError, match="tdw"):
        make_renderer("tdw", 64, lib)


# ----- fast path vs reference path ---------------------------------------------------------------
def _render_all(scenes, size, lib, **kw):
    from t2s_lib.assets import load_hdri
    from t2s_lib.render.gl import GLRenderer

    r = GLRenderer(size, lib.mesh, load_hdri, **kw)
    try:
        with r.ctx:  # several contexts live in this process: make this one current
            return [r.render(s).astype(np.float32) for s in scenes], [r.object_mask(s) for s in scenes]
    finally:
        r.release()


def test_supersampling_matches_hardware_msaa_and_is_closer_to_a_16_sample_reference(lib):
    """The default 4 samples per pixel (2x2 supersample) against the previous path (hardware 4x
    MSAA): same object coverage, small pixel differences, and no further from a 16-sample reference."""
    scenes = _scenes(parse_key("0_0_1_1_1_3_0_1_1"), 10, model_stride=9, classes=10)  # sharp, all else varies
    fast, fast_masks = _render_all(scenes, SIZE, lib, msaa=4)
    ref_hw, hw_masks = _render_all(scenes, SIZE, lib, msaa=4, aa="msaa")
    big, _ = _render_all(scenes, 2 * SIZE, lib, msaa=4)
    ref16 = [b.reshape(SIZE, 2, SIZE, 2, 3).mean(axis=(1, 3)) for b in big]
    diffs = [np.abs(a - b).mean() for a, b in zip(fast, ref_hw)]
    assert np.mean(diffs) < 2.5 and max(diffs) < 5.0, diffs
    for a, b in zip(fast_masks, hw_masks):  # same coverage; only edge pixels near 50 % may flip
        assert abs(int(a.sum()) - int(b.sum())) <= 0.1 * b.sum() + 4 and (a & b).sum() >= 0.8 * (a | b).sum()
    err_fast = np.mean([np.abs(a - b).mean() for a, b in zip(fast, ref16)])
    err_hw = np.mean([np.abs(a - b).mean() for a, b in zip(ref_hw, ref16)])
    assert err_fast <= err_hw * 1.05, (err_fast, err_hw)


def test_background_is_filtered_at_the_output_resolution(lib):
    """A small image of the background equals a large one box-filtered down (no aliasing), and the
    large one keeps the map's detail (not a blurred low mip level)."""
    base = _scenes(parse_key("1_0_0_0_0_1_0_0_0"), 4, model_stride=3)  # background only varies
    scenes = [dataclasses.replace(s, distance_factor=50.0) for s in base]  # object far away: a dot
    small, _ = _render_all(scenes, 32, lib, msaa=4)
    large, _ = _render_all(scenes, 256, lib, msaa=4)
    down = [x.reshape(32, 8, 32, 8, 3).mean(axis=(1, 3)) for x in large]  # box filter: the ideal
    point = [x[4::8, 4::8] for x in large]  # what sampling one texel per pixel (aliasing) gives
    err = [np.abs(a - b).mean(-1) for a, b in zip(small, down)]
    alias = [np.abs(a - b).mean(-1) for a, b in zip(point, down)]
    assert np.median(np.concatenate(err)) < 2.0
    assert np.mean(err) < 0.7 * np.mean(alias), (np.mean(err), np.mean(alias))
    # detail at 256 px: neighbouring pixels differ much more than in the 32 px image blown up
    sharpness = np.mean([np.abs(np.diff(x.mean(-1), axis=1)).mean() for x in large])
    blurred = np.mean([np.abs(np.diff(np.repeat(np.repeat(d, 8, 0), 8, 1).mean(-1), axis=1)).mean() for d in down])
    assert sharpness > 1.5 * blurred
