"""Speed of pre-training, feature extraction, 5-NN and CKA.

CPU default (small model, 64 px):   python benchmarks/train.py
GPU (ResNet-50, 224 px, bf16):      bash benchmarks/train_gpu.sh   (calls this script with --device cuda)

Measures
* train (synthetic): images/s of forward+backward+AdamW on in-memory tensors (model-bound ceiling);
* loader: images/s of the real data pipeline alone (JPEG/PNG decode + RandomResizedCrop + RandAugment,
  ``--workers`` processes) on a generated image set; it must exceed the training rate;
* train (real loader): images/s of the full pre-training loop (mixup/cutmix included);
* features: images/s of eval-mode pooled-feature extraction;
* knn: seconds for 5-NN of ``--knn-test`` queries against ``--knn-train`` features (chunked matmuls);
* cka: seconds for minibatch linear CKA between 4 stage outputs of two backbones.
Writes one JSON record per run to ``--out`` (default runs/benchmarks/train.jsonl).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def bench_train_synthetic(arch, img, batch, steps, device, amp, channels_last) -> float:
    import torch
    from timm.optim import create_optimizer_v2

    from t2s_lib.train import create_backbone

    model = create_backbone(arch, 100, drop_path_rate=0.1).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = create_optimizer_v2(model, opt="adamw", lr=1e-3, weight_decay=0.05)
    x = torch.randn(batch, 3, img, img, device=device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 100, (batch,), device=device)
    dtype = torch.bfloat16 if amp else torch.float32
    warm = 3
    for i in range(warm + steps):
        if i == warm:
            _sync(device)
            t0 = time.perf_counter()
        with torch.autocast(device.type, dtype=dtype, enabled=amp):
            loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    _sync(device)
    return batch * steps / (time.perf_counter() - t0)


def bench_loader(root, img, batch, workers, max_batches) -> float:
    from torch.utils.data import DataLoader

    from t2s_lib.train import image_folder, train_transform

    ds = image_folder(root, transform=train_transform(img))
    loader = DataLoader(ds, batch_size=batch, shuffle=True, num_workers=workers, drop_last=True,
                        persistent_workers=False, prefetch_factor=4 if workers else None)
    n, t0 = 0, None
    for i, (x, _) in enumerate(loader):
        if i == 1:
            t0 = time.perf_counter()  # skip worker start-up
        elif i > 1:
            n += x.shape[0]
        if i > max_batches:
            break
    return n / (time.perf_counter() - t0) if n else float("nan")


def bench_train_real(root, arch, img, batch, workers, device_name, amp, out_dir) -> float:
    from t2s_lib.train import PretrainConfig, pretrain, read_metrics

    cfg = PretrainConfig(data=str(root), out=str(out_dir), arch=arch, epochs=2, batch_size=batch, img_size=img,
                         warmup_epochs=0, workers=workers, device=device_name, amp="bf16" if amp else "off",
                         progress=False)
    pretrain(cfg)
    return float(read_metrics(out_dir)["images_per_s"].iloc[-1])  # 2nd epoch: no start-up costs


def bench_features(arch, img, batch, steps, device, amp) -> float:
    import torch

    from t2s_lib.train import create_backbone

    model = create_backbone(arch, 0).to(device).eval()
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    x = torch.randn(batch, 3, img, img, device=device)
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
        for i in range(2 + steps):
            if i == 2:
                _sync(device)
                t0 = time.perf_counter()
            model(x)
    _sync(device)
    return batch * steps / (time.perf_counter() - t0)


def bench_knn(n_train, n_test, dim, classes, device) -> float:
    import torch

    from t2s_lib.evaluate import knn_predict

    g = torch.Generator(device="cpu").manual_seed(0)
    tr = torch.randn(n_train, dim, generator=g).to(device)
    te = torch.randn(n_test, dim, generator=g).to(device)
    y = torch.randint(0, classes, (n_train,), generator=g).to(device)
    knn_predict(tr[:1000], y[:1000], te[:100], num_classes=classes)  # warm-up
    _sync(device)
    t0 = time.perf_counter()
    knn_predict(tr, y, te, num_classes=classes, chunk_size=4096 if device.type == "cuda" else 1024)
    _sync(device)
    return time.perf_counter() - t0


def bench_cka(arch, img, batch, batches, device) -> float:
    import torch

    from t2s_lib.cka import MinibatchCKA
    from t2s_lib.train import init_stage_model

    a, b = init_stage_model(arch, 0).to(device).eval(), init_stage_model(arch, 1).to(device).eval()
    accs = [MinibatchCKA(["a", "b"]) for _ in range(4)]
    x = torch.randn(batch, 3, img, img, device=device)
    _sync(device)
    t0 = time.perf_counter()
    with torch.inference_mode():
        for _ in range(batches):
            fa, fb = a(x), b(x)
            for s in range(4):
                accs[s].update([fa[s].float().mean((2, 3)), fb[s].float().mean((2, 3))])
    _sync(device)
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--arch", default="resnet10t")
    p.add_argument("--img-size", type=int, default=64)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--amp", action="store_true", help="bf16 autocast")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--images", type=int, default=512, help="generated images for the loader/real-training runs")
    p.add_argument("--knn-train", type=int, default=50_000)
    p.add_argument("--knn-test", type=int, default=20_000)
    p.add_argument("--knn-dim", type=int, default=512)
    p.add_argument("--skip", nargs="*", default=[], help="parts to skip: train loader real features knn cka")
    p.add_argument("--out", default="runs/benchmarks/train.jsonl")
    args = p.parse_args()

    import torch

    from t2s_lib.device import resolve_device
    from t2s_lib.train.toy import make_toy_image_set

    device = resolve_device(args.device)
    rec = {"date": time.strftime("%Y-%m-%d %H:%M", time.gmtime()), "host": platform.node(), "cpus": os.cpu_count(),
           "torch_threads": torch.get_num_threads(), "device": str(device),
           "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
           "arch": args.arch, "img_size": args.img_size, "batch": args.batch, "amp_bf16": args.amp,
           "channels_last": args.channels_last, "workers": args.workers}
    if "train" not in args.skip:
        rec["train_synthetic_img_s"] = round(bench_train_synthetic(args.arch, args.img_size, args.batch, args.steps,
                                                                   device, args.amp, args.channels_last), 1)
    with tempfile.TemporaryDirectory() as tmp:
        per_class = max(1, args.images // 16)
        root = make_toy_image_set(Path(tmp) / "set", classes=16, per_class=per_class, size=max(args.img_size, 64))
        if "loader" not in args.skip:
            rec["loader_img_s"] = round(bench_loader(root, args.img_size, args.batch, args.workers,
                                                     max(4, args.images // args.batch - 1)), 1)
        if "real" not in args.skip:
            rec["train_real_loader_img_s"] = round(bench_train_real(root, args.arch, args.img_size, args.batch,
                                                                    args.workers, args.device, args.amp,
                                                                    Path(tmp) / "run"), 1)
    if "features" not in args.skip:
        rec["features_img_s"] = round(bench_features(args.arch, args.img_size, args.batch * 2, args.steps, device,
                                                     args.amp), 1)
    if "knn" not in args.skip:
        rec["knn_shape"] = f"{args.knn_test}x{args.knn_train}x{args.knn_dim}"
        rec["knn_seconds"] = round(bench_knn(args.knn_train, args.knn_test, args.knn_dim, 100, device), 3)
    if "cka" not in args.skip:
        rec["cka_4stages_2nets_seconds_per_256"] = round(bench_cka(args.arch, args.img_size, 256, 2, device) / 2, 3)
    print(json.dumps(rec, indent=1))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "a") as fh:
        fh.write(json.dumps(rec) + "\n")


if __name__ == "__main__":
    main()
