"""0 A.D. models: actor XML -> PMD binary meshes + DDS textures, read straight from ``public.zip``.

0 A.D. (Debian ``0ad-data``) ships its art in ``mods/public/public.zip``: actors
(``art/actors/**.xml``) name a mesh (``art/meshes/<m>.dae`` -> pre-converted
``<m>.dae.cached.pmd``), textures (``art/textures/skins/<t>.png`` -> ``<t>.png.cached.dds``) and
props (other actors attached at named prop points of the mesh). An actor is built from groups of
variants; like the game with a fixed seed we take the first variant of every group, following
``file=`` references into ``art/variants/``.

PMD (version 3/4) layout, little endian::

    "PSMD" u32 version, u32 data_size, u32 n_vertices, [v4: u32 n_uv_sets]
    vertex: vec3 position, vec3 normal, n_uv_sets x vec2 uv (v3: one), u8 bones[4], f32 weights[4]
    u32 n_faces, face: u16 x3
    u32 n_bones, bone: vec3 translation, quat (x, y, z, w) rotation      (bind pose)
    u32 n_props, prop point: u32 len, name, vec3 translation, quat rotation, u8 bone (255 = none)

Positions are the bind pose in model space (y up), so skinned animals stand in their rest pose.
UVs keep COLLADA's OpenGL convention (v up), that of ``RawPart`` (checked on the contact sheets).
"""

from __future__ import annotations

import io
import os
import struct
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from . import RawPart, open_image

#: Props attached at these points are effects or transient items, not part of the object.
SKIP_PROP_POINTS = ("projectile", "loaded-", "garrisoned", "smoke", "fire", "death", "dust", "particle",
                    "carry", "selection")
MAX_PROP_DEPTH = 3


@dataclass
class PMD:
    positions: np.ndarray
    normals: np.ndarray
    uvs: np.ndarray
    faces: np.ndarray
    bones: list[tuple[np.ndarray, np.ndarray]]  # bind pose (translation, quaternion xyzw)
    props: dict[str, tuple[np.ndarray, np.ndarray, int]]  # name -> (translation, quaternion, bone)


def parse_pmd(data: bytes) -> PMD:
    """Parse a PMD mesh; raises ValueError for a truncated or foreign file."""
    if len(data) < 16 or data[:4] != b"PSMD":
        raise ValueError("not a PMD file (bad magic)")
    version, size = struct.unpack_from("<II", data, 4)
    if version not in (3, 4):
        raise ValueError(f"unsupported PMD version {version}")
    if 12 + size > len(data):
        raise ValueError("truncated PMD file")
    off = 12
    (nv,) = struct.unpack_from("<I", data, off)
    off += 4
    nuv = 1
    if version >= 4:
        (nuv,) = struct.unpack_from("<I", data, off)
        off += 4
    if nv == 0 or nuv > 8:
        raise ValueError(f"PMD with {nv} vertices / {nuv} uv sets")
    stride = 24 + 8 * nuv + 20
    dt = np.dtype([("pos", "<f4", 3), ("nrm", "<f4", 3), ("uv", "<f4", (nuv, 2)), ("bones", "u1", 4),
                   ("weights", "<f4", 4)])
    assert dt.itemsize == stride
    if off + nv * stride + 4 > len(data):
        raise ValueError("truncated PMD vertex block")
    verts = np.frombuffer(data, dt, nv, off)
    off += nv * stride
    (nf,) = struct.unpack_from("<I", data, off)
    off += 4
    if off + nf * 6 > len(data):
        raise ValueError("truncated PMD face block")
    faces = np.frombuffer(data, "<u2", nf * 3, off).reshape(-1, 3).astype(np.int64)
    off += nf * 6
    bones: list[tuple[np.ndarray, np.ndarray]] = []
    props: dict[str, tuple[np.ndarray, np.ndarray, int]] = {}
    if off + 4 <= len(data):
        (nb,) = struct.unpack_from("<I", data, off)
        off += 4
        for _ in range(nb):
            b = struct.unpack_from("<7f", data, off)
            off += 28
            bones.append((np.array(b[:3]), np.array(b[3:])))
    if off + 4 <= len(data):
        (npp,) = struct.unpack_from("<I", data, off)
        off += 4
        for _ in range(npp):
            (ln,) = struct.unpack_from("<I", data, off)
            off += 4
            name = data[off:off + ln].decode("latin-1")
            off += ln
            vals = struct.unpack_from("<7fB", data, off)
            off += 29
            props[name] = (np.array(vals[:3]), np.array(vals[3:7]), int(vals[7]))
    if len(faces) and int(faces.max()) >= nv:
        raise ValueError("PMD face index out of range")
    uv = verts["uv"][:, 0, :].astype(np.float64)  # already OpenGL-style (v up), as COLLADA wrote them
    return PMD(verts["pos"].astype(np.float64), verts["nrm"].astype(np.float64), uv, faces, bones, props)


