"""The 20 paper loaders, each on a tiny fixture written here in that dataset's published layout."""

from __future__ import annotations

import bz2
import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from t2s_lib.errors import T2SError
from t2s_lib.tasks import PAPER_SPECS, SEEN, UNSEEN, get_task, list_tasks

RNG = np.random.default_rng(0)


def _img(path: Path, size: int = 8, ext_mode: str = "RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = RNG.integers(0, 255, size=(size, size, 3), dtype=np.uint8)
    Image.fromarray(arr).convert(ext_mode).save(path)


def _folder(base: Path, classes: list[str], n: int, ext: str = ".jpg") -> None:
    for c in classes:
        for i in range(n):
            _img(base / c / f"{c}_{i}{ext}")


# Each writer builds the fixture under root/<folder> and returns (num_classes, train, test).
def w_cropdisease(root: Path):
    _folder(root / "CropDiseases/train", ["apple_scab", "corn_rust", "grape_rot"], 4)
    _folder(root / "CropDiseases/test", ["apple_scab", "corn_rust", "grape_rot"], 2)
    return 3, 12, 6


def w_flowers(root: Path):
    from scipy.io import savemat

    base = root / "102flowers"
    labels = np.array([1, 1, 2, 2, 3, 3, 1, 2, 3, 1])
    for i in range(1, 11):
        _img(base / "jpg" / f"image_{i:05d}.jpg")
    savemat(base / "imagelabels.mat", {"labels": labels[None, :]})
    savemat(base / "setid.mat", {"trnid": np.array([[1, 3, 5]]), "valid": np.array([[2, 4, 6]]), "tstid": np.array([[7, 8, 9, 10]])})
    return 102, 6, 4


def w_deepweeds(root: Path):
    base = root / "DeepWeeds"
    rows = []
    for lab in range(9):
        for i in range(10):
            name = f"{lab}_{i}.jpg"
            _img(base / "images" / name)
            rows.append({"Filename": name, "Label": lab, "Species": f"weed{lab}"})
    with open(base / "labels.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["Filename", "Label", "Species"])
        w.writeheader()
        w.writerows(rows)
    return 9, 63, 27


def w_eurosat(root: Path):
    _folder(root / "EuroSAT/2750", ["Forest", "River"], 10)
    return 2, 14, 6


def w_resisc(root: Path):
    _folder(root / "Resisc45", ["airport", "beach", "bridge"], 10)
    return 3, 21, 9


def w_aid(root: Path):
    _folder(root / "AID", ["Airport", "Farmland"], 10)
    return 2, 14, 6


def w_fmd(root: Path):
    _folder(root / "FMD", ["fabric", "glass"], 10)
    return 2, 14, 6


def w_sketch(root: Path):
    _folder(root / "sketch", ["n01440764", "n01443537"], 10, ext=".JPEG")
    return 2, 14, 6


def w_omniglot(root: Path):
    base = root / "omniglot/omniglot-py/images_evaluation"
    for alpha in ("Angelic", "Atlantean"):
        for ch in ("character01", "character02"):
            for i in range(10):
                _img(base / alpha / ch / f"{i}.png", ext_mode="L")
    return 4, 28, 12


def w_svhn(root: Path):
    from scipy.io import savemat

    base = root / "SVHN"
    base.mkdir(parents=True)
    for name, n in (("train_32x32.mat", 12), ("test_32x32.mat", 5)):
        x = RNG.integers(0, 255, size=(32, 32, 3, n), dtype=np.uint8)
        y = (np.arange(n) % 10 + 1).reshape(-1, 1)  # 10 stands for digit 0
        savemat(base / name, {"X": x, "y": y})
    return 10, 12, 5


def w_usps(root: Path):
    base = root / "USPS"
    base.mkdir(parents=True)
    for name, n in (("usps.bz2", 12), ("usps.t.bz2", 4)):
        lines = []
        for i in range(n):
            vals = RNG.uniform(-1, 1, 256)
            lines.append(f"{i % 10 + 1} " + " ".join(f"{k + 1}:{v:.4f}" for k, v in enumerate(vals)))
        with bz2.open(base / name, "wt") as fh:
            fh.write("\n".join(lines) + "\n")
    return 10, 12, 4


def w_isic(root: Path):
    base = root / "ISIC"
    cols = ["MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC"]
    rows = []
    for i in range(70):
        name = f"ISIC_{i:07d}"
        _img(base / "ISIC2018_Input_Resized" / f"{name}.jpg")
        onehot = {c: "1.0" if j == i % 7 else "0.0" for j, c in enumerate(cols)}
        rows.append({"image": name, **onehot})
    gt = base / "ISIC2018_Task3_Training_GroundTruth"
    gt.mkdir(parents=True)
    with open(gt / "ISIC2018_Task3_Training_GroundTruth.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["image"] + cols)
        w.writeheader()
        w.writerows(rows)
    return 7, 49, 21


def w_chestx(root: Path):
    base = root / "chest_xray"
    findings = ["Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumothorax"]
    rows = []
    for i in range(70):
        name = f"{i:08d}_000.png"
        _img(base / "images_resized" / name, ext_mode="L")
        rows.append({"Image Index": name, "Finding Labels": findings[i % 7]})
    # dropped: multi-label, No Finding, Pneumonia
    rows += [{"Image Index": "x1.png", "Finding Labels": "Mass|Nodule"},
             {"Image Index": "x2.png", "Finding Labels": "No Finding"},
             {"Image Index": "x3.png", "Finding Labels": "Pneumonia"}]
    with open(base / "Data_Entry_2017.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["Image Index", "Finding Labels"])
        w.writeheader()
        w.writerows(rows)
    return 7, 49, 21


def w_chestxpneumonia(root: Path):
    _folder(root / "ChestXPneumonia/train", ["NORMAL", "PNEUMONIA"], 5, ext=".jpeg")
    _folder(root / "ChestXPneumonia/test", ["NORMAL", "PNEUMONIA"], 2, ext=".jpeg")
    return 2, 10, 4


def w_cactus(root: Path):
    _folder(root / "CactusAerial/training_set/training_set", ["cactus", "no_cactus"], 5)
    _folder(root / "CactusAerial/validation_set/validation_set", ["cactus", "no_cactus"], 3)
    return 2, 10, 6


def w_kaokore(root: Path):
    base = root / "kaokore"
    rows = []
    for i in range(24):
        name = f"{i:08d}.jpg"
        _img(base / "images_256" / name)
        rows.append({"image": name, "gender": i % 2, "status": (i // 2) % 4, "set": "test" if i >= 16 else "train"})
    with open(base / "labels.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["image", "gender", "status", "set"])
        w.writeheader()
        w.writerows(rows)
    return 8, 16, 8


def _w_pacs(domain: str):
    def write(root: Path):
        import h5py

        base = root / "PACS"
        base.mkdir(parents=True, exist_ok=True)
        for split, n in (("train", 14), ("val", 7)):
            with h5py.File(base / f"{domain}_{split}.hdf5", "w") as f:
                f["images"] = RNG.integers(0, 255, size=(n, 16, 16, 3), dtype=np.uint8)
                f["labels"] = (np.arange(n) % 7 + 1).astype(np.int64)
        return 7, 14, 7

    return write


def w_dtd(root: Path):
    base = root / "dtd"
    classes = ["banded", "dotted"]
    lines = {"train1.txt": [], "val1.txt": [], "test1.txt": []}
    for c in classes:
        for i in range(6):
            rel = f"{c}/{c}_{i:04d}.jpg"
            _img(base / "images" / rel)
            lines[["train1.txt", "val1.txt", "test1.txt"][i % 3]].append(rel)
    (base / "labels").mkdir(parents=True)
    for name, ls in lines.items():
        (base / "labels" / name).write_text("\n".join(ls) + "\n")
    return 2, 8, 4


def w_cub(root: Path):
    base = root / "CUB_data/CUB_200_2011"
    classes = ["001.Black_footed_Albatross", "002.Laysan_Albatross"]
    tr, te = [], []
    for lab, c in enumerate(classes):
        for i in range(5):
            rel = f"{c}/img_{i}.jpg"
            _img(base / "images" / rel)
            (tr if i < 3 else te).append(f"{rel} {lab}")
    (base / "train_filelist.txt").write_text("\n".join(tr) + "\n")
    (base / "test_filelist.txt").write_text("\n".join(te) + "\n")
    return 2, 6, 4


WRITERS = {
    "CropDisease": w_cropdisease, "Flowers102": w_flowers, "DeepWeeds": w_deepweeds, "EuroSAT": w_eurosat,
    "Resisc45": w_resisc, "Omniglot": w_omniglot, "SVHN": w_svhn, "ISIC": w_isic, "ChestX": w_chestx,
    "Kaokore": w_kaokore, "Sketch": w_sketch, "DTD": w_dtd, "CUB": w_cub, "PacsC": _w_pacs("cartoon"),
    "PacsS": _w_pacs("sketch"), "AID": w_aid, "USPS": w_usps, "FMD": w_fmd, "CactusAerial": w_cactus,
    "ChestXPneumonia": w_chestxpneumonia,
}


def test_registry_lists_the_20_paper_tasks_in_published_order():
    assert list_tasks("paper") == SEEN + UNSEEN
    assert len(SEEN) == 12 and len(UNSEEN) == 8
    assert set(WRITERS) == set(PAPER_SPECS)
    assert PAPER_SPECS["Omniglot"].num_classes == 1623 and PAPER_SPECS["Sketch"].num_classes == 1000
    assert sum(s.num_classes for s in PAPER_SPECS.values()) == 38 + 102 + 9 + 10 + 45 + 1623 + 10 + 7 + 7 + 8 + 1000 + 47 + 200 + 7 + 7 + 30 + 10 + 10 + 2 + 2


@pytest.mark.parametrize("name", SEEN + UNSEEN)
def test_paper_loader_reads_its_published_layout(name, tmp_path):
    n_classes, n_train, n_test = WRITERS[name](tmp_path)
    task = get_task(name, root=tmp_path)
    assert task.kind == "paper"
    assert task.num_classes == n_classes
    assert len(task.labels("train")) == n_train
    assert len(task.labels("test")) == n_test
    img, label = task.dataset("train")[0]
    assert img.mode == "RGB" and isinstance(label, int) and 0 <= label < task.num_classes
    img, label = task.dataset("test")[len(task.labels("test")) - 1]
    assert img.mode == "RGB"
    assert len(task.fingerprint("train")) == 16


def test_env_data_root_and_case_insensitive_names(tmp_path, monkeypatch):
    w_eurosat(tmp_path)
    monkeypatch.setenv("T2S_DATA_ROOT", str(tmp_path))
    assert get_task("eurosat").num_classes == 2


def test_missing_root_names_dataset_layout_and_source(tmp_path, monkeypatch):
    monkeypatch.delenv("T2S_DATA_ROOT", raising=False)
    with pytest.raises(T2SError, match="no data root"):
        get_task("DTD")
    with pytest.raises(T2SError) as exc:
        get_task("DTD", root=tmp_path).labels("train")
    msg = str(exc.value)
    assert "DTD" in msg and "labels/train1.txt" in msg and "transfer_broad" in msg


def test_missing_file_inside_dataset_is_named(tmp_path):
    w_flowers(tmp_path)
    (tmp_path / "102flowers" / "imagelabels.mat").unlink()
    with pytest.raises(T2SError, match=r"Flowers102: .*imagelabels.mat not found"):
        get_task("Flowers102", root=tmp_path).labels("train")


def test_single_class_task_is_refused(tmp_path):
    _folder(tmp_path / "AID", ["Airport"], 10)
    with pytest.raises(T2SError, match="single class"):
        get_task("AID", root=tmp_path).labels("train")


def test_usps_pixel_scaling_and_svhn_label_ten_is_zero(tmp_path):
    w_svhn(tmp_path)
    task = get_task("SVHN", root=tmp_path)
    assert task.labels("train")[9] == 0  # stored as 10
    w_usps(tmp_path)
    img, _ = get_task("USPS", root=tmp_path).dataset("train")[0]
    assert img.size == (16, 16)
