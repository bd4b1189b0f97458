"""Backbones: timm ResNets built from scratch (``pretrained=False`` always) and their checkpoints.

A checkpoint written by :mod:`t2s_lib.train.loop` is a dict with ``arch``, ``num_classes``,
``classes``, ``model`` (state dict of the unwrapped model), ``epoch`` / ``epochs`` and, while a
run is in progress, optimiser and scheduler state. Evaluation and CKA load only the backbone
(the classifier is dropped, as in the paper: "fc dropped when loading weights").
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

from ..errors import T2SError
from ..registry import Registry

#: Lines of torch's weights_only refusal that advise loading the file unsafely (never repeated to the user)
_TORCH_UNSAFE_ADVICE = re.compile(r"weights_only|trusted source|arbitrary code|file an issue|documentation of torch\.load")

#: Architectures the study supports; values are the timm model names.
MODELS: Registry[str] = Registry("model")
MODELS.add("resnet18", "resnet18")
MODELS.add("resnet50", "resnet50")  # the paper's backbone
MODELS.add("resnet101", "resnet101")
# Small model for the cpu/smoke profiles: 4 stages like a ResNet, ~5M parameters, so the
# stage-wise CKA and every protocol run unchanged at 32-64 px on a laptop.
MODELS.add("resnet10t", "resnet10t")
# resnet10t at half width (t2s_lib.train.archs, registered with timm on import): the cpu profile's
# backbone, chosen by measurement (docs/PROXY_PROTOCOL.md).
MODELS.add("resnet10t_w32", "resnet10t_w32")
# quarter-width and deeper half-width ResNet-Ts: the backbone sizes of the scaling study at the cpu scale
MODELS.add("resnet10t_w16", "resnet10t_w16")
MODELS.add("resnet18t_w32", "resnet18t_w32")
MODELS.add("resnet34t_w32", "resnet34t_w32")


def create_backbone(arch: str, num_classes: int = 0, *, drop_path_rate: float = 0.0, **kwargs: Any):
    """A freshly initialised timm model (never downloads weights). ``num_classes=0`` drops the head."""
    import timm

    from . import archs  # noqa: F401 - registers our timm models

    name = MODELS.get(arch)
    return timm.create_model(name, pretrained=False, num_classes=num_classes, drop_path_rate=drop_path_rate, **kwargs)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint dict (CPU tensors), turning a missing/corrupt file into a clear error."""
    import torch

    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.pt"
    if not path.is_file():
        raise T2SError(f"checkpoint {path} not found", "give a file written by `t2s pretrain` (or its run folder)")
    try:
        # weights_only: a checkpoint is tensors and plain containers; a crafted pickle cannot run code
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a truncated / foreign / unsafe file
        # torch's refusal of a pickle advises retrying with weights_only=False, i.e. running the file's
        # code: that advice is not passed on, only the lines that say what was refused
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        refused = [line for line in lines if not _TORCH_UNSAFE_ADVICE.search(line)]
        if len(refused) < len(lines):
            detail = f": {refused[0][:200]}" if refused else ""
            raise T2SError(f"checkpoint {path} could not be read safely (refused by torch's tensors-only loader{detail}): "
                           "it is not a checkpoint this tool wrote (those hold only tensors and plain containers)",
                           "re-create it with the command that writes it (`t2s pretrain`, `t2s evaluate --save-model`, "
                           "`t2s rewards build`); a file holding other Python objects could run code when loaded, so "
                           "it is never loaded") from None
        first = lines[0][:300] if lines else ""
        raise T2SError(f"checkpoint {path} could not be read safely ({exc.__class__.__name__}: {first})",
                       "use a checkpoint written by `t2s pretrain` (files holding arbitrary Python objects are "
                       "refused); if it is ours, it is damaged: delete it and rerun the stage that wrote it") from exc
    if not isinstance(ckpt, dict) or "model" not in ckpt or "arch" not in ckpt:
        raise T2SError(f"{path} is not a t2s checkpoint (no 'arch'/'model' entries)",
                       "use a checkpoint written by `t2s pretrain` or `t2s evaluate --save-model`")
    ckpt["path"] = str(path)
    return ckpt


