"""The Task2Vec probe network: a torchvision-layout ResNet with local weights.

The embedding has one entry per output filter of every Conv2d and BatchNorm2d, in
``named_modules()`` order, skipping the classifier ``fc`` (9600 entries for ResNet-18, in the
published layout of ``data/published/task2vec_resnet18_layout.json``).

Weights. The paper used torchvision's ImageNet weights; none can be downloaded here, so:

* ``--probe-checkpoint PATH``: a local state dict (torchvision or timm naming, optionally under
  ``state_dict``/``model``/``module.`` wrappers; ``fc`` is dropped). ImageNet weights, if the user
  has them, or a checkpoint of the project's own pre-training stage.
* default ``random-init``: the architecture's default initialisation drawn with
  ``torch.manual_seed(probe_seed)`` (probe_seed 0). Deterministic and identical for every task, so
  embeddings of different tasks are comparable with each other, but **not** with the published
  vectors (those used ImageNet weights). Every embedding's metadata names the weights source.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from ..errors import T2SError

ARCHS = ("resnet18", "resnet34", "resnet50")
EXPECTED_DIM = {"resnet18": 9600, "resnet34": 17024, "resnet50": 45568}
_WRAPPER_KEYS = ("state_dict", "model", "model_state", "model_state_dict", "net", "backbone")
_PREFIXES = ("module.", "model.", "backbone.", "encoder.", "net.")


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _extract_state_dict(obj: Any, path: Path) -> dict:
    import torch

    for _ in range(3):  # unwrap {'state_dict': {...}} style containers
        if isinstance(obj, dict) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
            inner = next((obj[k] for k in _WRAPPER_KEYS if k in obj and isinstance(obj[k], dict)), None)
            if inner is None:
                break
            obj = inner
    if hasattr(obj, "state_dict") and not isinstance(obj, dict):
        obj = obj.state_dict()
    if not isinstance(obj, dict) or not obj:
        raise T2SError(f"probe checkpoint {path}: no state dict found", "save the model's state_dict() with torch.save")
    out = {}
    for key, value in obj.items():
        if not isinstance(value, torch.Tensor):
            continue
        for prefix in _PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix):]
        out[key] = value
    return out


def build_probe(arch: str = "resnet18", checkpoint: str | Path | None = None, probe_seed: int = 0):
    """Return ``(model, weights_info)``; ``model.fc`` is the architecture's default (replace it)."""
    import torch
    import torchvision

    if arch not in ARCHS:
        raise T2SError(f"unknown probe architecture {arch!r}", f"use one of: {', '.join(ARCHS)}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(probe_seed)
        model = getattr(torchvision.models, arch)(weights=None)
    if checkpoint is None:
        return model, {"weights": "random-init", "probe_seed": int(probe_seed),
                       "note": "offline default: fixed-seed random initialisation, not ImageNet weights; "
                               "comparable across tasks embedded with the same probe, not with the published vectors"}
    path = Path(checkpoint).expanduser()
    if not path.is_file():
        raise T2SError(f"probe checkpoint {path} not found", "give a local .pt/.pth state dict of the probe architecture")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means: not a plain state dict
        raise T2SError(f"probe checkpoint {path}: cannot be read as a PyTorch state dict ({exc.__class__.__name__})",
                       "save it with torch.save(model.state_dict(), path)") from exc
    state = {k: v for k, v in _extract_state_dict(obj, path).items() if not k.startswith("fc.")}
    expected = {k: v for k, v in model.state_dict().items() if not k.startswith("fc.")}
    missing = [k for k in expected if k not in state]
    bad_shape = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    unexpected = [k for k in state if k not in expected]  # e.g. a deeper ResNet's extra blocks
    if missing or bad_shape or unexpected:
        detail = f"{len(missing)} missing keys (e.g. {missing[:3]})" if missing else ""
        if unexpected:
            detail += f"{'; ' if detail else ''}{len(unexpected)} unexpected keys (e.g. {unexpected[:3]})"
        if bad_shape:
            k = bad_shape[0]
            detail += f"{'; ' if detail else ''}{len(bad_shape)} shape mismatches (e.g. {k}: {tuple(state[k].shape)} vs {tuple(expected[k].shape)})"
        raise T2SError(
            f"probe checkpoint {path} does not match a torchvision {arch}: {detail}",
            f"pass --probe {_guess_arch(state) or 'ARCH'} (the checkpoint looks like {_guess_arch(state) or 'another architecture'}), or a {arch} checkpoint",
        )
    model.load_state_dict(state, strict=False)
    return model, {"weights": "checkpoint", "checkpoint": str(path.resolve()), "checkpoint_sha256": _file_sha256(path)}


def _guess_arch(state: dict) -> str | None:
    if "layer1.0.conv3.weight" in state:
        return "resnet50"
    if "layer3.5.conv1.weight" in state:
        return "resnet34"
    if "layer1.0.conv1.weight" in state:
        return "resnet18"
    return None


def fisher_modules(model) -> list[tuple[str, Any]]:
    """Conv2d and BatchNorm2d modules in ``named_modules()`` order, without the classifier."""
    import torch.nn as nn

    return [(name, m) for name, m in model.named_modules()
            if isinstance(m, (nn.Conv2d, nn.BatchNorm2d)) and not name.startswith("fc")]


def layout(model) -> list[dict]:
    """The (module, start, end) segments of the embedding vector for ``model``."""
    out, start = [], 0
    for name, m in fisher_modules(model):
        n = m.weight.shape[0]
        out.append({"module": name, "start": start, "end": start + n})
        start += n
    return out
