"""``t2s figures``: regenerate figures/ from the committed results ledger (``make figures``), or check it."""

from __future__ import annotations

import argparse

from ._common import add_profile_arg


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("figures", help="regenerate figures/ from the committed results ledger (no measuring), "
                                              "or --check that the committed figures are exactly those")
    add_profile_arg(p)
    p.add_argument("--ledger", default=None, metavar="DIR", help="root of the ledger (default: the committed results/)")
    p.add_argument("--out", default=None, metavar="DIR", help="figures folder to write (default: the committed figures/)")
    p.add_argument("--check", action="store_true",
                   help="regenerate into a scratch folder and compare with figures/ (exit 1 naming each difference)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..paths import FIGURES_DIR, RESULTS_DIR
    from ..profiles import load_profile
    from ..regenerate import check_figures, regenerate_figures

    profile = args.profile
    load_profile(profile)  # a bad profile is named before any work
    ledger = Path(args.ledger).resolve() if args.ledger else RESULTS_DIR
    figures = Path(args.out).resolve() if args.out else FIGURES_DIR
    if args.check:
        differences = check_figures(profile, ledger_root=ledger, figures_dir=figures)
        for line in differences:
            print(f"[t2s figures] {line}")
        if differences:
            print(f"[t2s figures] {len(differences)} difference(s): the committed figures are not what the code at HEAD "
                  f"makes of the committed ledger\n  fix: make figures, then commit figures/")
            return 1
        print(f"[t2s figures] {figures} is exactly what the code at HEAD makes of {ledger}")
        return 0
    result = regenerate_figures(profile, ledger_root=ledger, figures_dir=figures)
    print(f"[t2s figures] {len(result.regenerated)} notebook(s) regenerated into {figures}"
          + (f"; not in the ledger yet: {', '.join(result.not_in_ledger)}" if result.not_in_ledger else ""))
    return 0
