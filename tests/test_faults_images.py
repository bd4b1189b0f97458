"""Hostile or careless image input (issue 21): odd bit depths and modes, decompression bombs, corrupt
files in `t2s adapt`, a class too small for the validation split, symlinked class folders and a
train/ folder without test/. Every test writes real image files; nothing is mocked."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from t2s_lib.cli import main as cli
from t2s_lib.errors import T2SError
from t2s_lib.tasks import get_task


def _class_folders(root: Path, classes: dict[str, int], size: int = 12, seed: int = 0) -> Path:
    """``root/<class>/<i>.png``: ``classes[c]`` random RGB images per class."""
    rng = np.random.default_rng(seed)
    for c, n in classes.items():
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(root / c / f"{i}.png")
    return root


def _decoded(tmp_path: Path, name: str, image: Image.Image) -> np.ndarray:
    """``image`` saved as ``name`` in a two-class folder task, read back through the task's dataset."""
    root = _class_folders(tmp_path / "task", {"a": 4, "b": 4})
    image.save(root / "a" / name)
    task = get_task(root)
    for split in ("train", "test"):
        ds = task.dataset(split)
        for i, p in enumerate(ds.paths):
            if p.endswith(name):
                img, label = ds[i]
                assert img.mode == "RGB" and label == 0
                return np.asarray(img)
    raise AssertionError(f"{name} is in neither split")


def _assert_order_kept(values: np.ndarray, rgb: np.ndarray) -> None:
    """An 8-bit grey version of ``values``: full range, same ordering (ties stay ties)."""
    assert rgb.dtype == np.uint8 and rgb.shape == (*values.shape, 3)
    assert (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 0] == rgb[..., 2]).all()
    grey = rgb[..., 0].astype(np.int64).ravel()
    v = values.ravel()
    order = np.argsort(v, kind="stable")
    assert (np.diff(grey[order]) >= 0).all(), "the decoded image does not keep the ordering of pixel values"
    assert grey.min() == 0 and grey.max() == 255, (grey.min(), grey.max())
    assert len(np.unique(grey)) > 100  # a gradient, not a blank or a two-level image


# ----- 1. bit depth, float, alpha, CMYK, decompression bombs ------------------------------------------
@pytest.mark.parametrize("lo, hi", [(0, 65535), (1000, 4095)])  # full 16 bits, and 12 bits stored in 16
def test_16bit_png_is_scaled_not_clipped(tmp_path, lo, hi):
    values = np.linspace(lo, hi, 16 * 32).astype(np.uint16).reshape(16, 32)
    im = Image.fromarray(values)
    assert im.mode == "I;16"
    _assert_order_kept(values, _decoded(tmp_path, "deep.png", im))


def test_big_endian_16bit_and_32bit_tiffs_are_scaled(tmp_path):
    values = np.linspace(300, 50000, 16 * 32).reshape(16, 32)
    big = Image.fromarray(values.astype(">u2"))
    assert big.mode == "I;16B"
    _assert_order_kept(values, _decoded(tmp_path / "b", "big.tif", big))
    wide = Image.fromarray((values * 1000 - 2e7).astype(np.int32))
    assert wide.mode == "I"
    _assert_order_kept(values, _decoded(tmp_path / "i", "wide.tif", wide))


@pytest.mark.parametrize("lo, hi", [(0.0, 1.0), (-3.5, 1e6)])
def test_float_tiff_is_scaled_not_clipped(tmp_path, lo, hi):
    values = np.linspace(lo, hi, 16 * 32, dtype=np.float32).reshape(16, 32)
    im = Image.fromarray(values)
    assert im.mode == "F"
    _assert_order_kept(values, _decoded(tmp_path, "float.tif", im))


def test_constant_and_non_finite_float_images_decode(tmp_path):
    from t2s_lib.tasks.images import decode_rgb

    Image.fromarray(np.full((8, 8), 0.25, dtype=np.float32)).save(tmp_path / "flat.tif")
    Image.fromarray(np.full((8, 8), 7, dtype=np.uint16)).save(tmp_path / "flat16.png")
    for name in ("flat.tif", "flat16.png"):
        out = np.asarray(decode_rgb(tmp_path / name))
        assert out.shape == (8, 8, 3) and len(np.unique(out)) == 1  # no division by zero, no NaN cast
    values = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    values[0, 0], values[0, 1], values[0, 2] = np.nan, np.inf, -np.inf
    Image.fromarray(values).save(tmp_path / "nan.tif")
    out = np.asarray(decode_rgb(tmp_path / "nan.tif"))[..., 0]
    assert out[0, 1] == 255 and out[0, 2] == 0 and out[7, 7] == 255 and out[0, 3] < out[7, 6]


