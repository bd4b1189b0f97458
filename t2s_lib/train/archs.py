"""Backbones of our own, registered with timm so that ``timm.create_model`` (and with it
``features_only`` for CKA, ``drop_path_rate``, every timm utility) treats them like any timm model.

``resnet10t_w32``: timm's ResNet-10-T (BasicBlock, layers 1-1-1-1, deep-tiered stem, average-pool
downsampling) at half width: stages of 32/64/128/256 channels, stem width 16; 1.24 M parameters.
It is the cpu profile's backbone: at 32 px it costs ~0.7-0.9 ms of one core per training image
(forward, backward and AdamW) against 2.35 ms for the full-width resnet10t, which is what lets 30
epochs of 4 500 images fit in about a minute (docs/PROXY_PROTOCOL.md: the search that chose it).
It has four ResNet stages like the paper's ResNet-50, so the stage-wise CKA runs unchanged.
Never has pretrained weights: it is built from scratch like every backbone of the study.
"""

from __future__ import annotations

from typing import Any

from timm.models import build_model_with_cfg, register_model
from timm.models.resnet import BasicBlock, ResNet

__all__: list[str] = []

# timm reads a module's ``default_cfgs`` when a model is registered: an entry without weights
# (``url`` empty) describes input size and normalisation and keeps timm from warning that the
# model has no pretrained configuration.
default_cfgs = {
    "resnet10t_w32": {"url": "", "num_classes": 1000, "input_size": (3, 32, 32), "pool_size": (1, 1),
                      "crop_pct": 0.875, "interpolation": "bicubic", "mean": (0.485, 0.456, 0.406),
                      "std": (0.229, 0.224, 0.225), "first_conv": "conv1.0", "classifier": "fc"},
}


@register_model
def resnet10t_w32(pretrained: bool = False, **kwargs: Any) -> ResNet:
    """ResNet-10-T at half width (channels 32-64-128-256, stem 16)."""
    args = dict(block=BasicBlock, layers=(1, 1, 1, 1), channels=(32, 64, 128, 256), stem_width=16,
                stem_type="deep_tiered", avg_down=True)
    return build_model_with_cfg(ResNet, "resnet10t_w32", pretrained, **dict(args, **kwargs))
