"""Argument helpers shared by the subcommands."""

from __future__ import annotations

import argparse

from ..errors import T2SError


def parse_seeds(text: str) -> list[int]:
    """Parse ``0-9``, ``0,3,5`` or ``2`` into a list of seeds."""
    seeds: list[int] = []
    try:
        for part in str(text).split(","):
            part = part.strip()
            if not part:
                continue
            if "-" in part[1:]:
                lo, hi = part.split("-", 1)
                lo_i, hi_i = int(lo), int(hi)
                if hi_i < lo_i:
                    raise ValueError
                seeds.extend(range(lo_i, hi_i + 1))
            else:
                seeds.append(int(part))
    except ValueError:
        raise T2SError(f"bad seed list {text!r}", "write e.g. 0-9, 0,1,2 or 3") from None
    if not seeds:
        raise T2SError(f"bad seed list {text!r}: empty", "write e.g. 0-9")
    return seeds


def add_device_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")


def add_profile_arg(parser: argparse.ArgumentParser, default: str = "cpu") -> None:
    parser.add_argument("--profile", default=default, help="smoke, cpu, paper or a path to a profile YAML")
