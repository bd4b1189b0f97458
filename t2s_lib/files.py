"""Atomic file output: nothing half-written is ever left under a final name.

Every stage writes to a temporary sibling and renames it into place when complete
(``os.replace`` is atomic on POSIX within one file system).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator

from .errors import T2SError
from .paths import cache_dir


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike, *, is_dir: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``final``; rename it to ``final`` only if the block succeeds.

    For ``is_dir=True`` the temporary path is a fresh directory; an existing ``final`` directory
    is replaced as a whole. On error the temporary path is removed and ``final`` is untouched.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    # mkstemp/mkdtemp create private (0600/0700) entries; outputs get the usual umask-based mode.
    umask = os.umask(0)
    os.umask(umask)
    if is_dir:
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
        tmp.chmod(0o777 & ~umask)
    else:
        fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
        os.close(fd)
        tmp = Path(name)
        tmp.chmod(0o666 & ~umask)
    try:
        yield tmp
        if is_dir:
            if final.exists():
                old = final.with_name(f".{final.name}.old")
                shutil.rmtree(old, ignore_errors=True)
                final.rename(old)
                tmp.rename(final)
                shutil.rmtree(old, ignore_errors=True)
            else:
                tmp.rename(final)
        else:
            os.replace(tmp, final)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise


def write_json(path: str | os.PathLike, obj: Any, *, indent: int = 2) -> Path:
    """Write ``obj`` as JSON atomically (sorted keys are *not* forced: order is meaningful)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=indent, allow_nan=False) + "\n")
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write text atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path


def read_json(path: str | os.PathLike) -> Any:
    """Read JSON, turning a missing or malformed file into a clear error."""
    path = Path(path)
    if not path.is_file():
        raise T2SError(f"{path}: file not found", "check the path, or run the stage that writes it")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise T2SError(f"{path}: not valid JSON ({exc})", "delete the file and rerun the stage that writes it") from exc


def nearest_existing_dir(path: str | os.PathLike) -> Path:
    """``path`` if it is a folder, else its nearest parent that exists: where writing it starts."""
    path = Path(path).expanduser().absolute()
    return next(p for p in [path, *path.parents] if p.is_dir())


def check_output_path(path: str | os.PathLike, *, kind: str = "folder", what: str = "--out") -> Path:
    """Refuse an output path that cannot be written: under an existing file, of the wrong kind, or on a
    read-only or unwritable file system (checked before any work, so nothing computed is lost).

    ``kind`` is ``folder`` (the output is a directory) or ``file``; returns the path, expanded.
    """
    path = Path(path).expanduser()
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            raise T2SError(f"{what} {path}: {parent} is a file, so nothing can be written below it",
                           f"choose an {what} path that is not inside a file")
    if kind == "folder" and path.exists() and not path.is_dir():
        raise T2SError(f"{what} {path} is an existing file, but a folder is written there", f"choose another {what} folder")
    if kind == "file" and path.is_dir():
        raise T2SError(f"{what} {path} is an existing folder, but a file is written there",
                       f"give a file name (e.g. {path / 'out.json'})")
    # The nearest folder that exists is where the output (or its first missing parent) is created.
    existing = nearest_existing_dir(path)
    if not os.access(existing, os.W_OK | os.X_OK):
        if os.statvfs(existing).f_flag & os.ST_RDONLY:
            raise T2SError(f"{what} {path}: {existing} is on a read-only file system",
                           f"choose an {what} on a writable file system")
        raise T2SError(f"{what} {path}: no permission to write in {existing}",
                       f"choose an {what} you may write, or fix the permissions of {existing}")
    return path


def check_user_output(path: str | os.PathLike, *, what: str = "--out", owned: Iterable[str] = ()) -> Path:
    """A user-named output folder: :func:`check_output_path`, and refused when it lies inside the
    cache (which ``t2s`` may delete and rebuild) or is a non-empty folder this command did not
    write (no file named in ``owned``, e.g. ``spec.json``), so nobody's files get mixed with ours."""
    path = check_output_path(path, what=what)
    cache = cache_dir().resolve()
    resolved = path.resolve()
    if resolved == cache or cache in resolved.parents:
        raise T2SError(f"{what} {path} is inside the cache {cache} (fetched assets and datasets, rebuilt at will)",
                       f"choose an {what} outside {cache}")
    if path.is_dir() and any(not p.name.startswith(".") for p in path.iterdir()):
        owned = list(owned)
        if not any((path / name).exists() for name in owned):
            raise T2SError(f"{what} {path} is a non-empty folder that this command did not write"
                           + (f" (it has no {' or '.join(owned)})" if owned else ""),
                           f"choose a new or empty {what} folder, or delete {path}")
    return path
