"""Pre-training from scratch with the paper's recipe (reference 7.1), on one CPU or under torchrun.

Layout of a run folder (``runs/<profile>/pretrain/<run_name>/``)::

    config.json     the full configuration (written once the inputs are checked)
    checkpoint.pt   model + optimiser + scheduler + epoch, replaced atomically after every epoch
    metrics.jsonl   one record per epoch (lr, train loss, images/s, optional clean monitor loss)

Rerunning the same command resumes from ``checkpoint.pt``; a finished run is returned as is.
Every epoch re-seeds all generators from ``(seed, epoch)``, so an interrupted and resumed run
gives the same weights as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import T2SError
from ..io import atomic_path, write_json, write_text


@dataclass
class PretrainConfig:
    """Defaults are the published recipe (ResNet-50, 100 epochs, AdamW 1e-3/0.05, batch 1024 ...)."""

    data: str = ""
    out: str = ""
    arch: str = "resnet50"
    epochs: int = 100
    batch_size: int = 1024  # global: split over the torchrun processes
    lr: float = 1e-3
    weight_decay: float = 0.05
    opt: str = "adamw"
    sched: str = "cosine"
    warmup_epochs: int = 20
    warmup_lr: float = 1e-6
    min_lr: float = 1e-5
    img_size: int = 224
    auto_augment: str | None = "rand-m9-mstd0.5-inc1"
    interpolation: str = "bicubic"
    mixup: float = 0.8
    cutmix: float = 1.0
    smoothing: float = 0.1
    drop_path: float = 0.1
    amp: str = "auto"  # auto (bf16 on CUDA, off on CPU) | bf16 | fp16 | off
    channels_last: str = "auto"  # auto (on for CUDA) | on | off
    workers: int = 4
    seed: int = 0
    device: str = "auto"
    max_images: int | None = None  # use a fixed random subset (smoke runs)
    monitor_images: int = 0  # >0: clean (no-aug) loss/acc on that many training images per epoch
    progress: bool = True
    stop_after: int | None = None  # stop after this many epochs in *this* call (interruption/testing)
    extra: dict[str, Any] = field(default_factory=dict)

    # fields that must agree between a checkpoint and a resumed run
    RESUME_KEYS = ("arch", "epochs", "batch_size", "lr", "weight_decay", "opt", "sched", "warmup_epochs",
                   "img_size", "auto_augment", "mixup", "cutmix", "smoothing", "drop_path", "seed", "max_images")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# ----------------------------------------------------------------------------------------------
# distributed helpers
def _dist_env() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment; (0, 1, 0) without it."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    return rank, world, local


def _resolve_amp(amp: str, device) -> Any:
    import torch

    amp = (amp or "auto").lower()
    if amp == "auto":
        return torch.bfloat16 if device.type == "cuda" else None
    if amp in ("off", "none", "fp32"):
        return None
    if amp == "bf16":
        return torch.bfloat16
    if amp == "fp16":
        if device.type != "cuda":
            raise T2SError("--amp fp16 needs a CUDA device", "use --amp bf16 or off on CPU")
        return torch.float16
    raise T2SError(f"unknown --amp {amp!r}", "use auto, bf16, fp16 or off")


def _check_resume(ckpt: dict[str, Any], cfg: PretrainConfig, classes: list[str]) -> None:
    from .models import check_compatible

    check_compatible(ckpt, arch=cfg.arch, num_classes=len(classes), classes=classes)
    old = ckpt.get("config", {})
    diff = {k: (old.get(k), getattr(cfg, k)) for k in cfg.RESUME_KEYS if k in old and old.get(k) != getattr(cfg, k)}
    if diff:
        raise T2SError(f"{ckpt['path']} was started with other settings: " +
                       ", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in diff.items()),
                       "rerun with the original settings to resume, or give a new --out folder")


def _seed_epoch(seed: int, epoch: int, rank: int) -> None:
    """All generators (python, numpy, torch) from (seed, epoch, rank): resume-exact augmentation/mixup."""
    from ..seeding import seed_everything

    seed_everything((seed * 1_000_003 + epoch * 7919 + rank) % 2**31, deterministic_torch=False)


def make_optimizer(model, cfg: PretrainConfig):
    """timm AdamW (no weight decay on biases / norm weights) and the per-epoch cosine schedule with
    linear warmup from ``warmup_lr`` (timm semantics without warmup prefix: lr(20) ~ 0.905 peak)."""
    from timm.optim import create_optimizer_v2
    from timm.scheduler import create_scheduler_v2

    optimizer = create_optimizer_v2(model, opt=cfg.opt, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler, _ = create_scheduler_v2(optimizer, sched=cfg.sched, num_epochs=cfg.epochs, warmup_epochs=cfg.warmup_epochs,
                                       warmup_lr=cfg.warmup_lr, min_lr=cfg.min_lr)
    return optimizer, scheduler


# ----------------------------------------------------------------------------------------------
def pretrain(cfg: PretrainConfig) -> Path:
    """Train (or resume, or return a finished) run; returns the path of ``checkpoint.pt``."""
    import torch
    import torch.distributed as dist
    from timm.data import Mixup
    from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy
    from torch.utils.data import DataLoader, DistributedSampler, Subset
    from tqdm.auto import tqdm

    from ..device import resolve_device
    from .data import describe_image_set, eval_transform, image_folder, train_transform
    from .models import MODELS, create_backbone, load_checkpoint

    # ---- check every input before anything is written -----------------------------------
    if not cfg.out:
        raise T2SError("no output folder given", "pass --out runs/<profile>/pretrain/<name>")
    MODELS.get(cfg.arch)
    info = describe_image_set(cfg.data)
    classes = info["classes"]
    rank, world, local_rank = _dist_env()
    device = resolve_device(cfg.device)
    if world > 1 and device.type == "cuda":
        device = torch.device("cuda", local_rank)
    amp_dtype = _resolve_amp(cfg.amp, device)
    channels_last = cfg.channels_last == "on" or (cfg.channels_last == "auto" and device.type == "cuda")
    if cfg.epochs < 1 or cfg.batch_size < world:
        raise T2SError(f"epochs={cfg.epochs}, batch_size={cfg.batch_size} for {world} process(es)",
                       "use epochs >= 1 and a global batch of at least one image per process")

    out = Path(cfg.out)
    ckpt_path = out / "checkpoint.pt"
    resume = None
    if ckpt_path.is_file():
        resume = load_checkpoint(ckpt_path)
        _check_resume(resume, cfg, classes)
        if resume["epoch"] >= cfg.epochs:
            if rank == 0 and cfg.progress:
                print(f"[pretrain] {out} is complete ({resume['epoch']} epochs); nothing to do")
            return ckpt_path

    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True  # fixed input size: let cuDNN pick the fastest kernels

    # ---- data -----------------------------------------------------------------------------
    dataset = image_folder(cfg.data, transform=train_transform(cfg.img_size, auto_augment=cfg.auto_augment,
                                                               interpolation=cfg.interpolation))
    if cfg.max_images and cfg.max_images < len(dataset):
        g = torch.Generator().manual_seed(cfg.seed)
        dataset = Subset(dataset, torch.randperm(len(dataset), generator=g)[: cfg.max_images].tolist())
    n = len(dataset)
    per_rank = max(1, cfg.batch_size // world)
    # Mixup needs an even batch and drop_last; a tiny set must still give one batch per epoch.
    per_rank = min(per_rank, max(1, n // world))
    if (cfg.mixup > 0 or cfg.cutmix > 0) and per_rank % 2:
        per_rank = max(2, per_rank - 1)
    sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True, seed=cfg.seed, drop_last=True)
    loader_kw = dict(batch_size=per_rank, sampler=sampler, drop_last=True, num_workers=cfg.workers,
                     pin_memory=device.type == "cuda", persistent_workers=False)
    if cfg.workers > 0:
        loader_kw["prefetch_factor"] = 4
    monitor = None
    if cfg.monitor_images > 0:
        mon_ds = image_folder(cfg.data, transform=eval_transform(cfg.img_size, interpolation=cfg.interpolation))
        g = torch.Generator().manual_seed(cfg.seed + 1)
        idx = torch.randperm(len(mon_ds), generator=g)[: cfg.monitor_images].tolist()
        monitor = DataLoader(Subset(mon_ds, idx), batch_size=min(256, len(idx)), num_workers=0)

    # ---- model, optimiser, schedule (timm factories, paper values) ---------------------------
    _seed_epoch(cfg.seed, -1, 0)  # identical initial weights on every rank
    model = create_backbone(cfg.arch, len(classes), drop_path_rate=cfg.drop_path).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer, scheduler = make_optimizer(model, cfg)
    scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None
    mixup = None
    if cfg.mixup > 0 or cfg.cutmix > 0:
        mixup = Mixup(mixup_alpha=cfg.mixup, cutmix_alpha=cfg.cutmix, prob=1.0, switch_prob=0.5, mode="batch",
                      label_smoothing=cfg.smoothing, num_classes=len(classes))
        criterion = SoftTargetCrossEntropy()  # smoothing is folded into the mixed targets
    elif cfg.smoothing > 0:
        criterion = LabelSmoothingCrossEntropy(cfg.smoothing)
    else:
        criterion = torch.nn.CrossEntropyLoss()

    start_epoch = 0
    if resume is not None:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        scheduler.load_state_dict(resume["scheduler"])
        if scaler is not None and resume.get("scaler"):
            scaler.load_state_dict(resume["scaler"])
        start_epoch = int(resume["epoch"])
    train_model = model
    if world > 1:
        train_model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "config.json", {**cfg.to_dict(), "classes": classes, "num_images": n, "world_size": world,
                                         "per_process_batch": per_rank, "amp": str(amp_dtype), "channels_last": channels_last})
        _truncate_metrics(out / "metrics.jsonl", start_epoch)
        if start_epoch == 0 and monitor is not None:
            _append_metric(out / "metrics.jsonl", {"epoch": 0, **_monitor(model, monitor, device, amp_dtype, channels_last)})

    # ---- epochs -------------------------------------------------------------------------------
    stop_at = cfg.epochs if cfg.stop_after is None else min(cfg.epochs, start_epoch + cfg.stop_after)
    for epoch in range(start_epoch, stop_at):
        _seed_epoch(cfg.seed, epoch, rank)
        sampler.set_epoch(epoch)
        scheduler.step(epoch)  # per-epoch schedule: epoch e uses lr(e) (timm train-script semantics)
        lr = optimizer.param_groups[0]["lr"]
        loader = DataLoader(dataset, generator=torch.Generator().manual_seed(cfg.seed * 7 + epoch), **loader_kw)
        train_model.train()
        total, count, t0 = 0.0, 0, time.perf_counter()
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not cfg.progress or rank != 0, leave=False)
        for images, targets in bar:
            images = images.to(device, non_blocking=True)
            targets = targets.to(device, non_blocking=True)
            if channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            if mixup is not None:
                images, targets = mixup(images, targets)
            with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
                loss = criterion(train_model(images), targets)
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                optimizer.step()
            total += loss.item() * images.shape[0]
            count += images.shape[0]
            bar.set_postfix(loss=f"{loss.item():.3f}")
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        stats = torch.tensor([total, count], dtype=torch.float64, device=device)
        if world > 1:
            dist.all_reduce(stats)
        record = {"epoch": epoch + 1, "lr": lr, "train_loss": float(stats[0] / max(stats[1], 1)),
                  "images": int(stats[1]), "seconds": round(seconds, 3), "images_per_s": round(float(stats[1]) / seconds, 1)}
        if rank == 0:
            if monitor is not None:
                record.update(_monitor(model, monitor, device, amp_dtype, channels_last))
            _append_metric(out / "metrics.jsonl", record)
            final = epoch + 1 == cfg.epochs
            state = {"arch": cfg.arch, "num_classes": len(classes), "classes": classes, "epoch": epoch + 1,
                     "epochs": cfg.epochs, "config": cfg.to_dict(), "model": model.state_dict(),
                     # a finished run keeps only the weights (smaller, nothing left to resume)
                     "optimizer": None if final else optimizer.state_dict(),
                     "scheduler": None if final else scheduler.state_dict(),
                     "scaler": scaler.state_dict() if scaler is not None and not final else None,
                     "complete": final}
            with atomic_path(ckpt_path) as tmp:
                torch.save(state, tmp)
            if cfg.progress:
                print(f"[pretrain] epoch {epoch + 1}/{cfg.epochs} lr {lr:.2e} loss {record['train_loss']:.4f} "
                      f"{record['images_per_s']:.0f} img/s", flush=True)
        if world > 1:
            dist.barrier()
    if world > 1 and dist.is_initialized():
        dist.destroy_process_group()
    return ckpt_path


def _monitor(model, loader, device, amp_dtype, channels_last) -> dict[str, float]:
    """Clean cross-entropy/accuracy on fixed training images (eval mode, no augmentation)."""
    import torch

    model.eval()
    loss_sum, correct, n = 0.0, 0, 0
    with torch.no_grad():
        for images, targets in loader:
            images, targets = images.to(device), targets.to(device)
            if channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
                logits = model(images).float()
            loss_sum += torch.nn.functional.cross_entropy(logits, targets, reduction="sum").item()
            correct += (logits.argmax(1) == targets).sum().item()
            n += targets.numel()
    model.train()
    return {"monitor_loss": loss_sum / n, "monitor_acc": 100.0 * correct / n}


def _append_metric(path: Path, record: dict[str, Any]) -> None:
    with open(path, "a") as fh:
        fh.write(json.dumps(record) + "\n")


def _truncate_metrics(path: Path, upto_epoch: int) -> None:
    """On resume, keep only records of completed (checkpointed) epochs."""
    if not path.is_file():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line).get("epoch", 0) <= upto_epoch:
                keep.append(line)
        except json.JSONDecodeError:
            continue
    write_text(path, "".join(k + "\n" for k in keep))


def read_metrics(run_dir: str | Path):
    """The metrics log of a run as a pandas DataFrame."""
    import pandas as pd

    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise T2SError(f"{path} not found", "run `t2s pretrain` for this run folder first")
    return pd.read_json(path, lines=True)
