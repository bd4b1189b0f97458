"""The combined ``objects`` library: loaders per mesh format, rule maps, purity, provenance, class choice.

The loader and library tests (marked ``objects_library``; run with ``--run-objects`` or
T2S_RUN_OBJECTS=1) need ``t2s assets fetch --library objects`` (seven Debian packages, 2.5 GB,
~8 min once); asked to run without it they fail with that fix. The rule-map, purity-list and
corrupt-file tests need nothing fetched and always run.
"""

from __future__ import annotations

import io
import json
import re
import struct

import numpy as np
import pytest

FIX = "run `t2s assets fetch --library objects` first"


def _apt_root(pkg: str):
    from t2s_lib.fetching import package_dir, stamp_ok

    root = package_dir("apt", pkg)
    if not stamp_ok(root):
        pytest.fail(f"Debian package {pkg} is not fetched: {FIX}")
    return root


@pytest.fixture(scope="module")
def objects():
    from t2s_lib.assets import load_library
    from t2s_lib.errors import T2SError

    try:
        return load_library("objects")
    except T2SError as exc:
        pytest.fail(f"the objects library is not indexed: {FIX}\n{exc}")


def _check_parts(parts, *, textured: bool):
    from t2s_lib.assets.library import mesh_from_parts

    assert parts and all(len(p.faces) and p.faces.max() < len(p.positions) for p in parts)
    mesh = mesh_from_parts(parts)
    pos = mesh.vertices[:, :3]
    assert np.isfinite(mesh.vertices).all()
    assert np.linalg.norm(pos - (pos.min(0) + pos.max(0)) / 2, axis=1).max() == pytest.approx(1.0, abs=1e-3)
    if textured:
        assert mesh.textures and all(t.dtype == np.uint8 and t.shape[2] == 4 for t in mesh.textures)
    return mesh


# ------------------------------------------------------------------------------------------------
# Loaders, each on a real model of its package
# ------------------------------------------------------------------------------------------------
@pytest.mark.objects_library
def test_pmd_loader_on_0ad_horse():
    from t2s_lib.assets.formats.pmd import load_actor, open_archive, parse_pmd, resolve_actor
    from t2s_lib.assets.sources import ZEROAD_ARCHIVE

    archive = str(_apt_root("0ad-data") / ZEROAD_ARCHIVE)
    actor = resolve_actor(open_archive(archive), "fauna/horse.xml")
    assert actor.mesh == "skeletal/horse_celtic.dae" and actor.textures["baseTex"].endswith(".png")
    pmd = parse_pmd(open_archive(archive).read(f"art/meshes/{actor.mesh}.cached.pmd"))
    assert len(pmd.positions) > 500 and pmd.faces.max() < len(pmd.positions) and pmd.bones
    parts = load_actor("fauna/horse.xml", archive=archive)
    assert len(parts) >= 2  # body + the tail/mane prop at the 'hair' prop point
    mesh = _check_parts(parts, textured=True)
    ext = mesh.vertices[:, :3].max(0) - mesh.vertices[:, :3].min(0)
    assert ext[1] > 0.8 and max(ext[0], ext[2]) > ext[1]  # a standing horse: longer than tall, y up


def test_pmd_parser_rejects_corrupt_data():
    from t2s_lib.assets.formats.pmd import parse_pmd

    with pytest.raises(ValueError, match="magic"):
        parse_pmd(b"NOPE" + bytes(40))
    with pytest.raises(ValueError, match="truncated"):
        parse_pmd(b"PSMD" + struct.pack("<III", 4, 10_000, 3) + bytes(8))


@pytest.mark.objects_library
def test_ac3d_loader_on_flightgear_buoy():
    from t2s_lib.assets.formats.ac3d import load_ac3d
    from t2s_lib.assets.sources import FLIGHTGEAR_MODELS

    f = _apt_root("flightgear-data-models") / FLIGHTGEAR_MODELS / "Maritime/Misc/RedBuoy.ac"
    _check_parts(load_ac3d(str(f), require_textures=False), textured=False)
    ship = _apt_root("flightgear-data-models") / FLIGHTGEAR_MODELS / "Maritime/Civilian/ContainerShip.ac"
    _check_parts(load_ac3d(str(ship)), textured=True)


