"""Pre-training backbones on rendered image sets (paper recipe, timm utilities, DDP-ready).

Public API::

    from t2s_lib.train import PretrainConfig, pretrain, load_backbone, create_backbone
    ckpt = pretrain(PretrainConfig(data="runs/cpu/render/<key>", out="runs/cpu/pretrain/<key>", arch="resnet10t"))
"""

from .data import describe_image_set, eval_transform, image_folder, train_transform
from .config import PretrainConfig
from .loop import pretrain, read_metrics
from .models import (MODELS, check_compatible, create_backbone, init_stage_model, load_backbone, load_checkpoint,
                     load_stage_model)

__all__ = [
    "MODELS", "PretrainConfig", "check_compatible", "create_backbone", "describe_image_set", "eval_transform",
    "image_folder", "init_stage_model", "load_backbone", "load_checkpoint", "load_stage_model", "pretrain",
    "read_metrics", "train_transform",
]
