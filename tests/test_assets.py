"""Assets: the curated class map, the fetched HDRIs and the indexed Sweet Home 3D library.

Needs ``t2s assets fetch`` (the Makefile's test target runs it first).
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest



def test_class_map_gives_30_classes_with_4_models_and_attribution(lib):
    sizes = {c: len(v) for c, v in lib.classes.items()}
    assert len(sizes) >= 30 and min(sizes.values()) >= 4
    for m in lib.models.values():
        assert m["license"] in {"CC0-1.0", "CC-BY-3.0", "CC-BY-3.0-US"}
        assert m["catalog"] and m["source"].startswith("debian:sweethome3d-furniture/")
        assert "creator" in m and m["triangles"] > 0
    # the rules group by object kind: a desk lamp is a lamp, a seesaw is not a saw
    names = {m["name"]: m["class"] for m in lib.models.values()}
    assert names.get("Desk lamp") == "table_lamp" and "Motorbike" not in names and "Laptop" not in names
    assert "Seesaw" not in names or names["Seesaw"] != "tool"


def test_indexed_meshes_are_normalised_and_small(lib):
    from t2s_lib.assets.library import MAX_TRIANGLES

    for mid in list(lib.models)[::25]:
        mesh = lib.mesh(mid)
        pos = mesh.vertices[:, :3]
        assert np.isfinite(mesh.vertices).all()
        radius = np.linalg.norm(pos - (pos.min(0) + pos.max(0)) / 2, axis=1).max()
        assert radius == pytest.approx(1.0, abs=0.05)
        assert mesh.triangles <= MAX_TRIANGLES * 1.05
        assert len(mesh.parts) == len(mesh.materials) and mesh.parts[:, 1].sum() == len(mesh.indices)
    assert all(isinstance(why, str) and why for why in lib.excluded.values())


def test_info_json_lists_classes_and_hdris(lib, capsys):
    from t2s_lib.cli import main

    assert main(["assets", "info", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["classes"] == {c: len(v) for c, v in lib.classes.items()} and len(out["hdris"]) >= 20


def test_contact_sheet_one_png_per_class(lib, tmp_path):
    from PIL import Image

    from t2s_lib.assets.contact import contact_sheets

    cls = sorted(lib.classes, key=lambda c: len(lib.classes[c]))[0]
    out = contact_sheets("sweethome3d", tmp_path / "sheets", classes=[cls], size=48, log=lambda *a: None)
    img = Image.open(out / f"{cls}.png")
    assert img.width == 8 * 48 and img.height > 48
    assert sorted(json.loads((out / "index.json").read_text())["classes"][cls]) == sorted(lib.classes[cls])


def test_index_resumes_and_detects_damage(lib, tmp_path, monkeypatch):
    """A killed index run resumes from the per-model records; a damaged model file is redone."""
    from t2s_lib.assets.library import build_index, read_index

    ids = sorted(lib.models)[:3]
    jobs = []
    for i in ids:
        m = lib.models[i]
        src = next(p for p in (lib.path.parent.parent / "sweethome3d").glob("*/" + m["source"].split(".sh3f/", 1)[1]))
        jobs.append((i, str(src), None, str(tmp_path / "lib" / "models" / f"{i}.npz")))
    metas = {i: dict(lib.models[i]) for i in ids}
    build_index("t", tmp_path / "lib", jobs[:2], metas, source="test", log=lambda *a: None)  # "killed" after 2
    logs: list[str] = []
    idx = build_index("t", tmp_path / "lib", jobs, metas, source="test", log=lambda *a: logs.append(" ".join(map(str, a))))
    assert idx["n_models"] == 3 and any("2 model(s) already converted, 1 to go" in line for line in logs)
    (tmp_path / "lib" / "models" / f"{ids[0]}.npz").write_bytes(b"broken")
    assert read_index(tmp_path / "lib") is None  # size mismatch: the fetch rebuilds it
    logs.clear()
    build_index("t", tmp_path / "lib", jobs, metas, source="test", log=lambda *a: logs.append(" ".join(map(str, a))))
    assert read_index(tmp_path / "lib") is not None and any("1 to go" in line for line in logs)


def test_hdris_converted_with_lighting_metadata(lib):
    from t2s_lib.assets import background_pool, hdri_index, load_hdri

    idx = hdri_index()
    assert len(idx["hdris"]) >= 20 and idx["default"] in {m["name"] for m in idx["hdris"]}
    pool = background_pool()
    assert len(pool) >= 10 and not any(name.endswith(("interior", "studio")) for name in pool)
    h = load_hdri(idx["default"])
    assert h.image.dtype == np.float16 and h.image.shape[1] == 2 * h.image.shape[0]
    assert np.isfinite(h.image.astype(np.float32)).all() and np.isfinite(h.sh).all()
    assert h.sh[0].min() > 0 and np.linalg.norm(h.sun_dir) == pytest.approx(1.0, abs=1e-3)


def test_fetch_is_idempotent_and_fast(lib):
    from t2s_lib.assets import fetch_assets

    t0 = time.perf_counter()
    fetch_assets(quiet=True)
    assert time.perf_counter() - t0 < 5.0


def test_sh_irradiance_of_constant_map():
    from t2s_lib.assets.hdri import irradiance_sh, sh9_basis

    img = np.full((32, 64, 3), 0.5, np.float32)
    c = irradiance_sh(img)
    # a uniform radiance L gives irradiance pi*L in every direction, i.e. E/pi = L
    for n in ([0, 1, 0], [1, 0, 0], [0, 0, -1]):
        assert (sh9_basis(np.array(n, float)) @ c) == pytest.approx([0.5] * 3, abs=0.01)


def test_catalog_parser_and_classifier():
    from t2s_lib.assets.library import CLASS_MAP, classify

    cmap = json.loads(CLASS_MAP.read_text())
    assert classify("Chair", cmap) == "chair" and classify("Desk lamp", cmap) == "table_lamp"
    assert classify("Rocking horse", cmap) is None