def test_ac3d_loader_parses_hierarchy_and_rejects_garbage(tmp_path):
    from t2s_lib.assets.formats.ac3d import load_ac3d

    text = """AC3Db
MATERIAL "red" rgb 1 0 0  amb 0.2 0.2 0.2  emis 0 0 0  spec 0 0 0  shi 10  trans 0
OBJECT world
kids 1
OBJECT poly
name "quad"
loc 10 0 0
numvert 4
0 0 0
1 0 0
1 1 0
0 1 0
numsurf 1
SURF 0x10
mat 0
refs 4
0 0 0
1 1 0
2 1 1
3 0 1
kids 0
"""
    (tmp_path / "q.ac").write_text(text)
    parts = load_ac3d(str(tmp_path / "q.ac"))
    assert len(parts) == 1 and len(parts[0].faces) == 2
    assert parts[0].positions[:, 0].min() == pytest.approx(10.0)  # loc applied
    assert parts[0].material["base_color"][:3] == [1.0, 0.0, 0.0]
    (tmp_path / "bad.ac").write_text("not a model")
    with pytest.raises(ValueError):
        load_ac3d(str(tmp_path / "bad.ac"))


@pytest.mark.objects_library
def test_md2_loader_on_ufoai_palm():
    from t2s_lib.assets.formats.md2 import load_md2
    from t2s_lib.paths import cache_layout

    root = cache_layout().asset_source("ufoai")
    f = root / "models/objects/vegi/palm_v1/palm_v1.md2"
    if not f.is_file():
        pytest.fail(f"UFO:AI models are not unpacked: {FIX}")
    mesh = _check_parts(load_md2(str(f), root=str(root)), textured=True)
    ext = mesh.vertices[:, :3].max(0) - mesh.vertices[:, :3].min(0)
    assert ext[1] == ext.max()  # a palm tree is tall: Quake z-up became y-up


def test_md2_loader_rejects_corrupt(tmp_path):
    from t2s_lib.assets.formats.md2 import load_md2

    (tmp_path / "x.md2").write_bytes(b"IDP2" + struct.pack("<16i", 8, 1, 1, 0, 0, 3, 0, 1, 0, 1, 68, 68, 68, 68, 68, 9999))
    with pytest.raises(ValueError):
        load_md2(str(tmp_path / "x.md2"))


@pytest.mark.objects_library
def test_vrml_loader_on_kicad_capacitor():
    from t2s_lib.assets.formats.vrml import load_vrml
    from t2s_lib.assets.sources import KICAD_MODELS

    f = _apt_root("kicad-packages3d") / KICAD_MODELS / "Capacitor_THT.3dshapes/CP_Radial_D10.0mm_P5.00mm.wrl"
    parts = load_vrml(str(f))
    assert len(parts) >= 2 and len({tuple(p.material["base_color"]) for p in parts}) >= 2  # body + leads colours
    mesh = _check_parts(parts, textured=False)
    ext = mesh.vertices[:, :3].max(0) - mesh.vertices[:, :3].min(0)
    assert ext[1] == ext.max()  # an upright can: KiCad's z-up became y-up


def test_vrml_loader_rejects_garbage(tmp_path):
    from t2s_lib.assets.formats.vrml import load_vrml

    (tmp_path / "a.wrl").write_text("#VRML V2.0 utf8\nShape { geometry IndexedFaceSet { coordIndex [0,1,5,-1] "
                                   "coord Coordinate { point [0 0 0, 1 0 0, 0 1 0] } } }")
    with pytest.raises(ValueError, match="out of range"):
        load_vrml(str(tmp_path / "a.wrl"))
    (tmp_path / "b.wrl").write_text("hello")
    with pytest.raises(ValueError):
        load_vrml(str(tmp_path / "b.wrl"))


@pytest.mark.objects_library
def test_dds_textures_decode_through_pillow():
    from t2s_lib.assets.formats import open_image
    from t2s_lib.assets.formats.pmd import open_archive
    from t2s_lib.assets.sources import ZEROAD_ARCHIVE

    arch = open_archive(str(_apt_root("0ad-data") / ZEROAD_ARCHIVE))
    img = open_image(io.BytesIO(arch.read("art/textures/skins/skeletal/horse_brown.png.cached.dds")))
    assert img.size[0] >= 64 and np.asarray(img.convert("RGB")).std() > 5


# ------------------------------------------------------------------------------------------------
# Rule maps and the purity list (no fetch needed)
# ------------------------------------------------------------------------------------------------
def test_rule_maps_are_well_formed():
    from t2s_lib.assets.sources import RULE_MAPS, load_rule_map

    for name, path in RULE_MAPS.items():
        cmap = load_rule_map(name)
        assert cmap["rules"], name
        for rule in cmap["rules"]:
            re.compile(rule["match"])
            assert ("class" in rule) != ("exclude" in rule), rule
            if "class" in rule:
                assert re.fullmatch(r"[a-z][a-z0-9_]*", rule["class"]), rule
        if name != "sweethome3d":
            assert cmap["license"] and cmap["source"].startswith("debian:")


