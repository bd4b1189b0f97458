"""``t2s evaluate``: 5-NN / linear probe / fine-tuning of backbones on tasks, into one tidy CSV."""

from __future__ import annotations

import argparse

from ._common import add_device_arg


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("evaluate", help="evaluate backbones on downstream tasks (knn, linear, finetune)",
                              description="Rows are upserted into --results (default runs/<profile>/evaluate/results.csv).")
    p.add_argument("backbones", nargs="+", help="checkpoints (or run folders) from `t2s pretrain`, or scratch:<arch>")
    p.add_argument("--task", "--tasks", dest="tasks", nargs="+", required=True, help="task names or ImageFolder paths")
    p.add_argument("--protocol", choices=["knn", "linear", "finetune"], default="knn")
    p.add_argument("--profile", default="cpu", help="profile for defaults and the results location")
    p.add_argument("--results", default=None, help="results CSV (default runs/<profile>/evaluate/results.csv)")
    p.add_argument("--img-size", dest="img_size", type=int, default=None)
    p.add_argument("--k", type=int, default=None)
    p.add_argument("--temperature", type=float, default=None)
    p.add_argument("--train-mode-features", dest="train_mode", action="store_true", default=None,
                   help="k-NN: extract features in train mode, as the released code did")
    p.add_argument("--hparams", choices=["paper", "grid", "given"], default=None,
                   help="paper: per-task table (reference 7.2); grid: search on a 30%% validation split; given: flags")
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--batch-size", dest="batch_size", type=int, default=None)
    p.add_argument("--weight-decay", dest="weight_decay", type=float, default=None)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--cache-features", dest="cache_features", action="store_true", default=None,
                   help="linear: train the head on cached un-augmented features (fast CPU shortcut)")
    p.add_argument("--max-train", dest="max_train", type=int, default=None)
    p.add_argument("--max-test", dest="max_test", type=int, default=None)
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--save-model", dest="save_model", default=None,
                   help="finetune: folder for <backbone>__<task>.pt (fine-tuned backbone + head)")
    p.add_argument("--reward-table", dest="reward_table", default=None,
                   help="also write {task: {backbone: acc}} JSON from the knn rows (reward_db format)")
    add_device_arg(p)
    p.set_defaults(device=None, func=_run)


def _run(args: argparse.Namespace) -> int:
    import dataclasses
    from pathlib import Path

    from ..evaluate.results import read_results, reward_table, write_reward_table
    from ..evaluate.run import EvalOptions, backbone_name, evaluate_backbone
    from ..files import check_output_path
    from ..profiles import load_profile

    prof = load_profile(args.profile)
    flags = {f.name: getattr(args, f.name) for f in dataclasses.fields(EvalOptions)
             if f.name not in ("save_model", "protocol") and getattr(args, f.name, None) is not None}
    flags.setdefault("device", prof.device)
    flags.setdefault("seed", prof.seed)
    base = prof.evaluate.options(args.protocol, **flags).check("t2s evaluate")
    results = check_output_path(args.results or prof.layout.results_csv, kind="file", what="--results")
    if args.reward_table:
        check_output_path(args.reward_table, kind="file", what="--reward-table")
    if args.save_model:
        check_output_path(args.save_model, what="--save-model")
    for bb in args.backbones:
        for task in args.tasks:
            opts = dataclasses.replace(base)
            if args.save_model:
                opts.save_model = str(Path(args.save_model) / f"{backbone_name(bb)}__{Path(str(task)).name}.pt")
            row = evaluate_backbone(bb, task, opts, results=results)
            print(f"{row['backbone']:>24} {row['task']:>16} {row['protocol']:>8} top1 {row['value']:6.2f} %  ({row['seconds']} s)")
    print(f"[evaluate] results: {results}")
    if args.reward_table:
        write_reward_table(args.reward_table, reward_table(read_results(results)))
        print(f"[evaluate] reward table: {args.reward_table}")
    return 0
