"""Rendered image sets as training data: an ImageFolder (``<class>/<image>``) plus its manifest.

The renderer writes ``manifest.jsonl`` and ``dataset.json`` next to the class folders; they are
optional here (an ImageFolder of any origin can be used) but an empty or malformed set is refused
before any output is created.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from ..capacity import check_fits
from ..errors import T2SError
from ..tasks.images import ImageDecodeError, decode_rgb

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
    """ImageFolder loader: the task layer's decoder (16-bit and float images scaled, not clipped;
    transparency on white; decompression bombs refused), naming the file when it cannot be decoded."""
    try:
        return decode_rgb(path)
    except ImageDecodeError as exc:
        raise T2SError(exc.problem, "re-render the set or delete the damaged file, then rerun (training resumes)") from exc


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
                    interpolation: str = "bicubic", scale: tuple[float, float] = (0.08, 1.0),
                    color_jitter: float = 0.0):
    """The paper's pre-training augmentation, built by timm (RandomResizedCrop, flip, RandAugment, norm).

    ``color_jitter`` applies only without RandAugment (timm's rule); 0 disables it (timm would add
    0.4 by default whenever RandAugment is off).
    """
    from timm.data import create_transform

    _patch_timm_posterize()
    return create_transform(img_size, is_training=True, auto_augment=auto_augment or None,
                            interpolation=interpolation, scale=scale, re_prob=0.0, hflip=0.5,
                            color_jitter=color_jitter or None)


def eval_transform(img_size: int, *, interpolation: str = "bicubic", crop_pct: float = 224 / 256):
    """Resize to ``img_size / crop_pct`` and centre-crop ``img_size`` (224 from 256 at paper scale)."""
    from timm.data import create_transform

    return create_transform(img_size, is_training=False, interpolation=interpolation, crop_pct=crop_pct)


# ----------------------------------------------------------------------------------------------
# the in-memory data path (data_mode "memory")
#: largest decoded set the memory path accepts (bytes of uint8 pixels); beyond it use data_mode "files"
MAX_MEMORY_BYTES = 8 * 2**30


class MemoryImageSet:
    """An ImageFolder decoded once into a uint8 tensor ``[N, 3, H, W]`` (all images at one size).

    Items are ``(transform(image), target)`` with ``image`` a uint8 tensor; ``targets``, ``classes``
    and ``samples`` follow torchvision's ImageFolder (same order), so splits and subsets index
    both paths alike. At 32 px decoding and PIL transforms cost more than the network: decoding
    once and augmenting tensors uses 1.6-1.8x less CPU per training image.
    """

    def __init__(self, root: str | Path, transform: Callable | None = None, *, pixels: Any = None):
        import numpy as np
        import torch
        from torchvision.datasets import ImageFolder

        folder = ImageFolder(str(root), loader=load_rgb)
        self.root, self.classes, self.samples = str(root), folder.classes, folder.samples
        self.targets = list(folder.targets)
        self.transform = transform
        if pixels is None:
            first = load_rgb(self.samples[0][0])
            w, h = first.size
            nbytes = len(self.samples) * 3 * w * h
            if nbytes > MAX_MEMORY_BYTES:
                raise T2SError(f"image set {root}: {len(self.samples)} images of {w}x{h} px need "
                               f"{nbytes / 2**30:.1f} GiB decoded (limit {MAX_MEMORY_BYTES / 2**30:.0f} GiB)",
                               "use data_mode 'files' for large images or sets")
            check_fits(f"decoding image set {root} ({len(self.samples)} images of {w}x{h} px) into memory",
                       memory=nbytes, fix="use data_mode 'files' (images decoded by loader workers)")
            pixels = torch.empty((len(self.samples), 3, h, w), dtype=torch.uint8)
            for i, (path, _) in enumerate(self.samples):
                img = first if i == 0 else load_rgb(path)
                if img.size != (w, h):
                    raise T2SError(f"image set {root}: {path} is {img.size[0]}x{img.size[1]} px, the set's first "
                                   f"image {w}x{h}", "data_mode 'memory' needs one image size: re-render the set, "
                                   "or use data_mode 'files'")
                pixels[i] = torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1)
        self.pixels = pixels

    def with_transform(self, transform: Callable | None) -> "MemoryImageSet":
        """The same decoded pixels under another transform (e.g. clean validation)."""
        return MemoryImageSet(self.root, transform, pixels=self.pixels)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        image = self.pixels[index]
        return (self.transform(image) if self.transform is not None else image), self.targets[index]


def tensor_train_transform(img_size: int, *, scale: tuple[float, float] = (0.08, 1.0), interpolation: str = "bicubic",
                           color_jitter: float = 0.0):
    """torchvision v2 augmentation of a uint8 image tensor: RandomResizedCrop, flip, optional colour
    jitter, then float and ImageNet normalisation (the memory path's counterpart of :func:`train_transform`)."""
    import torch
    from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
    from torchvision.transforms import v2

    mode = getattr(v2.InterpolationMode, interpolation.upper())
    steps = [v2.RandomResizedCrop(img_size, scale=scale, interpolation=mode, antialias=True), v2.RandomHorizontalFlip()]
    if color_jitter:
        steps.append(v2.ColorJitter(color_jitter, color_jitter, color_jitter))
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD)]
    return v2.Compose(steps)


