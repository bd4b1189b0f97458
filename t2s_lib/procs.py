"""Process hygiene: exclusive locks on output folders, and workers that die with their parent.

* :func:`output_lock` holds an exclusive ``flock`` on ``.<name>.lock`` beside an output folder
  (a render partial, a pre-training run, a reward-table cell) for as long as one process writes
  it; a second process gets a clear error naming the holder's PID instead of corrupting the
  first one's work. The lock disappears with the process (kill -9 included).
* :func:`die_with_parent` makes a worker process exit when the process that spawned it dies
  (Linux ``PR_SET_PDEATHSIG``, plus a watchdog thread where that is unavailable), so a killed
  ``t2s render`` leaves no orphaned render workers.
* :func:`sigterm_as_interrupt` turns SIGTERM into ``KeyboardInterrupt`` in the main thread, so a
  terminated command unwinds like Ctrl-C: its ``finally`` blocks cancel the jobs it started (a
  reward-table build's cells) and release their locks before it exits.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import threading
import time
from pathlib import Path
from typing import Iterator

from .errors import T2SError


def lock_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path.parent / f".{path.name}.lock"


@contextlib.contextmanager
def output_lock(path: str | os.PathLike, what: str = "output") -> Iterator[Path]:
    """Hold an exclusive lock on output ``path`` (file or folder) while the block runs."""
    target = lock_path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fh = open(target, "a+")
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            raise T2SError(f"{Path(path)} ({what}) is in use by PID {holder}",
                           "wait for that process to finish (or stop it), or choose another output folder") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        try:
            yield target
        finally:
            fh.seek(0)
            fh.truncate()
            fcntl.flock(fh, fcntl.LOCK_UN)
    finally:
        fh.close()


def die_with_parent(poll_s: float = 1.0) -> None:
    """Exit this (worker) process when its parent dies."""
    parent = os.getppid()
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the watchdog below does the job
        pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(poll_s)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="die-with-parent", daemon=True).start()


def sigterm_as_interrupt() -> None:
    """Raise ``KeyboardInterrupt`` in the main thread on SIGTERM (no-op outside the main thread)."""

    def interrupt(signum, frame):  # noqa: ARG001 (the signal module's handler signature)
        raise KeyboardInterrupt(f"signal {signum}")

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, interrupt)
