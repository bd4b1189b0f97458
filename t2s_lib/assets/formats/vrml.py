"""VRML 2.0 ``.wrl`` models as KiCad exports them (Debian ``kicad-packages3d``).

KiCad's StepUp exporter writes a flat list of ``Shape { appearance Appearance { material
DEF name Material { diffuseColor r g b ... } | material USE name } geometry IndexedFaceSet {
coordIndex [ i, j, k, -1, ... ] coord Coordinate { point [ x y z, ... ] } ... } }``. Each shape
becomes one part with its material colour (no textures). Faces are fan-triangulated. KiCad's
axes are z-up (the board plane is xy): they become y-up.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from . import RawPart

_NUM = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def _block(text: str, start: int) -> tuple[str, int]:
    """The text inside the bracket pair opening at or after ``start`` ([...] or {...})."""
    i = start
    while text[i] not in "[{":
        i += 1
    open_c = text[i]
    close_c = "]" if open_c == "[" else "}"
    depth, j = 0, i
    while j < len(text):
        c = text[j]
        if c == open_c:
            depth += 1
        elif c == close_c:
            depth -= 1
            if depth == 0:
                return text[i + 1:j], j + 1
        j += 1
    raise ValueError("unbalanced brackets in VRML file")


def _material(block: str) -> dict[str, Any]:
    def vec(key: str, n: int, default: list[float]) -> list[float]:
        m = re.search(key + r"\s+" + r"\s+".join([_NUM.pattern] * n), block)
        return [float(x) for x in _NUM.findall(m.group(0)[len(key):])][:n] if m else default

    rgb = vec("diffuseColor", 3, [0.8, 0.8, 0.8])
    trans = vec("transparency", 1, [0.0])[0]
    shin = vec("shininess", 1, [0.2])[0]
    spec = vec("specularColor", 3, [0.0, 0.0, 0.0])
    metallic = 1.0 if np.mean(spec) > 0.5 and shin > 0.5 else 0.0
    return {"base_color": [*rgb, 1.0 - trans], "metallic": metallic,
            "roughness": float(np.clip(1.0 - shin, 0.15, 1.0))}


def load_vrml(src: str, **_: Any) -> list[RawPart]:
    """Parse the Shapes of a KiCad VRML file into parts (one per Shape)."""
    text = Path(src).read_text(errors="replace")
    if not text.startswith("#VRML V2.0"):
        raise ValueError("not a VRML 2.0 file")
    materials: dict[str, dict[str, Any]] = {}
    parts: list[RawPart] = []
    pos = 0
    while True:
        k = text.find("Shape", pos)
        if k < 0:
            break
        body, pos = _block(text, k)
        mat = {"base_color": [0.8, 0.8, 0.8, 1.0], "metallic": 0.0, "roughness": 0.6}
        m = re.search(r"material\s+DEF\s+(\S+)\s+Material", body)
        if m:
            mblock, _ = _block(body, m.end())
            mat = _material(mblock)
            materials[m.group(1)] = mat
        else:
            u = re.search(r"material\s+USE\s+(\S+)", body)
            if u and u.group(1) in materials:
                mat = materials[u.group(1)]
            else:
                u = re.search(r"Material\s*\{", body)
                if u:
                    mat = _material(_block(body, u.end() - 1)[0])
        g = body.find("IndexedFaceSet")
        if g < 0:
            continue
        ci = re.search(r"coordIndex", body[g:])
        pt = re.search(r"point", body[g:])
        if not ci or not pt:
            continue
        idx_text, _ = _block(body, g + ci.end())
        pts_text, _ = _block(body, g + pt.end())
        pts = np.array(_NUM.findall(pts_text), np.float64)
        if len(pts) < 9 or len(pts) % 3:
            continue
        pts = pts.reshape(-1, 3)
        idx = np.array([int(float(x)) for x in _NUM.findall(idx_text)], np.int64)
        faces: list[list[int]] = []
        poly: list[int] = []
        for v in idx:
            if v < 0:
                faces += [[poly[0], poly[t], poly[t + 1]] for t in range(1, len(poly) - 1)]
                poly = []
            else:
                poly.append(int(v))
        faces += [[poly[0], poly[t], poly[t + 1]] for t in range(1, len(poly) - 1)]
        if not faces:
            continue
        f = np.asarray(faces, np.int64)
        if f.max() >= len(pts):
            raise ValueError("VRML face index out of range")
        yup = np.stack([pts[:, 0], pts[:, 2], -pts[:, 1]], 1)  # KiCad z-up -> y-up
        parts.append(RawPart(yup, f, None, None, mat, None))
    if not parts:
        raise ValueError("no IndexedFaceSet geometry")
    return parts