def test_transparent_palette_and_alpha_images_lie_on_white(tmp_path):
    rgba = np.zeros((8, 8, 4), dtype=np.uint8)
    rgba[:4, :, :] = (200, 30, 30, 255)  # opaque red top half, fully transparent black bottom half
    out = _decoded(tmp_path / "rgba", "alpha.png", Image.fromarray(rgba, "RGBA"))
    assert (out[:4] == (200, 30, 30)).all() and (out[4:] == 255).all()
    la = Image.fromarray(np.dstack([np.full((8, 8), 40, np.uint8), rgba[..., 3]]), "LA")
    out = _decoded(tmp_path / "la", "la.png", la)
    assert (out[:4] == 40).all() and (out[4:] == 255).all()
    index = np.zeros((8, 8), dtype=np.uint8)
    index[4:] = 1
    pal = Image.fromarray(index, "P")
    pal.putpalette([200, 30, 30, 0, 0, 0])
    pal.info["transparency"] = 1  # palette entry 1 (black) is transparent
    out = _decoded(tmp_path / "p", "pal.png", pal)
    assert (out[4:] == 255).all() and (out[:4, :, 0] > 150).all()


def test_cmyk_and_greyscale_jpegs_decode_to_rgb(tmp_path):
    cmyk = Image.new("CMYK", (8, 8), (0, 255, 255, 0))  # pure red in CMYK
    out = _decoded(tmp_path / "c", "cmyk.jpg", cmyk)
    assert out[..., 0].mean() > 200 and out[..., 1].mean() < 60 and out[..., 2].mean() < 60
    out = _decoded(tmp_path / "g", "grey.jpg", Image.new("L", (8, 8), 90))
    assert abs(int(out.mean()) - 90) <= 2


def _png_claiming(path: Path, width: int, height: int) -> Path:
    """A valid 1x1 PNG whose header claims ``width`` x ``height`` (a decompression bomb's header)."""
    Image.new("L", (1, 1)).save(path)
    data = bytearray(path.read_bytes())
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("side", [10_000, 20_000])  # above PIL's warning limit, above its error limit
def test_decompression_bomb_is_a_clear_error_or_skipped(tmp_path, side):
    from t2s_lib.tasks import FileDataset

    bomb = _png_claiming(tmp_path / "bomb.png", side, side)
    ds = FileDataset([bomb], [0], dataset_name="mine")
    with pytest.raises(T2SError, match=r"bomb\.png.*pixels") as err:
        ds[0]
    assert "downscale" in err.value.fix
    skipping = FileDataset([bomb], [0], on_bad_image="skip")
    assert skipping[0] is None and skipping.bad_images == [str(bomb)]


def test_pixel_limit_is_checked_before_decoding(tmp_path):
    from t2s_lib.tasks.images import decode_rgb

    Image.new("RGB", (40, 30)).save(tmp_path / "big.png")
    assert decode_rgb(tmp_path / "big.png", max_pixels=1200).size == (40, 30)
    with pytest.raises(T2SError, match=r"big\.png.*1200 pixels"):
        decode_rgb(tmp_path / "big.png", max_pixels=1199)


# ----- 2. a corrupt image in `t2s adapt`: the suggested flag exists and works --------------------------
def _adapt_folder(tmp_path: Path) -> Path:
    root = _class_folders(tmp_path / "mine", {"stripes": 8, "dots": 8}, size=16)
    (root / "stripes" / "broken.png").write_bytes(b"\x89PNG not really")
    (root / "dots" / "empty.jpg").write_bytes(b"")
    return root


def test_adapt_bad_image_fix_names_a_flag_adapt_has(tmp_path, capsys):
    task = _adapt_folder(tmp_path)
    base = ["adapt", "--task", str(task), "--profile", "smoke", "--rewards", str(tmp_path / "no-table")]
    assert cli(base + ["--out", str(tmp_path / "o1")]) == 2
    err = capsys.readouterr().err
    assert "cannot decode image" in err and ("broken.png" in err or "empty.jpg" in err), err
    assert "--on-bad-image skip" in err and "t2s adapt" in err
    # the flag it names: the bad files are skipped and counted, the run goes on to the reward table
    assert cli(base + ["--out", str(tmp_path / "o2"), "--on-bad-image", "skip"]) == 2
    captured = capsys.readouterr()
    assert "cannot decode" not in captured.err and "no-table" in captured.err, captured.err
    assert "skipped 2 undecodable image(s)" in captured.out and "broken.png" in captured.out, captured.out


