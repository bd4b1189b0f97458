"""A user's own data as a task: an ImageFolder with or without train/test sub-folders.

Accepted layouts (images: jpg, png, bmp, tif, webp...):

* ``DIR/train/<class>/*`` and ``DIR/test/<class>/*``: the given split;
* ``DIR/<class>/*``: split per class 70/30 with the paper's rule (a class needs 2 images for
  that, 3 to also get a query in ``t2s adapt``'s validation split; a single-image class is refused).

The renderer's output (``runs/<profile>/render/<setting_key>/``) is of the second kind.

Checked where the folder enters: a ``train/`` without ``test/`` (or with ``val/`` instead) is
named as such rather than read as classes called ``train``; class folders, split folders and image
files that are symlinks resolving *outside* the task folder are refused (a copied or shared task
folder must not read files elsewhere on the machine); links inside it are followed. Images decode
through :func:`~t2s_lib.tasks.images.decode_rgb` (bit depth, modes, size limits).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import T2SError
from .base import SplitData, Task
from .paper import IMAGE_EXTENSIONS, _list_images
from .splits import split_70_30

#: Folder names of a split layout: at the top of a task folder, only these mean train/ + test/ (+ val/).
SPLIT_FOLDERS = {"train", "test", "val", "valid", "validation"}


class FolderTask(Task):
    kind = "folder"

    def __init__(self, path: str | Path, name: str | None = None):
        self.path = Path(path).expanduser().resolve()
        super().__init__(name or self.path.name, None, f"ImageFolder at {self.path}")

    def _classes_in(self, folder: Path) -> list[str]:
        self._check_inside(folder)
        classes = sorted(d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
        for c in classes:
            self._check_inside(folder / c)
        return classes

    def _check_inside(self, path: Path) -> None:
        """Refuse a symlink (or a path through one) that resolves outside the task folder."""
        target = path.resolve()
        if target != self.path and self.path not in target.parents:
            what = "folder" if path.is_dir() else "file"
            raise T2SError(
                f"task folder {self.path}: {path} is a symlink to the {what} {target}, outside the task folder",
                f"copy it in instead of linking (rm {path} && cp -rL {target} {path}), or pass a task folder "
                "that holds it (links inside the task folder are fine)")

    def _images(self, folder: Path) -> list[Path]:
        images = _list_images(folder)
        for p in images:
            if p.is_symlink():  # one lstat per file; only links need resolving
                self._check_inside(p)
        return images

    def _collect(self, folder: Path, classes: list[str]) -> tuple[list[str], np.ndarray]:
        paths, labels = [], []
        for i, c in enumerate(classes):
            if not (folder / c).is_dir():
                continue
            for p in self._images(folder / c):
                paths.append(str(p))
                labels.append(i)
        return paths, np.asarray(labels, dtype=np.int64)

    def _check_layout(self) -> bool:
        """True for the train/ + test/ layout; a half of it (train/ alone, test/ alone, train/ + val/)
        is an error, not a folder of classes called ``train`` and ``val``."""
        found = set(self._classes_in(self.path))
        has_train, has_test = "train" in found, "test" in found
        if has_train and has_test:
            return True
        if not found or not found <= SPLIT_FOLDERS:
            return False  # e.g. a vehicles task with classes bus/, car/, train/
        val = sorted(found & {"val", "valid", "validation"})
        if has_train and val:
            raise T2SError(f"task folder {self.path} has train/ and {val[0]}/ but no test/",
                           f"rename {self.path / val[0]} to {self.path / 'test'} (t2s reads train/ + test/; it carves "
                           "its own validation split from train/), or pass a folder of class folders")
        have, lack = ("train", "test") if has_train else ("test", "train")
        if not (has_train or has_test):
            have, lack = val[0], "train"
        raise T2SError(f"task folder {self.path} has {have}/ but no {lack}/",
                       f"add {lack}/ beside it ({self.path / lack}) with the same class folders, or pass a folder "
                       f"of class folders (<class>/<image>, split 70/30 per class), e.g. --task {self.path / have}")

    def _load_splits(self):
        if not self.path.is_dir():
            raise T2SError(
                f"task folder {self.path} not found",
                "give a folder laid out as <class>/<image> or train/<class>/<image> + test/<class>/<image>",
            )
        has_split = self._check_layout()
        base = self.path / "train" if has_split else self.path
        classes = self._classes_in(base)
        if not classes:
            raise T2SError(
                f"task folder {base} has no class sub-folders",
                f"lay images out as {base}/<class>/<image> ({', '.join(IMAGE_EXTENSIONS[:4])}...)",
            )
        counts = {c: len(self._images(base / c)) for c in classes}
        empty = [c for c in classes if counts[c] == 0]
        if empty:
            raise T2SError(f"task folder {base}: class folder(s) {empty[:5]} hold no images",
                           "add images to them or delete them (an empty folder would still count as a class)")
        single = [c for c in classes if counts[c] == 1]
        if single and not has_split:
            # the 70/30 split would put the one image in test: a class without any training image
            raise T2SError(f"task folder {base}: class folder(s) {single[:5]} hold a single image, which the 70/30 "
                           "split cannot divide (the class would have no training image)",
                           "add images: at least 2 per class, at least 3 images so that `t2s adapt`'s validation split "
                           "has a query of the class too; or delete those folders, or give train/ + test/ folders")
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

        def mk(idx):
            sub = [paths[i] for i in idx]
            return SplitData(labels=labels[idx], paths=sub,
                             fingerprint_parts=[f"{os.path.relpath(p, self.path)}:{os.path.getsize(p)}" for p in sub])

        return mk(tr), mk(te)
