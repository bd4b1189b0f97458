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
from ..files import atomic_path
from ..paths import cache_layout

#: Bump when the layout or the conversion changes: stale caches are rebuilt.
ASSETS_VERSION = 1

DEBIAN_PACKAGES = {
    "sweethome3d-furniture": "820 textured furniture models (CC0 / CC-BY-3.0 per catalog)",
    "blender-data": "8 HDRIs (Poly Haven, CC0) in datafiles/studiolights/world",
}
#: The extra Debian packages of the combined ``objects`` library (``t2s assets fetch --library objects``).
OBJECT_PACKAGES = {
    "0ad-data": "0 A.D.: 5232 actors (PMD meshes + DDS textures in public.zip; 1.4 GB download, CC-BY-SA-3.0)",
    "flightgear-data-models": "FlightGear scenery: 523 AC3D models (GPL-2+)",
    "ufoai-data": "UFO:AI: 859 MD2 models in 0models.pk3 (GPL-2+, some CC-BY-3.0)",
    "flightgear-data-ai": "FlightGear AI traffic: 223 AC3D aircraft/ships with livery textures (GPL-2+)",
    "sweethome3d": "Sweet Home 3D's built-in catalog: 94 more models in sweethome3d.jar (CC-BY-3.0 or GPL-2+)",
    "kicad-packages3d": "KiCad: 6227 VRML electronic-component models (CC-BY-SA-4.0 with exception; 1.3 GB kept of 5.4 GB)",
}
#: Unpacked files the library never reads, deleted at unpack time (KiCad's STEP twins of its VRML models: 4 GB).
OBJECT_PACKAGE_DROP = {"kicad-packages3d": ("usr/share/kicad/3dmodels/*.3dshapes/*.step",
                                            "usr/share/kicad/3dmodels/*.3dshapes/*.stp")}
LIBRARIES = ("sweethome3d", "objects")
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


def _unpack_ufoai(pkg_root: Path) -> Path:
    """UFO:AI's models live in a pk3 (zip): unpack its models/ once into ``assets/sources/ufoai``."""
    from .sources import unpack_ufoai

    dest = cache_layout().asset_source("ufoai")
    if stamp_ok(dest):
        return dest
    with atomic_path(dest, is_dir=True) as tmp:
        unpack_ufoai(pkg_root, tmp)
        write_stamp(tmp, source="ufoai-data 0models.pk3")
    return dest


def _unpack_jar_catalog(pkg_root: Path) -> Path:
    """Sweet Home 3D's built-in catalog lives in sweethome3d.jar: unpack it once."""
    from .sources import unpack_sweethome3d_default

    dest = cache_layout().asset_source("sweethome3d-default")
    if stamp_ok(dest):
        return dest
    with atomic_path(dest, is_dir=True) as tmp:
        unpack_sweethome3d_default(pkg_root, tmp)
        write_stamp(tmp, source="sweethome3d sweethome3d.jar default catalog")
    return dest


def fetch_objects(catalogs: Path, sh_root: Path, *, workers: int = 2, log=print, force: bool = False) -> dict:
    """Fetch the object packages and index the combined ``objects`` library (resumable, idempotent)."""
    from .sources import index_objects

    t0 = time.time()
    roots = {"sweethome3d": catalogs, "sweethome3d-pkg": sh_root}
    for pkg, key in (("0ad-data", "0ad-pkg"), ("flightgear-data-models", "flightgear-pkg"),
                     ("flightgear-data-ai", "flightgear-ai-pkg"), ("ufoai-data", "ufoai-pkg"),
                     ("kicad-packages3d", "kicad-pkg")):
        roots[key] = apt_package(pkg, drop=OBJECT_PACKAGE_DROP.get(pkg, ()))
        log(f"package {pkg} ready ({time.time() - t0:.1f}s)")
    roots["ufoai"] = _unpack_ufoai(roots["ufoai-pkg"])
    roots["sweethome3d-default-pkg"] = apt_package("sweethome3d")
    roots["sweethome3d-default"] = _unpack_jar_catalog(roots["sweethome3d-default-pkg"])
    return index_objects(roots, workers=workers, log=log, force=force)


def fetch_assets(*, library: bool = True, quiet: bool = False, workers: int = 2,
                 libraries: tuple[str, ...] = ("sweethome3d",)) -> Path:
    """Fetch, unpack and convert everything; return the assets folder. Fast when already done.

    ``libraries``: the object libraries to index, of LIBRARIES (the default, Sweet Home 3D, is the
    small one CI needs; ``objects`` adds 0 A.D., FlightGear, UFO:AI and KiCad: ~2.5 GB of downloads).
    """
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
    unknown = [x for x in libraries if x not in LIBRARIES]
    if unknown:
        raise T2SError(f"unknown object library {unknown}", f"use one of {', '.join(LIBRARIES)} (or --all)")
    if library and "sweethome3d" in libraries:
        from .sources import deb_version

        idx = index_sweethome3d(catalogs, workers=workers, log=log, version=deb_version(sh))
        log(f"library sweethome3d: {idx['n_models']} models in {len(idx['classes'])} classes, "
            f"{len(idx['excluded'])} excluded ({time.time() - t0:.1f}s)")
    if library and "objects" in libraries:
        idx = fetch_objects(catalogs, sh, workers=workers, log=log)
        log(f"library objects: {idx['n_models']} models in {len(idx['classes'])} classes, "
            f"{len(idx['excluded'])} excluded ({time.time() - t0:.1f}s)")
    return layout.assets
