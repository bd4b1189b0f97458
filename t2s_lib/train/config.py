"""The pre-training configuration: the published recipe as defaults (reference 7.1), with bounds.

A profile's ``pretrain.recipe`` and the ``t2s pretrain`` flags set the same fields; both are
checked against the same types, bounds and choices (:mod:`t2s_lib.schema`), so e.g. an image
size of 0 or 100 000, or a negative image cap, is refused before anything runs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..schema import bounds, check_fields, choices

#: Largest image side a run may ask for: the paper used 224 px; memory grows with its square.
MAX_IMG_SIZE = 1024


@dataclass
class PretrainConfig:
    """Defaults are the published recipe (ResNet-50, 100 epochs, AdamW 1e-3/0.05, batch 1024 ...)."""

    data: str = ""
    out: str = ""
    arch: str = "resnet50"
    epochs: int = field(default=100, metadata=bounds(1, 10000))
    batch_size: int = field(default=1024, metadata=bounds(1))  # global: split over the torchrun processes
    lr: float = field(default=1e-3, metadata=bounds(0, lo_open=True))
    weight_decay: float = field(default=0.05, metadata=bounds(0))
    opt: str = "adamw"
    sched: str = "cosine"
    warmup_epochs: int = field(default=20, metadata=bounds(0))
    warmup_lr: float = field(default=1e-6, metadata=bounds(0))
    min_lr: float = field(default=1e-5, metadata=bounds(0))
    img_size: int = field(default=224, metadata=bounds(8, MAX_IMG_SIZE))
    auto_augment: str | None = "rand-m9-mstd0.5-inc1"
    # ColorJitter strength when RandAugment is off (timm adds 0.4 there unless told otherwise; with
    # RandAugment on it is unused, as in timm). Off by default: colour jitter supplies the appearance
    # variation that the simulator settings are meant to supply (docs/PROXY_PROTOCOL.md: it erased
    # the differences between settings at the cpu scale).
    color_jitter: float = field(default=0.0, metadata=bounds(0, 1))
    # RandomResizedCrop keeps an area fraction in [crop_scale_min, 1] (timm/paper: 0.08)
    crop_scale_min: float = field(default=0.08, metadata=bounds(0.01, 1))
    interpolation: str = field(default="bicubic", metadata=choices("bicubic", "bilinear", "nearest"))
    mixup: float = field(default=0.8, metadata=bounds(0))
    cutmix: float = field(default=1.0, metadata=bounds(0))
    smoothing: float = field(default=0.1, metadata=bounds(0, 0.99))
    drop_path: float = field(default=0.1, metadata=bounds(0, 0.99))
    amp: str = field(default="auto", metadata=choices("auto", "bf16", "fp16", "off"))
    channels_last: str = field(default="auto", metadata=choices("auto", "on", "off"))
    workers: int = field(default=4, metadata=bounds(0, 256))
    seed: int = field(default=0, metadata=bounds(0))
    device: str = "auto"
    max_images: int | None = field(default=None, metadata=bounds(1))  # use a fixed random subset (smoke runs)
    monitor_images: int = field(default=0, metadata=bounds(0))  # >0: clean loss/acc on that many training images per epoch
    # >0: hold out this fraction of every class (seeded) and report clean val_loss / val_acc per epoch
    val_fraction: float = field(default=0.0, metadata=bounds(0, 0.5))
    # how the validation split is drawn: ``image`` (random images of every class) or ``model`` (whole
    # 3D models of every class, from the renderer's manifest: recognition of unseen objects; under
    # settings that fix the pose every image of a model is the same picture, so an image split is trivial)
    val_by: str = field(default="image", metadata=choices("image", "model"))
    # ``files``: decode images in the loader (any size, RandAugment); ``memory``: decode the set once
    # into a uint8 tensor and augment tensors (torchvision v2): 1.6-1.8x less CPU at 32 px, where
    # decoding and PIL transforms cost more than the network
    data_mode: str = field(default="files", metadata=choices("files", "memory"))
    # how the memory path crops and flips: ``per-image`` (torchvision v2 per item, bicubic) or
    # ``batched`` (one roi_align crop-and-resize over the whole batch, bilinear, in the collate step):
    # at 32 px the per-image Python path was 86 % of the gap between the loop and a bare
    # forward/backward (BENCHMARKS.md)
    augment: str = field(default="per-image", metadata=choices("per-image", "batched"))
    # AdamW's single fused kernel (torch ``fused=True``, CPU and CUDA) instead of the per-tensor loop;
    # fp32 either way, equal up to float rounding
    fused_optimizer: bool = False
    progress: bool = True
    stop_after: int | None = field(default=None, metadata=bounds(1))  # stop after this many epochs in *this* call
    extra: dict[str, Any] = field(default_factory=dict)

    # fields that must agree between a checkpoint and a resumed run
    RESUME_KEYS = ("arch", "epochs", "batch_size", "lr", "weight_decay", "opt", "sched", "warmup_epochs",
                   "img_size", "auto_augment", "mixup", "cutmix", "smoothing", "drop_path", "seed", "max_images",
                   "val_fraction", "color_jitter", "crop_scale_min", "val_by", "data_mode", "augment",
                   "fused_optimizer")

    #: fields that are not recipe flags of ``t2s pretrain`` (positional, separate flags, internal)
    NOT_FLAGS = ("data", "out", "arch", "device", "progress", "extra")

    @classmethod
    def flag_fields(cls) -> list[dataclasses.Field]:
        """The recipe fields, each a ``--flag`` of ``t2s pretrain`` (and what torchrun jobs are given)."""
        return [f for f in dataclasses.fields(cls) if f.name not in cls.NOT_FLAGS]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def check(self, where: str = "pretrain") -> "PretrainConfig":
        """Refuse wrong types and out-of-range values, naming the option."""
        check_fields(self, where)
        self.check_combination(where)
        return self

    def check_combination(self, where: str = "pretrain") -> None:
        """Refuse options that are valid alone but not together."""
        from ..errors import T2SError

        if self.data_mode == "memory" and self.auto_augment:
            raise T2SError(f"{where}: data_mode 'memory' has no RandAugment (auto_augment={self.auto_augment!r})",
                           "set auto_augment to null (none), or use data_mode 'files' (timm's RandAugment on PIL images)")
        if self.augment == "batched" and (self.data_mode != "memory" or self.color_jitter):
            raise T2SError(f"{where}: augment 'batched' needs data_mode 'memory' and color_jitter 0 "
                           f"(got data_mode {self.data_mode!r}, color_jitter {self.color_jitter})",
                           "set data_mode: memory and color_jitter: 0, or augment: per-image")
