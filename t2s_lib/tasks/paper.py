"""The paper's 20 downstream tasks (12 seen, 8 unseen), read from their published on-disk layouts.

The data root is ``root=`` or the ``T2S_DATA_ROOT`` environment variable; each dataset lives in
the folder named by the authors' ``datasets.yaml`` under it (``FOLDERS``). Splits follow
reference section 7.3: the official split where one exists, otherwise the per-class 70/30 rule
(:func:`t2s_lib.tasks.splits.split_70_30`). Nothing is downloaded: a missing folder or file
raises a :class:`T2SError` naming the dataset, the expected layout and where to get it.

torchvision ships classes for SVHN, USPS, Omniglot, Flowers102 and DTD, but they verify the MD5 of
the original archives (and use their own folder names), so a user's extracted copy or a test
fixture would be refused; these loaders read the same files (``train_32x32.mat``, ``usps.bz2``,
``omniglot-py/images_evaluation``...) directly instead.
"""

from __future__ import annotations

import bz2
import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import T2SError
from .base import SplitData, Task
from .splits import split_70_30

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".ppm", ".pgm", ".webp", ".gif")

SEEN = ["CropDisease", "Flowers102", "DeepWeeds", "EuroSAT", "Resisc45", "Omniglot", "SVHN", "ISIC", "ChestX", "Kaokore", "Sketch", "DTD"]
UNSEEN = ["CUB", "PacsC", "PacsS", "AID", "USPS", "FMD", "CactusAerial", "ChestXPneumonia"]


@dataclass(frozen=True)
class PaperSpec:
    name: str
    folder: str  # under the data root (datasets.yaml)
    num_classes: int  # as published (head size)
    train: int  # published train/test counts (supp. Table 2)
    test: int
    category: str
    split: str
    layout: str  # expected files, relative to <root>/<folder>
    source: str  # where to get it
    loader: Callable[[Path], tuple[SplitData, SplitData, list[str]]]


# ----- helpers ------------------------------------------------------------------------------------
def _missing(spec_name: str, path: Path, layout: str, source: str) -> T2SError:
    return T2SError(
        f"dataset {spec_name}: {path} not found (expected layout under its folder: {layout})",
        f"get it from {source} and place it there, or point --data-root / T2S_DATA_ROOT at the folder holding it",
    )


class _Ctx:
    """Carries the spec into loaders so every missing-file error names dataset and layout."""

    spec: PaperSpec

    @classmethod
    def need(cls, path: Path) -> Path:
        if not path.exists():
            raise _missing(cls.spec.name, path, cls.spec.layout, cls.spec.source)
        return path


