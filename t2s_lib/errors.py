"""One exception type for every user-facing failure: it names the problem and the fix.

:func:`os_fault` is the error boundary for faults of the machine rather than of the input (a
read-only or full file system, a permission, memory): the CLI and the notebooks turn them into
:class:`T2SError` naming the path and the fix instead of a traceback.
"""

from __future__ import annotations

import errno


class T2SError(Exception):
    """A clear, actionable error.

    ``problem`` says what is wrong (naming the file, item or option), ``fix`` says what to do.
    The CLI prints both and exits with status 2 instead of a traceback.
    """

    def __init__(self, problem: str, fix: str | None = None):
        self.problem = problem
        self.fix = fix
        super().__init__(problem if not fix else f"{problem}\n  fix: {fix}")


#: torch.save on a full disk fails inside its zip writer with a RuntimeError, not an OSError
_TORCH_WRITE_FAILURES = ("enforce fail at inline_container", "PytorchStreamWriter failed", "file write failed")


def os_fault(exc: BaseException) -> T2SError | None:
    """The :class:`T2SError` for a machine fault (read-only / full file system, permission, memory),
    or None when ``exc`` is not one (a bug, which should keep its traceback)."""
    if isinstance(exc, T2SError):
        return exc
    if isinstance(exc, MemoryError):
        return T2SError("out of memory", "ask for less at once (fewer --images, a smaller --img-size or --batch-size), "
                                         "or run on a machine with more memory")
    if isinstance(exc, RuntimeError) and any(s in str(exc) for s in _TORCH_WRITE_FAILURES):
        return T2SError(f"writing a checkpoint failed ({str(exc).splitlines()[0][:200]}): the disk is probably full",
                        "free space on the output's disk (df -h) or choose an --out on a larger one, then rerun "
                        "(finished work is kept)")
    if not isinstance(exc, OSError):
        return None
    where = exc.filename or "the output"
    if exc.errno == errno.EROFS:
        return T2SError(f"{where}: the file system is read-only", "choose an output on a writable file system (--out)")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return T2SError(f"{where}: permission denied", "choose a path you may write (--out), or fix its permissions")
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return T2SError(f"{where}: no space left on the device", "free space there (df -h) or choose an output on a "
                                                                   "larger disk, then rerun (finished work is kept)")
    if exc.errno == errno.ENOMEM:
        return os_fault(MemoryError())
    return None
