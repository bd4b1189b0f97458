"""Search for a small-scale CPU pre-training recipe ("CPU proxy protocol") for the Task2Sim study.

One *unit* = render one simulation setting with one seed, pre-train a backbone on it (the same seed
for the render and the initialisation), measure its accuracy on held-out rendered images, and its
5-NN accuracy (the study's reward) on offline tasks. Every unit appends one JSON line to
``--log`` (default ``$PROXY_OUT/results.jsonl``, ``PROXY_OUT`` default ``/work/scratch/proxy``).

Everything that the library does not offer yet lives here (kept out of ``t2s_lib`` on purpose):
custom narrow timm ResNets (built with ``timm.models.resnet.ResNet``), a per-class held-out
validation split of the rendered set, an in-memory tensor training loop (JPEGs decoded once, batch
augmentation on tensors, per-iteration LR schedule) and 5-NN on cached task tensors. The 5-NN
itself is the library's (``t2s_lib.evaluate.knn.knn_accuracy``), and the task subsets / eval
transform are the library's (``_subset`` with ``max_train``/``max_test``, ``eval_transform``), so the
numbers are those ``evaluate_backbone`` gives for the same weights (checked by the ``check-library`` subcommand).

Examples::

    export T2S_CACHE=/work/main/.cache T2S_RUNS=/work/scratch/proxy/runs
    PY="env PYTHONPATH=$PWD /work/main/.venv/bin/python"
    $PY benchmarks/proxy_search.py run --recipe proxy32 --settings all_off domain_randomization --seeds 0 1
    $PY benchmarks/proxy_search.py run --recipe p32 --set epochs=20 lr=2e-3 --name p32_e20 --settings all_off
    $PY benchmarks/proxy_search.py scratch --recipe proxy32 --seeds 0 1 2      # random-init baseline rows
    $PY benchmarks/proxy_search.py summary --name proxy32                        # SNR table from the log
    $PY benchmarks/proxy_search.py table --from-name proxy32                     # one row per configuration
    $PY benchmarks/proxy_search.py run --recipe proxy32 --settings bg --save --name iso_avx2   # with
        ATEN_CPU_CAPABILITY=avx2 DNNL_MAX_CPU_ISA=AVX2 in the environment; then
    $PY benchmarks/proxy_search.py compare --names proxy32 iso_avx2 --settings bg  # weights / val / 5-NN diffs
    $PY benchmarks/proxy_search.py probe --recipe proxy32 --settings bg scratch --tasks digits animals  # linear vs finetune
    $PY benchmarks/proxy_search.py library-run --recipe proxy32 --settings bg   # same unit through t2s_lib.train.pretrain

Run two units at a time (two processes, one torch thread each: ``threads: 1`` in the recipe); two
threads in one process were 2.3x slower and not bit-identical to one.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import os
import platform
import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OUT = Path(os.environ.get("PROXY_OUT", "/work/scratch/proxy"))
DEFAULT_TASKS = ["digits", "mnist", "fashion-mnist", "animals", "textures", "faces"]
SETTING_ALIASES = {
    "bg": "1_0_0_0_0_1_0_0_0",  # background only
    "rot": "0_0_0_0_0_1_0_1_0",  # rotation only
    "mat": "0_0_0_0_0_3_0_0_0",  # materials only
    "scale": "0_0_0_0_0_1_0_0_1",  # camera distance only
    "dr": "1_1_1_1_1_3_0_1_1",
    "off": "0_0_0_0_0_1_0_0_0",
    "best": "1_1_1_1_1_1_0_0_1",
}


# ------------------------------------------------------------------------------------------------
# recipe
@dataclass
class Recipe:
    # model: "timm:<name>" (timm.create_model) or "rn" = timm ResNet(BasicBlock, layers, channels...)
    arch: str = "rn"
    layers: tuple = (1, 1, 1, 1)
    width: int = 32  # stage widths (w, 2w, 4w, 8w)
    stem_width: int = 16
    stem_type: str = "deep_tiered"  # as resnet10t; "" = one 7x7 conv
    avg_down: bool = True
    maxpool: bool = True
    # data
    img_size: int = 32
    msaa: int = 4
    classes: int = 20
    images_per_class: int = 200  # training images per class
    val_per_class: int = 25  # held-out rendered images per class (same render, never trained on)
    val_split: str = "model"  # model: whole 3D models held out (~val_per_class images per class) | image
    val_img_per_class: int = 10  # plus this many images per class of the *training* models held out
    # optimisation
    epochs: int = 15
    batch_size: int = 64
    opt: str = "adamw"  # adamw | sgd (nesterov, momentum 0.9)
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup_frac: float = 0.05  # linear warm-up, fraction of all iterations
    min_lr_frac: float = 0.01
    sched: str = "cosine"  # cosine | const
    smoothing: float = 0.0
    drop_path: float = 0.0
    # augmentation (on tensors, per image): random resized crop scale (crop_min, 1), flip, colour
    aug: str = "crop"  # none | flip | crop
    crop_min: float = 0.35
    jitter: float = 0.0  # brightness/contrast/saturation strength
    gray_p: float = 0.0  # probability of converting to grey
    mixup: float = 0.0  # mixup alpha (0 = off)
    # compute
    threads: int = 1
    channels_last: bool = True
    eval_batch: int = 500

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["layers"] = list(self.layers)
        return d


RECIPES: dict[str, dict[str, Any]] = {
    # base of the search (docs/PROXY_PROTOCOL.md): the dataclass defaults, 15 epochs
    "p32": dict(),
    # the chosen CPU proxy protocol: p32 trained for 30 epochs (see docs/PROXY_PROTOCOL.md)
    "proxy32": dict(epochs=30),
}


def make_recipe(name: str, overrides: list[str] | None = None) -> Recipe:
    if name not in RECIPES:
        raise SystemExit(f"unknown recipe {name!r}; known: {', '.join(RECIPES)}")
    r = Recipe(**RECIPES[name])
    for item in overrides or []:
        key, _, val = item.partition("=")
        if not hasattr(r, key):
            raise SystemExit(f"unknown recipe field {key!r}")
        cur = getattr(r, key)
        if isinstance(cur, bool):
            v: Any = val.lower() in ("1", "true", "yes", "on")
        elif isinstance(cur, int):
            v = int(val)
        elif isinstance(cur, float):
            v = float(val)
        elif isinstance(cur, tuple):
            v = tuple(int(x) for x in val.split(","))
        else:
            v = val
        setattr(r, key, v)
    return r


def resolve(setting: str) -> str:
    from t2s_lib.settings import resolve_setting

    return resolve_setting(SETTING_ALIASES.get(setting, setting)).key


# ------------------------------------------------------------------------------------------------
# timing
def _cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


class Timer:
    def __init__(self):
        self.w, self.c, self.cc, self.l0 = time.perf_counter(), time.process_time(), _cpu_children(), os.getloadavg()[0]

    def done(self) -> dict[str, float]:
        return {"wall_s": round(time.perf_counter() - self.w, 2), "cpu_s": round(time.process_time() - self.c, 2),
                "child_cpu_s": round(_cpu_children() - self.cc, 2), "load0": round(self.l0, 2),
                "load1": round(os.getloadavg()[0], 2)}


# ------------------------------------------------------------------------------------------------
# rendered data
def render_dir(r: Recipe, setting: str, seed: int) -> Path:
    n = r.classes * (r.images_per_class + r.val_per_class)
    return OUT / "render" / f"s{r.img_size}_m{r.msaa}_c{r.classes}_n{n}" / f"{setting}_r{seed}"


def render(r: Recipe, setting: str, seed: int) -> Path:
    from t2s_lib.render import render_dataset

    out = render_dir(r, setting, seed)
    n = r.classes * (r.images_per_class + r.val_per_class)
    out.parent.mkdir(parents=True, exist_ok=True)
    return render_dataset(setting, out, images=n, size=r.img_size, seed=seed, classes=r.classes, workers=2,
                          msaa=r.msaa, progress=False)


def load_images(folder: Path):
    """uint8 [N,3,H,W], labels [N], model ids [N] (decoded once, cached as .npz in scratch)."""
    import numpy as np

    cache = OUT / "cache" / "render" / (folder.parent.name + "__" + folder.name + ".npz")
    if cache.is_file():
        z = np.load(cache)
        return z["x"], z["y"], z["m"]
    from PIL import Image

    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    xs, ys, ms = [], [], []
    for ci, c in enumerate(classes):
        for f in sorted((folder / c).iterdir()):
            if f.suffix.lower() not in (".jpg", ".png"):
                continue
            xs.append(np.asarray(Image.open(f).convert("RGB")))
            ys.append(ci)
            ms.append(f.stem.rsplit("_", 1)[0])
    x = np.stack(xs).transpose(0, 3, 1, 2).copy()
    y = np.asarray(ys, dtype=np.int64)
    _, m = np.unique(np.asarray(ms), return_inverse=True)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(tmp, x=x, y=y, m=m)
    os.replace(tmp, cache)
    return x, y, m


def split_val(y, m, val_per_class: int, seed: int, by: str = "model"):
    """(train, val) indices. ``image``: val_per_class random images per class. ``model``: whole 3D models
    per class held out (in a seeded order, until >= val_per_class images; at least one model stays in
    training), so validation measures recognition of unseen objects, not of re-posed training objects
    (under all_off every image of a model is identical, so an image split would be trivial)."""
    import numpy as np

    rng = np.random.default_rng(10_000 + seed)
    tr, va = [], []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        if by == "image":
            idx = rng.permutation(idx)
            va.extend(idx[:val_per_class].tolist())
            tr.extend(idx[val_per_class:].tolist())
            continue
        models = rng.permutation(np.unique(m[idx]))
        held = []
        count = 0
        for mod in models[:-1]:
            if count >= val_per_class:
                break
            held.append(mod)
            count += int((m[idx] == mod).sum())
        sel = np.isin(m[idx], held)
        va.extend(idx[sel].tolist())
        tr.extend(idx[~sel].tolist())
    return np.sort(np.asarray(tr)), np.sort(np.asarray(va))


# ------------------------------------------------------------------------------------------------
# model
def build_model(r: Recipe, num_classes: int):
    import timm
    import torch

    if r.arch.startswith("timm:"):
        m = timm.create_model(r.arch[5:], pretrained=False, num_classes=num_classes, drop_path_rate=r.drop_path)
    else:
        from timm.models.resnet import BasicBlock, ResNet

        w = r.width
        m = ResNet(BasicBlock, tuple(r.layers), num_classes=num_classes, channels=(w, 2 * w, 4 * w, 8 * w),
                   stem_width=r.stem_width, stem_type=r.stem_type, avg_down=r.avg_down, drop_path_rate=r.drop_path)
    if not r.maxpool:
        m.maxpool = torch.nn.Identity()
    if r.channels_last:
        m = m.to(memory_format=torch.channels_last)
    return m


def weights_digest(model) -> str:
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


# ------------------------------------------------------------------------------------------------
# augmentation on uint8 tensors (batched, seeded)
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def normalize(x):
    import torch

    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return (x - mean) / std


def augment(xb, r: Recipe, g):
    """xb float [B,3,H,W] in [0,1] -> augmented, same size."""
    import torch
    import torch.nn.functional as F

    B = xb.shape[0]
    if r.aug == "crop":
        # RandomResizedCrop: area fraction U(crop_min,1), log-ratio U(log 3/4, log 4/3), random centre
        area = torch.empty(B).uniform_(r.crop_min, 1.0, generator=g)
        logr = torch.empty(B).uniform_(math.log(3 / 4), math.log(4 / 3), generator=g)
        ratio = torch.exp(logr)
        sw = torch.sqrt(area * ratio).clamp(max=1.0)
        sh = torch.sqrt(area / ratio).clamp(max=1.0)
        cx = (torch.rand(B, generator=g) * 2 - 1) * (1 - sw)
        cy = (torch.rand(B, generator=g) * 2 - 1) * (1 - sh)
        flip = torch.where(torch.rand(B, generator=g) < 0.5, -1.0, 1.0)
        theta = torch.zeros(B, 2, 3)
        theta[:, 0, 0] = sw * flip
        theta[:, 0, 2] = cx
        theta[:, 1, 1] = sh
        theta[:, 1, 2] = cy
        grid = F.affine_grid(theta, list(xb.shape), align_corners=False)
        xb = F.grid_sample(xb, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    elif r.aug == "flip":
        flip = torch.rand(B, generator=g) < 0.5
        xb = torch.where(flip.view(B, 1, 1, 1), xb.flip(3), xb)
    elif r.aug != "none":
        raise SystemExit(f"unknown aug {r.aug!r}")
    if r.jitter > 0:
        j = r.jitter
        b = 1 + (torch.rand(B, 1, 1, 1, generator=g) * 2 - 1) * j
        c = 1 + (torch.rand(B, 1, 1, 1, generator=g) * 2 - 1) * j
        s = 1 + (torch.rand(B, 1, 1, 1, generator=g) * 2 - 1) * j
        xb = xb * b
        mean = xb.mean(dim=(1, 2, 3), keepdim=True)
        xb = (xb - mean) * c + mean
        grey = (0.299 * xb[:, 0:1] + 0.587 * xb[:, 1:2] + 0.114 * xb[:, 2:3])
        xb = (xb - grey) * s + grey
        xb = xb.clamp(0, 1)
    if r.gray_p > 0:
        grey = (0.299 * xb[:, 0:1] + 0.587 * xb[:, 1:2] + 0.114 * xb[:, 2:3]).expand(-1, 3, -1, -1)
        sel = (torch.rand(B, generator=g) < r.gray_p).view(B, 1, 1, 1)
        xb = torch.where(sel, grey, xb)
    return xb


# ------------------------------------------------------------------------------------------------
# training
def lr_at(r: Recipe, it: int, total: int) -> float:
    warm = int(r.warmup_frac * total)
    if it < warm:
        return r.lr * (it + 1) / warm
    if r.sched == "const":
        return r.lr
    p = (it - warm) / max(1, total - warm)
    lo = r.lr * r.min_lr_frac
    return lo + 0.5 * (r.lr - lo) * (1 + math.cos(math.pi * p))


def make_optimizer(model, r: Recipe):
    import torch

    decay, no_decay = [], []
    for n, p in model.named_parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    groups = [{"params": decay, "weight_decay": r.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if r.opt == "adamw":
        return torch.optim.AdamW(groups, lr=r.lr)
    if r.opt == "sgd":
        return torch.optim.SGD(groups, lr=r.lr, momentum=0.9, nesterov=True)
    raise SystemExit(f"unknown opt {r.opt!r}")


def predict(model, x_uint8, r: Recipe, pre_logits: bool = False):
    """Logits (or pooled features) of uint8 images, eval mode, no augmentation."""
    import torch

    model.eval()
    outs = []
    with torch.inference_mode():
        for i in range(0, len(x_uint8), r.eval_batch):
            xb = normalize(torch.from_numpy(x_uint8[i:i + r.eval_batch]).float().div_(255))
            if r.channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            f = model.forward_head(model.forward_features(xb), pre_logits=pre_logits)
            outs.append(f.float())
    return torch.cat(outs)


def train(r: Recipe, x, y, seed: int, xval=None, yval=None, log_every: int = 0) -> tuple[Any, dict]:
    import numpy as np
    import torch
    import torch.nn.functional as F

    torch.manual_seed(seed)
    ncls = int(y.max()) + 1
    model = build_model(r, ncls)
    init_digest = weights_digest(model)
    opt = make_optimizer(model, r)
    n = len(x)
    bs = min(r.batch_size, n)
    steps_per_epoch = n // bs
    total = steps_per_epoch * r.epochs
    g = torch.Generator().manual_seed(seed * 1_000_003 + 17)
    mix_rng = np.random.default_rng(seed + 99)
    xt = torch.from_numpy(x)
    yt = torch.from_numpy(y)
    history = []
    it = 0
    t0 = time.perf_counter()
    for epoch in range(r.epochs):
        model.train()
        perm = torch.randperm(n, generator=g)
        tot, cnt, correct = 0.0, 0, 0
        for s in range(steps_per_epoch):
            idx = perm[s * bs:(s + 1) * bs]
            xb = xt[idx].float().div_(255)
            yb = yt[idx]
            xb = normalize(augment(xb, r, g))
            if r.channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            for pg in opt.param_groups:
                pg["lr"] = lr_at(r, it, total)
            if r.mixup > 0:
                lam = float(mix_rng.beta(r.mixup, r.mixup))
                j = torch.randperm(bs, generator=g)
                xb = lam * xb + (1 - lam) * xb[j]
                out = model(xb)
                loss = lam * F.cross_entropy(out, yb, label_smoothing=r.smoothing) + \
                    (1 - lam) * F.cross_entropy(out, yb[j], label_smoothing=r.smoothing)
            else:
                out = model(xb)
                loss = F.cross_entropy(out, yb, label_smoothing=r.smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            it += 1
            tot += loss.item() * bs
            cnt += bs
            correct += int((out.argmax(1) == yb).sum())
        rec = {"epoch": epoch + 1, "loss": round(tot / cnt, 4), "train_acc": round(100 * correct / cnt, 2),
               "s": round(time.perf_counter() - t0, 1)}
        if log_every and ((epoch + 1) % log_every == 0 or epoch + 1 == r.epochs) and xval is not None:
            rec["val_acc"] = round(val_accuracy(model, xval, yval, r), 2)
        history.append(rec)
    return model, {"history": history, "iters": total, "train_images": n, "init_digest": init_digest}


def val_accuracy(model, x, y, r: Recipe) -> float:
    import torch

    logits = predict(model, x, r)
    return float((logits.argmax(1) == torch.from_numpy(y)).float().mean() * 100)


# ------------------------------------------------------------------------------------------------
# 5-NN on the offline tasks (library subsets, transform and k-NN)
_TASK_CACHE: dict[tuple, Any] = {}


def task_tensors(task: str, img_size: int, max_train: int, max_test: int):
    import numpy as np
    import torch

    key = (task, img_size, max_train, max_test)
    if key in _TASK_CACHE:
        return _TASK_CACHE[key]
    path = OUT / "cache" / "tasks" / f"{task}_s{img_size}_tr{max_train}_te{max_test}.npz"
    if path.is_file():
        z = np.load(path)
        val = (z["xtr"], z["ytr"], z["xte"], z["yte"], int(z["ncls"]))
    else:
        from t2s_lib.evaluate.run import _subset, resolve_task
        from t2s_lib.train.data import eval_transform

        t = resolve_task(task)
        tf = eval_transform(img_size, interpolation="bicubic")
        train = _subset(t.dataset("train"), max_train, 0)  # the seeds evaluate_backbone uses (opts.seed 0)
        test = _subset(t.dataset("test"), max_test, 1)

        def arr(ds):
            xs, ys = [], []
            for i in range(len(ds)):
                img, lab = ds[i]
                xs.append(tf(img.convert("RGB")).numpy())
                ys.append(int(lab))
            return np.stack(xs).astype(np.float32), np.asarray(ys, dtype=np.int64)

        xtr, ytr = arr(train)
        xte, yte = arr(test)
        val = (xtr, ytr, xte, yte, t.num_classes)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, xtr=xtr, ytr=ytr, xte=xte, yte=yte, ncls=t.num_classes)
        os.replace(tmp, path)
    _TASK_CACHE[key] = val
    return val


def features(model, x_norm, r: Recipe):
    import torch

    model.eval()
    outs = []
    with torch.inference_mode():
        for i in range(0, len(x_norm), r.eval_batch):
            xb = torch.from_numpy(x_norm[i:i + r.eval_batch])
            if r.channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            outs.append(model.forward_head(model.forward_features(xb), pre_logits=True).float())
    return torch.cat(outs)


def knn_tasks(model, r: Recipe, tasks: list[str], max_train: int, max_test: int) -> dict[str, float]:
    import torch

    from t2s_lib.evaluate.knn import knn_accuracy

    res = {}
    for t in tasks:
        xtr, ytr, xte, yte, ncls = task_tensors(t, r.img_size, max_train, max_test)
        ftr = features(model, xtr, r)
        fte = features(model, xte, r)
        res[t] = round(knn_accuracy(ftr, torch.from_numpy(ytr), fte, torch.from_numpy(yte), k=5, temperature=0.07,
                                    num_classes=ncls), 3)
    return res


# ------------------------------------------------------------------------------------------------
def env_info() -> dict[str, Any]:
    import torch

    return {"torch": torch.__version__, "threads": torch.get_num_threads(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "ATEN_CPU_CAPABILITY": os.environ.get("ATEN_CPU_CAPABILITY"),
            "DNNL_MAX_CPU_ISA": os.environ.get("DNNL_MAX_CPU_ISA"), "host": platform.node()}


def append(log: Path, rec: dict[str, Any]) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as fh:
        fh.write(json.dumps(rec) + "\n")


def run_unit(r: Recipe, name: str, setting: str, seed: int, tasks: list[str], max_train: int, max_test: int,
             log: Path, log_every: int = 0, save: bool = False, tag: str = "") -> dict[str, Any]:
    import torch

    torch.set_num_threads(r.threads)
    rec: dict[str, Any] = {"kind": "unit", "name": name, "tag": tag, "setting": setting, "seed": seed,
                           "recipe": r.to_dict(), "tasks": tasks, "max_train": max_train, "max_test": max_test,
                           "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "env": env_info()}
    t = Timer()
    existed = render_dir(r, setting, seed).is_dir()
    folder = render(r, setting, seed)
    rec["render"] = {**t.done(), "cached": existed, "images": r.classes * (r.images_per_class + r.val_per_class)}
    t = Timer()
    x, y, m = load_images(folder)
    tr, va = split_val(y, m, r.val_per_class, seed, r.val_split)
    vi = None
    if r.val_split == "model" and r.val_img_per_class > 0:  # new renders of training objects
        sub_tr, sub_va = split_val(y[tr], m[tr], r.val_img_per_class, seed + 1, "image")
        tr, vi = tr[sub_tr], tr[sub_va]
    rec["load"] = t.done()
    t = Timer()
    model, info = train(r, x[tr], y[tr], seed, x[va], y[va], log_every)
    rec["pretrain"] = {**t.done(), **info}
    rec["pretrain"]["img_per_s"] = round(info["train_images"] * r.epochs / max(rec["pretrain"]["wall_s"], 1e-9), 1)
    rec["weights_digest"] = weights_digest(model)
    t = Timer()
    rec["val_images"] = int(len(va))
    rec["val_acc"] = round(val_accuracy(model, x[va], y[va], r), 2)
    rec["chance"] = round(100 / r.classes, 2)
    rec["val_x_chance"] = round(rec["val_acc"] / rec["chance"], 2)
    if vi is not None:
        rec["val_img_images"] = int(len(vi))
        rec["val_img_acc"] = round(val_accuracy(model, x[vi], y[vi], r), 2)
    rec["train_loss"] = info["history"][-1]["loss"]
    knn = knn_tasks(model, r, tasks, max_train, max_test)
    rec["eval"] = t.done()
    rec["knn"] = knn
    rec["knn_mean"] = round(sum(knn.values()) / len(knn), 3)
    if save:
        p = OUT / "models" / name / f"{setting}_s{seed}.pt"
        p.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"recipe": r.to_dict(), "model": model.state_dict(), "classes": r.classes}, p)
        rec["saved"] = str(p)
    append(log, rec)
    print(f"[{name}] {setting} s{seed}: val {rec['val_acc']:.1f}% ({rec['val_x_chance']}x chance; new renders of "
          f"training objects {rec.get('val_img_acc', float('nan')):.1f}%) loss "
          f"{rec['train_loss']:.3f} 5-NN mean {rec['knn_mean']:.2f} {knn} | render {rec['render']['wall_s']}s "
          f"train {rec['pretrain']['wall_s']}s ({rec['pretrain']['cpu_s']} cpu, {rec['pretrain']['img_per_s']} img/s) "
          f"eval {rec['eval']['wall_s']}s load {os.getloadavg()[0]:.1f}", flush=True)
    return rec


def run_scratch(r: Recipe, name: str, seed: int, tasks, max_train, max_test, log: Path, tag: str = ""):
    import torch

    torch.set_num_threads(r.threads)
    torch.manual_seed(seed)
    model = build_model(r, r.classes)
    t = Timer()
    knn = knn_tasks(model, r, tasks, max_train, max_test)
    rec = {"kind": "scratch", "name": name, "tag": tag, "setting": "scratch", "seed": seed, "recipe": r.to_dict(),
           "tasks": tasks, "max_train": max_train, "max_test": max_test, "knn": knn,
           "knn_mean": round(sum(knn.values()) / len(knn), 3), "eval": t.done(), "env": env_info(),
           "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
    append(log, rec)
    print(f"[{name}] scratch s{seed}: 5-NN mean {rec['knn_mean']:.2f} {knn}", flush=True)
    return rec


# ------------------------------------------------------------------------------------------------
# summary
def summarize(log: Path, name: str, tag: str | None = None, quiet: bool = False) -> dict[str, Any]:
    import numpy as np

    rows = [json.loads(l) for l in open(log)] if log.is_file() else []
    rows = [x for x in rows if x["name"] == name and (tag is None or x.get("tag", "") == tag)]
    units = [x for x in rows if x["kind"] == "unit"]
    scratch = [x for x in rows if x["kind"] == "scratch"]
    # latest record per (setting, seed)
    by: dict[tuple, dict] = {}
    for u in units:
        by[(u["setting"], u["seed"])] = u
    if not by:
        print(f"no units for {name}")
        return {}
    tasks = list(next(iter(by.values()))["knn"])
    settings = sorted({s for s, _ in by})
    out: dict[str, Any] = {"name": name, "tasks": tasks, "settings": {}}
    lines = []
    hdr = f"| setting | seeds | val acc % (x chance) | " + " | ".join(tasks) + " | mean | train s (cpu) | img/s |"
    lines.append(hdr)
    lines.append("|" + "---|" * (hdr.count("|") - 1))
    per_setting_mean = {}
    within_var_task = {t: [] for t in tasks + ["mean"]}
    setting_means_task = {t: [] for t in tasks + ["mean"]}
    for s in settings:
        us = [by[k] for k in sorted(by) if k[0] == s]
        vals = {t: np.array([u["knn"][t] for u in us]) for t in tasks}
        vals["mean"] = np.array([u["knn_mean"] for u in us])
        for t in tasks + ["mean"]:
            setting_means_task[t].append(vals[t].mean())
            if len(us) >= 2:
                within_var_task[t].append(vals[t].var(ddof=1))
        va = np.array([u["val_acc"] for u in us])
        xc = np.array([u["val_x_chance"] for u in us])
        ts = np.array([u["pretrain"]["wall_s"] for u in us])
        tc = np.array([u["pretrain"]["cpu_s"] for u in us])
        ips = np.array([u["pretrain"]["img_per_s"] for u in us])
        per_setting_mean[s] = float(vals["mean"].mean())

        def fmt(a):
            return f"{a.mean():.1f}" + (f" ± {a.std(ddof=1):.1f}" if len(a) > 1 else "")

        lines.append(f"| {s} | {len(us)} | {fmt(va)} ({xc.mean():.1f}x) | " + " | ".join(fmt(vals[t]) for t in tasks) +
                     f" | {fmt(vals['mean'])} | {ts.mean():.0f} ({tc.mean():.0f}) | {ips.mean():.0f} |")
        out["settings"][s] = {"n": len(us), "val_acc": va.tolist(), "knn_mean": vals["mean"].tolist(),
                              "knn": {t: vals[t].tolist() for t in tasks}}
    if scratch:
        sm = {t: np.array([x["knn"][t] for x in scratch if t in x["knn"]]) for t in tasks}
        smean = np.array([x["knn_mean"] for x in scratch])
        lines.append(f"| scratch | {len(scratch)} | - | " + " | ".join(
            f"{sm[t].mean():.1f}" + (f" ± {sm[t].std(ddof=1):.1f}" if len(sm[t]) > 1 else "") for t in tasks) +
            f" | {smean.mean():.1f}" + (f" ± {smean.std(ddof=1):.1f}" if len(smean) > 1 else "") + " | - | - |")
        out["scratch_mean"] = float(smean.mean())
    stats = {}
    for t in tasks + ["mean"]:
        across = float(np.std(setting_means_task[t], ddof=1)) if len(settings) > 1 else float("nan")
        within = float(np.sqrt(np.mean(within_var_task[t]))) if within_var_task[t] else float("nan")
        stats[t] = {"across_sd": round(across, 3), "within_sd": round(within, 3),
                    "snr": round(across / within, 2) if within and within == within and within > 0 else None,
                    "n_settings_with_seeds": len(within_var_task[t])}
    # two-way (setting x seed) view on the settings that have every common seed: with common random
    # numbers (same seed = same render draws, init and data order in every setting), part of the seed
    # noise is shared by all settings; the residual is the noise that matters when *ranking* settings.
    seeds_by_setting = {s: {k[1] for k in by if k[0] == s} for s in settings}
    common = sorted(set.intersection(*seeds_by_setting.values())) if settings else []
    full = [s for s in settings if set(common) <= seeds_by_setting[s]]
    if len(common) >= 2 and len(full) >= 2:
        for t in tasks + ["mean"]:
            M = np.array([[by[(s, sd)]["knn_mean"] if t == "mean" else by[(s, sd)]["knn"][t] for sd in common]
                          for s in full])
            res = M - M.mean(1, keepdims=True) - M.mean(0, keepdims=True) + M.mean()
            dof = (M.shape[0] - 1) * (M.shape[1] - 1)
            stats[t]["resid_sd"] = round(float(np.sqrt((res ** 2).sum() / dof)), 3)
            stats[t]["seed_effect_sd"] = round(float(M.mean(0).std(ddof=1)), 3)
            stats[t]["paired_snr"] = round(float(M.mean(1).std(ddof=1)) / stats[t]["resid_sd"], 2) \
                if stats[t]["resid_sd"] > 0 else None
    out["stats"] = stats
    best = max(per_setting_mean, key=per_setting_mean.get)
    out["best_setting"] = best
    out["best_mean"] = per_setting_mean[best]
    if scratch:
        out["best_minus_scratch"] = round(per_setting_mean[best] - out["scratch_mean"], 2)
    out["table"] = "\n".join(lines)
    snr_line = "| statistic | " + " | ".join(tasks) + " | mean |\n|" + "---|" * (len(tasks) + 2) + "\n"
    snr_line += "| across-setting SD | " + " | ".join(f"{stats[t]['across_sd']:.2f}" for t in tasks + ["mean"]) + " |\n"
    snr_line += "| pooled seed SD | " + " | ".join(f"{stats[t]['within_sd']:.2f}" for t in tasks + ["mean"]) + " |\n"
    snr_line += "| SNR | " + " | ".join(str(stats[t]["snr"]) for t in tasks + ["mean"]) + " |"
    if "resid_sd" in stats["mean"]:
        snr_line += "\n| setting x seed residual SD | " + " | ".join(f"{stats[t]['resid_sd']:.2f}" for t in tasks + ["mean"]) + " |"
        snr_line += "\n| paired SNR (setting SD / residual SD) | " + " | ".join(str(stats[t]["paired_snr"]) for t in tasks + ["mean"]) + " |"
    out["snr_table"] = snr_line
    if not quiet:
        print(out["table"])
        print()
        print(snr_line)
        print(f"\nbest {best} {per_setting_mean[best]:.2f}" +
              (f"; scratch {out['scratch_mean']:.2f}; best - scratch {out['best_minus_scratch']:+.2f}" if scratch else ""))
    return out


# ------------------------------------------------------------------------------------------------
def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    for cmd in ("run", "scratch", "summary", "probe", "reeval", "render", "check-library", "compare", "library-run",
                "table"):
        q = sub.add_parser(cmd)
        q.add_argument("--recipe", default="p32")
        q.add_argument("--set", nargs="*", default=[], help="recipe overrides key=value")
        q.add_argument("--name", default=None, help="label of this configuration in the log (default: recipe)")
        q.add_argument("--tag", default="", help="free label (e.g. isa=avx2)")
        q.add_argument("--settings", nargs="*", default=["all_off"])
        q.add_argument("--seeds", nargs="*", type=int, default=[0])
        q.add_argument("--tasks", nargs="*", default=DEFAULT_TASKS)
        q.add_argument("--max-train", type=int, default=5000)
        q.add_argument("--max-test", type=int, default=2000)
        q.add_argument("--log", default=str(OUT / "results.jsonl"))
        q.add_argument("--log-every", type=int, default=0, help="val accuracy every N epochs (costs a little)")
        q.add_argument("--save", action="store_true", help="save the weights under $PROXY_OUT/models")
        q.add_argument("--probe-configs", nargs="*", default=["linear:30:0.01:128", "finetune:30:0.01:32"],
                       help="probe: protocol:epochs:lr:batch, each run with the library's train_probe")
        q.add_argument("--from-name", default=None, help="reeval: saved models of this name (default --recipe)")
        q.add_argument("--names", nargs="*", default=[], help="compare: run names (saved with --save) to compare")
    a = p.parse_args(argv)
    r = make_recipe(a.recipe, a.set)
    name = a.name or a.recipe
    log = Path(a.log)
    if a.cmd == "table":
        search_table(log, scratch_name=a.from_name)
    elif a.cmd == "library-run":
        for seed in a.seeds:
            for st in a.settings:
                library_run(r, name, resolve(st), seed, a, log)
    elif a.cmd == "compare":
        compare_runs(a, log)
    elif a.cmd == "check-library":
        check_library(a)
    elif a.cmd == "render":  # pre-render (sequentially) what parallel `run`s will share
        for seed in a.seeds:
            for s in a.settings:
                t = Timer()
                render(r, resolve(s), seed)
                print(f"render {render_dir(r, resolve(s), seed)} {t.done()}", flush=True)
    elif a.cmd == "run":
        for seed in a.seeds:
            for s in a.settings:
                run_unit(r, name, resolve(s), seed, a.tasks, a.max_train, a.max_test, log, a.log_every, a.save, a.tag)
    elif a.cmd == "scratch":
        for seed in a.seeds:
            run_scratch(r, name, seed, a.tasks, a.max_train, a.max_test, log, a.tag)
    elif a.cmd == "summary":
        summarize(log, name, a.tag or None)
    elif a.cmd == "probe":
        run_probe(r, name, a, log)
    elif a.cmd == "reeval":
        run_reeval(r, name, a, log)


def compare_runs(a, log: Path) -> None:
    """Weights / val / 5-NN / speed of the same units under different run names (e.g. ISA pinning)."""
    import torch

    recs = {}
    for line in open(log):
        x = json.loads(line)
        if x["kind"] == "unit" and x["name"] in a.names:
            recs[(x["name"], x["setting"], x["seed"])] = x
    for seed in a.seeds:
        for s in a.settings:
            key = resolve(s)
            base = None
            for n in a.names:
                rec = recs.get((n, key, seed))
                if rec is None:
                    print(f"{n} {key} s{seed}: missing")
                    continue
                state = torch.load(OUT / "models" / n / f"{key}_s{seed}.pt", map_location="cpu")["model"]
                line = (f"{n:>16} {key} s{seed}: digest {rec['weights_digest']} val {rec['val_acc']:.2f} "
                        f"5-NN {rec['knn_mean']:.3f} train cpu {rec['pretrain']['cpu_s']}s "
                        f"({rec['pretrain']['train_images'] * rec['recipe']['epochs'] / rec['pretrain']['cpu_s']:.0f} img/cpu-s) "
                        f"isa {rec['env']['cpu_capability']}")
                if base is None:
                    base = (n, state, rec)
                else:
                    diffs = [(state[k].float() - base[1][k].float()) for k in state if state[k].is_floating_point()]
                    mx = max(float(d.abs().max()) for d in diffs)
                    rel = math.sqrt(sum(float((d ** 2).sum()) for d in diffs)) / math.sqrt(
                        sum(float((base[1][k].float() ** 2).sum()) for k in state if state[k].is_floating_point()))
                    dk = {t: round(rec["knn"][t] - base[2]["knn"][t], 2) for t in rec["knn"]}
                    line += f" | vs {base[0]}: max|dw| {mx:.3g} rel L2 {rel:.3g} dval {rec['val_acc'] - base[2]['val_acc']:+.2f} d5NN {dk}"
                print(line, flush=True)


def search_table(log: Path, scratch_name: str | None = None) -> None:
    """One row per configuration name in the log: what changed vs the base recipe and its numbers."""
    import numpy as np

    rows = [json.loads(l) for l in open(log)]
    names = []
    for x in rows:
        if x["kind"] == "unit" and x["name"] not in names:
            names.append(x["name"])
    base = Recipe().to_dict()
    scratch = [x["knn_mean"] for x in rows if x["kind"] == "scratch" and x["name"] == scratch_name]
    print("| name | changes vs p32 base | eval caps | units (settings x seeds) | val % on held-out objects (x chance), min-max over settings | "
          "5-NN mean, min-max over settings | across-setting SD / pooled seed SD = SNR | best - scratch | train CPU s | "
          "render CPU s | eval CPU s | train wall s (load) |")
    print("|" + "---|" * 12)
    for n in names:
        us = [x for x in rows if x["kind"] == "unit" and x["name"] == n]
        rec = us[-1]["recipe"]
        diff = {k: v for k, v in rec.items() if k in base and base[k] != v}
        summ = summarize(log, n, quiet=True)
        st = summ["stats"]["mean"]
        sets = summ["settings"]
        vmin = min(np.mean(v["val_acc"]) for v in sets.values())
        vmax = max(np.mean(v["val_acc"]) for v in sets.values())
        chance = 100 / rec["classes"]
        kmin = min(np.mean(v["knn_mean"]) for v in sets.values())
        kmax = max(np.mean(v["knn_mean"]) for v in sets.values())
        seeds = sorted({u["seed"] for u in us})
        snr = f"{st['across_sd']:.2f} / {st['within_sd']:.2f} = {st['snr']}" if st["snr"] else f"{st['across_sd']:.2f} / - "
        bms = f"{kmax - np.mean(scratch):+.1f}" if scratch and us[-1]["max_train"] == 5000 else "-"
        rc = [u["render"]["child_cpu_s"] for u in us if not u["render"]["cached"]]
        print(f"| {n} | {', '.join(f'{k}={v}' for k, v in diff.items()) or '-'} | {us[-1]['max_train']}/{us[-1]['max_test']} | "
              f"{len(us)} ({len(sets)} x {len(seeds)}) | {vmin:.1f}-{vmax:.1f} ({vmin / chance:.1f}-{vmax / chance:.1f}x) | "
              f"{kmin:.1f}-{kmax:.1f} | {snr} | {bms} | {np.mean([u['pretrain']['cpu_s'] for u in us]):.0f} | "
              f"{(np.mean(rc) if rc else float('nan')):.0f} | {np.mean([u['eval']['cpu_s'] for u in us]):.1f} | "
              f"{np.mean([u['pretrain']['wall_s'] for u in us]):.0f} ({np.mean([u['pretrain']['load1'] for u in us]):.1f}) |")


def register_library_arch(r: Recipe) -> str:
    """Register this recipe's narrow ResNet as a timm model and a t2s_lib MODELS entry (in this process only)."""
    import timm
    from timm.models import register_model

    from t2s_lib.train.models import MODELS

    if r.arch.startswith("timm:"):
        return r.arch[5:]
    name = f"t2s_rn{''.join(map(str, r.layers))}_w{r.width}_s{r.stem_width}{'' if r.maxpool else '_nomp'}"
    if name not in timm.list_models(name):
        def factory(pretrained=False, **kwargs):
            import torch
            from timm.models.resnet import BasicBlock, ResNet

            for k in ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir"):
                kwargs.pop(k, None)
            w = r.width
            m = ResNet(BasicBlock, tuple(r.layers), channels=(w, 2 * w, 4 * w, 8 * w), stem_width=r.stem_width,
                       stem_type=r.stem_type, avg_down=r.avg_down, **kwargs)
            if not r.maxpool:
                m.maxpool = torch.nn.Identity()
            return m

        factory.__name__ = name
        register_model(factory)
    if name not in MODELS:
        MODELS.add(name, name)
    return name


