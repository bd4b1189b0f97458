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
    assert names.get("Desk lamp") == "lamp"
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
    assert classify("Chair", cmap) == "chair" and classify("Desk lamp", cmap) == "lamp"
    assert classify("Rocking horse", cmap) is None
