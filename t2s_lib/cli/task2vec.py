"""``t2s task2vec``: embed a task (or all tasks of a profile) with Task2Vec."""

from __future__ import annotations

import argparse

from ._common import add_device_arg, add_on_bad_image_arg, add_profile_arg


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "task2vec",
        help="Task2Vec embedding of a task (Monte-Carlo Fisher of a ResNet probe)",
        description="Options default to the profile's task2vec section (cpu: 32 px, 2000 images, 1024 Fisher draws). "
                    "The probe: --probe-checkpoint, else the profile's probe_checkpoint, else the probe its probe_recipe "
                    "trains (once per machine, cached), else a fixed-seed random-init ResNet; the metadata names it.",
    )
    p.add_argument("--task", help="registered task name (t2s data list) or an ImageFolder path")
    p.add_argument("--out", help="output .npz (a .json with metadata is written beside it)")
    p.add_argument("--profile-tasks", action="store_true",
                   help="embed every seen/unseen task of --profile into runs/<profile>/task2vec/ instead")
    p.add_argument("--build-probe", action="store_true",
                   help="train (once per machine, cached) the probe of the profile's task2vec.probe_recipe and print its path")
    add_profile_arg(p)
    p.add_argument("--fraction", type=float, default=None, help="stratified fraction of the training split (0-1]")
    p.add_argument("--probe", choices=["resnet18", "resnet34", "resnet50"], default=None)
    p.add_argument("--probe-checkpoint", default=None, help="local state dict of the probe (e.g. ImageNet weights)")
    p.add_argument("--img-size", "--image-size", dest="img_size", type=int, default=None)
    p.add_argument("--max-samples", type=int, default=None, help="images whose features train the head")
    p.add_argument("--fisher-samples", type=int, default=None, help="Monte-Carlo Fisher draws")
    p.add_argument("--fisher-batch-size", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    add_on_bad_image_arg(p)
    p.add_argument("--data-root", default=None, help="root of the paper datasets (default: T2S_DATA_ROOT)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: the profile's)")
    p.add_argument("--workers", type=int, default=0, help="DataLoader workers for decoding image files")
    p.add_argument("--no-cache", action="store_true", help="recompute even if cached")
    add_device_arg(p)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    import dataclasses
    import json

    import numpy as np

    from ..errors import T2SError
    from ..files import check_output_path
    from ..profiles import load_profile
    from ..task2vec import embed_profile, embed_task

    from ..task2vec.study import probe_checkpoint_of

    prof = load_profile(args.profile)
    sec = prof.task2vec
    threads = args.threads if args.threads is not None else sec.threads
    if args.build_probe:
        if not sec.probe_recipe:
            raise T2SError(f"profile {prof.name!r} has no task2vec.probe_recipe", "add one, or give --probe-checkpoint")
        print(probe_checkpoint_of(dataclasses.replace(prof, device=args.device)))
        return 0
    if args.profile_tasks:
        embed_profile(dataclasses.replace(prof, device=args.device))
        return 0
    if not args.task or not args.out:
        raise T2SError("t2s task2vec needs --task and --out (or --profile-tasks)",
                       "e.g. t2s task2vec --task digits --out runs/digits.npz")
    out = check_output_path(args.out, kind="file")
    opts = sec.options(fraction=args.fraction, probe=args.probe,
                       probe_checkpoint=args.probe_checkpoint or probe_checkpoint_of(prof),
                       img_size=args.img_size, max_samples=args.max_samples, fisher_samples=args.fisher_samples,
                       fisher_batch_size=args.fisher_batch_size, seed=args.seed, on_bad_image=args.on_bad_image)
    from ..procs import output_lock

    with output_lock(out, "a Task2Vec embedding being computed"):  # one writer per --out
        emb = embed_task(args.task, opts, device=args.device, cache=not args.no_cache, threads=threads,
                         num_workers=args.workers, root=args.data_root or prof.tasks.data_root)
        path = emb.save(out)
    summary = {k: emb.meta.get(k) for k in ("task", "probe", "weights", "images_used", "fisher_images",
                                             "bad_images_skipped", "timing_s", "data_fingerprint")}
    summary["norm"] = float(np.linalg.norm(emb.hessian))
    summary["out"] = str(path)
    print(json.dumps(summary, indent=2))
    return 0
