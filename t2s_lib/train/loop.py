"""Pre-training from scratch with the paper's recipe (reference 7.1), on one CPU or under torchrun.

Layout of a run folder (``runs/<profile>/pretrain/<run_name>/``)::

    config.json     the full configuration (written with the first checkpoint)
    checkpoint.pt   model + optimiser + scheduler + epoch, replaced atomically after every epoch
    metrics.jsonl   one record per epoch (lr, train loss, images/s, optional clean monitor loss)

The folder appears only when the first epoch is complete, so a run that fails on bad input
leaves nothing behind. Rerunning the same command resumes from ``checkpoint.pt``; a finished run
is returned as is. Every epoch re-seeds all generators from ``(seed, epoch)``, so an interrupted
and resumed run gives the same weights as an uninterrupted one. One process at a time may write
a run folder (an exclusive lock beside it names the holder's PID).

The steps, in the style of timm's ``train_one_epoch``: :func:`prepare_run` (check inputs, resume
state), :func:`build_data`, :func:`build_training` (model, optimiser, schedule, mixup, loss),
:func:`train_one_epoch`, :func:`save_epoch` (metrics + checkpoint).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import T2SError
from ..files import atomic_path, check_output_path, write_json, write_text
from ..procs import output_lock
from .config import PretrainConfig

__all__ = ["PretrainConfig", "pretrain", "read_metrics", "make_optimizer", "train_one_epoch"]


# ----------------------------------------------------------------------------------------------
# distributed and precision helpers
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

    fused = {"fused": True} if cfg.fused_optimizer else {}
    optimizer = create_optimizer_v2(model, opt=cfg.opt, lr=cfg.lr, weight_decay=cfg.weight_decay, **fused)
    scheduler, _ = create_scheduler_v2(optimizer, sched=cfg.sched, num_epochs=cfg.epochs, warmup_epochs=cfg.warmup_epochs,
                                       warmup_lr=cfg.warmup_lr, min_lr=cfg.min_lr)
    return optimizer, scheduler


# ----------------------------------------------------------------------------------------------
# steps
@dataclass
class RunContext:
    """Checked inputs of one run: data description, process topology, device and precision, resume state."""

    cfg: PretrainConfig
    out: Path
    classes: list[str]
    rank: int
    world: int
    device: Any
    amp_dtype: Any
    channels_last: bool
    resume: dict[str, Any] | None = None

    @property
    def checkpoint(self) -> Path:
        return self.out / "checkpoint.pt"

    @property
    def complete(self) -> bool:
        return self.resume is not None and int(self.resume["epoch"]) >= self.cfg.epochs


def prepare_run(cfg: PretrainConfig) -> RunContext:
    """Check every input before anything is written; returns the run's context (without resume state)."""
    import torch

    from ..device import resolve_device
    from .data import check_images, describe_image_set
    from .models import MODELS

    cfg.check()
    if not cfg.out:
        raise T2SError("no output folder given", "pass --out runs/<profile>/pretrain/<name>")
    out = check_output_path(cfg.out)
    MODELS.get(cfg.arch)
    info = describe_image_set(cfg.data)
    check_images(info)
    rank, world, local_rank = _dist_env()
    device = resolve_device(cfg.device)
    if world > 1 and device.type == "cuda":
        device = torch.device("cuda", local_rank)
    if cfg.batch_size < world:
        raise T2SError(f"batch_size={cfg.batch_size} for {world} process(es)", "use a global batch of at least one image per process")
    amp_dtype = _resolve_amp(cfg.amp, device)
    channels_last = cfg.channels_last == "on" or (cfg.channels_last == "auto" and device.type == "cuda")
    return RunContext(cfg, out, info["classes"], rank, world, device, amp_dtype, channels_last)


def load_resume(run: RunContext) -> None:
    """Read ``checkpoint.pt`` when present and check it belongs to this configuration."""
    from .models import load_checkpoint

    if run.checkpoint.is_file():
        run.resume = load_checkpoint(run.checkpoint)
        _check_resume(run.resume, run.cfg, run.classes)


@dataclass
class TrainData:
    dataset: Any
    sampler: Any
    loader_kw: dict[str, Any]
    per_rank_batch: int
    monitor: Any = None  # clean loss/accuracy on training images
    val: Any = None  # clean loss/accuracy on the held-out validation split

    def loader(self, seed: int, epoch: int):
        import torch
        from torch.utils.data import DataLoader

        return DataLoader(self.dataset, generator=torch.Generator().manual_seed(seed * 7 + epoch), **self.loader_kw)