def check_compatible(ckpt: dict[str, Any], arch: str | None = None, num_classes: int | None = None,
                     classes: Sequence[str] | None = None) -> None:
    """Refuse a checkpoint for another architecture, class count or class list, naming both sides."""
    where = ckpt.get("path", "checkpoint")
    if arch is not None and ckpt["arch"] != arch:
        raise T2SError(f"{where} holds a {ckpt['arch']!r} model, but {arch!r} was requested",
                       f"use --arch {ckpt['arch']} or a checkpoint of a {arch} model")
    if num_classes is not None and ckpt.get("num_classes") != num_classes:
        raise T2SError(f"{where} has a {ckpt.get('num_classes')}-class head, but the data has {num_classes} classes",
                       "use the checkpoint trained on this data, or start a new run folder")
    if classes is not None and ckpt.get("classes") is not None and list(ckpt["classes"]) != list(classes):
        diff = sorted(set(classes) ^ set(ckpt["classes"]))[:5]
        raise T2SError(f"{where}: its head was trained for other classes than this data's (differing: {diff})",
                       "use the checkpoint trained on this data/task, or start a new run folder")


def backbone_state(state: dict[str, Any]) -> dict[str, Any]:
    """Drop the classifier (``fc.*``) from a ResNet state dict."""
    return {k: v for k, v in state.items() if not k.startswith("fc.")}


def load_backbone(path: str | Path, arch: str | None = None, *, drop_path_rate: float = 0.0):
    """Load a pre-trained backbone without its head (``num_classes=0``: pooled features out)."""
    ckpt = load_checkpoint(path)
    check_compatible(ckpt, arch=arch)
    model = create_backbone(ckpt["arch"], 0, drop_path_rate=drop_path_rate)
    load_weights(model, backbone_state(ckpt["model"]), ckpt)
    model.t2s_arch = ckpt["arch"]  # remembered for CKA / fine-tuning
    return model


def load_weights(model, state: dict[str, Any], ckpt: dict[str, Any]) -> None:
    """Load ``state`` into ``model`` strictly; a mismatch (e.g. an ``arch`` that does not match the weights)
    becomes a clear error naming the checkpoint."""
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches
        detail = str(exc).strip().splitlines()
        raise T2SError(f"{ckpt.get('path', 'checkpoint')}: its weights do not fit a {ckpt.get('arch')!r} model "
                       f"({detail[1].strip() if len(detail) > 1 else detail[0][:200]})",
                       "the file is damaged, or its 'arch' entry does not match its weights: re-create it") from None
    if missing or unexpected:
        raise T2SError(f"{ckpt.get('path', 'checkpoint')}: weights do not fit a {ckpt.get('arch')!r} backbone "
                       f"(missing {missing[:3]}, unexpected {unexpected[:3]})",
                       "the file is damaged, or its 'arch' entry does not match its weights: re-create it")


def load_stage_model(path: str | Path, stages: Sequence[int] = (1, 2, 3, 4)):
    """A ``features_only`` timm model returning the outputs of the given ResNet stages (1..4)."""
    ckpt = load_checkpoint(path)
    model = create_backbone(ckpt["arch"], features_only=True, out_indices=tuple(stages))
    load_weights(model, backbone_state(ckpt["model"]), ckpt)
    return model


def init_stage_model(arch: str, seed: int = 0, stages: Sequence[int] = (1, 2, 3, 4)):
    """A randomly initialised stage model (a 'no pre-training' reference for CKA)."""
    import torch

    torch.manual_seed(seed)
    return create_backbone(arch, features_only=True, out_indices=tuple(stages))