def test_adapt_skips_bad_images_and_recommends(tiny, reference, tmp_path, capsys):
    import json

    task = _adapt_folder(tmp_path)
    out = tmp_path / "advice"
    assert cli(["adapt", "--task", str(task), "--profile", str(tiny.profile_file), "--rewards", str(reference),
                "--budget", "1", "--out", str(out), "--on-bad-image", "skip"]) == 0
    rec = json.loads((out / "recommendation.json").read_text())
    assert rec["bad_images_skipped"] == 2 and rec["validation"]["queries"] > 0
    assert sorted(Path(p).name for p in rec["bad_images"]) == ["broken.png", "empty.jpg"]
    assert "skipped 2 undecodable image(s)" in (out / "report.html").read_text()


# ----- 3. a class too small for the split ------------------------------------------------------------
def _validation_log(task) -> tuple[list[str], dict]:
    from t2s_lib.adapt import TableBackbones, validation_measure

    tb = TableBackbones(Path("unused"), [], np.zeros((2, 0)), [], {}, {"img_size": 16})
    lines: list[str] = []
    _, sizes = validation_measure(task, tb, device="cpu", log=lines.append)
    return lines, sizes


def test_single_image_class_is_named_not_silently_dropped(tmp_path):
    root = tmp_path / "split"
    _class_folders(root / "train", {"rare": 1, "common": 6})
    _class_folders(root / "test", {"rare": 1, "common": 2}, seed=1)
    lines, sizes = _validation_log(get_task(root))
    assert sizes["classes_without_queries"] == ["rare"]
    assert any("rare" in line and "no validation query" in line for line in lines), lines
    # with no train/test split a single image cannot be split 70/30: it would leave the class no training image
    _class_folders(tmp_path / "flat", {"rare": 1, "common": 6})
    with pytest.raises(T2SError, match=r"rare.*single image") as err:
        get_task(tmp_path / "flat").labels("train")
    assert "at least 3 images" in err.value.fix


def test_validation_split_without_any_query_is_refused(tmp_path):
    root = tmp_path / "tiny"
    _class_folders(root / "train", {"a": 1, "b": 1})
    _class_folders(root / "test", {"a": 1, "b": 1}, seed=1)
    with pytest.raises(T2SError, match="no validation query"):
        _validation_log(get_task(root))


# ----- 4. symlinks out of the task folder -----------------------------------------------------------------
def test_class_folder_symlinked_outside_is_refused(tmp_path):
    root = _class_folders(tmp_path / "task", {"dogs": 4})
    outside = _class_folders(tmp_path / "elsewhere", {"cats": 4}) / "cats"
    os.symlink(outside, root / "cats")
    with pytest.raises(T2SError, match=r"cats.*symlink.*outside") as err:
        get_task(root).classes
    assert str(outside) in err.value.problem and "cp -rL" in err.value.fix
    # a link to an image file outside is refused too, one inside the task folder is fine
    (root / "cats").unlink()
    (root / "cats").mkdir()
    (root / "cats" / "0.png").symlink_to(outside / "0.png")
    with pytest.raises(T2SError, match=r"0\.png.*outside"):
        get_task(root).classes
    (root / "cats" / "0.png").unlink()
    for i in range(3):
        (root / "cats" / f"{i}.png").symlink_to(root / "dogs" / f"{i}.png")
    (root / "more").symlink_to(root / "dogs")
    task = get_task(root)
    assert task.classes == ["cats", "dogs", "more"]


def test_split_folder_symlinked_outside_is_refused(tmp_path):
    root = tmp_path / "task"
    _class_folders(root / "train", {"a": 3, "b": 3})
    _class_folders(tmp_path / "other", {"a": 1, "b": 1})
    os.symlink(tmp_path / "other", root / "test")
    with pytest.raises(T2SError, match=r"test.*symlink.*outside"):
        get_task(root).classes


# ----- 5. train/ without test/ ----------------------------------------------------------------------
def test_train_without_test_names_the_missing_split(tmp_path):
    _class_folders(tmp_path / "t1" / "train", {"a": 4, "b": 4})
    with pytest.raises(T2SError, match=r"has train/ but no test/") as err:
        get_task(tmp_path / "t1").classes
    assert "add test/" in err.value.fix and "single class" not in str(err.value)
    _class_folders(tmp_path / "t2" / "test", {"a": 4, "b": 4})
    with pytest.raises(T2SError, match=r"has test/ but no train/"):
        get_task(tmp_path / "t2").classes
    _class_folders(tmp_path / "t3" / "train", {"a": 4, "b": 4})
    _class_folders(tmp_path / "t3" / "val", {"a": 2, "b": 2})
    with pytest.raises(T2SError, match=r"has train/ and val/ but no test/") as err:
        get_task(tmp_path / "t3").classes
    assert "rename" in err.value.fix
    # a class that happens to be called "train" among others is a class, not a split
    _class_folders(tmp_path / "vehicles", {"train": 4, "bus": 4, "car": 4})
    assert get_task(tmp_path / "vehicles").classes == ["bus", "car", "train"]
