"""``t2s ledger``: what the results ledger holds, which records are stale, whether every record parses."""

from __future__ import annotations

import argparse

from ._common import add_profile_arg


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("ledger", help="the results ledger: records per kind, stale records, a full check")
    sub = p.add_subparsers(dest="ledger_command", metavar="ACTION", required=True)
    for name, help_text in (("status", "records per kind (current and stale), their CPU-hours and machines"),
                            ("stale", "records of an older numerics version (never used; remove or re-measure)"),
                            ("check", "parse every record (exit 2 naming the first damaged file and line)")):
        q = sub.add_parser(name, help=help_text)
        add_profile_arg(q)
        q.add_argument("--ledger", default=None, metavar="DIR",
                       help="root of the ledger (default: T2S_LEDGER or runs/ledger; the committed one: results)")
        q.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    import os
    from collections import Counter
    from pathlib import Path

    from ..ledger import Ledger, get_kind
    from ..profiles import load_profile

    if args.ledger:
        os.environ["T2S_LEDGER"] = os.path.abspath(args.ledger)
    from ..ledger import ledger_dir

    led = Ledger(ledger_dir(load_profile(args.profile).name))
    kinds = led.kinds_present()
    if args.ledger_command == "stale":
        for rec in led.stale():
            print(f"{rec.where}: {rec.kind} numerics {rec.numerics} < {get_kind(rec.kind).numerics}")
        return 0
    total = 0
    for kind in kinds:
        records = led.records(kind)  # parses and checks every line
        total += len(records)
        if args.ledger_command == "status":
            current = [r for r in records if r.numerics == get_kind(kind).numerics]
            keys = {r.key for r in current}
            cpu_h = sum(float(r.provenance.get("cpu_seconds", 0.0)) for r in current) / 3600
            machines = Counter(str(r.provenance.get("cpu", "?")) for r in current)
            size = Path(led.path(kind)).stat().st_size / 1e6
            print(f"{kind:18s} {len(keys):6d} current ({len(records) - len(current)} stale) {cpu_h:7.2f} CPU-h "
                  f"{size:6.2f} MB  {'; '.join(f'{m} x{n}' for m, n in machines.most_common(3))}")
    if args.ledger_command == "check":
        print(f"{led.folder}: {total} records in {len(kinds)} file(s), every one parses")
    elif not kinds:
        print(f"{led.folder}: no records")
    return 0
