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
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from ..profiles import parse_overrides

    overrides = parse_overrides(args.overrides)
    if args.plan:
        import json

        from ..plan import format_plan, plan_study
        from ..profiles import load_profile

        plan = plan_study(load_profile(args.profile, overrides))
        print(json.dumps(plan.as_dict(), indent=2) if args.json else format_plan(plan))
        return 0
    from ..study import run_study

    records = run_study(args.profile, only=args.only, kernel_name=args.kernel, overrides=overrides)
    total = sum(r["seconds"] for r in records)
    print(f"[t2s study] {len(records)} notebook(s) in {total:.1f} s")
    return 0
