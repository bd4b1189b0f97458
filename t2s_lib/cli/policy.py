"""``t2s policy``: train policy variants and compute baselines on a reward table."""

from __future__ import annotations

import argparse

from ._common import parse_seeds


def _add_problem_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rewards", default=None, help="reward table JSON {task: {key: reward}} (default: the published table)")
    p.add_argument("--vectors", nargs="*", default=None,
                   help="Task2Vec npz file(s): those `t2s task2vec` writes (one task each) and/or multi-task files "
                        "in the published format (default: the published vectors)")
    p.add_argument("--seen", default=None, help="comma-separated seen tasks (with --rewards)")
    p.add_argument("--unseen", default=None, help="comma-separated unseen tasks (with --rewards)")
    p.add_argument("--workers", type=int, default=1, help="processes for seeds / leave-one-out folds")


def register(subparsers: argparse._SubParsersAction) -> None:
    from ..policy.methods import DEFAULT_VARIANT

    policy = subparsers.add_parser("policy", help="train the task -> setting policy, compute baselines")
    sub = policy.add_subparsers(dest="policy_command", metavar="SUBCOMMAND")
    policy.set_defaults(func=lambda args: (policy.print_help(), 2)[1])

    train = sub.add_parser("train", help="train a policy variant over seeds and evaluate on seen/unseen tasks")
    train.add_argument("--variant", default=DEFAULT_VARIANT, help="paper, per-task, reward-kernel (default), measured or a baseline name")
    train.add_argument("--seeds", default="0", help="seeds, e.g. 0-9 or 0,1,2")
    train.add_argument("--epochs", type=int, default=None, help="controller epochs (default 1000)")
    train.add_argument("--budget", type=int, default=None,
                       help="measured variant only: settings measured per task, 1..number of settings in the table (default 8, or all if fewer)")
    train.add_argument("--loo", action="store_true", help="also leave each task out in turn (fit on all others)")
    train.add_argument("--loo-seeds", default=None, help="seeds for --loo (default: the first seed)")
    train.add_argument("--out", required=True, help="output folder (writes summary.json, curves.json)")
    _add_problem_args(train)
    train.set_defaults(func=_train)

    base = sub.add_parser("baselines", help="evaluate the baselines (oracle, DR, all-off, best-fixed, random, nearest-seen)")
    base.add_argument("--out", required=True, help="output folder (writes baselines.json and baselines.md)")
    _add_problem_args(base)
    base.set_defaults(func=_baselines)


def _problem(args: argparse.Namespace):
    from ..errors import T2SError
    from ..policy import problem_from_files, published_problem

    if args.rewards is None:
        if args.vectors or args.seen or args.unseen:
            raise T2SError("--vectors/--seen/--unseen need --rewards", "pass --rewards FILE too, or none of them")
        return published_problem()
    if not (args.vectors and args.seen):
        raise T2SError("--rewards needs --vectors and --seen", "name the Task2Vec npz files and the seen tasks")
    split = lambda s: tuple(t.strip() for t in (s or "").split(",") if t.strip())  # noqa: E731
    return problem_from_files(args.rewards, args.vectors, split(args.seen), split(args.unseen))


def _train(args: argparse.Namespace) -> int:
    from ..policy import CONTROLLER_VARIANTS, METHODS, format_summary, run_variant, write_summary

    from ..files import check_output_path

    METHODS.get(args.variant)
    check_output_path(args.out)
    if args.budget is not None and args.variant != "measured":
        from ..errors import T2SError

        raise T2SError(f"--budget applies to the measured variant, not {args.variant!r}", "drop --budget, or use --variant measured")
    problem = _problem(args)
    seeds = parse_seeds(args.seeds)
    options = {}
    if args.epochs is not None:
        if args.variant not in CONTROLLER_VARIANTS:
            from ..errors import T2SError

            raise T2SError(f"--epochs applies to the controller variants {CONTROLLER_VARIANTS}, not {args.variant!r}")
        options["epochs"] = args.epochs
    if args.variant == "measured":
        from ..policy.measured import default_budget, check_budget

        n_settings = len(problem.table.keys)
        options["budget"] = check_budget(default_budget(n_settings) if args.budget is None else args.budget, n_settings)
    loo_seeds = (parse_seeds(args.loo_seeds) if args.loo_seeds else seeds[:1]) if args.loo else None
    from ..procs import output_lock

    with output_lock(args.out, "a policy being trained"):  # one writer per --out
        summary, curves = run_variant(args.variant, problem, seeds, options=options, loo_seeds=loo_seeds, workers=args.workers)
        path = write_summary(args.out, summary, curves)
    print(format_summary(summary))
    print(f"wrote {path}")
    return 0


def _baselines(args: argparse.Namespace) -> int:
    from ..files import check_output_path
    from ..policy.report import baseline_table, write_table

    check_output_path(args.out)
    problem = _problem(args)
    from ..procs import output_lock

    with output_lock(args.out, "a baseline table being written"):  # one writer per --out
        table = baseline_table(problem, workers=args.workers)
        paths = write_table(table, args.out, "baselines")
    print(table.to_markdown(floatfmt=".2f"))
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0