def test_sweethome3d_rules_split_the_known_impurities():
    from t2s_lib.assets.library import CLASS_MAP, classify

    cmap = json.loads(CLASS_MAP.read_text())
    expect = {"Chair": "chair", "Desk lamp": "table_lamp", "Street light": "street_light", "Bicycle": "bicycle",
              "Motorbike": None, "Scooter": None, "Tricycle": None, "Laptop": None, "Apple iMac 1998": None,
              "TV": "tv", "Radiator": "radiator", "Electric water heater": None, "Bowl": "bowl", "Plate": None,
              "Clock": "clock", "Watch": None, "Coffee table": "coffee_table", "Bedside table": None,
              "Flashlight": None, "Wall socket": None, "Wall switch": None, "Rocking horse": None,
              "Coffee mug": "cup", "Glass": "drinking_glass", "Pine": "pine_tree", "Palm tree": "palm_tree"}
    for name, cls in expect.items():
        assert classify(name, cmap) == cls, name


def test_confusable_list_is_well_formed():
    from t2s_lib.paths import CURATED_DATA_DIR

    pairs = json.loads((CURATED_DATA_DIR / "assets" / "confusable.json").read_text())["pairs"]
    assert len(pairs) >= 10
    for p in pairs:
        re.compile(p["a"]), re.compile(p["b"])
        assert p["why"]


# ------------------------------------------------------------------------------------------------
# The indexed combined library
# ------------------------------------------------------------------------------------------------
def _matches(rx: str, m: dict) -> bool:
    return bool(re.search(rx, m.get("name", "").lower()) or re.search(rx, m.get("path", "").lower()))


@pytest.mark.objects_library
def test_objects_library_purity(objects):
    from t2s_lib.paths import CURATED_DATA_DIR

    pairs = json.loads((CURATED_DATA_DIR / "assets" / "confusable.json").read_text())["pairs"]
    bad = []
    for cls, ids in objects.classes.items():
        ms = [objects.models[i] for i in ids]
        for p in pairs:
            a = [m["id"] for m in ms if _matches(p["a"], m)]
            b = [m["id"] for m in ms if _matches(p["b"], m)]
            if a and b:
                bad.append(f"{cls}: {a[:3]} vs {b[:3]} ({p['why']})")
    assert not bad, "\n".join(bad)


@pytest.mark.objects_library
def test_objects_library_size_provenance_and_uniqueness(objects):
    sizes = {c: len(v) for c, v in objects.classes.items()}
    assert len(sizes) >= 100 and min(sizes.values()) >= 4
    seen: dict[str, str] = {}
    for c, ids in objects.classes.items():
        for i in ids:
            assert i not in seen, f"{i} in {seen.get(i)} and {c}"
            seen[i] = c
    assert set(seen) == set(objects.models)
    packages = set()
    for m in objects.models.values():
        assert m["license"] and m["source"].startswith("debian:") and "@" in m["package"] and m["path"], m["id"]
        assert "creator" in m and m["triangles"] > 0
        packages.add(m["package"].split("@")[0])
    assert packages == {"sweethome3d-furniture", "sweethome3d", "0ad-data", "flightgear-data-models",
                        "flightgear-data-ai", "ufoai-data", "kicad-packages3d"}
    assert all(isinstance(why, str) and why for why in objects.excluded.values())


@pytest.mark.objects_library
def test_objects_meshes_are_normalised(objects):
    from t2s_lib.assets.library import MAX_TRIANGLES

    for mid in sorted(objects.models)[::40]:
        mesh = objects.mesh(mid)
        pos = mesh.vertices[:, :3]
        assert np.isfinite(mesh.vertices).all()
        assert np.linalg.norm(pos - (pos.min(0) + pos.max(0)) / 2, axis=1).max() == pytest.approx(1.0, abs=0.05)
        assert mesh.triangles <= MAX_TRIANGLES * 1.05
        assert len(mesh.parts) == len(mesh.materials) and mesh.parts[:, 1].sum() == len(mesh.indices)


@pytest.mark.objects_library
def test_select_classes_rules(objects):
    from t2s_lib.assets.library import select_classes

    top = select_classes(objects, 20, "most_models")
    assert top == sorted(top) and len(top) == 20
    assert min(len(objects.classes[c]) for c in top) >= max(
        len(objects.classes[c]) for c in objects.classes if c not in top)
    assert select_classes(objects, 20, "most_models") == top  # reproducible
    assert select_classes(objects, 5, "alphabetical") == sorted(objects.classes)[:5]
    tdw = select_classes(objects, 10, "tdw")
    assert {"chair", "table", "sofa"} <= set(tdw)
