"""Backbones of our own, registered with timm so that ``timm.create_model`` (and with it
``features_only`` for CKA, ``drop_path_rate``, every timm utility) treats them like any timm model.

``resnet10t_w32``: timm's ResNet-10-T (BasicBlock, layers 1-1-1-1, deep-tiered stem, average-pool
downsampling) at half width: stages of 32/64/128/256 channels, stem width 16; 1.24 M parameters.
It is the cpu profile's backbone: at 32 px it costs ~0.7-0.9 ms of one core per training image
(forward, backward and AdamW) against 2.35 ms for the full-width resnet10t, which is what lets 30
epochs of 4 500 images fit in about a minute (docs/PROXY_PROTOCOL.md: the search that chose it).
It has four ResNet stages like the paper's ResNet-50, so the stage-wise CKA runs unchanged.

``resnet10t_w16``: resnet10t at quarter width (0.31 M parameters). ``resnet18t_w32`` /
``resnet34t_w32``: the same stem and width with the block counts of ResNet-18
(2-2-2-2) and ResNet-34 (3-4-6-3). The scaling study compares backbone sizes at the cpu scale with
resnet10t_w16 / resnet10t_w32 / resnet18t_w32 (0.31 / 1.24 / 2.81 M parameters; the paper
compares ResNet-18/50/101, 11.7 / 25.6 / 44.5 M); resnet34t_w32 costs 3x resnet10t_w32 per image.

None has pretrained weights: it is built from scratch like every backbone of the study.
"""

from __future__ import annotations

from typing import Any

from timm.models import build_model_with_cfg, register_model
from timm.models.resnet import BasicBlock, ResNet

__all__: list[str] = []

# timm reads a module's ``default_cfgs`` when a model is registered: an entry without weights
# (``url`` empty) describes input size and normalisation and keeps timm from warning that the
# model has no pretrained configuration.
_CFG = {"url": "", "num_classes": 1000, "input_size": (3, 32, 32), "pool_size": (1, 1), "crop_pct": 0.875,
        "interpolation": "bicubic", "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225),
        "first_conv": "conv1.0", "classifier": "fc"}
default_cfgs = {name: dict(_CFG) for name in ("resnet10t_w16", "resnet10t_w32", "resnet18t_w32", "resnet34t_w32")}


def _half_width_t(name: str, layers: tuple[int, int, int, int], pretrained: bool, kwargs: dict[str, Any],
                  width: int = 32) -> ResNet:
    """A BasicBlock ResNet-T (deep-tiered stem, average-pool downsampling) whose first stage has
    ``width`` channels (32: half of ResNet's 64)."""
    args = dict(block=BasicBlock, layers=layers, channels=tuple(width * m for m in (1, 2, 4, 8)),
                stem_width=width // 2, stem_type="deep_tiered", avg_down=True)
    return build_model_with_cfg(ResNet, name, pretrained, **dict(args, **kwargs))


@register_model
def resnet10t_w16(pretrained: bool = False, **kwargs: Any) -> ResNet:
    """ResNet-10-T at quarter width (channels 16-32-64-128, stem 8): the smallest scaling backbone."""
    return _half_width_t("resnet10t_w16", (1, 1, 1, 1), pretrained, kwargs, width=16)


@register_model
def resnet10t_w32(pretrained: bool = False, **kwargs: Any) -> ResNet:
    """ResNet-10-T at half width (channels 32-64-128-256, stem 16)."""
    return _half_width_t("resnet10t_w32", (1, 1, 1, 1), pretrained, kwargs)


@register_model
def resnet18t_w32(pretrained: bool = False, **kwargs: Any) -> ResNet:
    """ResNet-18 block counts (2-2-2-2) with the resnet10t_w32 stem and widths."""
    return _half_width_t("resnet18t_w32", (2, 2, 2, 2), pretrained, kwargs)


@register_model
def resnet34t_w32(pretrained: bool = False, **kwargs: Any) -> ResNet:
    """ResNet-34 block counts (3-4-6-3) with the resnet10t_w32 stem and widths."""
    return _half_width_t("resnet34t_w32", (3, 4, 6, 3), pretrained, kwargs)