def quat_matrix(q: np.ndarray) -> np.ndarray:
    """3x3 rotation of a unit quaternion (x, y, z, w)."""
    x, y, z, w = (float(c) for c in q)
    n = x * x + y * y + z * z + w * w
    if n < 1e-12:
        return np.eye(3)
    s = 2.0 / n
    return np.array([[1 - s * (y * y + z * z), s * (x * y - z * w), s * (x * z + y * w)],
                     [s * (x * y + z * w), 1 - s * (x * x + z * z), s * (y * z - x * w)],
                     [s * (x * z - y * w), s * (y * z + x * w), 1 - s * (x * x + y * y)]])


# ------------------------------------------------------------------------------------------------
# The archive and actors
# ------------------------------------------------------------------------------------------------
class Archive:
    """Read-only access to 0 A.D.'s ``public.zip`` (one open handle per process)."""

    def __init__(self, path: str):
        self.path = path
        self.zip = zipfile.ZipFile(path)
        self.names = set(self.zip.namelist())

    def read(self, member: str) -> bytes:
        return self.zip.read(member)

    def has(self, member: str) -> bool:
        return member in self.names


def open_archive(path: str) -> Archive:
    """The archive opened by this process (a handle inherited through fork shares its file offset
    with the parent, so concurrent reads would corrupt each other: each process opens its own)."""
    return _open_archive(path, os.getpid())


@lru_cache(maxsize=4)
def _open_archive(path: str, pid: int) -> Archive:
    return Archive(path)


@dataclass
class Actor:
    """The first-variant resolution of an actor."""

    mesh: str | None = None
    textures: dict[str, str] = field(default_factory=dict)
    props: list[tuple[str, str]] = field(default_factory=list)  # (attachpoint, actor file)
    material: str = ""


def _merge_variant(actor: Actor, elem: ET.Element, arch: Archive, depth: int = 0) -> None:
    """Apply one <variant> (its file= base first, then its own content) to ``actor``."""
    base = elem.get("file")
    if base and depth < 8:
        member = f"art/variants/{base}"
        if arch.has(member):
            _merge_variant(actor, ET.fromstring(arch.read(member)), arch, depth + 1)
    mesh = elem.find("mesh")
    if mesh is not None and (mesh.text or "").strip():
        actor.mesh = mesh.text.strip()
    tex = elem.find("textures")
    if tex is not None:
        for t in tex.findall("texture"):
            if t.get("name") and t.get("file"):
                actor.textures[t.get("name")] = t.get("file")
    props = elem.find("props")
    if props is not None:
        new = [(p.get("attachpoint", ""), p.get("actor", "")) for p in props.findall("prop")]
        points = {a for a, _ in new}
        # A later variant's props replace earlier ones at the same points (an empty actor removes them).
        actor.props = [(a, f) for a, f in actor.props if a not in points] + [(a, f) for a, f in new if f]