def library_run(r: Recipe, name: str, setting: str, seed: int, a, log: Path) -> None:
    """The same unit through the library's own loop (t2s_lib.train.pretrain, PIL data path, per-epoch timm
    schedule) and evaluate_backbone, with the recipe's knobs: checks that an integration reproduces it."""
    import functools

    import torch

    import t2s_lib.train.data as tdata
    from t2s_lib.evaluate.run import EvalOptions, evaluate_backbone
    from t2s_lib.train.loop import PretrainConfig, pretrain
    from t2s_lib.train.models import load_checkpoint

    torch.set_num_threads(r.threads)
    arch = register_library_arch(r)
    folder = render(r, setting, seed)
    x, y, m = load_images(folder)
    tr, va = split_val(y, m, r.val_per_class, seed, r.val_split)
    if r.val_split == "model" and r.val_img_per_class > 0:
        sub_tr, sub_va = split_val(y[tr], m[tr], r.val_img_per_class, seed + 1, "image")
        tr = tr[sub_tr]
    # a train-only ImageFolder of symlinks, in the order load_images read the files
    files = []
    for c in sorted(p.name for p in folder.iterdir() if p.is_dir()):
        files += [f for f in sorted((folder / c).iterdir()) if f.suffix.lower() in (".jpg", ".png")]
    sub = OUT / "libsets" / f"{folder.parent.name}__{folder.name}"
    if not sub.is_dir():
        tmp = sub.with_name(sub.name + ".tmp")
        for i in tr:
            dst = tmp / files[i].parent.name / files[i].name
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.symlink_to(files[i])
        os.replace(tmp, sub)
    orig = tdata.train_transform

    def patched_train_transform(img_size, *, auto_augment=None, interpolation="bicubic", scale=None):
        # NB timm's create_transform adds ColorJitter(0.4) whenever auto_augment is None (the library's
        # train_transform has no knob for it); the recipe's jitter (default 0) is passed explicitly here.
        from timm.data import create_transform

        tdata._patch_timm_posterize()
        return create_transform(img_size, is_training=True, auto_augment=auto_augment or None, interpolation=interpolation,
                                scale=(r.crop_min, 1.0), re_prob=0.0, hflip=0.5,
                                color_jitter=(r.jitter if r.jitter > 0 else None))

    tdata.train_transform = patched_train_transform if a.tag != "timm-default-jitter" else \
        functools.partial(orig, scale=(r.crop_min, 1.0))
    out = OUT / "runs" / "library" / name / f"{setting}_s{seed}"
    cfg = PretrainConfig(data=str(sub), out=str(out), arch=arch, epochs=r.epochs, batch_size=r.batch_size, lr=r.lr,
                         weight_decay=r.weight_decay, warmup_epochs=0, min_lr=r.lr * r.min_lr_frac,
                         img_size=r.img_size, auto_augment=None, mixup=0.0, cutmix=0.0, smoothing=r.smoothing,
                         drop_path=r.drop_path, workers=0, seed=seed, device="cpu", progress=False)
    t = Timer()
    try:
        ckpt = pretrain(cfg)
    finally:
        tdata.train_transform = orig
    rec: dict[str, Any] = {"kind": "library", "name": name, "tag": a.tag, "setting": setting, "seed": seed,
                           "recipe": r.to_dict(), "arch_registered": arch, "pretrain": t.done(),
                           "train_images": int(len(tr)), "env": env_info(), "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
    state = load_checkpoint(ckpt)
    model = build_model(r, r.classes)
    model.load_state_dict(state["model"])
    rec["val_acc"] = round(val_accuracy(model, x[va], y[va], r), 2)
    t = Timer()
    knn = {}
    for task in a.tasks:
        knn[task] = evaluate_backbone(ckpt, task, EvalOptions(protocol="knn", img_size=r.img_size, max_train=a.max_train,
                                                              max_test=a.max_test, device="cpu"))["value"]
    rec["eval"] = t.done()
    rec["knn"] = knn
    rec["knn_mean"] = round(sum(knn.values()) / len(knn), 3)
    lines = [json.loads(l) for l in open(out / "metrics.jsonl")]
    rec["train_loss"] = lines[-1]["train_loss"]
    append(log, rec)
    print(f"[{name}] library loop {setting} s{seed}: val {rec['val_acc']}% loss {rec['train_loss']:.3f} 5-NN mean "
          f"{rec['knn_mean']:.2f} {knn} | train {rec['pretrain']}", flush=True)


def check_library(a) -> None:
    """This harness's 5-NN == t2s_lib.evaluate.evaluate_backbone for the same (resnet10t) weights."""
    import tempfile

    import torch

    from t2s_lib.evaluate.run import EvalOptions, evaluate_backbone

    r = make_recipe("p32", ["arch=timm:resnet10t", "channels_last=false"])
    torch.set_num_threads(r.threads)
    torch.manual_seed(0)
    model = build_model(r, 20)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "checkpoint.pt"
        torch.save({"arch": "resnet10t", "num_classes": 20, "classes": None, "model": model.state_dict(), "epoch": 1}, path)
        for task in a.tasks:
            mine = knn_tasks(model, r, [task], a.max_train, a.max_test)[task]
            lib = evaluate_backbone(path, task, EvalOptions(protocol="knn", img_size=r.img_size, max_train=a.max_train,
                                                            max_test=a.max_test, device="cpu"))["value"]
            print(f"{task}: harness {mine:.3f}  evaluate_backbone {lib:.3f}", flush=True)


def run_reeval(r: Recipe, name: str, a, log: Path) -> None:
    """5-NN of saved models (run --save) with other tasks / caps; copies the unit record under --name."""
    import torch

    torch.set_num_threads(r.threads)
    src = a.from_name or a.recipe
    old = {}
    for line in open(log):
        x = json.loads(line)
        if x["kind"] == "unit" and x["name"] == src:
            old[(x["setting"], x["seed"])] = x
    for seed in a.seeds:
        for s in a.settings:
            key = (resolve(s), seed)
            if key not in old:
                print(f"no unit {key} of {src}")
                continue
            rec = dict(old[key])
            rr = Recipe(**{**rec["recipe"], "layers": tuple(rec["recipe"]["layers"])})
            model = build_model(rr, rr.classes)
            model.load_state_dict(torch.load(OUT / "models" / src / f"{key[0]}_s{seed}.pt", map_location="cpu")["model"])
            t = Timer()
            knn = knn_tasks(model, rr, a.tasks, a.max_train, a.max_test)
            rec.update({"name": name, "tag": a.tag, "knn": knn, "knn_mean": round(sum(knn.values()) / len(knn), 3),
                        "eval": t.done(), "tasks": a.tasks, "max_train": a.max_train, "max_test": a.max_test,
                        "reeval_of": src, "time": time.strftime("%Y-%m-%dT%H:%M:%S")})
            append(log, rec)
            print(f"[{name}] {key[0]} s{seed}: 5-NN mean {rec['knn_mean']:.2f} {knn} eval {rec['eval']['wall_s']}s", flush=True)


def run_probe(r: Recipe, name: str, a, log: Path) -> None:
    """Linear probe vs fine-tuning (library train_probe) on saved backbones (run --save first) and scratch."""
    import torch

    from t2s_lib.evaluate.probe import ProbeConfig, train_probe
    from t2s_lib.evaluate.run import _subset, resolve_task

    torch.set_num_threads(r.threads)
    specs = []
    for seed in a.seeds:
        for s in a.settings:
            if s == "scratch":
                specs.append(("scratch", seed, None))
            else:
                specs.append((resolve(s), seed, OUT / "models" / name / f"{resolve(s)}_s{seed}.pt"))
    for setting, seed, path in specs:
        torch.manual_seed(seed)
        model = build_model(r, r.classes)
        if path is not None:
            model.load_state_dict(torch.load(path, map_location="cpu")["model"])
        model.reset_classifier(0)
        for task in a.tasks:
            t = resolve_task(task)
            train = _subset(t.dataset("train"), a.max_train, 0)
            test = _subset(t.dataset("test"), a.max_test, 1)
            res = {}
            for spec in a.probe_configs:  # protocol:epochs:lr:batch
                proto, ep, lr, bs = spec.split(":")
                cache = proto == "linear"
                tm = Timer()
                cfg = ProbeConfig(protocol=proto, epochs=int(ep), lr=float(lr), batch_size=int(bs), weight_decay=0.0,
                                  img_size=r.img_size, cache_features=cache, workers=0, seed=0)
                out = train_probe(model, train, test, t.num_classes, cfg)
                res[spec] = {"top1": round(out["top1"], 2), **tm.done(), "cache_features": cache}
            rec = {"kind": "probe", "name": name, "tag": a.tag, "setting": setting, "seed": seed, "task": task,
                   "max_train": a.max_train, "max_test": a.max_test, "probe": res, "env": env_info(),
                   "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
            append(log, rec)
            print(f"[{name}] probe {setting} s{seed} {task}: " +
                  ", ".join(f"{k} {v['top1']:.1f}% ({v['wall_s']}s)" for k, v in res.items()), flush=True)


if __name__ == "__main__":
    main()
