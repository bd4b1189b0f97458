"""AC3D ``.ac`` models (FlightGear scenery, Debian ``flightgear-data-models``).

The text format: ``AC3Db`` header, ``MATERIAL`` lines (rgb/amb/emis/spec/shi/trans), then a tree
of ``OBJECT``s with optional ``texture``, ``texrep``, ``texoff``, ``rot`` (3x3), ``loc``,
``numvert`` vertex lines and ``numsurf`` surfaces (``SURF`` flags, ``mat`` index, ``refs`` lines
``vertex u v``), then ``kids``. A child's vertices are placed by its parent's rot/loc chain.
Polygons (SURF type 0) are fan-triangulated; lines (types 1, 2) are skipped. Faces are grouped
into one part per (material, texture). Textures (PNG or SGI ``.rgb``) are looked up next to the
file; a missing texture makes the model unusable (so it is excluded with the reason).
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import numpy as np

from . import RawPart, open_image


class _Reader:
    def __init__(self, text: str):
        self.lines = text.splitlines()
        self.i = 0

    def next(self) -> str:
        while self.i < len(self.lines):
            line = self.lines[self.i].strip()
            self.i += 1
            if line:
                return line
        raise ValueError("unexpected end of AC3D file")


def _material(line: str) -> dict[str, Any]:
    tok = shlex.split(line)
    vals: dict[str, list[float]] = {}
    k = 2
    while k < len(tok):
        key = tok[k]
        n = 3 if key in ("rgb", "amb", "emis", "spec") else 1
        vals[key] = [float(x) for x in tok[k + 1:k + 1 + n]]
        k += 1 + n
    rgb = vals.get("rgb", [0.8, 0.8, 0.8])
    trans = vals.get("trans", [0.0])[0]
    shi = vals.get("shi", [20.0])[0]
    return {"base_color": [*rgb, 1.0 - trans], "metallic": 0.0,
            "roughness": float(np.clip(np.sqrt(2.0 / (shi + 2.0)), 0.08, 1.0))}


def load_ac3d(src: str, *, require_textures: bool = True, texture_dirs: list[str] | tuple[str, ...] = (),
              **_: Any) -> list[RawPart]:
    """Parse an AC3D file into one part per (material, texture).

    ``texture_dirs``: extra folders (glob patterns relative to the file's folder, searched in
    sorted order) for textures, e.g. ``../Textures/*`` for FlightGear AI liveries.
    """
    path = Path(src)
    text = path.read_text(errors="replace")
    if not text.startswith("AC3D"):
        raise ValueError("not an AC3D file (no AC3D header)")
    rd = _Reader(text)
    rd.next()
    materials: list[dict[str, Any]] = []
    groups: dict[tuple[int, str], list] = {}  # (material, texture) -> [positions list, uvs list]
    textures: dict[str, Any] = {}

    def texture(name: str) -> Any:
        if name not in textures:
            cand = [path.parent / name, path.parent / Path(name).name]
            for pattern in texture_dirs:
                cand += [Path(d) / Path(name).name for d in sorted(path.parent.glob(pattern))]
            found = next((c for c in cand if c.is_file()), None)
            if found is None:
                if require_textures:
                    raise ValueError(f"texture {name!r} missing")
                textures[name] = None
            else:
                textures[name] = open_image(found)
        return textures[name]

    def read_object(parent: np.ndarray) -> None:
        line = rd.next()
        if not line.startswith("OBJECT"):
            raise ValueError(f"expected OBJECT, got {line[:40]!r}")
        rot, loc = np.eye(3), np.zeros(3)
        tex_name, rep, off = "", np.ones(2), np.zeros(2)
        verts = np.zeros((0, 3))
        local = None
        while True:
            line = rd.next()
            key = line.split(None, 1)[0]
            if key == "name" or key == "crease" or key == "url" or key == "subdiv" or key == "hidden" \
                    or key == "locked" or key == "folded":
                continue
            if key == "data":
                n = int(line.split()[1])
                consumed = 0
                while consumed < n and rd.i < len(rd.lines):  # the data block may span lines
                    consumed += len(rd.lines[rd.i]) + 1
                    rd.i += 1
                continue
            if key == "texture":
                tex_name = shlex.split(line)[1] if len(shlex.split(line)) > 1 else ""
            elif key == "texrep":
                rep = np.array([float(x) for x in line.split()[1:3]])
            elif key == "texoff":
                off = np.array([float(x) for x in line.split()[1:3]])
            elif key == "rot":
                rot = np.array([float(x) for x in line.split()[1:10]]).reshape(3, 3)
            elif key == "loc":
                loc = np.array([float(x) for x in line.split()[1:4]])
            elif key == "numvert":
                n = int(line.split()[1])
                verts = np.array([[float(x) for x in rd.next().split()[:3]] for _ in range(n)]).reshape(-1, 3)
            elif key == "numsurf":
                m = int(line.split()[1])
                local = np.eye(4)
                local[:3, :3], local[:3, 3] = rot, loc
                world = parent @ local
                wv = verts @ world[:3, :3].T + world[:3, 3] if len(verts) else verts
                for _ in range(m):
                    surf = rd.next()
                    if not surf.startswith("SURF"):
                        raise ValueError(f"expected SURF, got {surf[:40]!r}")
                    flags = int(surf.split()[1], 0)
                    mat_idx, refs = 0, []
                    while True:
                        line2 = rd.next()
                        k2 = line2.split()[0]
                        if k2 == "mat":
                            mat_idx = int(line2.split()[1])
                        elif k2 == "refs":
                            nr = int(line2.split()[1])
                            for _ in range(nr):
                                r = rd.next().split()
                                refs.append((int(r[0]), float(r[1]) if len(r) > 1 else 0.0,
                                             float(r[2]) if len(r) > 2 else 0.0))
                            break
                    if flags & 0xF != 0 or len(refs) < 3:
                        continue  # lines or degenerate polygons
                    idx = [r[0] for r in refs]
                    if max(idx) >= len(wv):
                        raise ValueError("AC3D surface refers to a missing vertex")
                    tex_obj = texture(tex_name) if tex_name else None
                    gkey = (mat_idx, tex_name if tex_obj is not None else "")
                    g = groups.setdefault(gkey, [[], []])
                    uv = np.array([[r[1], r[2]] for r in refs]) * rep + off
                    for t in range(1, len(refs) - 1):  # fan triangulation
                        for c in (0, t, t + 1):
                            g[0].append(wv[idx[c]])
                            g[1].append(uv[c])
            elif key == "kids":
                if local is None:
                    local = np.eye(4)
                    local[:3, :3], local[:3, 3] = rot, loc
                for _ in range(int(line.split()[1])):
                    read_object(parent @ local)
                return
            elif key.startswith("MATERIAL") or key.startswith("OBJECT"):
                raise ValueError(f"malformed AC3D object (unexpected {key})")

    line = rd.next()
    while line.startswith("MATERIAL"):
        materials.append(_material(line))
        line = rd.next()
    rd.i -= 1
    read_object(np.eye(4))
    parts = []
    for (mat_idx, tex_name), (pos, uv) in groups.items():
        if not pos:
            continue
        pos_a = np.asarray(pos, np.float64)
        faces = np.arange(len(pos_a)).reshape(-1, 3)
        mat = dict(materials[mat_idx]) if mat_idx < len(materials) else {"base_color": [0.8, 0.8, 0.8, 1.0]}
        parts.append(RawPart(pos_a, faces, None, np.asarray(uv, np.float64), mat,
                             textures.get(tex_name) if tex_name else None))
    if not parts:
        raise ValueError("no polygons")
    return parts
