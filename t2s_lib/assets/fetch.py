"""``t2s assets fetch``: the 3D models and HDRIs from Debian/npm, unpacked without root through
:mod:`t2s_lib.fetching`, the HDRIs converted once to float arrays and the Sweet Home 3D library
indexed. Idempotent: a stamp per step makes a second run take well under a second; a corrupt or
incomplete cache entry (an unreadable index, a missing model file) is detected and rebuilt.
"""

from __future__ import annotations

import base64
import time
import zipfile
from pathlib import Path

from ..errors import T2SError
from ..fetching import apt_package, npm_package, stamp_ok, write_stamp
from ..io import atomic_path
from ..paths import cache_layout

#: Bump when the layout or the conversion changes: stale caches are rebuilt.
ASSETS_VERSION = 1

DEBIAN_PACKAGES = {
    "sweethome3d-furniture": "820 textured furniture models (CC0 / CC-BY-3.0 per catalog)",
    "blender-data": "8 HDRIs (Poly Haven, CC0) in datafiles/studiolights/world",
}
PMNDRS_ASSETS = "@pmndrs/assets@1.7.0"
NPM_PACKAGES = {PMNDRS_ASSETS: "18 HDRIs (Poly Haven, CC0) as base64 EXR in hdri/*.exr.js"}

FETCH_COMMAND = "t2s assets fetch"


def assets_dir() -> Path:
    """Root of the fetched and converted assets: ``<cache>/assets``."""
    return cache_layout().assets


def _unpack_sweethome3d(deb_root: Path) -> Path:
    """The .sh3f catalogs are zip files: unpack each into ``assets/sweethome3d/<catalog>/``."""
    dest = cache_layout().sweethome3d_catalogs
    if stamp_ok(dest):
        return dest
    catalogs = sorted((deb_root / "usr/share/sweethome3d/furniture").glob("*.sh3f"))
    if not catalogs:
        raise T2SError(f"{deb_root}: no .sh3f catalogs found", "delete that folder and rerun " + FETCH_COMMAND)
    with atomic_path(dest, is_dir=True) as tmp:
        for cat in catalogs:
            with zipfile.ZipFile(cat) as zf:
                zf.extractall(tmp / cat.stem)
        write_stamp(tmp, catalogs=[c.name for c in catalogs])
    return dest


def _hdri_sources(blender_root: Path, pmndrs_root: Path) -> list[tuple[str, str, bytes | Path]]:
    out: list[tuple[str, str, bytes | Path]] = []
    for exr in sorted((blender_root / "usr/share/blender/datafiles/studiolights/world").glob("*.exr")):
        out.append((f"blender_{exr.stem}", "debian:blender-data (Poly Haven, CC0)", exr))
    for js in sorted((pmndrs_root / "package/hdri").glob("*.exr.js")):
        text = js.read_text()
        start = text.find("base64,")
        end = text.rfind("'")
        if start < 0 or end <= start:
            continue
        out.append((f"pmndrs_{js.name[:-7]}", f"npm:{PMNDRS_ASSETS} (Poly Haven, CC0)",
                    base64.b64decode(text[start + 7:end])))
    return out


def fetch_assets(*, library: bool = True, quiet: bool = False, workers: int = 2) -> Path:
    """Fetch, unpack and convert everything; return the assets folder. Fast when already done."""
    from .hdri import convert_hdris, hdri_cache_ok
    from .library import index_sweethome3d

    layout = cache_layout()
    layout.assets.mkdir(parents=True, exist_ok=True)
    log = (lambda *a: None) if quiet else (lambda *a: print("[assets]", *a, flush=True))
    t0 = time.time()
    sh = apt_package("sweethome3d-furniture")
    bl = apt_package("blender-data")
    pm = npm_package(PMNDRS_ASSETS)
    log(f"packages ready ({time.time() - t0:.1f}s)")
    catalogs = _unpack_sweethome3d(sh)
    if not hdri_cache_ok(layout.hdri):
        n = convert_hdris(_hdri_sources(bl, pm), layout.hdri)
        log(f"converted {n} HDRIs ({time.time() - t0:.1f}s)")
    if library:
        idx = index_sweethome3d(catalogs, workers=workers, log=log)
        log(f"library sweethome3d: {idx['n_models']} models in {len(idx['classes'])} classes, "
            f"{len(idx['excluded'])} excluded ({time.time() - t0:.1f}s)")
    return layout.assets
