"""Rendered image sets as training data: an ImageFolder (``<class>/<image>``) plus its manifest.

The renderer writes ``manifest.jsonl`` and ``dataset.json`` next to the class folders; they are
optional here (an ImageFolder of any origin can be used) but an empty or malformed set is refused
before any output is created.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from ..errors import T2SError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def describe_image_set(root: str | Path) -> dict[str, Any]:
    """Check an ImageFolder and return ``{root, classes, num_images, meta}`` (``meta``: dataset.json)."""
    root = Path(root)
    if not root.is_dir():
        raise T2SError(f"image set {root} does not exist",
                       "render it first (`t2s render ...`) or give the folder that holds the class folders")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    counts = {c: sum(1 for f in (root / c).iterdir() if f.suffix.lower() in IMAGE_EXTENSIONS) for c in classes}
    total = sum(counts.values())
    if not classes or total == 0:
        raise T2SError(f"image set {root} is empty (no class folder with images)",
                       "render the set again; expected <class>/<name>.jpg files")
    empty = [c for c, n in counts.items() if n == 0]
    if empty:
        raise T2SError(f"image set {root}: class folder(s) {empty[:5]} hold no images",
                       "re-render the set or delete the empty class folders")
    meta: dict[str, Any] = {}
    meta_path = root / "dataset.json"
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text())
        except json.JSONDecodeError as exc:
            raise T2SError(f"{meta_path} is not valid JSON ({exc})", "re-render the set") from exc
    return {"root": str(root), "classes": classes, "num_images": total, "meta": meta}


def check_images(info: dict[str, Any], *, limit: int = 5) -> None:
    """Open every image's header (cheap: no decoding) and refuse a set with unreadable files, naming them."""
    from PIL import Image, UnidentifiedImageError

    root = Path(info["root"])
    bad = []
    for c in info["classes"]:
        for f in sorted((root / c).iterdir()):
            if f.suffix.lower() not in IMAGE_EXTENSIONS:
                continue
            try:
                with Image.open(f) as img:
                    img.size  # noqa: B018 - reads the header
            except (OSError, UnidentifiedImageError, ValueError) as exc:
                bad.append(f"{f.relative_to(root)} ({type(exc).__name__})")
                if len(bad) >= limit:
                    break
    if bad:
        raise T2SError(f"image set {root}: unreadable image(s): {', '.join(bad)}",
                       "re-render the set (t2s render ...) or delete the damaged files")


def load_rgb(path: str) -> Any:
    """ImageFolder loader that names the file when an image cannot be decoded."""
    from PIL import Image

    try:
        with open(path, "rb") as fh:
            img = Image.open(fh)
            return img.convert("RGB")
    except (OSError, ValueError) as exc:
        raise T2SError(f"image {path} could not be decoded ({type(exc).__name__}: {exc})",
                       "re-render the set or delete the damaged file, then rerun (training resumes)") from exc


def image_folder(root: str | Path, transform: Callable | None = None):
    """A torchvision ImageFolder over a checked image set (RGB PIL images, labels in sorted class order)."""
    from torchvision.datasets import ImageFolder

    describe_image_set(root)
    return ImageFolder(str(root), transform=transform, loader=load_rgb)


def _posterize_keep_zero_bits(img, bits_to_keep, **_):
    """Posterize that accepts 0 bits (a black image), as Pillow did when the paper was trained.

    timm's ``rand-m9-mstd0.5-inc1`` can draw magnitude 10, which maps to 0 bits kept; Pillow >= 11
    rejects that with ValueError, which would kill a data-loader worker mid-epoch.
    """
    from PIL import Image, ImageOps

    if bits_to_keep >= 8:
        return img
    if bits_to_keep <= 0:
        return Image.new(img.mode, img.size)
    return ImageOps.posterize(img, bits_to_keep)


def _patch_timm_posterize() -> None:
    from timm.data import auto_augment

    for name in ("Posterize", "PosterizeIncreasing", "PosterizeOriginal"):
        auto_augment.NAME_TO_OP[name] = _posterize_keep_zero_bits


def train_transform(img_size: int, *, auto_augment: str | None = "rand-m9-mstd0.5-inc1",
                    interpolation: str = "bicubic", scale: tuple[float, float] = (0.08, 1.0)):
    """The paper's pre-training augmentation, built by timm (RandomResizedCrop, flip, RandAugment, norm)."""
    from timm.data import create_transform

    _patch_timm_posterize()
    return create_transform(img_size, is_training=True, auto_augment=auto_augment or None,
                            interpolation=interpolation, scale=scale, re_prob=0.0, hflip=0.5)


def eval_transform(img_size: int, *, interpolation: str = "bicubic", crop_pct: float = 224 / 256):
    """Resize to ``img_size / crop_pct`` and centre-crop ``img_size`` (224 from 256 at paper scale)."""
    from timm.data import create_transform

    return create_transform(img_size, is_training=False, interpolation=interpolation, crop_pct=crop_pct)
