"""Task abstraction: a named classification problem with a train and a test split.

Every task, whatever its storage (arrays in the cache, files in a published layout, a user's
folder), exposes the same small API used by Task2Vec and the evaluation stage:

* ``task.name``, ``task.classes`` (list of str), ``task.num_classes``;
* ``task.dataset(split, transform=None)``: a torch ``Dataset`` yielding ``(PIL.Image RGB, int)``;
* ``task.labels(split)``: the integer labels without decoding any image (stratification);
* ``task.fingerprint(split)``: a short content hash used to key cached embeddings.

Splits are computed once per task instance and cached on it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import T2SError
from .images import ImageDecodeError, decode_rgb

SPLITS = ("train", "test")


def _check_split(split: str) -> str:
    if split not in SPLITS:
        raise T2SError(f"unknown split {split!r}", "use 'train' or 'test'")
    return split


def _to_pil_rgb(array: np.ndarray):
    from PIL import Image

    if array.ndim == 2:
        return Image.fromarray(array, mode="L").convert("RGB")
    if array.ndim == 3 and array.shape[2] == 1:
        return Image.fromarray(array[:, :, 0], mode="L").convert("RGB")
    return Image.fromarray(array[:, :, :3], mode="RGB")


class ArrayDataset:
    """Images held in memory as a uint8 array ``[N,H,W]`` (gray) or ``[N,H,W,3]`` (RGB)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform: Callable | None = None):
        self.images = images
        self.targets = np.asarray(labels, dtype=np.int64)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int):
        img = _to_pil_rgb(np.asarray(self.images[index]))
        if self.transform is not None:
            img = self.transform(img)
        return img, int(self.targets[index])


class FileDataset:
    """Images stored as files; ``on_bad_image`` = ``raise`` (default) or ``skip``.

    With ``skip`` an undecodable image yields ``None`` instead of a sample; loaders built with
    :func:`skip_none_collate` drop those and count them (``bad_images`` lists the files seen).
    """

    def __init__(
        self,
        paths: Sequence[str | Path],
        labels: Sequence[int],
        transform: Callable | None = None,
        on_bad_image: str = "raise",
        dataset_name: str = "",
    ):
        if on_bad_image not in ("raise", "skip"):
            raise T2SError(f"on_bad_image={on_bad_image!r}", "use 'raise' or 'skip'")
        self.paths = [str(p) for p in paths]
        self.targets = np.asarray(labels, dtype=np.int64)
        self.transform = transform
        self.on_bad_image = on_bad_image
        self.dataset_name = dataset_name
        self.bad_images: list[str] = []

    def __len__(self) -> int:
        return len(self.paths)

    def load(self, index: int):
        """The image as 8-bit RGB (:func:`~t2s_lib.tasks.images.decode_rgb`), or None when skipped."""
        path = self.paths[index]
        try:
            return decode_rgb(path)
        except ImageDecodeError as exc:
            if self.on_bad_image == "skip":
                self.bad_images.append(path)
                return None
            raise ImageDecodeError(f"{self.dataset_name or 'dataset'}: {exc.problem}", exc.fix) from exc

    def __getitem__(self, index: int):
        img = self.load(index)
        if img is None:
            return None
        if self.transform is not None:
            img = self.transform(img)
        return img, int(self.targets[index])


class CallableDataset:
    """Lazy dataset over a ``get(index) -> np.ndarray`` accessor (e.g. an HDF5 file)."""

    def __init__(self, n: int, get: Callable[[int], np.ndarray], labels: Sequence[int], transform: Callable | None = None):
        self.n = n
        self.get = get
        self.targets = np.asarray(labels, dtype=np.int64)
        self.transform = transform

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int):
        img = _to_pil_rgb(np.asarray(self.get(index)))
        if self.transform is not None:
            img = self.transform(img)
        return img, int(self.targets[index])


class SubsetDataset:
    """A view of ``base`` restricted to ``indices`` (keeps ``targets`` for stratification)."""

    def __init__(self, base: Any, indices: Sequence[int]):
        self.base = base
        self.indices = np.asarray(indices, dtype=np.int64)
        self.targets = np.asarray(base.targets)[self.indices]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int):
        return self.base[int(self.indices[index])]


def skip_none_collate(batch: list):
    """Collate that drops ``None`` samples (images skipped by ``on_bad_image='skip'``)."""
    import torch.utils.data

    kept = [b for b in batch if b is not None]
    if not kept:
        return None
    return torch.utils.data.default_collate(kept)


@dataclass
class SplitData:
    """One split of a task: either arrays, file paths or a lazy accessor, plus labels."""

    labels: np.ndarray
    images: np.ndarray | None = None
    paths: list[str] | None = None
    getter: Callable[[int], np.ndarray] | None = None
    fingerprint_parts: list[str] = field(default_factory=list)


