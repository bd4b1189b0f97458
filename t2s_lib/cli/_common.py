"""Argument helpers shared by the subcommands."""

from __future__ import annotations

import argparse

from ..errors import T2SError


def parse_seeds(text: str) -> list[int]:
    """Parse ``0-9``, ``0,3,5`` or ``2`` into a list of non-negative seeds."""
    import re

    seeds: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        m = re.fullmatch(r"([0-9]+)(?:-([0-9]+))?", part)
        if m is None or (m.group(2) is not None and int(m.group(2)) < int(m.group(1))):
            raise T2SError(f"bad seed list {text!r} (at {part!r}): seeds are non-negative integers",
                           "write e.g. 0-9, 0,1,2 or 3")
        lo = int(m.group(1))
        seeds.extend(range(lo, int(m.group(2)) + 1) if m.group(2) is not None else [lo])
    if not seeds:
        raise T2SError(f"bad seed list {text!r}: empty", "write e.g. 0-9")
    return seeds


def add_device_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")


def add_profile_arg(parser: argparse.ArgumentParser, default: str = "cpu") -> None:
    parser.add_argument("--profile", default=default, help="smoke, cpu, paper or a path to a profile YAML")


def add_on_bad_image_arg(p: argparse.ArgumentParser) -> None:
    """``--on-bad-image {raise,skip}``, shared by the commands that read a task's image files
    (``t2s task2vec``, ``t2s adapt``): the flag the fix line of an undecodable image names."""
    p.add_argument("--on-bad-image", choices=["raise", "skip"], default=None,
                   help="undecodable (corrupt, empty, oversized) images: fail naming the file (default) or skip and count")