def build_data(run: RunContext) -> TrainData:
    """The augmented training set (optionally a fixed random subset), its distributed sampler and
    loader settings, the optional clean monitor set and the held-out validation split."""
    import torch
    from torch.utils.data import DataLoader, DistributedSampler, Subset

    from . import data as D

    cfg = run.cfg
    scale = (cfg.crop_scale_min, 1.0)
    collate = None
    if cfg.data_mode == "memory" and cfg.augment == "batched":
        dataset = D.MemoryImageSet(cfg.data, None)  # uint8 items: the collate step crops, flips, normalises
        collate = D.BatchCropFlip(cfg.img_size, scale=scale)

        def clean_set():
            return dataset.with_transform(D.tensor_eval_transform(cfg.img_size, interpolation=cfg.interpolation))
    elif cfg.data_mode == "memory":
        dataset = D.MemoryImageSet(cfg.data, D.tensor_train_transform(
            cfg.img_size, scale=scale, interpolation=cfg.interpolation, color_jitter=cfg.color_jitter))

        def clean_set():
            return dataset.with_transform(D.tensor_eval_transform(cfg.img_size, interpolation=cfg.interpolation))
    else:
        dataset = D.image_folder(cfg.data, transform=D.train_transform(
            cfg.img_size, auto_augment=cfg.auto_augment, interpolation=cfg.interpolation, scale=scale,
            color_jitter=cfg.color_jitter))

        def clean_set():
            return D.image_folder(cfg.data, transform=D.eval_transform(cfg.img_size, interpolation=cfg.interpolation))
    val = None
    if cfg.val_fraction > 0:
        groups = D.model_ids(cfg.data, dataset.samples) if cfg.val_by == "model" else None
        train_idx, val_idx = validation_split(dataset.targets, cfg.val_fraction, cfg.seed, groups=groups)
        val = DataLoader(Subset(clean_set(), val_idx), batch_size=256, num_workers=0)
        dataset = Subset(dataset, train_idx)
    if cfg.max_images and cfg.max_images < len(dataset):
        g = torch.Generator().manual_seed(cfg.seed)
        dataset = Subset(dataset, torch.randperm(len(dataset), generator=g)[: cfg.max_images].tolist())
    n = len(dataset)
    per_rank = max(1, cfg.batch_size // run.world)
    # Mixup needs an even batch and drop_last; a tiny set must still give one batch per epoch.
    per_rank = min(per_rank, max(1, n // run.world))
    if (cfg.mixup > 0 or cfg.cutmix > 0) and per_rank % 2:
        per_rank = max(2, per_rank - 1)
    sampler = DistributedSampler(dataset, num_replicas=run.world, rank=run.rank, shuffle=True, seed=cfg.seed, drop_last=True)
    loader_kw = dict(batch_size=per_rank, sampler=sampler, drop_last=True, num_workers=cfg.workers,
                     pin_memory=run.device.type == "cuda", persistent_workers=False)
    if collate is not None:
        loader_kw["collate_fn"] = collate
    if cfg.workers > 0:
        loader_kw["prefetch_factor"] = 4
    monitor = None
    if cfg.monitor_images > 0:
        mon_ds = clean_set()
        g = torch.Generator().manual_seed(cfg.seed + 1)
        idx = torch.randperm(len(mon_ds), generator=g)[: cfg.monitor_images].tolist()
        monitor = DataLoader(Subset(mon_ds, idx), batch_size=min(256, len(idx)), num_workers=0)
    return TrainData(dataset, sampler, loader_kw, per_rank, monitor, val)


def validation_split(targets, fraction: float, seed: int, groups=None) -> tuple[list[int], list[int]]:
    """(train, validation) indices, seeded, from every class.

    Without ``groups``: a ``fraction`` of the class's images (at least one) is held out. With
    ``groups`` (e.g. the 3D model of every image): whole groups are held out, in a seeded order,
    until at least ``fraction`` of the class's images are; one group of each class always stays
    in training (a class with a single group is not validated).
    """
    import numpy as np

    targets = np.asarray(targets)
    rng = np.random.default_rng([seed, 4242])
    train, val = [], []
    for c in np.unique(targets):
        idx = np.flatnonzero(targets == c)
        if groups is None:
            rng.shuffle(idx)
            k = min(len(idx) - 1, max(1, int(round(fraction * len(idx)))))
            val += idx[:k].tolist()
            train += idx[k:].tolist()
            continue
        members = np.asarray([groups[i] for i in idx])
        order = rng.permutation(np.unique(members))
        held: list[str] = []
        count = 0
        for g in order[:-1]:
            if count >= fraction * len(idx):
                break
            held.append(g)
            count += int((members == g).sum())
        out = np.isin(members, held)
        val += idx[out].tolist()
        train += idx[~out].tolist()
    return sorted(train), sorted(val)


@dataclass
class TrainState:
    model: Any  # unwrapped (checkpointed) model
    train_model: Any  # DDP-wrapped when world > 1
    optimizer: Any
    scheduler: Any
    scaler: Any
    mixup: Any
    criterion: Any
    start_epoch: int = 0
    initial: dict[str, Any] | None = None  # the untrained model's clean metrics (written with epoch 1)


def build_training(run: RunContext) -> TrainState:
    """Model, optimiser, schedule, mixup/cutmix and loss from timm's factories (paper values), resumed
    from the checkpoint when there is one."""
    import torch
    from timm.data import Mixup
    from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy

    from .models import create_backbone

    cfg, device = run.cfg, run.device
    _seed_epoch(cfg.seed, -1, 0)  # identical initial weights on every rank
    model = create_backbone(cfg.arch, len(run.classes), drop_path_rate=cfg.drop_path).to(device)
    if run.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer, scheduler = make_optimizer(model, cfg)
    scaler = torch.amp.GradScaler("cuda") if run.amp_dtype == torch.float16 else None
    mixup = None
    if cfg.mixup > 0 or cfg.cutmix > 0:
        mixup = Mixup(mixup_alpha=cfg.mixup, cutmix_alpha=cfg.cutmix, prob=1.0, switch_prob=0.5, mode="batch",
                      label_smoothing=cfg.smoothing, num_classes=len(run.classes))
        criterion = SoftTargetCrossEntropy()  # smoothing is folded into the mixed targets
    elif cfg.smoothing > 0:
        criterion = LabelSmoothingCrossEntropy(cfg.smoothing)
    else:
        criterion = torch.nn.CrossEntropyLoss()
    state = TrainState(model, model, optimizer, scheduler, scaler, mixup, criterion)
    if run.resume is not None:
        model.load_state_dict(run.resume["model"])
        optimizer.load_state_dict(run.resume["optimizer"])
        scheduler.load_state_dict(run.resume["scheduler"])
        if scaler is not None and run.resume.get("scaler"):
            scaler.load_state_dict(run.resume["scaler"])
        state.start_epoch = int(run.resume["epoch"])
    if run.world > 1:
        state.train_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    return state


def train_one_epoch(epoch: int, run: RunContext, data: TrainData, state: TrainState) -> dict[str, Any]:
    """One epoch of augmented, mixed training; returns the epoch's record (lr, loss, images, speed)."""
    import torch
    import torch.distributed as dist
    from tqdm.auto import tqdm

    cfg, device = run.cfg, run.device
    _seed_epoch(cfg.seed, epoch, run.rank)
    data.sampler.set_epoch(epoch)
    state.scheduler.step(epoch)  # per-epoch schedule: epoch e uses lr(e) (timm train-script semantics)
    lr = state.optimizer.param_groups[0]["lr"]
    state.train_model.train()
    total, count, t0 = 0.0, 0, time.perf_counter()
    bar = tqdm(data.loader(cfg.seed, epoch), desc=f"epoch {epoch + 1}/{cfg.epochs}",
               disable=not cfg.progress or run.rank != 0, leave=False)
    for images, targets in bar:
        images = images.to(device, non_blocking=True)
        targets = targets.to(device, non_blocking=True)
        if run.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        if state.mixup is not None:
            images, targets = state.mixup(images, targets)
        with torch.autocast(device.type, dtype=run.amp_dtype or torch.float32, enabled=run.amp_dtype is not None):
            loss = state.criterion(state.train_model(images), targets)
        state.optimizer.zero_grad(set_to_none=True)
        if state.scaler is not None:
            state.scaler.scale(loss).backward()
            state.scaler.step(state.optimizer)
            state.scaler.update()
        else:
            loss.backward()
            state.optimizer.step()
        total += loss.item() * images.shape[0]
        count += images.shape[0]
        bar.set_postfix(loss=f"{loss.item():.3f}")
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    stats = torch.tensor([total, count], dtype=torch.float64, device=device)
    if run.world > 1:
        dist.all_reduce(stats)
    return {"epoch": epoch + 1, "lr": lr, "train_loss": float(stats[0] / max(stats[1], 1)),
            "images": int(stats[1]), "seconds": round(seconds, 3), "images_per_s": round(float(stats[1]) / seconds, 1)}


def save_epoch(run: RunContext, data: TrainData, state: TrainState, record: dict[str, Any]) -> None:
    """(rank 0) Metrics line and checkpoint of a finished epoch; the first one also writes config.json."""
    import torch

    cfg, out = run.cfg, run.out
    if data.monitor is not None:
        record.update(_monitor(state.model, data.monitor, run.device, run.amp_dtype, run.channels_last))
    if data.val is not None:
        m = _monitor(state.model, data.val, run.device, run.amp_dtype, run.channels_last)
        record.update(val_loss=m["monitor_loss"], val_acc=m["monitor_acc"])
    first = not out.is_dir()
    out.mkdir(parents=True, exist_ok=True)
    if first or not (out / "config.json").is_file():
        write_json(out / "config.json", {**cfg.to_dict(), "classes": run.classes, "num_images": len(data.dataset),
                                         "num_val_images": len(data.val.dataset) if data.val is not None else 0,
                                         "chance_acc": 100.0 / len(run.classes),
                                         "world_size": run.world, "per_process_batch": data.per_rank_batch,
                                         "amp": str(run.amp_dtype), "channels_last": run.channels_last})
    _append_metric(out / "metrics.jsonl", record)
    epoch = record["epoch"]
    final = epoch == cfg.epochs
    ckpt = {"arch": cfg.arch, "num_classes": len(run.classes), "classes": run.classes, "epoch": epoch,
            "epochs": cfg.epochs, "config": cfg.to_dict(), "model": state.model.state_dict(),
            # a finished run keeps only the weights (smaller, nothing left to resume)
            "optimizer": None if final else state.optimizer.state_dict(),
            "scheduler": None if final else state.scheduler.state_dict(),
            "scaler": state.scaler.state_dict() if state.scaler is not None and not final else None,
            "complete": final}
    with atomic_path(run.checkpoint) as tmp:
        torch.save(ckpt, tmp)
    if cfg.progress:
        print(f"[pretrain] epoch {epoch}/{cfg.epochs} lr {record['lr']:.2e} loss {record['train_loss']:.4f} "
              f"{record['images_per_s']:.0f} img/s", flush=True)


# ----------------------------------------------------------------------------------------------
def pretrain(cfg: PretrainConfig) -> Path:
    """Train (or resume, or return a finished) run; returns the path of ``checkpoint.pt``."""
    import torch
    import torch.distributed as dist

    run = prepare_run(cfg)
    # rank 0 owns the folder; the other torchrun processes only read its checkpoint
    lock = output_lock(run.out, "a pre-training run") if run.rank == 0 else contextlib.nullcontext()
    with lock:
        load_resume(run)
        if run.complete:
            if run.rank == 0 and cfg.progress:
                print(f"[pretrain] {run.out} is complete ({run.resume['epoch']} epochs); nothing to do")
            return run.checkpoint
        if run.world > 1 and not dist.is_initialized():
            dist.init_process_group(backend="nccl" if run.device.type == "cuda" else "gloo")
        if run.device.type == "cuda":
            torch.cuda.set_device(run.device)
            torch.backends.cudnn.benchmark = True  # fixed input size: let cuDNN pick the fastest kernels
        data = build_data(run)
        state = build_training(run)
        if run.rank == 0:
            _truncate_metrics(run.out / "metrics.jsonl", state.start_epoch)
            if state.start_epoch == 0 and data.monitor is not None:
                # kept in memory until the first finished epoch creates the folder
                state.initial = {"epoch": 0, **_monitor(state.model, data.monitor, run.device, run.amp_dtype, run.channels_last)}
        stop_at = cfg.epochs if cfg.stop_after is None else min(cfg.epochs, state.start_epoch + cfg.stop_after)
        for epoch in range(state.start_epoch, stop_at):
            record = train_one_epoch(epoch, run, data, state)
            if run.rank == 0:
                if state.initial is not None:
                    run.out.mkdir(parents=True, exist_ok=True)
                    _append_metric(run.out / "metrics.jsonl", state.initial)
                    state.initial = None
                save_epoch(run, data, state, record)
            if run.world > 1:
                dist.barrier()
    if run.world > 1 and dist.is_initialized():
        dist.destroy_process_group()
    return run.checkpoint


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
