"""Evaluate a backbone on a task with one protocol and record the numbers in the tidy table."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import T2SError
from ..schema import bounds, check_fields, choices

PROTOCOLS = ("knn", "linear", "finetune")


@dataclass
class EvalOptions:
    protocol: str = field(default="knn", metadata=choices(*PROTOCOLS))
    img_size: int = field(default=224, metadata=bounds(8, 1024))
    # k-NN (published: k 5, T 0.07, eval-mode features by default)
    k: int = field(default=5, metadata=bounds(1))
    temperature: float = field(default=0.07, metadata=bounds(0, lo_open=True))
    train_mode: bool = False  # True: reproduce the released code's train-mode feature extraction
    # linear / finetune
    hparams: str = field(default="paper", metadata=choices("paper", "grid", "given"))  # table 7.2 | 30 % val grid | flags
    lr: float | None = field(default=None, metadata=bounds(0, lo_open=True))
    batch_size: int | None = field(default=None, metadata=bounds(1))
    weight_decay: float | None = field(default=None, metadata=bounds(0))
    epochs: int = field(default=50, metadata=bounds(1))
    cache_features: bool = False
    grid: dict[str, list] | None = None
    # data / compute
    max_train: int | None = field(default=None, metadata=bounds(1))  # seeded random subset of the task (CPU profiles)
    max_test: int | None = field(default=None, metadata=bounds(1))
    feature_batch: int = field(default=128, metadata=bounds(1))
    workers: int = field(default=0, metadata=bounds(0))
    seed: int = field(default=0, metadata=bounds(0))
    device: str = "auto"
    save_model: str | None = None  # finetune: write the fine-tuned backbone + head here
    extra: dict[str, Any] = field(default_factory=dict)

    def check(self, where: str = "evaluate") -> "EvalOptions":
        """Refuse wrong types and out-of-range values (e.g. k 0, a negative image cap), naming the option."""
        check_fields(self, where)
        return self


def recorded_options(opts: EvalOptions) -> dict[str, Any]:
    """The options that change a number, as recorded in the results table's ``options`` column (for
    linear / fine-tuning the hyper-parameters chosen at run time are added by :func:`evaluate_backbone`)."""
    options: dict[str, Any] = {"img_size": opts.img_size}
    if opts.max_train:
        options["max_train"] = opts.max_train
    if opts.max_test:
        options["max_test"] = opts.max_test
    if opts.protocol == "knn":
        options.update({"k": opts.k, "T": opts.temperature, "feature_mode": "train" if opts.train_mode else "eval"})
    return options


def resolve_task(task: Any):
    """A task object (``name, classes, num_classes, dataset(split)``) from a name, a folder or an object."""
    if not isinstance(task, (str, Path)):  # already a task object (duck-typed)
        return task
    try:
        from ..tasks import get_task
    except ImportError as exc:  # the tasks package is another stage's; say so plainly
        raise T2SError(f"cannot load task {task!r}: t2s_lib.tasks is not available ({exc})",
                       "install the complete project, or pass a task object") from exc
    return get_task(task)


def subset_indices(total: int, n: int | None, seed: int) -> list[int] | None:
    """The seeded, sorted random subset of ``n`` of ``total`` items that the CPU profiles evaluate on
    (None: use everything)."""
    if not n or n >= total:
        return None
    import torch

    g = torch.Generator().manual_seed(seed)
    return torch.randperm(total, generator=g)[:n].sort().values.tolist()


def _subset(ds, n: int | None, seed: int):
    idx = subset_indices(len(ds), n, seed)
    if idx is None:
        return ds
    from torch.utils.data import Subset

    return Subset(ds, idx)


def load_eval_backbone(spec: str | Path, *, drop_path_rate: float = 0.0, seed: int = 0):
    """A backbone from a checkpoint path, or ``scratch:<arch>`` (random init: the no-pre-training baseline)."""
    text = str(spec)
    if text.startswith("scratch:"):
        import torch

        from ..train.models import create_backbone

        torch.manual_seed(seed)
        model = create_backbone(text.split(":", 1)[1], 0, drop_path_rate=drop_path_rate)
        model.t2s_arch = text.split(":", 1)[1]
        return model
    from ..train.models import load_backbone

    return load_backbone(spec, drop_path_rate=drop_path_rate)


def backbone_name(spec: str | Path) -> str:
    """Default name of a backbone in the tables: its run folder name (``.../<run>/checkpoint.pt``)."""
    text = str(spec)
    if text.startswith("scratch:"):
        return text
    p = Path(text)
    return p.parent.name if p.name == "checkpoint.pt" else p.stem if p.is_file() else p.name


def evaluate_backbone(backbone: str | Path, task: Any, opts: EvalOptions, *, name: str | None = None,
                      results: str | Path | None = None, keep_features: bool = False) -> dict[str, Any]:
    """Run one protocol; return the result row (and upsert it into ``results`` when given).

    ``keep_features`` (5-NN): the row also carries ``train_features`` = (features, labels) of the
    (capped) training split, so a validation 5-NN on that split needs no second feature pass."""
    import torch

    from ..device import resolve_device
    from ..seeding import seed_everything
    from ..train.data import eval_transform
    from .features import Transformed, extract_features
    from .knn import knn_accuracy
    from .probe import ProbeConfig, grid_search, train_probe

    opts.check()
    if results is not None:
        from ..files import check_output_path

        check_output_path(results, kind="file", what="--results")
    device = resolve_device(opts.device)
    task = resolve_task(task)
    seed_everything(opts.seed, deterministic_torch=False)
    # fine-tuning trains with stochastic depth 0.1; the released k-NN extracted features with it active too
    drop_path = 0.1 if opts.protocol == "finetune" or (opts.protocol == "knn" and opts.train_mode) else 0.0
    model = load_eval_backbone(backbone, drop_path_rate=drop_path, seed=opts.seed)
    train = _subset(task.dataset("train"), opts.max_train, opts.seed)
    test = _subset(task.dataset("test"), opts.max_test, opts.seed + 1)
    if len(train) == 0 or len(test) == 0:
        raise T2SError(f"task {task.name!r} has an empty split (train {len(train)}, test {len(test)})",
                       "check the task's data (t2s data fetch) or its folder")
    t0 = time.perf_counter()
    options = recorded_options(opts)
    extra: dict[str, Any] = {}

    if opts.protocol == "knn":
        tf = eval_transform(opts.img_size, interpolation="bicubic")
        kw = dict(device=device, batch_size=opts.feature_batch, workers=opts.workers, train_mode=opts.train_mode,
                  seed=opts.seed)
        ftr, ytr = extract_features(model, Transformed(train, tf), released_loader=opts.train_mode, **kw)
        fte, yte = extract_features(model, Transformed(test, tf), **kw)
        value = knn_accuracy(ftr, ytr, fte, yte, k=opts.k, temperature=opts.temperature, num_classes=task.num_classes)
        if keep_features and not opts.train_mode:
            extra["train_features"] = (ftr, ytr)
    else:
        from .hparams import best_hparams

        hp: dict[str, Any]
        if opts.hparams == "paper":
            hp = best_hparams(task.name, opts.protocol)
        elif opts.hparams == "given":
            if None in (opts.lr, opts.batch_size, opts.weight_decay):
                raise T2SError("--hparams given needs --lr, --batch-size and --weight-decay")
            hp = {"lr": opts.lr, "batch_size": opts.batch_size, "weight_decay": opts.weight_decay, "source": "given"}
        else:
            base = ProbeConfig(protocol=opts.protocol, epochs=opts.epochs, img_size=opts.img_size,
                               cache_features=opts.cache_features, workers=opts.workers, seed=opts.seed)
            search = grid_search(model, train, task.num_classes, base, opts.grid, device=device)
            hp = {**search["best"], "source": "grid"}
            extra["grid_trials"] = search["trials"]
        for key in ("lr", "batch_size", "weight_decay"):  # explicit values override the table
            if getattr(opts, key) is not None and opts.hparams == "paper":
                hp[key], hp["source"] = getattr(opts, key), "paper+override"
        cfg = ProbeConfig(protocol=opts.protocol, epochs=opts.epochs, lr=hp["lr"], batch_size=int(hp["batch_size"]),
                          weight_decay=hp["weight_decay"], img_size=opts.img_size, workers=opts.workers, seed=opts.seed,
                          cache_features=opts.cache_features and opts.protocol == "linear")
        res = train_probe(model, train, test, task.num_classes, cfg, device=device,
                          return_model=bool(opts.save_model))
        value = res["top1"]
        options.update({"epochs": opts.epochs, "lr": hp["lr"], "batch_size": int(hp["batch_size"]),
                        "weight_decay": hp["weight_decay"], "hparams": hp["source"]})
        if cfg.cache_features:
            options["cache_features"] = True
        if opts.save_model:
            save_finetuned(opts.save_model, res["backbone"], res["head"], getattr(model, "t2s_arch", "?"), task,
                           source=str(backbone), protocol=opts.protocol)
            extra["saved_model"] = str(opts.save_model)
    row = {"backbone": name or backbone_name(backbone), "task": task.name, "protocol": opts.protocol,
           "options": options, "metric": "top1", "value": round(float(value), 4), "checkpoint": str(backbone),
           "seconds": round(time.perf_counter() - t0, 2)}
    if results is not None:
        from .results import append_results

        append_results(results, [row])
    return {**row, **extra}


def save_finetuned(path: str | Path, backbone, head, arch: str, task, *, source: str, protocol: str) -> Path:
    """Write a fine-tuned backbone (``fc``-free state, loadable by CKA) and its task head, atomically."""
    import torch

    from ..files import atomic_path

    path = Path(path)
    state = {"arch": arch, "num_classes": task.num_classes, "classes": list(task.classes), "task": task.name,
             "protocol": protocol, "source": source, "model": {k: v.cpu() for k, v in backbone.state_dict().items()},
             "head": {k: v.cpu() for k, v in head.state_dict().items()}, "epoch": None, "complete": True}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return path


def load_finetuned(path: str | Path, task: Any):
    """(backbone, head) of a saved fine-tuned model, refusing a task whose classes differ from the head's."""
    from ..train.models import check_compatible, create_backbone, load_checkpoint
    from .probe import make_head

    task = resolve_task(task)
    ckpt = load_checkpoint(path)
    if "head" not in ckpt:
        raise T2SError(f"{path} holds no task head (a pre-training checkpoint?)",
                       "give a file written by `t2s evaluate --protocol finetune --save-model`")
    check_compatible(ckpt, num_classes=task.num_classes, classes=list(task.classes))
    backbone = create_backbone(ckpt["arch"], 0)
    backbone.load_state_dict(ckpt["model"])
    head = make_head(backbone.num_features, task.num_classes)
    head.load_state_dict(ckpt["head"])
    return backbone, head
