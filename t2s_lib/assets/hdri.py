"""HDRI environment maps: converted once from EXR to float16 arrays plus lighting metadata.

Equirectangular convention used everywhere (numpy and shaders): for a world direction ``d``
(y up), ``u = 0.5 + atan2(d.x, -d.z) / 2pi`` and ``v = acos(d.y) / pi``; row 0 is the zenith.

Conversion (:func:`convert_hdris`), per map:

1. **Artefact repair** (:func:`repair_artifacts`). The sources are lossy (DWAB) EXRs; the block
   transform overflows on the sun, leaving 6-8 px blocks where one channel holds the whole value
   (pmndrs_park's sun: R = G = 0, B = 11800 with -1876 ringing beside it; blender_sunset's: B = 0).
   Such pixels (very bright, with a channel negative or < 2 % of the brightest) and the negative
   ringing around them are re-filled from their clean surroundings (harmonic in-painting), and
   the sun core is put back as a disc with the radiance of its brightest channel and the colour of
   the clean halo around it, moved half-way to white. :func:`artifact_mask` is the check.
2. **Statistics from the map itself** (no names): median radiance of the sky (elevation > 15 deg)
   and of the ground (< -15 deg) as shot, the blue/red ratio of the zenith cap (> 45 deg), the
   sun (the brightest small region; its elevation, and its peak over the median sky).
3. **Decisions**: *indoor* unless the sky is >= 1.5x brighter than the ground and the zenith has
   daylight-sky colour (blue/red >= 1.05; lit ceilings are neutral or warm); *night* when the
   median sky radiance as shot is < 0.1 (Poly Haven maps are scene-referred: daylight skies
   measure 0.14-1.8 here, night skies 0.06-0.08); *sun elevation* in the paper's range. The paper
   kept TDW skyboxes with ``location != interior`` and ``sun_elevation >= 120``; TDW's value is
   the pitch of Unity's sun light (its records: noon_grass 90, kiara_5_noon 102, sunsets
   145-161), i.e. 90 = overhead and 180 = horizon, so ``>= 120`` means a sun at most 60 deg
   above the horizon (:data:`MAX_SUN_ELEVATION`); we also require it at or above the horizon and
   daylight (the paper's 43 include three night maps, which TDW lit with a full sun anyway).
   A lower-resolution duplicate of another map is dropped.
4. **Normalisation** to :data:`TARGET_MEAN` and the :data:`MAX_RADIANCE` clip.

Per HDRI the index stores the 9 spherical-harmonic coefficients of the *irradiance* (already
convolved with the cosine lobe and divided by pi, so the shader's diffuse term is
``albedo * sum(c_i * Y_i(n))``), the sun direction (the renderer's default sun, as TDW sets it
from the skybox record), every statistic above and the decision with its reason.
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
from ..files import atomic_path, write_json
from ..paths import cache_layout

#: Bump when the conversion changes: a cache converted by another version is converted again.
HDRI_FORMAT = 2
#: Kept in float16 and used for lighting; the sun disc is carried by the directional light.
MAX_RADIANCE = 64.0
#: Every map is scaled to this mean radiance so night and noon maps light objects comparably.
TARGET_MEAN = 0.6
#: Largest width kept (the sources offer 512 or 1024 px; nothing is downsampled today).
MAX_WIDTH = 4096
#: The fixed map when the background parameter is off (the paper: fish_hoek_beach_4k, a sunny beach).
DEFAULT_HDRI = "pmndrs_park"
LUMINANCE = np.array([0.2126, 0.7152, 0.0722], np.float32)

# --- classification thresholds (statistics of each map as shot; see the module doc) ------------
#: Outdoor needs the sky (> 15 deg) this much brighter than the ground (< -15 deg), medians ...
OUTDOOR_SKY_OVER_GROUND = 1.5
#: ... and a zenith cap (> 45 deg) with daylight-sky colour: median blue / red at least this.
OUTDOOR_ZENITH_BLUE_RED = 1.05
#: Night: median sky radiance as shot below this.
NIGHT_SKY_RADIANCE = 0.1
#: A visible sun: its peak (3x3 px mean) at least this many times the median sky.
SUN_VISIBLE_RATIO = 100.0
#: The light direction is the brightest small region when it stands out this much (a sun glimpsed
#: through clouds or leaves), else the brightest ~11-degree region (overcast skies).
SUN_LOCAL_RATIO = 20.0
#: TDW's ``sun_elevation >= 120`` (light pitch, 90 = overhead, 180 = horizon) = at most 60 deg up.
MAX_SUN_ELEVATION = 60.0
MIN_SUN_ELEVATION = 0.0
#: Two maps whose 64x32 log-luminance thumbnails correlate above this (at the best yaw) are one map.
DUPLICATE_CORRELATION = 0.98

# --- artefact repair / check ------------------------------------------------------------------
#: Pixels brighter than this many times the map's median radiance can hold a broken sun block.
HOT_OVER_MEDIAN = 30.0
#: A channel below this fraction of the brightest one in a very bright pixel: a broken block.
PURE_CHANNEL = 0.02
#: The converted-map check: a pixel with a channel >= this (about 7x the mean radiance) ...
ARTIFACT_BRIGHT = 4.0
#: ... whose weakest channel is below this fraction of its strongest is a pure-channel pixel.
ARTIFACT_CHROMA = 0.05


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


def read_exr(src: bytes | Path, *, raw: bool = False) -> np.ndarray:
    """Read an RGB EXR (path or bytes) as float32 (h, w, 3), inf/NaN clamped.

    Negative values (the ringing of the lossy sources) are clipped to 0 unless ``raw``.
    """
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
    arr = np.nan_to_num(arr, nan=0.0, posinf=65504.0, neginf=-65504.0)
    return arr if raw else arr.clip(0, None)


def _downsample(img: np.ndarray, max_w: int) -> np.ndarray:
    while img.shape[1] > max_w:
        img = img.reshape(img.shape[0] // 2, 2, img.shape[1] // 2, 2, 3).mean(axis=(1, 3))
    return img


def _dilate(mask: np.ndarray, r: int) -> np.ndarray:
    """Square dilation by ``r`` px, wrapping around the 360-degree seam (not over the poles)."""
    out = mask.copy()
    for _ in range(r):
        m = out.copy()
        m[1:] |= out[:-1]
        m[:-1] |= out[1:]
        out = m | np.roll(m, 1, 1) | np.roll(m, -1, 1)
    return out


def artifact_mask(img: np.ndarray) -> np.ndarray:
    """Pixels of a *converted* map (normalised radiance) that look like a broken lossy block.

    Bright (a channel >= :data:`ARTIFACT_BRIGHT`, about 7x the mean radiance) and either nearly one
    pure primary (the second-strongest channel < :data:`ARTIFACT_CHROMA` of the strongest: the
    blue sun square of the unrepaired pmndrs_park) or with a channel at zero (< 0.1 % of the
    strongest: ringing clipped at 0, the blue-less sun of the unrepaired blender_sunset). Real
    light sources never are: warm lamps, sodium lights, sunset halos and blue LEDs in these maps
    keep a second channel at >= 15 % and no channel at zero.
    """
    x = np.sort(np.asarray(img, np.float32), axis=-1)
    mn, mid, mx = x[..., 0], x[..., 1], x[..., 2]
    return (mx >= ARTIFACT_BRIGHT) & ((mid < ARTIFACT_CHROMA * mx) | (mn <= 1e-3 * mx))


def artifact_blocks(img: np.ndarray, min_pixels: int = 3) -> list[int]:
    """Sizes of the connected pure-channel blocks (>= ``min_pixels``) of a converted map; [] when clean."""
    from scipy import ndimage

    lab, n = ndimage.label(artifact_mask(img), structure=np.ones((3, 3)))
    if not n:
        return []
    sizes = np.bincount(lab.ravel())[1:]
    return sorted(int(v) for v in sizes if v >= min_pixels)


def _inpaint(img: np.ndarray, bad: np.ndarray) -> np.ndarray:
    """Fill ``bad`` pixels from the valid ones around them (normalised convolution at growing radii)."""
    from scipy import ndimage

    out = img.copy()
    valid = (~bad).astype(np.float32)
    todo = bad.copy()
    mode = ("nearest", "wrap")
    for sigma in (0.7, 1.5, 3.0, 6.0, 12.0, 24.0):
        if not todo.any():
            break
        den = ndimage.gaussian_filter(valid, sigma, mode=mode)
        ok = todo & (den > 0.05)
        if sigma == 24.0:
            ok = todo & (den > 0)
        for c in range(3):
            num = ndimage.gaussian_filter(img[..., c] * valid, sigma, mode=mode)
            out[..., c][ok] = num[ok] / den[ok]
        todo &= ~ok
    return out


def repair_artifacts(raw: np.ndarray) -> tuple[np.ndarray, int]:
    """Repair the broken pixels of a raw (unclipped) lossy EXR; returns (clean map >= 0, pixels rewritten).

    Broken: (1) any pixel with a negative channel (or -0: the decoder's clamp), which radiance
    cannot be: the ringing of the block transform around bright edges; (2) a very bright pixel
    (> :data:`HOT_OVER_MEDIAN` x the median) that is nearly one primary (a channel below
    :data:`PURE_CHANNEL` of its brightest): a block that overflowed; (3) a hole, ringing clipped to
    about zero, below 0.2 % of its brightest neighbour when that one is very bright (natural edges
    in these maps stay above that; the blocks hold exact zeros); (4) within 2 px of a broken core
    of (2)/(3) that is 10x brighter still (a sun or a lamp), pixels with a channel below a quarter
    of the surroundings' (ringing that stayed positive). Broken pixels are re-filled from the
    valid ones around them (normalised convolution); the broken cores of (2)/(3) then get back
    the radiance of their brightest channel, in the colour of the clean halo around them moved
    half-way to white, so a broken sun becomes a bright, near-white disc of its original size.
    """
    from scipy import ndimage

    a = np.asarray(raw, np.float32)
    mx, mn = a.max(-1), a.min(-1)
    mag = np.abs(a).max(-1)
    pos = np.clip(a, 0, None)
    lum = pos @ LUMINANCE
    ref = max(float(np.median(lum)), 1e-4)
    hot = mag > HOT_OVER_MEDIAN * ref
    neg = np.signbit(a).any(-1)
    near = ndimage.maximum_filter(lum, size=3, mode=("nearest", "wrap"))
    core = (hot & (mn < PURE_CHANNEL * mx)) | ((near > HOT_OVER_MEDIAN * ref) & (lum < 0.002 * near))
    bad = neg | core
    if not bad.any():
        return pos, 0
    labels, _ = ndimage.label(_dilate(core, 2), structure=np.ones((3, 3)))
    h, w, _ = a.shape
    suns = []
    for k, sl in enumerate(ndimage.find_objects(labels), start=1):
        if sl is None:
            continue
        r0, r1 = max(sl[0].start - 2, 0), min(sl[0].stop + 2, h)
        cols = np.arange(sl[1].start - 2, sl[1].stop + 2) % w
        comp = labels[r0:r1][:, cols] == k
        win = a[r0:r1][:, cols]
        if mag[r0:r1][:, cols][comp].max() > 10 * HOT_OVER_MEDIAN * ref:
            ring = _dilate(comp, 2) & ~comp & ~bad[r0:r1][:, cols]
            if ring.any():
                dips = comp & (win < 0.25 * np.median(pos[r0:r1][:, cols][ring], axis=0)).any(-1)
                sub = bad[r0:r1]
                sub[:, cols] |= dips
                bad[r0:r1] = sub
        suns.append((r0, r1, cols, comp))
    out = _inpaint(pos, bad)
    for r0, r1, cols, comp in suns:
        cmask = comp & core[r0:r1][:, cols] & hot[r0:r1][:, cols]
        if not cmask.any():
            continue
        peak = np.where(cmask, mx[r0:r1][:, cols], 0.0)
        disc = cmask & (peak > 0.25 * peak.max())
        ring = _dilate(comp, 2) & ~comp & ~bad[r0:r1][:, cols]
        halo = pos[r0:r1][:, cols][ring].mean(0) if ring.any() else np.ones(3, np.float32)
        colour = 0.5 + 0.5 * halo / max(float(halo.max()), 1e-6)
        win = out[r0:r1][:, cols]
        win[disc] += np.maximum(peak[disc] - win[disc].max(-1), 0)[:, None] * colour
        sub = out[r0:r1]
        sub[:, cols] = win
        out[r0:r1] = sub
    return np.clip(out, 0, None), int(bad.sum())


def _thumb(img: np.ndarray) -> np.ndarray:
    """64x32 log-luminance thumbnail (duplicate detection)."""
    h = img.shape[0]
    f = h // 32
    t = img[: 32 * f, : 64 * f].reshape(32, f, 64, f, 3).mean(axis=(1, 3)) @ LUMINANCE
    return np.log(t + 1e-3).astype(np.float32)


def _sun(img: np.ndarray, lum: np.ndarray, sky: float) -> dict:
    """The sun: the brightest 3x3-mean region above -10 deg; its direction, elevation, peak / sky."""
    from scipy import ndimage

    h, w = lum.shape
    el = 90.0 - (np.arange(h) + 0.5) / h * 180.0
    smooth = ndimage.uniform_filter(lum, size=3, mode=("nearest", "wrap"))
    smooth[el < -10] = 0
    i, j = np.unravel_index(int(np.argmax(smooth)), smooth.shape)
    ratio = float(smooth[i, j] / max(sky, 1e-6))
    visible = ratio >= SUN_VISIBLE_RATIO
    if ratio >= SUN_LOCAL_RATIO:
        # luminance-weighted centre of the disc (pixels above half the peak within +-8 px)
        rows = np.arange(max(i - 8, 0), min(i + 9, h))
        cols = np.arange(j - 8, j + 9) % w
        win = smooth[rows][:, cols]
        wts = np.where(win >= 0.5 * smooth[i, j], win, 0.0)
        d = directions(h, w)[rows][:, cols]
        v = (d * wts[..., None]).sum((0, 1))
    else:
        # no distinct sun (overcast, night, indoor): the brightest ~11-degree region lights the object
        cells = lum[: 16 * (h // 16), : 32 * (w // 32)].reshape(16, h // 16, 32, w // 32).mean(axis=(1, 3))
        ci, cj = np.unravel_index(int(np.argmax(cells[:9])), cells[:9].shape)  # rows down to -11 deg
        v = directions(16, 32)[ci, cj]
    v = v / np.linalg.norm(v)
    return {"sun_dir": [float(x) for x in v], "sun_elevation": round(float(np.degrees(np.arcsin(v[1]))), 1),
            "sun_to_sky": round(ratio, 1), "sun_visible": bool(visible)}


def map_statistics(img: np.ndarray) -> dict:
    """The statistics the classification uses, from a repaired map *as shot* (before normalisation)."""
    h, w, _ = img.shape
    lum = img @ LUMINANCE
    el = 90.0 - (np.arange(h) + 0.5) / h * 180.0
    sky = float(np.median(lum[el > 15]))
    ground = float(np.median(lum[el < -15]))
    zen = np.median(img[el > 45].reshape(-1, 3), axis=0)
    stats = {"sky_radiance": round(sky, 4), "ground_radiance": round(ground, 4),
             "sky_over_ground": round(sky / max(ground, 1e-6), 3),
             "zenith_blue_red": round(float(zen[2] / max(zen[0], 1e-6)), 3)}
    stats.update(_sun(img, lum, sky))
    return stats


def classify(stats: dict) -> dict:
    """Indoor / night / pool decision (and the reason when excluded) from :func:`map_statistics`.

    ``night`` is decided for outdoor maps only (an indoor map's "sky" is its ceiling): None indoors.
    """
    reasons = []
    if stats["sky_over_ground"] < OUTDOOR_SKY_OVER_GROUND:
        reasons.append(f"indoor: sky/ground {stats['sky_over_ground']:.2f} < {OUTDOOR_SKY_OVER_GROUND}")
    if stats["zenith_blue_red"] < OUTDOOR_ZENITH_BLUE_RED:
        reasons.append(f"indoor: zenith blue/red {stats['zenith_blue_red']:.2f} < {OUTDOOR_ZENITH_BLUE_RED}")
    indoor = bool(reasons)
    night = None if indoor else bool(stats["sky_radiance"] < NIGHT_SKY_RADIANCE)
    if night:
        reasons.append(f"night: sky radiance {stats['sky_radiance']:.3f} < {NIGHT_SKY_RADIANCE}")
    el = stats["sun_elevation"]
    if not indoor and not MIN_SUN_ELEVATION <= el <= MAX_SUN_ELEVATION:
        reasons.append(f"sun elevation {el:.0f} deg outside [{MIN_SUN_ELEVATION:.0f}, {MAX_SUN_ELEVATION:.0f}]")
    return {"indoor": indoor, "night": night, "in_pool": not reasons, "excluded": "; ".join(reasons) or None}


def describe(name: str, img: np.ndarray, source: str, *, repaired: int = 0) -> tuple[np.ndarray, dict]:
    """Statistics, decision and lighting metadata of a repaired map; returns (normalised float16 map, meta)."""
    h, w, _ = img.shape
    stats = map_statistics(img)
    weights = np.sin((np.arange(h) + 0.5) / h * np.pi)[:, None]
    mean = float(((img @ LUMINANCE) * weights).sum() / (weights.sum() * w))
    scale = TARGET_MEAN / max(mean, 1e-6)
    out = np.minimum(img * scale, MAX_RADIANCE)
    meta = {
        "name": name,
        "source": source,
        "license": "CC0-1.0",
        "height": int(h),
        "width": int(w),
        # effective resolution: degrees per texel, and the output size (60-degree view) at which one
        # texel covers one output pixel: larger outputs magnify the map
        "deg_per_texel": round(360.0 / w, 3),
        "native_output_px": int(w // 6),
        "scale": scale,
        "repaired_pixels": int(repaired),
        **stats,
        **classify(stats),
        "sh": irradiance_sh(out).tolist(),
    }
    meta["artifact_blocks"] = artifact_blocks(out.astype(np.float16))
    return out.astype(np.float16), meta


def _drop_duplicates(metas: list[dict], thumbs: dict[str, np.ndarray]) -> None:
    """Mark the lower-resolution copy of two maps that are the same capture (in place)."""
    for i, a in enumerate(metas):
        for b in metas[i + 1:]:
            ta, tb = thumbs[a["name"]], thumbs[b["name"]]
            corr = max(float(np.corrcoef(ta.ravel(), np.roll(tb, k, 1).ravel())[0, 1]) for k in range(ta.shape[1]))
            if corr < DUPLICATE_CORRELATION:
                continue
            keep, drop = (a, b) if (a["width"], b["name"]) >= (b["width"], a["name"]) else (b, a)
            drop["duplicate_of"] = keep["name"]
            if drop["in_pool"]:
                drop["in_pool"] = False
                drop["excluded"] = f"duplicate of {keep['name']} ({keep['width']} px; correlation {corr:.3f})"


def convert_hdris(sources: list[tuple[str, str, bytes | Path]], dest: Path) -> int:
    """Convert every (name, source, exr) into ``dest/<name>.npy`` + ``dest/index.json``."""
    dest.mkdir(parents=True, exist_ok=True)
    metas, errors, thumbs = [], {}, {}
    for name, source, exr in sources:
        try:
            raw = _downsample(read_exr(exr, raw=True), MAX_WIDTH)
        except T2SError as exc:
            errors[name] = exc.problem
            continue
        img, repaired = repair_artifacts(raw)
        arr, meta = describe(name, img, source, repaired=repaired)
        thumbs[name] = _thumb(img)
        with atomic_path(dest / f"{name}.npy") as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, arr)
        metas.append(meta)
    if not metas:
        raise T2SError("no HDRI could be converted", "delete the cache's assets folder and rerun t2s assets fetch")
    _drop_duplicates(metas, thumbs)
    default = DEFAULT_HDRI
    pool = [m for m in metas if m["in_pool"]]
    if not any(m["name"] == default for m in pool) and pool:  # a partial source set: the best sunny map in the pool
        default = max(pool, key=lambda m: (m["sun_visible"], m["width"], m["name"]))["name"]
    write_json(dest / "index.json", {
        "hdris": metas, "excluded": errors, "default": default,
        "pool_rule": {"outdoor": f"sky/ground >= {OUTDOOR_SKY_OVER_GROUND} and zenith blue/red >= {OUTDOOR_ZENITH_BLUE_RED}",
                      "day": f"median sky radiance >= {NIGHT_SKY_RADIANCE}",
                      "sun_elevation": [MIN_SUN_ELEVATION, MAX_SUN_ELEVATION],
                      "tdw_equivalent": "location != interior and sun_elevation >= 120 (Unity pitch: 90 overhead, 180 horizon)"}})
    write_stamp(dest, n=len(metas), hdri_format=HDRI_FORMAT)
    hdri_index.cache_clear()
    load_hdri.cache_clear()
    return len(metas)


def hdri_cache_ok(folder: Path) -> bool:
    """The converted HDRIs are complete: stamp, readable index, every map file present."""
    if not stamp_ok(folder):
        return False
    try:
        if json.loads((folder / ".done.json").read_text()).get("hdri_format") != HDRI_FORMAT:
            return False  # converted by another version of the conversion: convert again
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
    """The HDRIs the background parameter cycles through: outdoor, daytime, sun at most 60 degrees up
    (the paper's filter, decided per map from its statistics; see the module doc)."""
    return [m["name"] for m in hdri_index(folder)["hdris"] if m["in_pool"]]


def hdri_summary(folder: str | None = None) -> list[dict]:
    """One row per converted HDRI: source, resolution, the statistics and the pool decision (``t2s assets info``)."""
    idx = hdri_index(folder)
    keys = ("name", "source", "width", "height", "native_output_px", "indoor", "night", "sun_elevation", "sun_visible",
            "sun_to_sky", "sky_radiance", "sky_over_ground", "zenith_blue_red", "repaired_pixels", "artifact_blocks",
            "in_pool", "excluded")
    return [{**{k: m.get(k) for k in keys}, "default": m["name"] == idx["default"]} for m in idx["hdris"]]


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
