"""Task2Vec embedding by the Monte-Carlo Fisher (reference section 6), written from the description.

Steps of :func:`embed_task` (BN layers stay in training mode throughout, as in the published run):

1. choose the images: a class-stratified ``fraction`` of the training split, at most
   ``max_samples`` (stratified as well);
2. cache the probe's penultimate features (the ``fc`` input) of those images;
3. train only a new ``fc`` on the cached features: Adam (lr 4e-4, wd 1e-4), ``classifier_epochs``
   epochs of ``classifier_samples`` draws from a class-balanced sampler, batch 64;
4. Monte-Carlo Fisher: ``fisher_samples`` images from the balanced sampler, batch 64; per batch,
   labels are *sampled from the model's own softmax*, the mean cross-entropy is back-propagated
   and the squared gradient of every Conv2d/BatchNorm2d weight is accumulated; divided by the
   number of batches (the square of the batch-mean gradient, as in the published code);
5. one value per output filter: the mean over that filter's weights. ``scale`` is all ones.

Cost: one feature pass (forward only) over the chosen images plus one forward/backward pass per
Fisher sample, i.e. about one training epoch over the sampled images.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import T2SError
from ..files import atomic_path, write_json
from ..paths import cache_layout
from .probe import EXPECTED_DIM, build_probe, fisher_modules, layout

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
EMBED_VERSION = 2  # 2: nested fraction subsets, caps drawn within them


@dataclass
class Task2VecOptions:
    """Everything that changes the vector (all of it goes into the cache key and the metadata)."""

    probe: str = "resnet18"
    probe_checkpoint: str | None = None
    probe_seed: int = 0
    img_size: int = 224  # paper: resize 256 (bicubic) + centre crop 224
    fraction: float = 1.0
    max_samples: int | None = 10000  # images whose features are cached (awslabs default)
    fisher_samples: int = 10000  # images drawn for the Monte-Carlo Fisher (one epoch of 10 000)
    batch_size: int = 64  # feature pass and classifier batches
    fisher_batch_size: int = 64  # the estimate averages one squared batch gradient per batch: smaller = more batches, less noise
    classifier_epochs: int = 10
    classifier_samples: int = 10000  # balanced draws per classifier epoch
    classifier_lr: float = 4e-4
    classifier_wd: float = 1e-4
    method: str = "montecarlo"
    seed: int = 0
    on_bad_image: str = "raise"

    def check(self) -> "Task2VecOptions":
        if self.method != "montecarlo":
            raise T2SError(f"Task2Vec method {self.method!r} is not implemented",
                           "use method='montecarlo' (the variational method was not used by Task2Sim)")
        if not 0 < float(self.fraction) <= 1:
            raise T2SError(f"fraction={self.fraction} out of range", "use a number in (0, 1], e.g. 0.1")
        if self.img_size < 16:
            raise T2SError(f"img_size={self.img_size} too small", "use 16 px or more (ResNet downsamples by 32)")
        if self.fisher_samples < 2 or self.batch_size < 2 or self.fisher_batch_size < 2:
            raise T2SError("fisher_samples and batch_size must be at least 2", "BatchNorm in training mode needs batches of 2+")
        return self

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class Embedding:
    """A task's embedding: ``hessian`` (float32 [D]), ``scale`` (ones) and provenance ``meta``."""

    hessian: np.ndarray
    scale: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def vector(self) -> np.ndarray:
        """What Task2Sim's policy sees: the hessian, L2-normalised."""
        return self.hessian / max(float(np.linalg.norm(self.hessian)), 1e-12)

    def __getitem__(self, key: str):  # dict-style access: emb["hessian"]
        return getattr(self, key)

    def save(self, path: str | Path) -> Path:
        """Write ``<path>.npz`` (hessian, scale) and ``<path>.json`` (meta), each atomically."""
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_suffix(".npz")
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, hessian=self.hessian.astype(np.float32), scale=self.scale.astype(np.float32))
        write_json(path.with_suffix(".json"), self.meta)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Embedding":
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_suffix(".npz")
        if not path.is_file():
            raise T2SError(f"embedding {path} not found", "compute it with `t2s task2vec --task NAME --out FILE`")
        try:
            with np.load(path, allow_pickle=False) as z:
                hessian, scale = z["hessian"], z["scale"]
        except Exception as exc:  # not a zip, truncated, or without the arrays
            raise T2SError(f"embedding {path} is unreadable ({type(exc).__name__}: {exc})",
                           "recompute it with `t2s task2vec --task NAME --out FILE`") from exc
        meta_path = path.with_suffix(".json")
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        return cls(hessian=hessian, scale=scale, meta=meta)