def resolve_actor(arch: Archive, actor_file: str) -> Actor:
    """Resolve ``art/actors/<actor_file>`` taking the first variant of every group."""
    member = f"art/actors/{actor_file}"
    if not arch.has(member):
        raise ValueError(f"actor {actor_file} is not in the archive")
    root = ET.fromstring(arch.read(member))
    if root.tag == "qualitylevels":  # quality levels: take the highest (the <actor> without quality=)
        levels = root.findall("actor")
        if not levels:
            raise ValueError(f"actor {actor_file}: no <actor> inside <qualitylevels>")
        best = next((a for a in levels if a.get("quality") is None), levels[-1])
        if best.get("inline") is not None:
            root = root.find("inline")
        elif best.get("file"):
            return resolve_actor(arch, best.get("file"))
        else:
            root = best
        if root is None:
            raise ValueError(f"actor {actor_file}: inline actor missing")
    actor = Actor()
    for group in root.findall("group"):
        # the first variant used at the highest quality (variants capped by maxquality are lower-detail)
        variants = [v for v in group.findall("variant") if v.get("maxquality") is None] or group.findall("variant")
        if variants:
            _merge_variant(actor, variants[0], arch)
    m = root.find("material")
    actor.material = (m.text or "").strip() if m is not None else ""
    return actor


def _texture(arch: Archive, file: str, cache: dict[str, Any]) -> Any:
    """The texture image (one object per file within a model, so shared textures are stored once)."""
    if file not in cache:
        cache[file] = None
        for member in (f"art/textures/skins/{file}.cached.dds", f"art/textures/skins/{file}"):
            if arch.has(member):
                cache[file] = open_image(io.BytesIO(arch.read(member)))
                break
    return cache[file]


def _actor_parts(arch: Archive, actor_file: str, transform: np.ndarray, depth: int, max_depth: int,
                 require_texture: bool, skip_props: tuple[str, ...], cache: dict[str, Any]) -> list[RawPart]:
    actor = resolve_actor(arch, actor_file)
    if actor.mesh is None:
        if depth == 0:
            raise ValueError(f"actor {actor_file} has no mesh")
        return []
    member = f"art/meshes/{actor.mesh}.cached.pmd"
    if not arch.has(member):
        raise ValueError(f"mesh {actor.mesh} of actor {actor_file} is not in the archive")
    pmd = parse_pmd(arch.read(member))
    tex_file = actor.textures.get("baseTex")
    image = _texture(arch, tex_file, cache) if tex_file else None
    if image is None and require_texture and depth == 0:
        raise ValueError(f"actor {actor_file}: base texture {tex_file!r} missing")
    pos = pmd.positions @ transform[:3, :3].T + transform[:3, 3]
    nrm = pmd.normals @ transform[:3, :3].T
    mat = {"base_color": [0.8, 0.8, 0.8, 1.0], "metallic": 0.0, "roughness": 0.7}
    parts = [RawPart(pos, pmd.faces, nrm, pmd.uvs, mat, image)]
    if depth >= max_depth:
        return parts
    for point, prop_actor in actor.props:
        if any(point.startswith(s) for s in skip_props) or "particle" in prop_actor or prop_actor.startswith("units/"):
            # effects, transient items and crews (units riding or working the object) are not part of it
            continue
        if point == "root":
            local = np.eye(4)
        elif point in pmd.props:
            t, q, bone = pmd.props[point]
            local = np.eye(4)
            local[:3, :3], local[:3, 3] = quat_matrix(q), t
            if bone != 255 and bone < len(pmd.bones):
                bt, bq = pmd.bones[bone]
                b = np.eye(4)
                b[:3, :3], b[:3, 3] = quat_matrix(bq), bt
                local = b @ local
        else:
            continue
        try:
            parts += _actor_parts(arch, prop_actor, transform @ local, depth + 1, max_depth, require_texture,
                                  skip_props, cache)
        except (ValueError, KeyError, ET.ParseError):
            continue  # a broken prop leaves the object itself usable
    return parts


def load_actor(src: str, *, archive: str, props: bool = True, require_texture: bool = True,
               skip_props: list[str] | tuple[str, ...] = ()) -> list[RawPart]:
    """Load the 0 A.D. actor ``src`` (path under ``art/actors/``) from ``archive`` as parts.

    Props are attached recursively (up to MAX_PROP_DEPTH) unless ``props`` is False; props at
    effect/transient points (SKIP_PROP_POINTS plus ``skip_props``) are left out.
    """
    arch = open_archive(archive)
    skip = SKIP_PROP_POINTS + tuple(skip_props)
    return _actor_parts(arch, src, np.eye(4), 0, MAX_PROP_DEPTH if props else 0, require_texture, skip, {})
