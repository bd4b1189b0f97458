"""``t2s pretrain``: pre-train a backbone on a rendered image set (paper recipe by default)."""

from __future__ import annotations

import argparse

from ._common import add_device_arg


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("pretrain", help="pre-train a timm backbone on a rendered image set (works under torchrun)",
                              description="Defaults are the published recipe (reference 7.1). Rerunning resumes from "
                                          "<out>/checkpoint.pt. Multi-GPU: torchrun --nproc_per_node=N -m t2s_lib.train ...")
    p.add_argument("data", help="image set folder (<class>/<image>.jpg, e.g. runs/cpu/render/<key>)")
    p.add_argument("--out", required=True, help="run folder (checkpoint.pt, metrics.jsonl, config.json)")
    p.add_argument("--profile", default=None, help="take defaults from this profile's pretrain: section (cli flags win)")
    d = _defaults()
    p.add_argument("--arch", default=None, help=f"resnet18, resnet50, resnet101, resnet10t (default {d.arch})")
    for name, typ in (("epochs", int), ("batch_size", int), ("lr", float), ("weight_decay", float), ("warmup_epochs", int),
                      ("min_lr", float), ("warmup_lr", float), ("img_size", int), ("mixup", float), ("cutmix", float),
                      ("smoothing", float), ("drop_path", float), ("workers", int), ("seed", int), ("max_images", int),
                      ("monitor_images", int), ("stop_after", int)):
        p.add_argument(f"--{name.replace('_', '-')}", dest=name, type=typ, default=None,
                       help=f"default {getattr(d, name)}")
    p.add_argument("--auto-augment", dest="auto_augment", default=None, help=f"timm RandAugment spec or 'none' (default {d.auto_augment})")
    p.add_argument("--amp", default=None, help="auto (bf16 on CUDA), bf16, fp16, off")
    p.add_argument("--channels-last", dest="channels_last", default=None, choices=["auto", "on", "off"])
    p.add_argument("--no-progress", dest="progress", action="store_false", default=None)
    add_device_arg(p)
    p.set_defaults(device=None)
    s = p.add_argument_group("Slurm (submitit)")
    s.add_argument("--slurm", action="store_true", help="submit to Slurm through submitit instead of running here")
    s.add_argument("--nodes", type=int, default=1)
    s.add_argument("--gpus-per-node", type=int, default=4)
    s.add_argument("--partition", default=None)
    s.add_argument("--timeout-min", type=int, default=24 * 60)
    p.set_defaults(func=_run)


def _defaults():
    from ..train.config import PretrainConfig

    return PretrainConfig()


def build_config(args: argparse.Namespace):
    """Paper defaults < profile ``pretrain.recipe`` < explicit flags; checked (types, bounds) before use."""
    import dataclasses

    from ..train.config import PretrainConfig

    values: dict = {}
    if args.profile:
        from ..profiles import load_profile

        prof = load_profile(args.profile)
        values.update(prof.pretrain.recipe)
        values["device"] = prof.device
    for f in dataclasses.fields(PretrainConfig):
        v = getattr(args, f.name, None)
        if v is not None:
            values[f.name] = v
    if str(values.get("auto_augment", "")).lower() == "none":
        values["auto_augment"] = None
    values["data"], values["out"] = str(args.data), str(args.out)
    return PretrainConfig(**values).check("t2s pretrain")


def _run(args: argparse.Namespace) -> int:
    cfg = build_config(args)
    if args.slurm:
        from ..train.slurm import submit_slurm

        job = submit_slurm(cfg, nodes=args.nodes, gpus_per_node=args.gpus_per_node, partition=args.partition,
                           timeout_min=args.timeout_min)
        print(f"[pretrain] submitted Slurm job {job.job_id}; logs under {cfg.out}/slurm")
        return 0
    from ..train.loop import pretrain

    import os

    path = pretrain(cfg)
    if os.environ.get("RANK", "0") == "0":  # one line per job, not per torchrun process
        print(f"[pretrain] checkpoint: {path}")
    return 0