# ----- data -----------------------------------------------------------------------------------------
def _transform(size: int):
    from torchvision import transforms as T

    # Same geometry as the published eval transform (256 -> 224), scaled to the chosen size.
    resize = int(round(size * 256 / 224))
    return T.Compose([T.Resize(resize, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(size), T.PILToTensor()])


class _Images:
    """The chosen images as one uint8 tensor [N,3,S,S] (decoded once, reused by every pass)."""

    def __init__(self, task, indices: np.ndarray, opts: Task2VecOptions, num_workers: int = 0):
        import torch
        from torch.utils.data import DataLoader

        from ..tasks.base import SubsetDataset, skip_none_collate

        base = task.dataset("train", _transform(opts.img_size), on_bad_image=opts.on_bad_image)
        subset = SubsetDataset(base, indices)
        loader = DataLoader(subset, batch_size=256, shuffle=False, num_workers=num_workers, collate_fn=skip_none_collate)
        xs, ys = [], []
        for batch in loader:
            if batch is None:
                continue
            xs.append(batch[0])
            ys.append(batch[1])
        self.bad_images = list(getattr(base, "bad_images", []))
        n_bad = len(indices) - sum(len(y) for y in ys)
        if n_bad and not self.bad_images:
            self.bad_images = [f"<{n_bad} undecodable images in worker processes>"]
        if not xs:
            raise T2SError(f"task {task.name!r}: none of the {len(indices)} chosen images could be decoded",
                           "check the image files of the task")
        self.x = torch.cat(xs)
        self.y = torch.cat(ys).long()
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255
        self.mean, self.std = mean, std

    def batch(self, idx, device):
        x = self.x[idx].to(device, non_blocking=True).float()
        return (x - self.mean.to(device)) / self.std.to(device), self.y[idx].to(device)


def _batches(n: int, batch_size: int) -> list[tuple[int, int]]:
    """Contiguous batches, never leaving a tail of one (BatchNorm in training mode needs 2+)."""
    edges = list(range(0, n, batch_size)) + [n]
    spans = [(a, b) for a, b in zip(edges[:-1], edges[1:])]
    if len(spans) > 1 and spans[-1][1] - spans[-1][0] == 1:
        spans[-2] = (spans[-2][0], n)
        spans.pop()
    return spans


def _balanced_draws(labels, n: int, generator):
    """Indices drawn with replacement, each class equally likely (WeightedRandomSampler semantics)."""
    import torch

    counts = torch.bincount(labels)
    weights = 1.0 / counts[labels].double()
    return torch.multinomial(weights, n, replacement=True, generator=generator)


# ----- the embedding --------------------------------------------------------------------------------
def _cache_key(fingerprint: str, opts: Task2VecOptions, weights: dict, dataset_name: str) -> str:
    payload = {"v": EMBED_VERSION, "data": fingerprint, "task": dataset_name, "weights": weights, "options": opts.as_dict()}
    payload["options"].pop("on_bad_image", None)
    payload["options"].pop("probe_checkpoint", None)  # identified by its sha256 in weights
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]


def embedding_cache_dir() -> Path:
    return cache_layout().task2vec


def penultimate_features(model, images: "_Images", batch_size: int, dev):
    """Step 2: the probe's ``fc`` inputs for the chosen images (BN in training mode, no gradients)."""
    import torch
    import torch.nn as nn

    trunk = nn.Sequential(*[m for name, m in model.named_children() if name != "fc"])
    feats = []
    with torch.no_grad():
        for a, b in _batches(len(images.y), batch_size):
            x, _ = images.batch(slice(a, b), dev)
            feats.append(torch.flatten(trunk(x), 1).cpu())
    return torch.cat(feats)


