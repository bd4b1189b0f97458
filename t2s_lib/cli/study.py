"""``t2s study``: run the numbered notebooks through papermill."""

from __future__ import annotations

import argparse

from ._common import add_profile_arg


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("study", help="run the numbered notebooks in order (papermill)")
    add_profile_arg(p)
    p.add_argument("--only", nargs="*", help="run only these notebooks (numbers like 03 or names)")
    p.add_argument("--kernel", default=None, help="Jupyter kernel name (default python3)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from ..study import run_study

    records = run_study(args.profile, only=args.only, kernel_name=args.kernel)
    total = sum(r["seconds"] for r in records)
    print(f"[t2s study] {len(records)} notebook(s) in {total:.1f} s")
    return 0