def _list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def _image_folder(folder: Path, classes: list[str] | None = None) -> tuple[list[str], np.ndarray, list[str]]:
    """ImageFolder semantics: one sub-folder per class (sorted), images anywhere below it."""
    _Ctx.need(folder)
    found = sorted(d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    classes = classes or found
    index = {c: i for i, c in enumerate(classes)}
    paths: list[str] = []
    labels: list[int] = []
    for c in found:
        if c not in index:
            raise T2SError(
                f"dataset {_Ctx.spec.name}: class folder {folder / c} is not among the training classes",
                "train/ and test/ must hold the same class folders",
            )
        for p in _list_images(folder / c):
            paths.append(str(p))
            labels.append(index[c])
    return paths, np.asarray(labels, dtype=np.int64), classes


def _files_split(paths: list[str], labels: np.ndarray, tr: np.ndarray, te: np.ndarray, root: Path) -> tuple[SplitData, SplitData]:
    def mk(idx: np.ndarray) -> SplitData:
        sub = [paths[i] for i in idx]
        parts = [f"{os.path.relpath(p, root)}:{_size(p)}" for p in sub]
        return SplitData(labels=labels[idx], paths=sub, fingerprint_parts=parts)

    return mk(tr), mk(te)


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return -1


def _folder_7030(sub: str | None = None):
    def load(base: Path):
        folder = base / sub if sub else base
        paths, labels, classes = _image_folder(folder)
        tr, te = split_70_30(labels)
        return (*_files_split(paths, labels, tr, te, base), classes)

    return load


def _folder_official(train_sub: str, test_sub: str):
    def load(base: Path):
        ptr, ltr, classes = _image_folder(base / train_sub)
        pte, lte, _ = _image_folder(base / test_sub, classes)
        paths = ptr + pte
        labels = np.concatenate([ltr, lte])
        tr = np.arange(len(ptr))
        te = np.arange(len(ptr), len(paths))
        return (*_files_split(paths, labels, tr, te, base), classes)

    return load


# ----- dataset-specific loaders -----------------------------------------------------------------------
def _flowers(base: Path):
    from scipy.io import loadmat

    labels_all = loadmat(_Ctx.need(base / "imagelabels.mat"))["labels"].ravel().astype(np.int64) - 1
    split_file = base / "setid.mat" if (base / "setid.mat").exists() else _Ctx.need(base / "splits.mat")
    ids = loadmat(split_file)
    _Ctx.need(base / "jpg")
    # the released code trains on trnid + valid (2040 images) and tests on tstid (6149)
    train_ids = np.concatenate([ids["trnid"].ravel(), ids["valid"].ravel()]).astype(np.int64)
    test_ids = ids["tstid"].ravel().astype(np.int64)
    n = len(labels_all)
    paths = [str(base / "jpg" / f"image_{i:05d}.jpg") for i in range(1, n + 1)]
    classes = [f"flower_{i + 1:03d}" for i in range(102)]
    return (*_files_split(paths, labels_all, np.sort(train_ids - 1), np.sort(test_ids - 1), base), classes)


def _deepweeds(base: Path):
    rows = list(csv.DictReader(open(_Ctx.need(base / "labels.csv"), newline="")))
    _Ctx.need(base / "images")
    paths = [str(base / "images" / r["Filename"]) for r in rows]
    labels = np.asarray([int(r["Label"]) for r in rows], dtype=np.int64)
    names: dict[int, str] = {}
    for r in rows:
        names.setdefault(int(r["Label"]), r.get("Species") or f"class_{r['Label']}")
    classes = [names.get(i, f"class_{i}") for i in range(9)]
    tr, te = split_70_30(labels)
    return (*_files_split(paths, labels, tr, te, base), classes)


def _cub(base: Path):
    img_dir = _Ctx.need(base / "images")
    if (base / "train_filelist.txt").exists():
        def read(name: str):
            ps, ls = [], []
            for line in open(_Ctx.need(base / name)):
                if line.strip():
                    rel, lab = line.rsplit(maxsplit=1)
                    p = img_dir / rel if (img_dir / rel).exists() or not (base / rel).exists() else base / rel
                    ps.append(str(p))
                    ls.append(int(lab))
            return ps, ls

        ptr, ltr = read("train_filelist.txt")
        pte, lte = read("test_filelist.txt")
    else:  # the official CUB-200-2011 metadata files
        names = {i: rel for i, rel in (ln.split() for ln in open(_Ctx.need(base / "images.txt")) if ln.strip())}
        labs = {i: int(c) - 1 for i, c in (ln.split() for ln in open(_Ctx.need(base / "image_class_labels.txt")) if ln.strip())}
        is_train = {i: f == "1" for i, f in (ln.split() for ln in open(_Ctx.need(base / "train_test_split.txt")) if ln.strip())}
        ptr, ltr, pte, lte = [], [], [], []
        for i, rel in names.items():
            (ptr if is_train[i] else pte).append(str(img_dir / rel))
            (ltr if is_train[i] else lte).append(labs[i])
    classes = sorted(d.name for d in img_dir.iterdir() if d.is_dir()) or [f"class_{i:03d}" for i in range(200)]
    paths = ptr + pte
    labels = np.asarray(ltr + lte, dtype=np.int64)
    if len(classes) <= labels.max(initial=0):
        classes = [f"class_{i:03d}" for i in range(int(labels.max()) + 1)]
    return (*_files_split(paths, labels, np.arange(len(ptr)), np.arange(len(ptr), len(paths)), base), classes)


def _omniglot(base: Path):
    folder = base / "omniglot-py" / "images_evaluation"
    if not folder.exists() and (base / "images_evaluation").exists():
        folder = base / "images_evaluation"
    _Ctx.need(folder)
    paths, labels_l, classes = [], [], []
    for alphabet in sorted(d for d in folder.iterdir() if d.is_dir()):
        for char in sorted(d for d in alphabet.iterdir() if d.is_dir()):
            classes.append(f"{alphabet.name}/{char.name}")
            for p in _list_images(char):
                paths.append(str(p))
                labels_l.append(len(classes) - 1)
    labels = np.asarray(labels_l, dtype=np.int64)
    tr, te = split_70_30(labels)
    return (*_files_split(paths, labels, tr, te, base), classes)


def _svhn(base: Path):
    from scipy.io import loadmat

    def read(name: str) -> SplitData:
        m = loadmat(_Ctx.need(base / name))
        x = np.ascontiguousarray(np.transpose(m["X"], (3, 0, 1, 2))).astype(np.uint8)
        y = m["y"].ravel().astype(np.int64)
        y[y == 10] = 0  # SVHN stores digit 0 as label 10
        return SplitData(labels=y, images=x)

    return read("train_32x32.mat"), read("test_32x32.mat"), [str(i) for i in range(10)]


def _usps(base: Path):
    def read(name: str) -> SplitData:
        xs, ys = [], []
        with bz2.open(_Ctx.need(base / name), "rt") as fh:
            for line in fh:
                parts = line.split()
                if not parts:
                    continue
                ys.append(int(float(parts[0])) - 1)  # libsvm labels 1..10
                vals = np.zeros(256, dtype=np.float32)
                for kv in parts[1:]:
                    k, v = kv.split(":")
                    vals[int(k) - 1] = float(v)
                xs.append(vals)
        x = np.clip(np.round((np.stack(xs) + 1.0) * 127.5), 0, 255).astype(np.uint8).reshape(-1, 16, 16)
        return SplitData(labels=np.asarray(ys, dtype=np.int64), images=x)

    return read("usps.bz2"), read("usps.t.bz2"), [str(i) for i in range(10)]


ISIC_CLASSES = ["MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC"]


def _isic(base: Path):
    candidates = sorted(base.rglob("ISIC2018_Task3_Training_GroundTruth.csv")) if base.exists() else []
    if not candidates:
        raise _missing("ISIC", base / "ISIC2018_Task3_Training_GroundTruth.csv", _Ctx.spec.layout, _Ctx.spec.source)
    img_dir = base / "ISIC2018_Input_Resized"
    if not img_dir.exists() and (base / "ISIC2018_Task3_Training_Input").exists():
        img_dir = base / "ISIC2018_Task3_Training_Input"
    _Ctx.need(img_dir)
    rows = list(csv.DictReader(open(candidates[0], newline="")))
    paths = [str(img_dir / f"{r['image']}.jpg") for r in rows]
    labels = np.asarray([int(np.argmax([float(r[c]) for c in ISIC_CLASSES])) for r in rows], dtype=np.int64)
    tr, te = split_70_30(labels)
    return (*_files_split(paths, labels, tr, te, base), list(ISIC_CLASSES))


CHESTX_CLASSES = ["Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumothorax"]


def _chestx(base: Path):
    rows = list(csv.DictReader(open(_Ctx.need(base / "Data_Entry_2017.csv"), newline="")))
    img_dir = _Ctx.need(base / "images_resized")
    paths, labels_l = [], []
    for r in rows:
        finding = r["Finding Labels"].strip()
        if "|" in finding or finding not in CHESTX_CLASSES:  # single-label images of the 7 classes only
            continue
        paths.append(str(img_dir / r["Image Index"]))
        labels_l.append(CHESTX_CLASSES.index(finding))
    labels = np.asarray(labels_l, dtype=np.int64)
    tr, te = split_70_30(labels)
    return (*_files_split(paths, labels, tr, te, base), list(CHESTX_CLASSES))


def _kaokore(base: Path):
    rows = list(csv.DictReader(open(_Ctx.need(base / "labels.csv"), newline="")))
    img_dir = _Ctx.need(base / "images_256")
    paths = [str(img_dir / r["image"]) for r in rows]
    labels = np.asarray([4 * int(r["gender"]) + int(r["status"]) for r in rows], dtype=np.int64)
    sets = np.asarray([r["set"].strip() for r in rows])
    classes = [f"gender{g}_status{s}" for g in range(2) for s in range(4)]
    return (*_files_split(paths, labels, np.flatnonzero(sets == "train"), np.flatnonzero(sets == "test"), base), classes)


PACS_CLASSES = ["dog", "elephant", "giraffe", "guitar", "horse", "house", "person"]


def _pacs(domain: str):
    def load(base: Path):
        try:
            import h5py
        except ImportError:
            raise T2SError("PACS tasks read HDF5 files and need h5py", "pip install h5py") from None

        def read(name: str) -> SplitData:
            path = _Ctx.need(base / name)
            with h5py.File(path, "r") as f:
                labels = np.asarray(f["labels"]).ravel().astype(np.int64) - 1
                n = len(labels)
            handle: dict = {}

            def get(i: int, path=path, handle=handle) -> np.ndarray:
                if "f" not in handle:  # opened lazily, once per process
                    handle["f"] = h5py.File(path, "r")
                img = np.asarray(handle["f"]["images"][i])
                return np.ascontiguousarray(img[:, :, ::-1]).astype(np.uint8)  # stored BGR

            return SplitData(labels=labels, getter=get, fingerprint_parts=[f"{name}:{os.path.getsize(path)}"])

        return read(f"{domain}_train.hdf5"), read(f"{domain}_val.hdf5"), list(PACS_CLASSES)

    return load


def _dtd(base: Path):
    img_dir = _Ctx.need(base / "images")
    classes = sorted(d.name for d in img_dir.iterdir() if d.is_dir())
    index = {c: i for i, c in enumerate(classes)}

    def read(*names: str):
        ps, ls = [], []
        for name in names:
            for line in open(_Ctx.need(base / "labels" / name)):
                rel = line.strip()
                if rel:
                    ps.append(str(img_dir / rel))
                    ls.append(index[rel.split("/")[0]])
        return ps, ls

    ptr, ltr = read("train1.txt", "val1.txt")
    pte, lte = read("test1.txt")
    labels = np.asarray(ltr + lte, dtype=np.int64)
    return (*_files_split(ptr + pte, labels, np.arange(len(ptr)), np.arange(len(ptr), len(ptr) + len(pte)), base), classes)


_TB = "the transfer_broad download instructions (github.com/asrafulashiq/transfer_broad)"

PAPER_SPECS: dict[str, PaperSpec] = {s.name: s for s in [
    PaperSpec("CropDisease", "CropDiseases", 38, 43456, 10849, "Natural", "official folders",
              "train/<class>/*.jpg, test/<class>/*.jpg", _TB + " (CD-FSL PlantVillage)", _folder_official("train", "test")),
    PaperSpec("Flowers102", "102flowers", 102, 2040, 6149, "Natural", "train = trnid+valid, test = tstid",
              "jpg/image_00001.jpg..., imagelabels.mat, setid.mat (or splits.mat)", "the Oxford 102 Flowers page (VGG)", _flowers),
    PaperSpec("DeepWeeds", "DeepWeeds", 9, 12252, 5257, "Natural", "70/30",
              "labels.csv (Filename,Label,...), images/*.jpg", _TB + " (DeepWeeds GitHub)", _deepweeds),
    PaperSpec("EuroSAT", "EuroSAT", 10, 18900, 8100, "Satellite", "70/30",
              "2750/<class>/*.jpg (RGB release)", _TB + " (EuroSAT RGB)", _folder_7030("2750")),
    PaperSpec("Resisc45", "Resisc45", 45, 22005, 9495, "Satellite", "70/30",
              "<class>/*.jpg", _TB + " (NWPU-RESISC45)", _folder_7030()),
    PaperSpec("Omniglot", "omniglot", 1623, 9226, 3954, "Symbolic", "70/30 (label = character of the evaluation set)",
              "omniglot-py/images_evaluation/<alphabet>/<character>/*.png (torchvision layout)", "torchvision.datasets.Omniglot(background=False, download=True) on a networked machine", _omniglot),
    PaperSpec("SVHN", "SVHN", 10, 73257, 26032, "Symbolic", "official",
              "train_32x32.mat, test_32x32.mat (torchvision layout)", "torchvision.datasets.SVHN(download=True) on a networked machine (ufldl.stanford.edu/housenumbers)", _svhn),
    PaperSpec("ISIC", "ISIC", 7, 7007, 3008, "Medical", "70/30",
              "ISIC2018_Task3_Training_GroundTruth.csv (anywhere below), ISIC2018_Input_Resized/<image>.jpg", _TB + " (ISIC 2018 task 3)", _isic),
    PaperSpec("ChestX", "chest_xray", 7, 18090, 7758, "Medical", "70/30 (single-label images of 7 findings)",
              "Data_Entry_2017.csv, images_resized/<Image Index>", _TB + " (NIH ChestX-ray8)", _chestx),
    PaperSpec("Kaokore", "kaokore", 8, 6568, 821, "Illustrative", "set=='train' / set=='test'",
              "labels.csv (image,gender,status,set), images_256/*.jpg", _TB + " (KaoKore GitHub)", _kaokore),
    PaperSpec("Sketch", "sketch", 1000, 35000, 15889, "Illustrative", "70/30",
              "<wnid>/*.JPEG (ImageNet-Sketch)", _TB + " (ImageNet-Sketch)", _folder_7030()),
    PaperSpec("DTD", "dtd", 47, 3760, 1880, "Texture", "split 1 (train1+val1 / test1)",
              "images/<class>/*.jpg, labels/train1.txt, val1.txt, test1.txt", _TB + " (DTD, robots.ox.ac.uk)", _dtd),
    PaperSpec("CUB", "CUB_data/CUB_200_2011", 200, 5994, 5794, "Natural", "official",
              "images/<class>/*.jpg + train_filelist.txt/test_filelist.txt ('path label'), or the official images.txt, image_class_labels.txt, train_test_split.txt",
              "the Caltech-UCSD Birds-200-2011 page", _cub),
    PaperSpec("PacsC", "PACS", 7, 2107, 237, "Illustrative", "train file / val file",
              "cartoon_train.hdf5, cartoon_val.hdf5 (keys images [N,227,227,3] BGR, labels 1..7)", "the PACS release (Li et al. 2017, hdf5 files)", _pacs("cartoon")),
    PaperSpec("PacsS", "PACS", 7, 3531, 398, "Illustrative", "train file / val file",
              "sketch_train.hdf5, sketch_val.hdf5 (keys images [N,227,227,3] BGR, labels 1..7)", "the PACS release (Li et al. 2017, hdf5 files)", _pacs("sketch")),
    PaperSpec("AID", "AID", 30, 6993, 3007, "Satellite", "70/30", "<class>/*.jpg", "the AID aerial scene dataset page", _folder_7030()),
    PaperSpec("USPS", "USPS", 10, 7291, 2007, "Symbolic", "official",
              "usps.bz2, usps.t.bz2 (libsvm format, torchvision layout)", "torchvision.datasets.USPS(download=True) on a networked machine (LIBSVM datasets page)", _usps),
    PaperSpec("FMD", "FMD", 10, 1400, 600, "Texture", "70/30", "<class>/*.jpg (ImageFolder)", "the Flickr Material Database page (identity ambiguous, see reference 7.3)", _folder_7030()),
    PaperSpec("CactusAerial", "CactusAerial", 2, 17500, 4000, "Satellite", "official",
              "training_set/training_set/<class>/*.jpg, validation_set/validation_set/<class>/*.jpg", "the Kaggle aerial-cactus-identification data", _folder_official("training_set/training_set", "validation_set/validation_set")),
    PaperSpec("ChestXPneumonia", "ChestXPneumonia", 2, 5216, 624, "Medical", "official",
              "train/{NORMAL,PNEUMONIA}/*.jpeg, test/{NORMAL,PNEUMONIA}/*.jpeg", "Kermany et al. chest-xray (Mendeley data / Kaggle)", _folder_official("train", "test")),
]}
assert len(PAPER_SPECS) == 20 and set(PAPER_SPECS) == set(SEEN + UNSEEN)


def data_root(root: str | os.PathLike | None = None) -> Path:
    text = root if root is not None else os.environ.get("T2S_DATA_ROOT")
    if not text:
        raise T2SError(
            "no data root for the paper's downstream datasets",
            "pass root=... (CLI: --data-root DIR) or set T2S_DATA_ROOT to the folder holding them (layouts: README 'Tasks and Task2Vec')",
        )
    return Path(text).expanduser()


class PaperTask(Task):
    kind = "paper"

    def __init__(self, name: str, root: str | os.PathLike | None = None):
        self.spec = PAPER_SPECS[name]
        super().__init__(name, None, f"{self.spec.category}; published {self.spec.train}/{self.spec.test}, {self.spec.num_classes} classes")
        self.root = data_root(root)

    @property
    def folder(self) -> Path:
        return self.root / self.spec.folder

    @property
    def published_num_classes(self) -> int:
        """Head size used by the paper (e.g. 1623 for Omniglot although the split holds 659 characters)."""
        return self.spec.num_classes

    @property
    def seen(self) -> bool:
        return self.name in SEEN

    def _load_splits(self):
        _Ctx.spec = self.spec
        if not self.folder.exists():
            raise _missing(self.name, self.folder, self.spec.layout, self.spec.source)
        train, test, classes = self.spec.loader(self.folder)
        self._classes = list(classes)
        return train, test
