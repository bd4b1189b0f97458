"""``t2s study``: run the numbered notebooks through papermill."""

from __future__ import annotations

import argparse

from ._common import add_profile_arg


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("study", help="run the numbered notebooks in order (papermill)")
    add_profile_arg(p)
    p.add_argument("--only", nargs="*", help="run only these notebooks (numbers like 03 or names)")
    p.add_argument("--kernel", default=None, help="Jupyter kernel name (default python3)")
    p.add_argument("--plan", action="store_true",
                   help="validate the profile, data, assets and devices and estimate each stage's cost; run nothing")
    p.add_argument("--json", action="store_true", help="with --plan: print the plan as JSON")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a profile key (dotted, YAML value), e.g. --set device=cuda "
                        "--set tasks.unseen=[digits]; the resolved profile is written to <run_dir>/profile.yaml")
    p.add_argument("--budget-minutes", type=float, default=None, metavar="M",
                   help="stop cleanly once the next unit would not finish within M minutes (every finished unit is "
                        "in the results ledger; the same command continues); exit status 3 when stopped")
    ledger = p.add_mutually_exclusive_group()
    ledger.add_argument("--record", action="store_true",
                        help="measure into the committed results ledger (results/<profile>/) instead of the local "
                             "one (runs/ledger/<profile>/): for the maintainers")
    ledger.add_argument("--ledger", default=None, metavar="DIR",
                        help="root of the results ledger to read and append (default: T2S_LEDGER or runs/ledger)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--recompute", action="store_true",
                      help="measure every unit again even when the ledger holds it (the new records win)")
    mode.add_argument("--replay", action="store_true",
                      help="measure nothing: every unit must come from the ledger (what make figures runs)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from ..profiles import parse_overrides

    import os

    from ..paths import RESULTS_DIR

    overrides = parse_overrides(args.overrides)
    # the environment carries the ledger into the notebook kernels and their cell workers (and the plan)
    if args.record or args.ledger:
        os.environ["T2S_LEDGER"] = str(RESULTS_DIR if args.record else os.path.abspath(args.ledger))
    if args.recompute or args.replay:
        os.environ["T2S_LEDGER_MODE"] = "recompute" if args.recompute else "replay"
    if args.plan:
        import json

        from ..plan import format_plan, plan_study
        from ..profiles import load_profile

        plan = plan_study(load_profile(args.profile, overrides))
        print(json.dumps(plan.as_dict(), indent=2) if args.json else format_plan(plan))
        return 0
    from ..study import StudyStopped, run_study

    try:
        records = run_study(args.profile, only=args.only, kernel_name=args.kernel, overrides=overrides,
                            budget_minutes=args.budget_minutes)
    except StudyStopped as exc:
        done = sum(r["seconds"] for r in exc.records)
        print(f"[t2s study] {len(exc.records)} notebook(s) finished in {done:.1f} s; {exc.problem}\n  next: {exc.fix}")
        return 3
    total = sum(r["seconds"] for r in records)
    print(f"[t2s study] {len(records)} notebook(s) in {total:.1f} s")
    return 0
