"""``t2s adapt``: recommend (and optionally render and pre-train) the simulator setting for your own task."""

from __future__ import annotations

import argparse

from ._common import add_on_bad_image_arg, add_profile_arg


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "adapt", help="measure a reward table's stored backbones on your task and recommend a setting",
        description="Measured selection with the table's stored backbones: K settings scored by 5-NN on a validation "
                    "split of the task's training data; writes OUT/recommendation.json and OUT/report.html.")
    p.add_argument("--task", required=True, help="an ImageFolder (<class>/<image> or train/ + test/) or a task name")
    add_profile_arg(p)
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--rewards", default=None, help="reward table folder (default: the profile's, built first if missing)")
    p.add_argument("--budget", type=int, default=None, help="settings to measure (default 8, or all if fewer)")
    p.add_argument("--render", type=int, default=None, metavar="N", help="also render N images of the recommended setting")
    p.add_argument("--pretrain", action="store_true", help="with --render: pre-train a backbone on them (profile recipe)")
    add_on_bad_image_arg(p)  # the flag an undecodable image's fix line names, as in t2s task2vec
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from ..adapt import adapt
    from ..errors import T2SError
    from ..files import check_user_output
    from ..procs import output_lock
    from ..profiles import load_profile

    if args.render is not None and args.render < 1:
        raise T2SError(f"--render {args.render}: must be a positive number of images", "e.g. --render 4000")
    out = check_user_output(args.out, owned=("recommendation.json", "report.html"))
    # one adapt run per --out: two would both report success over one task's files
    with output_lock(out, "a t2s adapt run"):
        rec = adapt(args.task, load_profile(args.profile), out, rewards=args.rewards, budget=args.budget,
                    render=args.render, pretrain=args.pretrain, on_bad_image=args.on_bad_image or "raise")
    print(f"[adapt] {rec['task']}: setting {rec['setting']} ({rec['codes'][rec['setting']]}), "
          f"{rec['measured'][rec['setting']]:.2f} % 5-NN on the validation split, "
          f"{rec['gain_over_domain_randomization'] or 0:+.2f} vs domain randomisation, "
          f"{rec['gain_over_best_fixed']:+.2f} vs the best fixed setting -> {args.out}/report.html")
    return 0
