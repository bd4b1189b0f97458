"""A Task2Vec probe trained by the study itself, for machines without ImageNet weights.

The paper's probe is an ImageNet ResNet-18; none can be downloaded here, and a randomly initialised
probe separates the offline tasks only weakly (their vectors sit at cosine 0.83-0.98 to each other).
This trains a torchvision-layout ResNet-18 with the project's own pre-training on a rendered set
(the recipe's setting over every class of the object library; the cpu profile uses varying
backgrounds, since domain randomisation stays at chance at this budget): a probe that has seen many
objects and scenes. It is built once per machine and cached by recipe hash
under ``<cache>/probes/<hash>/`` (``checkpoint.pt``, ``recipe.json``, ``metrics.jsonl``); the
embedding's metadata names the checkpoint by its sha256, so vectors of different probes are never
compared.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..files import write_json
from ..paths import cache_layout
from ..procs import output_lock

PROBE_VERSION = 1


@dataclass(frozen=True)
class ProbeRecipe:
    """How the probe is trained (everything here goes into the cache key)."""

    setting: str = "domain_randomization"
    images: int = 4800
    classes: int | None = None  # null: every class of the library
    img_size: int = 32
    library: str = "sweethome3d"
    msaa: int = 4
    seed: int = 0
    train: dict[str, Any] = field(default_factory=lambda: {
        "arch": "resnet18", "epochs": 20, "batch_size": 64, "lr": 2e-3, "weight_decay": 0.05, "warmup_epochs": 1,
        "mixup": 0.0, "cutmix": 0.0, "auto_augment": None, "smoothing": 0.1, "drop_path": 0.0, "workers": 0,
        "val_fraction": 0.1})

    @property
    def key(self) -> str:
        payload = json.dumps({"v": PROBE_VERSION, **asdict(self)}, sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def probe_checkpoint(recipe: ProbeRecipe, *, device: str = "auto", render_workers: int = 1,
                     log: Callable[[str], None] = print) -> Path:
    """The trained probe's checkpoint, training it first when this machine has not yet (resumable)."""
    from ..render import RenderJob, run_render_job
    from ..settings import resolve_setting
    from ..train.config import PretrainConfig
    from ..train.loop import pretrain

    folder = cache_layout().probe(recipe.key)
    ckpt = folder / "pretrain" / "checkpoint.pt"
    done = folder / "recipe.json"
    if done.is_file() and ckpt.is_file():
        return ckpt
    folder.mkdir(parents=True, exist_ok=True)
    with output_lock(folder, "a Task2Vec probe being trained"):
        if done.is_file() and ckpt.is_file():
            return ckpt
        log(f"[task2vec] training the probe {recipe.key} ({recipe.train.get('arch')} on {recipe.images} "
            f"{resolve_setting(recipe.setting).key} images at {recipe.img_size} px; once per machine)")
        job = RenderJob.create(recipe.setting, recipe.images, recipe.img_size, seed=recipe.seed, classes=recipe.classes,
                               library=recipe.library, msaa=recipe.msaa, workers=render_workers)
        images = run_render_job(job, folder / "images", progress=False)
        cfg = PretrainConfig(**{**recipe.train, "data": str(images), "out": str(folder / "pretrain"),
                                "seed": recipe.seed, "device": device, "progress": False}).check("task2vec probe")
        pretrain(cfg)
        shutil.rmtree(images)
        write_json(done, {"key": recipe.key, **asdict(recipe)})
    return ckpt
