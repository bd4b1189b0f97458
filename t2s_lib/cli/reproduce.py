"""``t2s reproduce``: set this machine's rerun of the study beside the committed one (``runs/<profile>/reproduction.md``)."""

from __future__ import annotations

import argparse

from ._common import add_profile_arg


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("reproduce", help="compare a rerun (make demo) with the committed figures and ledger: "
                                                "findings whose verdict flipped, measurements against seed noise")
    add_profile_arg(p)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from ..ledger import ledger_dir
    from ..paths import FIGURES_DIR, RESULTS_DIR
    from ..profiles import load_profile
    from ..reproduction import write_reproduction

    prof = load_profile(args.profile)
    out = write_reproduction(FIGURES_DIR, RESULTS_DIR / prof.name, prof.figures_dir, ledger_dir(prof.name),
                             prof.run_dir / "reproduction.md")
    print(f"[t2s reproduce] {out}")
    return 0
