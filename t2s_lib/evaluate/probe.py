"""Linear probing and full fine-tuning with the published recipe (reference 7.2).

Head: Dropout(0.2) -> BatchNorm1d(D, affine=False) -> Linear(D, C); cross-entropy; timm 'sgd'
(Nesterov, momentum 0.9); 50 epochs with the LR x0.1 at epochs 25 and 37 (scaled to other epoch
counts); augmentation RandomResizedCrop (bilinear) + horizontal flip only. Linear probing keeps
the backbone frozen in eval mode; fine-tuning trains everything (train mode, stochastic depth 0.1).

``cache_features=True`` (linear only) is a CPU shortcut: features of the un-augmented training
images are computed once and the head trains on them; it is recorded in the result's options.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import T2SError


@dataclass
class ProbeConfig:
    protocol: str = "linear"  # linear | finetune
    epochs: int = 50
    lr: float = 0.01
    batch_size: int = 128
    weight_decay: float = 0.0
    img_size: int = 224
    cache_features: bool = False
    workers: int = 4
    seed: int = 0
    progress: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def make_head(dim: int, num_classes: int):
    import torch.nn as nn

    return nn.Sequential(nn.Dropout(0.2), nn.BatchNorm1d(dim, affine=False), nn.Linear(dim, num_classes))


def probe_transforms(img_size: int):
    """(train, test) transforms: RandomResizedCrop + flip for training, resize + centre crop for test."""
    from timm.data import create_transform

    train = create_transform(img_size, is_training=True, auto_augment=None, color_jitter=None,
                             interpolation="bilinear", re_prob=0.0)
    test = create_transform(img_size, is_training=False, interpolation="bilinear", crop_pct=224 / 256)
    return train, test


def _milestones(epochs: int) -> list[int]:
    # published: 25 and 37 of 50 epochs
    return sorted({max(1, round(epochs * 25 / 50)), max(1, round(epochs * 37 / 50))})


def _optim(module, cfg: ProbeConfig):
    from timm.optim import create_optimizer_v2
    from timm.scheduler import create_scheduler_v2

    opt = create_optimizer_v2(module, opt="sgd", lr=cfg.lr, weight_decay=cfg.weight_decay, momentum=0.9)
    sched, _ = create_scheduler_v2(opt, sched="multistep", num_epochs=cfg.epochs, decay_milestones=_milestones(cfg.epochs),
                                   decay_rate=0.1, warmup_epochs=0)
    return opt, sched


def train_probe(backbone, train_set, test_set, num_classes: int, cfg: ProbeConfig, *, device=None,
                return_model: bool = False) -> dict[str, Any]:
    """Train a head (and, for fine-tuning, the backbone) on ``train_set``; return test accuracy (%).

    ``train_set`` / ``test_set`` yield (PIL image, label). The backbone is a timm model with
    ``num_classes=0`` (pooled features out); it is deep-copied, the caller's model is untouched.
    """
    import torch
    import torch.nn.functional as F
    from torch.utils.data import DataLoader, TensorDataset

    from ..seeding import seed_everything
    from .features import Transformed, extract_features

    if cfg.protocol not in ("linear", "finetune"):
        raise T2SError(f"unknown protocol {cfg.protocol!r}", "use linear or finetune")
    if len(train_set) < 2 or len(test_set) == 0:
        raise T2SError(f"probe needs a training split of >= 2 images and a test split (got {len(train_set)}/{len(test_set)})")
    device = device or torch.device("cpu")
    seed_everything(cfg.seed, deterministic_torch=False)
    t0 = time.perf_counter()
    backbone = copy.deepcopy(backbone).to(device)
    dim = backbone.num_features
    head = make_head(dim, num_classes).to(device)
    train_tf, test_tf = probe_transforms(cfg.img_size)
    batch = min(cfg.batch_size, len(train_set))
    g = torch.Generator().manual_seed(cfg.seed)
    finetune = cfg.protocol == "finetune"

    if finetune:
        model = torch.nn.Sequential(backbone, head)
        params_module = model
    else:
        for p in backbone.parameters():
            p.requires_grad_(False)
        backbone.eval()
        params_module = head
    opt, sched = _optim(params_module, cfg)

    if cfg.cache_features and not finetune:
        feats, labels = extract_features(backbone, Transformed(train_set, test_tf), device=device, batch_size=256,
                                         workers=0)
        loader_fn = lambda: DataLoader(TensorDataset(feats, labels), batch_size=batch, shuffle=True, drop_last=True,
                                       generator=g)
    else:
        ds = Transformed(train_set, train_tf)
        loader_fn = lambda: DataLoader(ds, batch_size=batch, shuffle=True, drop_last=True, generator=g,
                                       num_workers=cfg.workers, pin_memory=device.type == "cuda")

    from tqdm.auto import tqdm

    # A head on cached features is a stream of tiny ops: on a busy CPU, OpenMP threads waiting at
    # barriers made each BatchNorm1d call ~1000x slower (46 ms vs 0.05 ms), so use one thread there.
    threads = torch.get_num_threads()
    if cfg.cache_features and not finetune and device.type == "cpu":
        torch.set_num_threads(1)
    try:
        _fit(cfg, loader_fn, backbone, head, opt, sched, device, finetune, tqdm)
    finally:
        torch.set_num_threads(threads)

    backbone.eval()
    head.eval()
    test_feats, test_labels = extract_features(torch.nn.Sequential(backbone, head), Transformed(test_set, test_tf),
                                               device=device, batch_size=256, workers=0)
    acc = float((test_feats.argmax(1) == test_labels).float().mean() * 100)
    result: dict[str, Any] = {"top1": acc, "seconds": round(time.perf_counter() - t0, 2)}
    if return_model:
        result["backbone"], result["head"] = backbone, head
    return result


def _fit(cfg: "ProbeConfig", loader_fn, backbone, head, opt, sched, device, finetune: bool, tqdm) -> None:
    """The epoch loop of :func:`train_probe` (per-epoch multistep schedule)."""
    import torch
    import torch.nn.functional as F

    for epoch in tqdm(range(cfg.epochs), desc=f"{cfg.protocol}", disable=not cfg.progress, leave=False):
        sched.step(epoch)
        head.train()
        if finetune:
            backbone.train()
        for x, y in loader_fn():
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            if cfg.cache_features and not finetune:
                logits = head(x)
            elif finetune:
                logits = head(backbone(x))
            else:
                with torch.no_grad():
                    f = backbone(x)
                logits = head(f)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()


def stratified_split(labels, fraction: float = 0.3, seed: int = 0) -> tuple[list[int], list[int]]:
    """(train, validation) indices with ``fraction`` of each class held out (grid-search mode)."""
    import numpy as np

    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    train_idx, val_idx = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_val = int(round(len(idx) * fraction))
        if len(idx) > 1:
            n_val = min(max(n_val, 1), len(idx) - 1)
        val_idx.extend(idx[:n_val].tolist())
        train_idx.extend(idx[n_val:].tolist())
    return sorted(train_idx), sorted(val_idx)


#: The published search grid [supp].
PAPER_GRID = {"lr": [1e-5, 1e-4, 1e-3, 1e-2], "weight_decay": [0.0, 1e-5], "batch_size": [32, 128]}


def grid_search(backbone, train_set, num_classes: int, cfg: ProbeConfig, grid: dict[str, list] | None = None,
                *, device=None, val_fraction: float = 0.3) -> dict[str, Any]:
    """Pick (lr, weight_decay, batch_size) on a stratified 30 % validation split of the training set."""
    import itertools

    from torch.utils.data import Subset

    grid = grid or PAPER_GRID
    labels = [int(train_set[i][1]) for i in range(len(train_set))]
    tr, va = stratified_split(labels, val_fraction, cfg.seed)
    trials = []
    for lr, wd, bs in itertools.product(grid["lr"], grid["weight_decay"], grid["batch_size"]):
        trial = ProbeConfig(**{**cfg.to_dict(), "lr": lr, "weight_decay": wd, "batch_size": bs})
        res = train_probe(backbone, Subset(train_set, tr), Subset(train_set, va), num_classes, trial, device=device)
        trials.append({"lr": lr, "weight_decay": wd, "batch_size": bs, "val_top1": res["top1"]})
    best = max(trials, key=lambda t: t["val_top1"])  # first best wins on ties: deterministic
    return {"best": {k: best[k] for k in ("lr", "weight_decay", "batch_size")}, "trials": trials}
