"""Task2Vec speed: images/s of the Fisher pass and wall time of a whole embedding of a 10k-image task.

Also times one plain training epoch (forward, backward, SGD step) over the same number of images
at the same batch size, to check that the Fisher pass costs about one training epoch.

    python benchmarks/task2vec.py                       # CPU, 32 px, 10 000 images, 1 thread
    python benchmarks/task2vec.py --img-size 224 --device cuda --threads 0   # GPU host (task2vec_gpu.sh)

Writes runs/benchmarks/task2vec_<device>_<size>px.json and prints a markdown row.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="fashion-mnist", help="offline task with >= --images training images")
    ap.add_argument("--images", type=int, default=10000, help="training images embedded (the '10k-image task')")
    ap.add_argument("--fisher-samples", type=int, default=10000)
    ap.add_argument("--fisher-batch-size", type=int, default=64)
    ap.add_argument("--img-size", "--image-size", dest="img_size", type=int, default=32)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (0 = leave torch's default)")
    ap.add_argument("--skip-train-epoch", action="store_true")
    args = ap.parse_args()

    import numpy as np
    import torch
    import torch.nn.functional as F
    import torchvision

    from t2s_lib.device import resolve_device
    from t2s_lib.paths import runs_dir
    from t2s_lib.task2vec import Task2VecOptions, embed_task
    from t2s_lib.tasks import get_task

    if args.threads:
        torch.set_num_threads(args.threads)
    dev = resolve_device(args.device)
    task = get_task(args.task)
    n_train = len(task.labels("train"))
    fraction = min(1.0, args.images / n_train)
    opts = Task2VecOptions(img_size=args.img_size, fraction=fraction, max_samples=args.images,
                           fisher_samples=args.fisher_samples, fisher_batch_size=args.fisher_batch_size)
    t0 = time.perf_counter()
    emb = embed_task(task, opts, device=str(dev), cache=False)
    wall = time.perf_counter() - t0
    t = emb.meta["timing_s"]

    epoch_s = None
    if not args.skip_train_epoch:  # reference: one training epoch over the same number of images
        model = torchvision.models.resnet18(num_classes=task.num_classes).to(dev).train()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        bs = args.fisher_batch_size
        x = torch.randn(bs, 3, args.img_size, args.img_size, device=dev)
        y = torch.randint(0, task.num_classes, (bs,), device=dev)
        steps = max(1, args.fisher_samples // bs)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t1 = time.perf_counter()
        for _ in range(steps):
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        epoch_s = time.perf_counter() - t1

    result = {
        "date": time.strftime("%Y-%m-%d"), "host": platform.node(), "cpu": platform.processor() or platform.machine(),
        "device": str(dev), "torch_threads": torch.get_num_threads(), "task": args.task,
        "images": emb.meta["images_used"], "img_size": args.img_size, "fisher_samples": emb.meta["fisher_images"],
        "fisher_batch_size": args.fisher_batch_size, "wall_s": round(wall, 2), "timing_s": t,
        "fisher_images_per_s": emb.meta["fisher_images_per_s"],
        "feature_images_per_s": round(emb.meta["images_used"] / max(t["features"], 1e-9), 1),
        "train_epoch_s": None if epoch_s is None else round(epoch_s, 2),
        "fisher_over_train_epoch": None if epoch_s is None else round(t["fisher"] / epoch_s, 2),
        "norm": float(np.linalg.norm(emb.hessian)),
    }
    out = runs_dir() / "benchmarks" / f"task2vec_{dev.type}_{args.img_size}px.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"| {dev.type} x{result['torch_threads']} | {args.img_size} px | {result['images']} imgs | "
          f"Fisher {result['fisher_images_per_s']:.0f} img/s | features {result['feature_images_per_s']:.0f} img/s | "
          f"wall {wall:.1f} s | Fisher/train-epoch {result['fisher_over_train_epoch']} |")


if __name__ == "__main__":
    main()
