"""A user's own data as a task: an ImageFolder with or without train/test sub-folders.

Accepted layouts (images: jpg, png, bmp, tif, webp...):

* ``DIR/train/<class>/*`` and ``DIR/test/<class>/*``: the given split;
* ``DIR/<class>/*``: split per class 70/30 with the paper's rule.

The renderer's output (``runs/<profile>/render/<setting_key>/``) is of the second kind.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import T2SError
from .base import SplitData, Task
from .paper import IMAGE_EXTENSIONS, _list_images
from .splits import split_70_30


class FolderTask(Task):
    kind = "folder"

    def __init__(self, path: str | Path, name: str | None = None):
        self.path = Path(path).expanduser().resolve()
        super().__init__(name or self.path.name, None, f"ImageFolder at {self.path}")

    def _classes_in(self, folder: Path) -> list[str]:
        return sorted(d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))

    def _collect(self, folder: Path, classes: list[str]) -> tuple[list[str], np.ndarray]:
        paths, labels = [], []
        for i, c in enumerate(classes):
            if not (folder / c).is_dir():
                continue
            for p in _list_images(folder / c):
                paths.append(str(p))
                labels.append(i)
        return paths, np.asarray(labels, dtype=np.int64)

    def _load_splits(self):
        if not self.path.is_dir():
            raise T2SError(
                f"task folder {self.path} not found",
                "give a folder laid out as <class>/<image> or train/<class>/<image> + test/<class>/<image>",
            )
        has_split = (self.path / "train").is_dir() and (self.path / "test").is_dir()
        base = self.path / "train" if has_split else self.path
        classes = self._classes_in(base)
        if not classes:
            raise T2SError(
                f"task folder {base} has no class sub-folders",
                f"lay images out as {base}/<class>/<image> ({', '.join(IMAGE_EXTENSIONS[:4])}...)",
            )
        empty = [c for c in classes if not _list_images(base / c)]
        if empty:
            raise T2SError(f"task folder {base}: class folder(s) {empty[:5]} hold no images",
                           "add images to them or delete them (an empty folder would still count as a class)")
        self._classes = classes
        if has_split:
            extra = set(self._classes_in(self.path / "test")) - set(classes)
            if extra:
                raise T2SError(f"task folder {self.path}: test classes {sorted(extra)} have no train folder",
                               "train/ and test/ must hold the same class folders")
            ptr, ltr = self._collect(self.path / "train", classes)
            pte, lte = self._collect(self.path / "test", classes)
            paths, labels = ptr + pte, np.concatenate([ltr, lte])
            tr, te = np.arange(len(ptr)), np.arange(len(ptr), len(paths))
        else:
            paths, labels = self._collect(self.path, classes)
            if len(paths) == 0:
                raise T2SError(f"task folder {self.path} holds no images",
                               f"put images ({', '.join(IMAGE_EXTENSIONS[:4])}...) under {self.path}/<class>/")
            tr, te = split_70_30(labels)
        import os

        def mk(idx):
            sub = [paths[i] for i in idx]
            return SplitData(labels=labels[idx], paths=sub,
                             fingerprint_parts=[f"{os.path.relpath(p, self.path)}:{os.path.getsize(p)}" for p in sub])

        return mk(tr), mk(te)
