"""Small generated data for tests, benchmarks and smoke runs (no renderer, no download).

* :func:`make_toy_image_set` writes an ImageFolder shaped like a rendered set: each class is a
  shape (disc, square, triangle, cross ...) in a class colour, at a random place, size and
  brightness, on a noisy background.
* :func:`digits_datasets` wraps scikit-learn's bundled 8x8 digits as RGB PIL datasets, an offline
  downstream task of the same shape as ``t2s_lib.tasks`` datasets.
"""

from __future__ import annotations

import colorsys
import json
from pathlib import Path

import numpy as np

_SHAPES = ("disc", "square", "triangle", "cross", "ring", "bar")


def _draw(draw, shape: str, cx: float, cy: float, r: float, color) -> None:
    if shape == "disc":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=color)
    elif shape == "square":
        draw.rectangle([cx - r, cy - r, cx + r, cy + r], fill=color)
    elif shape == "triangle":
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=color)
    elif shape == "cross":
        w = r / 3
        draw.rectangle([cx - r, cy - w, cx + r, cy + w], fill=color)
        draw.rectangle([cx - w, cy - r, cx + w, cy + r], fill=color)
    elif shape == "ring":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=color, width=max(1, int(r / 3)))
    else:
        draw.rectangle([cx - r, cy - r / 4, cx + r, cy + r / 4], fill=color)


def make_toy_image_set(root: str | Path, classes: int = 4, per_class: int = 16, size: int = 32, seed: int = 0) -> Path:
    """Write ``root/<class>/toy_<i>.png`` plus a ``dataset.json``; returns ``root``."""
    from PIL import Image, ImageDraw

    root = Path(root)
    rng = np.random.default_rng(seed)
    names = []
    for c in range(classes):
        name = f"c{c:03d}"
        names.append(name)
        (root / name).mkdir(parents=True, exist_ok=True)
        shape = _SHAPES[c % len(_SHAPES)]
        hue = (c * 0.618034) % 1.0
        for i in range(per_class):
            bg = rng.integers(0, 80, size=(size, size, 3), dtype=np.uint8)
            img = Image.fromarray(bg)
            value = rng.uniform(0.6, 1.0)
            color = tuple(int(255 * v) for v in colorsys.hsv_to_rgb(hue, 0.8, value))
            r = rng.uniform(0.2, 0.35) * size
            cx, cy = rng.uniform(r, size - r, size=2)
            _draw(ImageDraw.Draw(img), shape, cx, cy, r, color)
            img.save(root / name / f"toy_{i:04d}.png")
    (root / "dataset.json").write_text(json.dumps({"source": "toy", "classes": names, "images": classes * per_class}))
    return root


class _ArrayDataset:
    """(PIL RGB image, int) pairs from a uint8 array, like a task dataset."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform=None):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        from PIL import Image

        img = Image.fromarray(self.images[i]).convert("RGB")
        return (self.transform(img) if self.transform else img), int(self.labels[i])


def digits_datasets(size: int = 32, seed: int = 0, test_fraction: float = 0.3):
    """scikit-learn digits (1797 images, 10 classes) as (train, test) datasets of RGB PIL images."""
    from PIL import Image
    from sklearn.datasets import load_digits

    d = load_digits()
    imgs = (d.images / 16.0 * 255).astype(np.uint8)
    imgs = np.stack([np.asarray(Image.fromarray(im).resize((size, size), Image.BILINEAR)) for im in imgs])
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(imgs))
    n_test = int(len(imgs) * test_fraction)
    te, tr = order[:n_test], order[n_test:]
    return _ArrayDataset(imgs[tr], d.target[tr]), _ArrayDataset(imgs[te], d.target[te])


class ToyTask:
    """A task object over :func:`digits_datasets` (``name, classes, num_classes, dataset(split)``)."""

    def __init__(self, size: int = 32, seed: int = 0, name: str = "sk-digits"):
        self.name = name
        self.classes = [str(i) for i in range(10)]
        self.num_classes = 10
        self._splits = dict(zip(("train", "test"), digits_datasets(size, seed)))

    def dataset(self, split: str = "train", transform=None):
        ds = self._splits[split]
        return _ArrayDataset(ds.images, ds.labels, transform)
