"""``t2s cka``: backbone x backbone CKA at ResNet stages 1-4, averaged over tasks."""

from __future__ import annotations

import argparse

from ._common import add_device_arg


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("cka", help="CKA between backbones at stages 1-4 (minibatch unbiased HSIC)")
    p.add_argument("backbones", nargs="+", help="NAME=CHECKPOINT (or a checkpoint path; scratch:<arch> allowed)")
    p.add_argument("--task", "--tasks", dest="tasks", nargs="+", required=True)
    p.add_argument("--out", required=True, help="output stem: writes <out>.npz and <out>.json")
    p.add_argument("--kernel", choices=["linear", "rbf"], default="linear")
    p.add_argument("--reduce", choices=["pool", "flatten"], default="pool", help="how stage maps become vectors")
    p.add_argument("--img-size", dest="img_size", type=int, default=224)
    p.add_argument("--batch-size", dest="batch_size", type=int, default=256)
    p.add_argument("--epochs", type=int, default=1, help="shuffled passes over the images")
    p.add_argument("--max-images", dest="max_images", type=int, default=None)
    p.add_argument("--split", default="test")
    p.add_argument("--seed", type=int, default=0)
    add_device_arg(p)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    import numpy as np

    from ..cka import cka_matrices, save_cka
    from ..errors import T2SError
    from ..evaluate.run import backbone_name
    from ..files import check_output_path

    check_output_path(args.out + ".npz", kind="file")
    for name, value, lo in (("--batch-size", args.batch_size, 4), ("--img-size", args.img_size, 8), ("--epochs", args.epochs, 1),
                            ("--max-images", args.max_images, 4), ("--seed", args.seed, 0)):
        if value is not None and value < lo:
            raise T2SError(f"{name} {value} is out of range", f"use {name} >= {lo}")

    backbones = {}
    for spec in args.backbones:
        name, _, path = spec.partition("=") if "=" in spec and not spec.startswith("scratch:") else ("", "", spec)
        backbones[name or backbone_name(path)] = path
    from ..procs import output_lock

    with output_lock(args.out + ".npz", "a CKA result being computed"):  # one writer per --out
        res = cka_matrices(backbones, args.tasks, img_size=args.img_size, batch_size=args.batch_size, epochs=args.epochs,
                           max_images=args.max_images, kernel=args.kernel, reduce=args.reduce, split=args.split,
                           device=args.device, seed=args.seed, progress=True)
        path = save_cka(res, args.out)
    np.set_printoptions(precision=3, suppress=True)
    for s, m in zip(res["stages"], res["mean"]):
        print(f"stage {s} (mean over {len(res['tasks'])} task(s)), order {res['names']}:\n{m}")
    print(f"[cka] {path}")
    return 0
