"""``t2s rewards build|status``: the study's own reward table (render -> pre-train -> 5-NN per setting and seed)."""

from __future__ import annotations

import argparse

from ._common import add_profile_arg, parse_seeds


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("rewards", help="build the reward table (settings x tasks, seed replicates), show its status")
    sub = p.add_subparsers(dest="rewards_command", metavar="ACTION")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
    b = sub.add_parser("build", help="render, pre-train and 5-NN-evaluate every pending cell; resumable, idempotent",
                       description="Options default to the profile's rewards / pretrain / render / evaluate sections.")
    add_profile_arg(b)
    b.add_argument("--out", default=None, help="table folder (default runs/<profile>/rewards)")
    b.add_argument("--design", default=None, help="explicit, subgrid, full, ff16 (2^(8-4)), ff32 (2^(8-3)) or resv64 (2^(8-2), resolution V)")
    b.add_argument("--settings", nargs="*", default=None, help="settings of an explicit design (keys, indices, presets)")
    b.add_argument("--tasks", nargs="*", default=None, help="tasks (default: the profile's)")
    b.add_argument("--seeds", default=None, help="seeds of every setting, e.g. 0 or 0-1")
    b.add_argument("--replicate-settings", nargs="*", default=None, help="settings that get the extra seeds")
    b.add_argument("--replicate-seeds", default=None, help="extra seeds of those settings, e.g. 1,2")
    b.add_argument("--table256", action="store_true",
                   help="the profile's 256-setting table: the demo's table plus the table256 section's fraction, "
                        "replicates and held-out settings, in runs/<profile>/rewards256 (the demo's completed cells "
                        "are adopted from runs/<profile>/rewards; the other design options do not apply)")
    b.add_argument("--executor", default=None, choices=["inline", "local", "slurm", "debug"])
    b.add_argument("--max-parallel", type=int, default=None, help="local executor: cells at once")
    b.add_argument("--render-workers", type=int, default=None, help="render worker processes per cell")
    b.add_argument("--threads", type=int, default=None, help="torch CPU threads per cell (default: the profile's)")
    b.set_defaults(func=_build)
    s = sub.add_parser("status", help="what is done in a table folder")
    s.add_argument("table", help="table folder")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_status)


def _build(args: argparse.Namespace) -> int:
    from ..errors import T2SError
    from ..files import check_output_path, check_user_output
    from ..profiles import load_profile
    from ..rewards import build_table, spec_from_profile
    from ..rewards.spec import table256_spec

    prof = load_profile(args.profile)
    if args.out:  # a folder the user named: new, empty, or a table folder of ours
        out = check_user_output(args.out, owned=("spec.json", "cells"))
    else:
        out = check_output_path(prof.layout.rewards256 if args.table256 else prof.layout.rewards)
    chosen = [f"--{k.replace('_', '-')}" for k in ("design", "settings", "tasks", "seeds", "replicate_settings", "replicate_seeds")
              if getattr(args, k) is not None]
    if args.table256 and chosen:
        raise T2SError(f"--table256 takes its settings and seeds from the profile's table256 section, not {' '.join(chosen)}",
                       "drop those options, or edit the profile's table256 section")
    spec = table256_spec(prof) if args.table256 else spec_from_profile(prof, design=args.design, settings=args.settings, tasks=args.tasks,
                             seeds=parse_seeds(args.seeds) if args.seeds else None,
                             replicate_settings=args.replicate_settings,
                             replicate_seeds=parse_seeds(args.replicate_seeds) if args.replicate_seeds else None)
    if args.threads is not None:
        if args.threads < 1:
            raise T2SError(f"--threads {args.threads}", "use 1 or more torch threads per cell")
        import dataclasses

        spec = dataclasses.replace(spec, threads=args.threads)
    max_parallel = args.max_parallel or prof.rewards.max_parallel
    workers = args.render_workers or prof.render.workers
    if max_parallel < 1 or workers < 1:
        raise T2SError("--max-parallel and --render-workers must be at least 1", "use 1 or more")
    if args.table256:  # the cells notebook 03 completed are the same experiment: adopt them
        from ..rewards.build import adopt_table

        spec = adopt_table(out, spec, prof.layout.rewards)
    result = build_table(out, spec, executor=args.executor or prof.rewards.executor, max_parallel=max_parallel,
                         render_workers=workers, slurm=prof.rewards.slurm)
    print(f"[rewards] {len(result.done)}/{len(spec.cells())} cells complete in {result.seconds:.0f} s -> "
          f"{out / 'reward_table.json'}, {out / 'rewards.csv'}")
    if result.failed:
        for name, why in result.failed.items():
            print(f"  failed: {name}: {why}")
        raise T2SError(f"{len(result.failed)} cell(s) failed (the table keeps every completed entry)",
                       f"fix the cause named above and rerun the same command: it finishes the rest ({out / 'failed.json'})")
    return 0


def _status(args: argparse.Namespace) -> int:
    import json

    from ..rewards import table_status

    st = table_status(args.table)
    if args.json:
        print(json.dumps(st, indent=2))
        return 0
    print(f"{st['table']}: {st['done']}/{st['total']} cells complete (recipe {st['identity']})")
    for c in st["cells"]:
        mark = "done" if c["done"] else c["stage"]
        print(f"  {c['cell']:<28} {mark:<13} 5-NN {c['knn_tasks']}/{c['tasks']} tasks")
    for name, why in st["failed"].items():
        print(f"  FAILED {name}: {why}")
    return 0
