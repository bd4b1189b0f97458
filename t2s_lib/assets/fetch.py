"""``t2s assets fetch``: download the 3D models and HDRIs from Debian/npm into the cache, unpack
them without root (``apt-get download`` + ``dpkg -x``, ``npm pack``), convert the HDRIs once to
float arrays and index the Sweet Home 3D library. Idempotent: a stamp per step makes a second run
take well under a second.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
import zipfile
from pathlib import Path

from ..errors import T2SError
from ..io import atomic_path, write_json
from ..paths import cache_dir

#: Bump when the layout or the conversion changes: stale caches are rebuilt.
ASSETS_VERSION = 1

DEBIAN_PACKAGES = {
    "sweethome3d-furniture": "820 textured furniture models (CC0 / CC-BY-3.0 per catalog)",
    "blender-data": "8 HDRIs (Poly Haven, CC0) in datafiles/studiolights/world",
}
NPM_PACKAGES = {"@pmndrs/assets@1.7.0": "18 HDRIs (Poly Haven, CC0) as base64 EXR in hdri/*.exr.js"}

FETCH_COMMAND = "t2s assets fetch"


def assets_dir() -> Path:
    """Root of the fetched and converted assets: ``<cache>/assets``."""
    return cache_dir() / "assets"


def _run(cmd: list[str], cwd: Path, what: str, fix: str) -> None:
    exe = shutil.which(cmd[0])
    if exe is None:
        raise T2SError(f"{what}: the command {cmd[0]!r} is not installed", fix)
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise T2SError(f"{what}: {' '.join(cmd)} failed: {' | '.join(tail)}", fix)


def _stamp(path: Path) -> bool:
    try:
        return json.loads(path.read_text()).get("version") == ASSETS_VERSION
    except (OSError, json.JSONDecodeError):
        return False


def _set_stamp(path: Path, **info) -> None:
    write_json(path, {"version": ASSETS_VERSION, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **info})


def _fetch_deb(pkg: str, root: Path) -> Path:
    """Unpack Debian package ``pkg`` under ``root/deb/<pkg>`` (no root needed)."""
    dest = root / "deb" / pkg
    stamp = dest / ".done.json"
    if _stamp(stamp):
        return dest
    downloads = root / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    debs = sorted(downloads.glob(f"{pkg}_*.deb"))
    if not debs and os.geteuid() == 0 and not any(Path("/var/lib/apt/lists").glob("*Packages*")):
        # a fresh container (CI as root) has empty apt lists: apt-get download needs them
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True)
    if not debs:
        _run(
            ["apt-get", "download", pkg],
            downloads,
            f"downloading Debian package {pkg}",
            "run 'apt-get update' (as root) so apt knows the package, check access to the Debian mirror, then rerun "
            + FETCH_COMMAND,
        )
        debs = sorted(downloads.glob(f"{pkg}_*.deb"))
    if not debs:
        raise T2SError(f"apt-get download {pkg} left no .deb in {downloads}", "rerun " + FETCH_COMMAND)
    with atomic_path(dest, is_dir=True) as tmp:
        _run(["dpkg-deb", "-x", str(debs[-1]), str(tmp)], root, f"unpacking {debs[-1].name}",
             "install dpkg (apt-get install dpkg), then rerun " + FETCH_COMMAND)
        _set_stamp(tmp / ".done.json", package=debs[-1].name)
    return dest


def _fetch_npm(spec: str, root: Path) -> Path:
    name = spec.rsplit("@", 1)[0].lstrip("@").replace("/", "-")
    dest = root / "npm" / name
    stamp = dest / ".done.json"
    if _stamp(stamp):
        return dest
    downloads = root / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    tgzs = sorted(downloads.glob(f"{name}-*.tgz"))
    if not tgzs:
        _run(["npm", "pack", spec, "--silent"], downloads, f"downloading npm package {spec}",
             "install npm (apt-get install npm) and check access to the npm registry, then rerun " + FETCH_COMMAND)
        tgzs = sorted(downloads.glob(f"{name}-*.tgz"))
    if not tgzs:
        raise T2SError(f"npm pack {spec} left no .tgz in {downloads}", "rerun " + FETCH_COMMAND)
    import tarfile

    with atomic_path(dest, is_dir=True) as tmp:
        with tarfile.open(tgzs[-1]) as tar:
            tar.extractall(tmp, filter="data")
        _set_stamp(tmp / ".done.json", package=tgzs[-1].name)
    return dest


def _unpack_sweethome3d(deb_root: Path, root: Path) -> Path:
    """The .sh3f catalogs are zip files: unpack each into ``sweethome3d/<catalog>/``."""
    dest = root / "sweethome3d"
    if _stamp(dest / ".done.json"):
        return dest
    catalogs = sorted((deb_root / "usr/share/sweethome3d/furniture").glob("*.sh3f"))
    if not catalogs:
        raise T2SError(f"{deb_root}: no .sh3f catalogs found", "delete that folder and rerun " + FETCH_COMMAND)
    with atomic_path(dest, is_dir=True) as tmp:
        for cat in catalogs:
            with zipfile.ZipFile(cat) as zf:
                zf.extractall(tmp / cat.stem)
        _set_stamp(tmp / ".done.json", catalogs=[c.name for c in catalogs])
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
        out.append((f"pmndrs_{js.name[:-7]}", "npm:@pmndrs/assets 1.7.0 (Poly Haven, CC0)",
                    base64.b64decode(text[start + 7:end])))
    return out


def fetch_assets(*, library: bool = True, quiet: bool = False, workers: int = 2) -> Path:
    """Fetch, unpack and convert everything; return the assets folder. Fast when already done."""
    from .hdri import convert_hdris
    from .library import index_sweethome3d

    root = assets_dir()
    root.mkdir(parents=True, exist_ok=True)
    log = (lambda *a: None) if quiet else (lambda *a: print("[assets]", *a, flush=True))
    t0 = time.time()
    sh = _fetch_deb("sweethome3d-furniture", root)
    bl = _fetch_deb("blender-data", root)
    pm = _fetch_npm("@pmndrs/assets@1.7.0", root)
    log(f"packages ready ({time.time() - t0:.1f}s)")
    _unpack_sweethome3d(sh, root)
    if not _stamp(root / "hdri" / ".done.json"):
        n = convert_hdris(_hdri_sources(bl, pm), root / "hdri")
        log(f"converted {n} HDRIs ({time.time() - t0:.1f}s)")
    if library:
        idx = index_sweethome3d(root / "sweethome3d", workers=workers, log=log)
        log(f"library sweethome3d: {idx['n_models']} models in {len(idx['classes'])} classes, "
            f"{len(idx['excluded'])} excluded ({time.time() - t0:.1f}s)")
    # The downloaded archives are only needed to unpack: free the space.
    shutil.rmtree(root / "downloads", ignore_errors=True)
    return root