def train_head(fc, feats, labels, opts: Task2VecOptions, generator, dev) -> float:
    """Step 3: train the new ``fc`` alone on cached features (Adam, class-balanced draws, drop_last);
    returns its training accuracy."""
    import torch
    import torch.nn.functional as F

    optim = torch.optim.Adam(fc.parameters(), lr=opts.classifier_lr, weight_decay=opts.classifier_wd)
    bs = opts.batch_size
    for _ in range(opts.classifier_epochs):
        draws = _balanced_draws(labels, opts.classifier_samples, generator)
        for k in range(max(1, len(draws) // bs)):  # drop_last
            sel = draws[k * bs:(k + 1) * bs]
            loss = F.cross_entropy(fc(feats[sel].to(dev)), labels[sel].to(dev))
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()
    with torch.no_grad():
        return float((fc(feats.to(dev)).argmax(1).cpu() == labels).float().mean())


def monte_carlo_fisher(model, images: "_Images", opts: Task2VecOptions, generator, dev) -> tuple[np.ndarray, int]:
    """Steps 4-5: squared batch gradients of every conv/BN weight under labels sampled from the model's
    own softmax, averaged over batches, then one value per output filter. Returns (vector, images used)."""
    import torch
    import torch.nn.functional as F

    mods = fisher_modules(model)
    for p in model.parameters():
        p.requires_grad_(False)
    for _, m in mods:  # only conv/BN weights need gradients: biases and fc are not in the vector
        m.weight.requires_grad_(True)
    acc = [torch.zeros_like(m.weight) for _, m in mods]
    draws = _balanced_draws(images.y, opts.fisher_samples, generator)
    fbs = opts.fisher_batch_size
    n_batches = max(1, len(draws) // fbs)  # drop_last, as the published sampler loop
    for k in range(n_batches):
        sel = draws[k * fbs:(k + 1) * fbs] if len(draws) >= fbs else draws
        x, _ = images.batch(sel, dev)
        logits = model(x)
        with torch.no_grad():  # labels sampled from the model's own predictive distribution
            probs = F.softmax(logits.float(), dim=1).cpu()
            y_hat = torch.multinomial(probs, 1, generator=generator).squeeze(1).to(dev)
        loss = F.cross_entropy(logits, y_hat)
        model.zero_grad(set_to_none=True)
        loss.backward()
        with torch.no_grad():
            for a_, (_, m) in zip(acc, mods):
                a_.add_(m.weight.grad.detach() ** 2)
    hessian = torch.cat([(a_ / n_batches).reshape(a_.shape[0], -1).mean(1).cpu() for a_ in acc]).numpy().astype(np.float32)
    return hessian, n_batches * min(fbs, len(draws))


def embed_task(
    task,
    options: Task2VecOptions | None = None,
    *,
    device: str = "auto",
    cache: bool = True,
    num_workers: int = 0,
    threads: int | None = None,
    root: str | None = None,
    **overrides: Any,
) -> Embedding:
    """Task2Vec embedding of a task (a :class:`t2s_lib.tasks.Task` or a name/path for ``get_task``).

    ``options`` fields can also be passed as keyword overrides (``fraction=0.1``...). Results are
    cached under ``<cache>/task2vec/`` keyed by (data fingerprint, probe weights, options).
    ``threads`` sets torch's CPU threads for the call (1 is much faster on a contended machine).
    """
    import torch

    if threads:
        from ..device import torch_threads

        with torch_threads(threads):
            return embed_task(task, options, device=device, cache=cache, num_workers=num_workers, root=root, **overrides)
    import torch.nn as nn

    from ..device import resolve_device
    from ..tasks import get_task
    from ..tasks.splits import stratified_indices

    unknown = set(overrides) - {f.name for f in dataclasses.fields(Task2VecOptions)}
    if unknown:
        raise T2SError(f"unknown Task2Vec option(s) {sorted(unknown)}",
                       f"use fields of Task2VecOptions: {', '.join(f.name for f in dataclasses.fields(Task2VecOptions))}")
    opts = dataclasses.replace(options or Task2VecOptions(), **overrides).check()
    if isinstance(task, (str, Path)):
        task = get_task(task, root=root)
    labels_all = task.labels("train")
    if len(np.unique(labels_all)) < 2:
        raise T2SError(f"task {task.name!r} has fewer than 2 classes with training images", "Task2Vec needs a classification task")
    fingerprint = task.fingerprint("train")
    model, weights = build_probe(opts.probe, opts.probe_checkpoint, opts.probe_seed)
    key = _cache_key(fingerprint, opts, weights, task.name)
    cache_file = embedding_cache_dir() / f"{_safe(task.name)}-{key}.npz"
    if cache and cache_file.is_file():
        emb = Embedding.load(cache_file)
        emb.meta["from_cache"] = str(cache_file)
        return emb

    dev = resolve_device(device)
    t0 = time.perf_counter()
    idx = stratified_indices(labels_all, fraction=opts.fraction, max_total=opts.max_samples, seed=opts.seed)
    images = _Images(task, idx, opts, num_workers=num_workers)
    n = len(images.y)
    if len(torch.unique(images.y)) < 2:
        raise T2SError(f"task {task.name!r}: the chosen images hold a single class", "use a larger fraction or check the data")
    t_data = time.perf_counter() - t0

    # Generators: one for the fc init / classifier draws, one for the Fisher draws and labels.
    g = torch.Generator().manual_seed(int(opts.seed))
    num_classes = max(task.num_classes, int(images.y.max()) + 1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(opts.seed) + 7919)
        model.fc = nn.Linear(model.fc.in_features, num_classes)
    model.to(dev).train()  # BN in training mode throughout (as the published embedding run)

    t1 = time.perf_counter()
    feats = penultimate_features(model, images, opts.batch_size, dev)
    t_feat = time.perf_counter() - t1
    t2 = time.perf_counter()
    head_acc = train_head(model.fc, feats, images.y, opts, g, dev)
    t_head = time.perf_counter() - t2
    t3 = time.perf_counter()
    hessian, n_fisher_images = monte_carlo_fisher(model, images, opts, g, dev)
    t_fisher = time.perf_counter() - t3
    lay = layout(model)
    if opts.probe in EXPECTED_DIM and hessian.size != EXPECTED_DIM[opts.probe]:
        raise RuntimeError(f"embedding has {hessian.size} entries, expected {EXPECTED_DIM[opts.probe]}")
    meta = {
        "task": task.name,
        "task_kind": getattr(task, "kind", "folder"),
        "num_classes": int(num_classes),
        "data_fingerprint": fingerprint,
        "probe": opts.probe,
        "weights": weights,
        "options": {k: v for k, v in opts.as_dict().items()},
        "seed": int(opts.seed),
        "images_used": int(n),
        "bad_images_skipped": len(images.bad_images),
        "bad_images": images.bad_images[:20],
        "fisher_images": int(n_fisher_images),
        "head_train_accuracy": head_acc,
        "dim": int(hessian.size),
        "layout_modules": len(lay),
        "device": str(dev),
        "timing_s": {"decode": round(t_data, 3), "features": round(t_feat, 3), "classifier": round(t_head, 3),
                     "fisher": round(t_fisher, 3)},
        "fisher_images_per_s": round(n_fisher_images / max(t_fisher, 1e-9), 2),
        "cache_key": key,
        "version": EMBED_VERSION,
        "comparability": comparability(opts, weights),
    }
    emb = Embedding(hessian=hessian, scale=np.ones_like(hessian), meta=meta)
    if not np.all(np.isfinite(hessian)):
        raise T2SError(f"task {task.name!r}: the Fisher has non-finite entries", "lower the learning rate or check the images")
    if cache:
        emb.save(cache_file)
    return emb


def comparability(opts: Task2VecOptions, weights: dict) -> dict[str, Any]:
    """What must agree for two embeddings to be compared: the probe (architecture and weights) and the
    Fisher batch size (it changes the vectors' scale about 6x between 16 and 64)."""
    ident = weights.get("checkpoint_sha256") or f"{weights.get('weights')}:{weights.get('probe_seed', 0)}"
    return {"probe": opts.probe, "weights": ident, "fisher_batch_size": int(opts.fisher_batch_size)}


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:60]


def published_layout() -> list[dict]:
    from ..paths import PUBLISHED_DATA_DIR

    return json.loads((PUBLISHED_DATA_DIR / "task2vec_resnet18_layout.json").read_text())["layout"]