class BatchCropFlip:
    """Collate function of ``augment: batched``: RandomResizedCrop, horizontal flip and ImageNet
    normalisation of a whole batch of uint8 images ``[3, H, W]`` in a few tensor operations.

    Crop boxes follow torchvision's ``RandomResizedCrop.get_params`` (area fraction uniform in
    ``scale``, log-uniform aspect ratio in ``ratio``, up to 10 tries, else the central crop),
    drawn for every image at once from torch's global generator, which the training loop seeds per
    epoch (so a resumed run draws the same crops). Each box is resized to ``img_size`` by
    ``torchvision.ops.roi_align`` (bilinear, pixel-centre aligned, adaptive sampling: exact
    bilinear when enlarging, averaged samples when shrinking). Returns ``(images float32, targets)``.
    """

    def __init__(self, img_size: int, *, scale: tuple[float, float] = (0.08, 1.0),
                 ratio: tuple[float, float] = (3 / 4, 4 / 3), tries: int = 10):
        import torch
        from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

        self.img_size, self.scale, self.ratio, self.tries = int(img_size), scale, ratio, tries
        self.mean = torch.tensor(IMAGENET_DEFAULT_MEAN).view(1, 3, 1, 1) * 255
        self.std = torch.tensor(IMAGENET_DEFAULT_STD).view(1, 3, 1, 1) * 255

    def boxes(self, n: int, height: int, width: int):
        """``[n, 4]`` crop boxes ``(x1, y1, x2, y2)`` in pixels (``RandomResizedCrop.get_params`` per image)."""
        import math

        import torch

        area = height * width * torch.empty(n, self.tries).uniform_(*self.scale)
        log_r = torch.empty(n, self.tries).uniform_(math.log(self.ratio[0]), math.log(self.ratio[1]))
        aspect = torch.exp(log_r)
        w = torch.round(torch.sqrt(area * aspect))
        h = torch.round(torch.sqrt(area / aspect))
        ok = (w > 0) & (w <= width) & (h > 0) & (h <= height)
        first = torch.where(ok.any(1), ok.float().argmax(1), torch.full((n,), -1))
        rows = torch.arange(n)
        w, h = w[rows, first.clamp(min=0)], h[rows, first.clamp(min=0)]
        u = torch.rand(n, 2)
        y1 = torch.floor(u[:, 0] * (height - h + 1))
        x1 = torch.floor(u[:, 1] * (width - w + 1))
        # no valid try: torchvision's fallback, the central crop at the nearest allowed ratio
        fallback = first < 0
        if fallback.any():
            in_ratio = width / height
            if in_ratio < min(self.ratio):
                cw, ch = width, round(width / min(self.ratio))
            elif in_ratio > max(self.ratio):
                cw, ch = round(height * max(self.ratio)), height
            else:
                cw, ch = width, height
            w[fallback], h[fallback] = float(cw), float(ch)
            y1[fallback], x1[fallback] = float((height - ch) // 2), float((width - cw) // 2)
        return torch.stack([x1, y1, x1 + w, y1 + h], 1)

    def __call__(self, items):
        import torch
        from torchvision.ops import roi_align

        images = torch.stack([img for img, _ in items]).float()
        targets = torch.as_tensor([int(t) for _, t in items])
        n, _, height, width = images.shape
        boxes = torch.cat([torch.arange(n, dtype=torch.float32)[:, None], self.boxes(n, height, width)], 1)
        out = roi_align(images, boxes, output_size=self.img_size, spatial_scale=1.0, sampling_ratio=-1, aligned=True)
        flip = torch.rand(n) < 0.5
        out = torch.where(flip[:, None, None, None], out.flip(-1), out)
        return (out - self.mean) / self.std, targets


def tensor_eval_transform(img_size: int, *, interpolation: str = "bicubic", crop_pct: float = 224 / 256):
    """Resize to ``img_size / crop_pct``, centre-crop, normalise: :func:`eval_transform` on tensors."""
    import math

    import torch
    from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
    from torchvision.transforms import v2

    mode = getattr(v2.InterpolationMode, interpolation.upper())
    return v2.Compose([v2.Resize(math.floor(img_size / crop_pct), interpolation=mode, antialias=True),
                       v2.CenterCrop(img_size), v2.ToDtype(torch.float32, scale=True),
                       v2.Normalize(IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD)])


def model_ids(root: str | Path, samples: list[tuple[str, int]]) -> list[str]:
    """The 3D model of every image (renderer manifest ``manifest.jsonl``), in ``samples`` order."""
    root = Path(root)
    manifest = root / "manifest.jsonl"
    if not manifest.is_file():
        raise T2SError(f"image set {root} has no manifest.jsonl, which val_by 'model' needs (the 3D model of every image)",
                       "use a set rendered by `t2s render`, or val_by 'image'")
    from ..render.dataset import read_manifest

    by_file = {rec["file"]: rec["model"] for rec in read_manifest(root)}
    ids = []
    for path, _ in samples:
        rel = Path(path).relative_to(root).as_posix()
        if rel not in by_file:
            raise T2SError(f"image set {root}: {rel} is not in manifest.jsonl",
                           "re-render the set (the manifest and the images disagree), or use val_by 'image'")
        ids.append(by_file[rel])
    return ids
