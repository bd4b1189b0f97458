"""Quake II MD2 models as shipped by UFO:AI (Debian ``ufoai-data``, ``base/0models.pk3``).

Header (17 little-endian int32): ``IDP2``, version 8, skin width/height, frame size, counts of
skins/vertices/texcoords/triangles/glcmds/frames, offsets of skins/texcoords/triangles/frames/
glcmds/end. Texcoords are int16 pixels (v down), triangles index vertices and texcoords
separately, a frame is scale[3], translate[3], name[16], then per vertex 3 uint8 + a normal index.
Frame 0 is used. Quake's z-up axes become y-up; the skin is the file named in the header (or, as
UFO:AI does, the image beside the model with the model's name), PNG/JPG/TGA.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np

from . import RawPart, open_image

IMAGE_SUFFIXES = (".png", ".jpg", ".tga")


def _skin(path: Path, names: list[str], root: Path | None) -> Any:
    cands: list[Path] = []
    for name in names:
        if name.startswith(".") and "/" not in name:  # UFO:AI: ".skin" = an image beside the model
            name = name[1:]
        stem = Path(name.replace("\\", "/"))
        for base in ([root] if root else []) + [path.parent]:
            cands += [base / stem.with_suffix(s) for s in IMAGE_SUFFIXES] + [base / stem]
        cands += [path.parent / Path(stem.name).with_suffix(s) for s in IMAGE_SUFFIXES]
    cands += [path.with_suffix(s) for s in IMAGE_SUFFIXES]
    for c in cands:
        if c.is_file():
            return open_image(c)
    return None


def load_md2(src: str, *, root: str | None = None, require_texture: bool = True, **_: Any) -> list[RawPart]:
    """Parse frame 0 of an MD2 model into one textured part."""
    path = Path(src)
    data = path.read_bytes()
    if len(data) < 68 or data[:4] != b"IDP2":
        raise ValueError("not an MD2 file (bad magic)")
    h = struct.unpack_from("<16i", data, 4)
    version, sw, sh, framesize, nskins, nxyz, nst, ntris, _, nframes, oskins, ost, otris, oframes, _, oend = h
    if version != 8 or nframes < 1 or nxyz < 3 or ntris < 1 or oend > len(data):
        raise ValueError(f"unsupported or truncated MD2 (version {version}, {nframes} frames, {ntris} triangles)")
    skins = [data[oskins + 64 * k:oskins + 64 * (k + 1)].split(b"\0")[0].decode("latin-1") for k in range(nskins)]
    st = np.frombuffer(data, "<i2", nst * 2, ost).reshape(-1, 2).astype(np.float64)
    tris = np.frombuffer(data, "<i2", ntris * 6, otris).reshape(-1, 6).astype(np.int64)
    scale = np.array(struct.unpack_from("<3f", data, oframes))
    trans = np.array(struct.unpack_from("<3f", data, oframes + 12))
    raw = np.frombuffer(data, np.uint8, nxyz * 4, oframes + 40).reshape(-1, 4)[:, :3].astype(np.float64)
    xyz = raw * scale + trans
    xyz = np.stack([xyz[:, 0], xyz[:, 2], -xyz[:, 1]], 1)  # Quake z-up -> y-up (a proper rotation)
    vi, ti = tris[:, :3], tris[:, 3:]
    if vi.min() < 0 or vi.max() >= nxyz or (nst and (ti.min() < 0 or ti.max() >= nst)):
        raise ValueError("MD2 triangle index out of range")
    pairs = np.stack([vi.ravel(), ti.ravel()], 1)
    uniq, inv = np.unique(pairs, axis=0, return_inverse=True)
    pos = xyz[uniq[:, 0]]
    uv = st[uniq[:, 1]] / np.array([max(sw, 1), max(sh, 1)]) if nst else np.zeros((len(uniq), 2))
    uv = np.stack([uv[:, 0], 1.0 - uv[:, 1]], 1)  # v down -> OpenGL v up
    faces = inv.reshape(-1, 3)[:, [0, 2, 1]]  # Quake's clockwise front faces -> counter-clockwise
    image = _skin(path, skins, Path(root) if root else None)
    if image is None and require_texture:
        raise ValueError(f"skin missing (header names {skins or 'none'}; no image beside the model)")
    return [RawPart(pos, faces, None, uv, {"base_color": [0.8, 0.8, 0.8, 1.0], "metallic": 0.0, "roughness": 0.7},
                    image)]
