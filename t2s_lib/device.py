"""Device choice is a parameter: ``auto`` (CUDA when present), ``cpu``, ``cuda`` or ``cuda:N``."""

from __future__ import annotations

import contextlib

from .errors import T2SError


@contextlib.contextmanager
def torch_threads(threads: int | None):
    """Run with ``threads`` torch CPU threads (None or 0: leave torch's setting), restored afterwards."""
    if not threads:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def resolve_device(spec: str = "auto"):
    """Return a ``torch.device`` for ``spec``; asking for CUDA on a machine without it is an error."""
    import torch

    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise T2SError(
                f"device {spec!r} was requested but this machine has no usable CUDA GPU",
                "use --device cpu (or auto), or run on a GPU host",
            )
        dev = torch.device(spec)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise T2SError(
                f"device {spec!r}: only {torch.cuda.device_count()} CUDA device(s) present",
                "pick an index below that, or use --device cuda",
            )
        return dev
    raise T2SError(f"unknown device {spec!r}", "use one of: auto, cpu, cuda, cuda:N")