class Task:
    """Base class; subclasses implement :meth:`_load_split` and set ``classes``."""

    kind: str = "folder"

    def __init__(self, name: str, classes: list[str] | None = None, description: str = ""):
        self.name = name
        self._classes = classes
        self.description = description
        self._splits: dict[str, SplitData] = {}

    # ----- API -------------------------------------------------------------------------------
    @property
    def classes(self) -> list[str]:
        if self._classes is None:
            self._split("train")
        assert self._classes is not None
        return list(self._classes)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def labels(self, split: str = "train") -> np.ndarray:
        return self._split(split).labels

    def __len__(self) -> int:
        return len(self.labels("train"))

    def dataset(self, split: str = "train", transform: Callable | None = None, on_bad_image: str = "raise"):
        """A torch-style Dataset of ``(PIL RGB image or transform(image), int label)``."""
        data = self._split(split)
        if data.images is not None:
            return ArrayDataset(data.images, data.labels, transform)
        if data.paths is not None:
            return FileDataset(data.paths, data.labels, transform, on_bad_image=on_bad_image, dataset_name=self.name)
        assert data.getter is not None
        return CallableDataset(len(data.labels), data.getter, data.labels, transform)

    def subset(
        self,
        split: str = "train",
        transform: Callable | None = None,
        *,
        fraction: float = 1.0,
        max_per_class: int | None = None,
        seed: int = 0,
        on_bad_image: str = "raise",
    ):
        """A stratified subset of a split (same class proportions; see :func:`stratified_indices`)."""
        from .splits import stratified_indices

        ds = self.dataset(split, transform, on_bad_image=on_bad_image)
        idx = stratified_indices(self.labels(split), fraction=fraction, max_per_class=max_per_class, seed=seed)
        return SubsetDataset(ds, idx)

    def check_images(self, split: str = "train", on_bad_image: str = "raise") -> list[str]:
        """Decode every image file of ``split`` once, before a long computation relies on them.

        ``raise``: the first undecodable (or oversized) file raises :class:`ImageDecodeError`;
        ``skip``: such files leave the split (labels, paths and fingerprint), and are returned.
        Array-backed splits have no files to check (returns ``[]``). Uses the same decoding and
        skipping as :meth:`dataset` (:class:`FileDataset`), so what passes here loads later.
        """
        data = self._split(split)
        if data.paths is None:
            return []
        files = FileDataset(data.paths, data.labels, on_bad_image=on_bad_image, dataset_name=self.name)
        keep = [i for i in range(len(files)) if files.load(i) is not None]
        if files.bad_images:
            per_file = len(data.fingerprint_parts) == len(data.paths)
            self._splits[split] = SplitData(
                labels=data.labels[np.asarray(keep, dtype=np.int64)], paths=[data.paths[i] for i in keep],
                fingerprint_parts=[data.fingerprint_parts[i] for i in keep] if per_file else
                data.fingerprint_parts + [f"skipped:{p}" for p in files.bad_images])
            if len(keep) == 0:
                raise T2SError(f"task {self.name!r}: every image of the {split} split is undecodable "
                               f"({len(files.bad_images)} files, e.g. {files.bad_images[0]})",
                               "check the files (a failed copy or download?) and replace them")
        return list(files.bad_images)

    def fingerprint(self, split: str = "train") -> str:
        """Content hash of a split: labels plus image bytes (arrays) or file names and sizes."""
        data = self._split(split)
        h = hashlib.sha256()
        h.update(f"{self.name}|{split}|{len(data.labels)}|{','.join(self.classes)}".encode())
        h.update(np.ascontiguousarray(data.labels, dtype=np.int64).tobytes())
        if data.images is not None:
            h.update(np.ascontiguousarray(data.images).tobytes())
        for part in data.fingerprint_parts:
            h.update(part.encode())
        return h.hexdigest()[:16]

    def info(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "num_classes": self.num_classes,
            "train": int(len(self.labels("train"))),
            "test": int(len(self.labels("test"))),
            "description": self.description,
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"

    # ----- internals ---------------------------------------------------------------------------
    def _split(self, split: str) -> SplitData:
        _check_split(split)
        if split not in self._splits:
            train, test = self._load_splits()
            for part, data in (("train", train), ("test", test)):
                if len(data.labels) == 0:
                    raise T2SError(
                        f"task {self.name!r}: the {part} split is empty",
                        "check the dataset files (see the expected layout in README 'Tasks and Task2Vec')",
                    )
            self._splits = {"train": train, "test": test}
            if len(self.classes) < 2 or len(np.unique(train.labels)) < 2:
                raise T2SError(
                    f"task {self.name!r} has a single class ({self.classes})",
                    "a classification task needs at least 2 classes with training images",
                )
        return self._splits[split]

    def _load_splits(self) -> tuple[SplitData, SplitData]:  # pragma: no cover - abstract
        raise NotImplementedError
