"""HDRI environment maps: converted once from EXR to float16 arrays plus lighting metadata.

Equirectangular convention used everywhere (numpy and shaders): for a world direction ``d``
(y up), ``u = 0.5 + atan2(d.x, -d.z) / 2pi`` and ``v = acos(d.y) / pi``; row 0 is the zenith.

Per HDRI the index stores the 9 spherical-harmonic coefficients of the *irradiance* (already
convolved with the cosine lobe and divided by pi, so the shader's diffuse term is
``albedo * sum(c_i * Y_i(n))``) and the direction of the brightest region (the "sun"), which the
renderer uses as the default sun-light direction, as TDW does when it loads a skybox.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import T2SError
from ..fetching import stamp_ok, write_stamp
from ..io import atomic_path, write_json
from ..paths import cache_layout

#: Kept in float16 and used for lighting; the sun disc is carried by the directional light.
MAX_RADIANCE = 64.0
#: Every map is scaled to this mean radiance so night and noon maps light objects comparably.
TARGET_MEAN = 0.6
MAX_WIDTH = 1024
#: Maps whose name says they were shot indoors (the paper kept only non-interior skyboxes).
INDOOR = {"interior", "apartment", "hall", "lab", "lobby", "studio", "warehouse", "workshop"}
#: The fixed map when the background parameter is off (the paper: fish_hoek_beach_4k, a sunny beach).
DEFAULT_HDRI = "pmndrs_park"


def directions(h: int, w: int) -> np.ndarray:
    """Unit direction of every pixel centre of an ``h x w`` equirect map, shape (h, w, 3)."""
    v = (np.arange(h) + 0.5) / h
    u = (np.arange(w) + 0.5) / w
    theta = v[:, None] * np.pi
    phi = (u[None, :] - 0.5) * 2 * np.pi
    st = np.sin(theta)
    return np.stack(np.broadcast_arrays(st * np.sin(phi), np.cos(theta), -st * np.cos(phi)), axis=-1)


def sh9_basis(d: np.ndarray) -> np.ndarray:
    """Real SH basis (bands 0-2) for unit vectors ``d`` (..., 3) -> (..., 9)."""
    x, y, z = d[..., 0], d[..., 1], d[..., 2]
    return np.stack([
        0.282095 * np.ones_like(x),
        0.488603 * y, 0.488603 * z, 0.488603 * x,
        1.092548 * x * y, 1.092548 * y * z, 0.315392 * (3 * z * z - 1), 1.092548 * x * z,
        0.546274 * (x * x - y * y),
    ], axis=-1)


def irradiance_sh(img: np.ndarray) -> np.ndarray:
    """(9, 3) coefficients c with ``E(n)/pi = sum c_i Y_i(n)`` (Ramamoorthi & Hanrahan 2001)."""
    h, w, _ = img.shape
    d = directions(h, w)
    solid = (2 * np.pi / w) * (np.pi / h) * np.sin((np.arange(h) + 0.5) / h * np.pi)[:, None]
    basis = sh9_basis(d) * solid[..., None]
    coeff = np.einsum("hwk,hwc->kc", basis, img.astype(np.float64))
    band = np.array([np.pi] + [2 * np.pi / 3] * 3 + [np.pi / 4] * 5) / np.pi
    return (coeff * band[:, None]).astype(np.float32)


def read_exr(src: bytes | Path) -> np.ndarray:
    """Read an RGB EXR (path or bytes) as float32 (h, w, 3), inf/NaN clamped."""
    import OpenEXR

    def _read(path: str) -> np.ndarray:
        with OpenEXR.File(path) as f:
            ch = f.channels()
            if "RGB" in ch:
                arr = ch["RGB"].pixels
            elif all(c in ch for c in "RGB"):
                arr = np.stack([ch[c].pixels for c in "RGB"], -1)
            else:
                raise ValueError(f"no RGB channels (found {sorted(ch)})")
        return np.asarray(arr, dtype=np.float32)

    try:
        if isinstance(src, (bytes, bytearray)):
            with tempfile.NamedTemporaryFile(suffix=".exr") as tmp:
                tmp.write(src)
                tmp.flush()
                arr = _read(tmp.name)
        else:
            arr = _read(str(src))
    except Exception as exc:  # OpenEXR raises plain exceptions for corrupt files
        raise T2SError(f"HDRI {src if isinstance(src, Path) else '(embedded EXR)'} is unreadable: {exc}",
                       "delete the cached HDRI folder and rerun t2s assets fetch") from exc
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[1] != 2 * arr.shape[0]:
        raise T2SError(f"HDRI has shape {arr.shape}, expected an equirect (h, 2h, 3) map")
    return np.nan_to_num(arr, nan=0.0, posinf=MAX_RADIANCE, neginf=0.0).clip(0, None)


def _downsample(img: np.ndarray, max_w: int) -> np.ndarray:
    while img.shape[1] > max_w:
        img = img.reshape(img.shape[0] // 2, 2, img.shape[1] // 2, 2, 3).mean(axis=(1, 3))
    return img


def describe(name: str, img: np.ndarray, source: str) -> tuple[np.ndarray, dict]:
    """Normalise an HDRI and compute its lighting metadata."""
    h, w, _ = img.shape
    weights = np.sin((np.arange(h) + 0.5) / h * np.pi)[:, None]
    lum = img @ np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
    # Sun: brightest cell of a coarse (16x32) map, upper hemisphere preferred by construction of TDW's filter.
    small = lum.reshape(16, h // 16, 32, w // 32).mean(axis=(1, 3))
    i, j = np.unravel_index(int(np.argmax(small)), small.shape)
    sun_dir = directions(16, 32)[i, j]
    mean = float((lum * weights).sum() / (weights.sum() * w))
    scale = TARGET_MEAN / max(mean, 1e-6)
    img = np.minimum(img * scale, MAX_RADIANCE)
    meta = {
        "name": name,
        "source": source,
        "license": "CC0-1.0",
        "indoor": name.split("_", 1)[-1] in INDOOR,
        "height": int(h),
        "width": int(w),
        "scale": scale,
        "sun_dir": [float(v) for v in sun_dir],
        "sh": irradiance_sh(img).tolist(),
    }
    return img.astype(np.float16), meta


def convert_hdris(sources: list[tuple[str, str, bytes | Path]], dest: Path) -> int:
    """Convert every (name, source, exr) into ``dest/<name>.npy`` + ``dest/index.json``."""
    dest.mkdir(parents=True, exist_ok=True)
    metas, errors = [], {}
    for name, source, exr in sources:
        try:
            img = _downsample(read_exr(exr), MAX_WIDTH)
        except T2SError as exc:
            errors[name] = exc.problem
            continue
        arr, meta = describe(name, img, source)
        with atomic_path(dest / f"{name}.npy") as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, arr)
        metas.append(meta)
    if not metas:
        raise T2SError("no HDRI could be converted", "delete the cache's assets folder and rerun t2s assets fetch")
    write_json(dest / "index.json", {"hdris": metas, "excluded": errors, "default": DEFAULT_HDRI})
    write_stamp(dest, n=len(metas))
    hdri_index.cache_clear()
    load_hdri.cache_clear()
    return len(metas)


def hdri_cache_ok(folder: Path) -> bool:
    """The converted HDRIs are complete: stamp, readable index, every map file present."""
    if not stamp_ok(folder):
        return False
    try:
        metas = json.loads((folder / "index.json").read_text())["hdris"]
        return all((folder / f"{m['name']}.npy").is_file() for m in metas)
    except (OSError, json.JSONDecodeError, KeyError, TypeError):
        return False


@dataclass(frozen=True)
class HDRI:
    name: str
    image: np.ndarray  # float16 (h, w, 3)
    sh: np.ndarray  # (9, 3) float32
    sun_dir: np.ndarray  # (3,)
    indoor: bool


def hdri_dir() -> Path:
    return cache_layout().hdri


@lru_cache(maxsize=4)
def hdri_index(folder: str | None = None) -> dict:
    path = Path(folder) if folder else hdri_dir()
    idx = path / "index.json"
    if not idx.is_file():
        raise T2SError(f"HDRIs are not fetched ({idx} missing)", "run: t2s assets fetch  (or make assets)")
    try:
        data = json.loads(idx.read_text())
        data["hdris"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise T2SError(f"the HDRI index {idx} is corrupt ({type(exc).__name__}: {exc})",
                       "run: t2s assets fetch  (it detects the damage and converts the HDRIs again)") from exc
    return data


def background_pool(folder: str | None = None) -> list[str]:
    """The HDRIs the background parameter cycles through: the outdoor ones (as the paper's filter)."""
    return [m["name"] for m in hdri_index(folder)["hdris"] if not m["indoor"]]


@lru_cache(maxsize=64)
def load_hdri(name: str, folder: str | None = None) -> HDRI:
    """Load one converted HDRI (cached per process)."""
    idx = hdri_index(folder)
    metas = {m["name"]: m for m in idx["hdris"]}
    if name not in metas:
        raise T2SError(f"unknown HDRI {name!r}", f"use one of: {', '.join(sorted(metas))}")
    path = (Path(folder) if folder else hdri_dir()) / f"{name}.npy"
    try:
        img = np.load(path)
    except Exception as exc:
        raise T2SError(f"HDRI file {path} is unreadable: {exc}", "rerun t2s assets fetch after deleting it") from exc
    m = metas[name]
    return HDRI(name, img, np.asarray(m["sh"], np.float32), np.asarray(m["sun_dir"], np.float32), m["indoor"])
