"""Will it fit? Memory and disk checked against an estimate before a long job starts.

A job that cannot fit should say so at once, naming what it needs and what the machine has, not
grow towards an out-of-memory kill or fill the disk after an hour of work. Estimates are lower
bounds (a refused job would certainly not fit); the error boundary in :mod:`t2s_lib.errors` still
catches what the estimate cannot foresee.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import T2SError
from .files import nearest_existing_dir

#: bytes of bookkeeping a render keeps in memory per image (its plan item and manifest line;
#: measured ~220 B for the plan alone)
RENDER_BYTES_PER_IMAGE = 300


def available_memory() -> int | None:
    """Bytes of memory this process may still use: ``MemAvailable``, capped by a cgroup limit."""
    avail = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                avail = int(line.split()[1]) * 1024
    except OSError:
        return None
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            limit, usage = Path(limit_file).read_text().strip(), int(Path(usage_file).read_text())
        except (OSError, ValueError):
            continue
        if limit.isdigit() and int(limit) < (1 << 60):
            room = max(int(limit) - usage, 0)
            avail = room if avail is None else min(avail, room)
        break
    return avail


def free_disk(path: str | os.PathLike) -> int:
    """Free bytes on the file system that holds ``path`` (or its nearest existing parent)."""
    st = os.statvfs(nearest_existing_dir(path))
    return st.f_bavail * st.f_frsize


def image_file_bytes(img_size: int, image_format: str) -> int:
    """A lower bound on one rendered image file: JPEG ~0.8 bit per pixel on the renders plus its
    headers, PNG ~4 bits per pixel (lossless)."""
    pixels = img_size * img_size
    return 600 + pixels // 10 if image_format == "jpg" else 100 + pixels // 2


def _gb(n: int) -> str:
    return f"{n / 1e9:.1f} GB"


def check_fits(what: str, *, memory: int = 0, disk: int = 0, path: str | os.PathLike | None = None,
               fix: str = "ask for less") -> None:
    """Refuse ``what`` when its memory or disk estimate exceeds what the machine has."""
    avail = available_memory()
    if memory and avail is not None and memory > avail:
        raise T2SError(f"{what} needs at least {_gb(memory)} of memory; {_gb(avail)} is available", fix)
    if disk and path is not None:
        free = free_disk(path)
        if disk > free:
            raise T2SError(f"{what} needs at least {_gb(disk)} of disk at {path}; {_gb(free)} is free",
                           f"{fix}, or free space there / choose another output")
