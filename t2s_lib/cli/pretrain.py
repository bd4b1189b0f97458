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
    p.add_argument("--arch", default=None, help=f"a model of t2s_lib.train.models.MODELS, e.g. resnet50, resnet18, "
                                                 f"resnet10t, resnet10t_w32 (default {d.arch})")
    add_config_flags(p, d)
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


def config_flag_names() -> list[str]:
    """The ``--flag`` of every :class:`PretrainConfig` field the CLI takes (what torchrun jobs are given)."""
    from ..train.config import PretrainConfig

    return [f.name for f in PretrainConfig.flag_fields()]


def _none_or(typ):
    def parse(text: str):
        return None if text.lower() in ("none", "null") else typ(text)
    parse.__name__ = typ.__name__
    return parse


def _bool(text: str) -> bool:
    """``true/false`` (also 1/0, yes/no, on/off) for boolean recipe fields; anything else is refused."""
    value = text.strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def add_config_flags(p: argparse.ArgumentParser, d) -> None:
    """One flag per recipe field, typed from the dataclass (so the CLI, profiles and torchrun agree)."""
    import typing

    from ..train.config import PretrainConfig

    hints = typing.get_type_hints(PretrainConfig)
    for f in PretrainConfig.flag_fields():
        hint = hints[f.name]
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        typ = args[0] if args else hint
        meta = f.metadata.get("choices")
        # SUPPRESS: an absent flag leaves no attribute, so "--auto-augment none" (None) differs from "not given"
        parse = _bool if typ is bool else typ
        p.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, default=argparse.SUPPRESS,
                       type=_none_or(parse) if args else parse, choices=meta,
                       help=f"default {getattr(d, f.name)}")


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
    flags = set(config_flag_names())
    for f in dataclasses.fields(PretrainConfig):
        if f.name in flags:
            if hasattr(args, f.name):  # given on the command line (possibly as none)
                values[f.name] = getattr(args, f.name)
        elif getattr(args, f.name, None) is not None:
            values[f.name] = getattr(args, f.name)
    values["data"], values["out"] = str(args.data), str(args.out)
    return PretrainConfig(**values).check("t2s pretrain")


def _run(args: argparse.Namespace) -> int:
    from ..files import check_user_output

    cfg = build_config(args)
    check_user_output(cfg.out, owned=("config.json", "checkpoint.pt"))  # a run folder of ours, or new
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
