"""Object libraries: index a set of 3D models once into compact, render-ready arrays.

A library is a folder ``<assets>/library/<name>/`` with ``index.json`` (classes, per-model
metadata with attribution and licence, excluded models with the reason) and ``models/<id>.npz``
holding the normalised mesh: interleaved vertices (position, normal, uv), indices, one part per
material and the part's material (base colour, metallic, roughness, optional texture).

Normalisation: the bounding-box centre goes to the origin and the bounding sphere gets radius 1,
so the renderer frames every model the same way (the paper's "unit scale" canonical pose).
Very large meshes are simplified by vertex clustering, because rasterisation cost on a CPU grows
with the triangle count.

Two sources are supported: the Sweet Home 3D catalogs (classes from the committed rule-based
class map) and any folder ``<root>/<class>/<model>.{obj,glb,gltf,ply,stl,off}``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import T2SError
from ..files import atomic_path, write_json
from ..paths import CURATED_DATA_DIR, cache_layout
from .formats import RawPart, vertex_normals

INDEX_VERSION = 1
#: Bump when the mesh conversion changes: converted models are redone.
CONVERT_VERSION = 4
#: Above this many triangles a model is simplified (llvmpipe cost grows with triangles).
MAX_TRIANGLES = 12000
MAX_TEXTURE = 256
MESH_SUFFIXES = (".obj", ".glb", ".gltf", ".ply", ".stl", ".off")
CLASS_MAP = CURATED_DATA_DIR / "assets" / "sweethome3d_classes.json"


# ------------------------------------------------------------------------------------------------
# Mesh conversion
# ------------------------------------------------------------------------------------------------
@dataclass
class MeshData:
    """A normalised, render-ready model."""

    vertices: np.ndarray  # float32 (n, 8): position, normal, uv (v=0: the texture's first (top) row)
    indices: np.ndarray  # uint32 (3 m,)
    parts: np.ndarray  # int32 (p, 2): first index, index count
    materials: list[dict[str, Any]]  # per part: base_color (rgba), metallic, roughness, texture (int or -1)
    textures: list[np.ndarray]  # uint8 (h, w, 4)

    @property
    def triangles(self) -> int:
        return int(len(self.indices) // 3)


def _texture_array(image: Any) -> np.ndarray | None:
    """RGBA uint8 array of a texture (PIL image or array), at most MAX_TEXTURE px; None if unreadable."""
    if image is None:
        return None
    try:
        from PIL import Image

        img = Image.fromarray(np.asarray(image)) if isinstance(image, np.ndarray) else image
        img = img.convert("RGBA")
        img.thumbnail((MAX_TEXTURE, MAX_TEXTURE))
        return np.asarray(img, dtype=np.uint8)
    except Exception:
        return None


def _material_of(visual: Any) -> tuple[dict[str, Any], Any]:
    """Base colour / metallic / roughness / texture image from a trimesh visual."""
    mat = {"base_color": [0.8, 0.8, 0.8, 1.0], "metallic": 0.0, "roughness": 0.6}
    image = None
    kind = type(visual).__name__
    if kind == "ColorVisuals":
        try:
            mat["base_color"] = [float(c) / 255 for c in visual.main_color]
        except Exception:
            pass
        return mat, None
    material = getattr(visual, "material", None)
    if material is None:
        return mat, None
    mkind = type(material).__name__
    if mkind == "PBRMaterial":
        if material.baseColorFactor is not None:
            mat["base_color"] = [float(c) / 255 if np.max(material.baseColorFactor) > 1 else float(c)
                                 for c in material.baseColorFactor]
        mat["metallic"] = float(material.metallicFactor if material.metallicFactor is not None else 0.0)
        mat["roughness"] = float(material.roughnessFactor if material.roughnessFactor is not None else 0.6)
        image = material.baseColorTexture
    else:  # SimpleMaterial from OBJ/MTL: Phong exponent -> GGX roughness (Walter et al. mapping)
        diffuse = getattr(material, "diffuse", None)
        if diffuse is not None:
            mat["base_color"] = [float(c) / 255 for c in diffuse]
        gloss = float(getattr(material, "glossiness", None) or 20.0)
        mat["roughness"] = float(np.clip(np.sqrt(2.0 / (gloss + 2.0)), 0.08, 1.0))
        image = getattr(material, "image", None)
    return mat, image


def _cluster(verts: np.ndarray, faces: np.ndarray, target: int) -> tuple[np.ndarray, np.ndarray]:
    """Vertex-clustering simplification to at most ``target`` triangles (keeps first vertex per cell)."""
    lo, hi = verts[:, :3].min(0), verts[:, :3].max(0)
    span = float(np.max(hi - lo)) or 1.0
    cells = 256
    while True:
        q = np.floor((verts[:, :3] - lo) / span * (cells - 1e-6)).astype(np.int64)
        key = (q[:, 0] * cells + q[:, 1]) * cells + q[:, 2]
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        f = inverse[faces]
        keep = (f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 0] != f[:, 2])
        f = f[keep]
        if len(f) <= target or cells <= 8:
            used, remap = np.unique(f, return_inverse=True)
            return verts[first[used]], remap.reshape(-1, 3).astype(np.uint32)
        cells = int(cells * 0.75)


def mesh_from_trimesh(loaded: Any, rotation: np.ndarray | None = None) -> MeshData:
    """Convert a trimesh Scene/Trimesh to a normalised :class:`MeshData` (raises ValueError if empty)."""
    import trimesh

    if isinstance(loaded, trimesh.Trimesh):
        geoms = [(loaded, np.eye(4))]
    else:
        geoms = []
        for node in loaded.graph.nodes_geometry:
            transform, gname = loaded.graph[node]
            g = loaded.geometry.get(gname)
            if isinstance(g, trimesh.Trimesh):
                geoms.append((g, transform))
    parts = []
    for g, transform in geoms:
        if len(g.faces) == 0 or len(g.vertices) == 0:
            continue
        pos = trimesh.transformations.transform_points(np.asarray(g.vertices, np.float64), transform)
        nrm = np.asarray(g.vertex_normals, np.float64) @ np.asarray(transform)[:3, :3].T
        uv = getattr(g.visual, "uv", None)
        uv = None if uv is None or len(uv) != len(pos) else np.asarray(uv, np.float64)
        mat, tex = _material_of(g.visual)
        parts.append(RawPart(pos, np.asarray(g.faces, np.int64), nrm, uv, mat, tex))
    return mesh_from_parts(parts, rotation)


def _merge_shared(pieces: list) -> list:
    """Merge pieces that share one texture object and an equal material into one piece (e.g. the 200
    oars of a galley, each a prop with the same texture), so the model has one material slot per
    distinct look. Pieces with distinct (or no) texture objects stay separate."""
    groups: dict[tuple, list] = {}
    order: list[tuple] = []
    for k, piece in enumerate(pieces):
        tex, mat = piece[5], piece[4]
        key = (id(tex), json.dumps(mat, sort_keys=True)) if tex is not None else ("solo", k)
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(piece)
    if len(order) == len(pieces):
        return pieces
    out = []
    for key in order:
        g = groups[key]
        if len(g) == 1:
            out.append(g[0])
            continue
        offs = np.cumsum([0] + [len(p[0]) for p in g[:-1]])
        out.append((np.concatenate([p[0] for p in g]), np.concatenate([p[1] for p in g]),
                    np.concatenate([p[2] for p in g]), np.concatenate([p[3] + o for p, o in zip(g, offs)]),
                    g[0][4], g[0][5]))
    return out


def mesh_from_parts(raw: list[RawPart], rotation: np.ndarray | None = None) -> MeshData:
    """Normalise source parts (any loader) into a :class:`MeshData` (raises ValueError if unusable).

    Drops out-of-range and degenerate faces, centres the bounding box, scales the bounding sphere
    to radius 1, simplifies models over MAX_TRIANGLES and converts textures to RGBA <= MAX_TEXTURE.
    """
    pieces = []
    for p in raw:
        pos = np.asarray(p.positions, np.float64).reshape(-1, 3)
        faces = np.asarray(p.faces, np.int64).reshape(-1, 3)
        if len(pos) == 0 or len(faces) == 0:
            continue
        ok = (faces >= 0).all(1) & (faces < len(pos)).all(1)
        ok &= (faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])
        faces = faces[ok]
        if len(faces) == 0:
            continue
        nrm = vertex_normals(pos, faces) if p.normals is None else np.asarray(p.normals, np.float64).reshape(-1, 3)
        if len(nrm) != len(pos):
            nrm = vertex_normals(pos, faces)
        uv = np.zeros((len(pos), 2)) if p.uvs is None or len(p.uvs) != len(pos) else np.asarray(p.uvs, np.float64)
        uv = np.where(np.isfinite(uv), uv, 0.0)
        # RawPart uvs are OpenGL-style (v up: v=1 is the image's top row). MeshData stores textures
        # top row first and the renderer uploads them as stored (row 0 at t=0), so v is flipped here.
        uv = np.stack([uv[:, 0], 1.0 - uv[:, 1]], 1)
        pieces.append((pos, nrm, uv, faces, dict(p.material), p.texture))
    if not pieces:
        raise ValueError("no triangles")
    pieces = _merge_shared(pieces)
    allpos = np.concatenate([p[0] for p in pieces])
    if not np.all(np.isfinite(allpos)):
        raise ValueError("non-finite vertex positions")
    if rotation is not None:
        pieces = [(p @ rotation.T, n @ rotation.T, uv, f, m, t) for p, n, uv, f, m, t in pieces]
        allpos = allpos @ rotation.T
    lo, hi = allpos.min(0), allpos.max(0)
    center = (lo + hi) / 2
    radius = float(np.max(np.linalg.norm(allpos - center, axis=1)))
    if not radius > 1e-9:
        raise ValueError("degenerate (zero-size) mesh")
    total = sum(len(p[3]) for p in pieces)
    verts_out, idx_out, parts, mats, texs = [], [], [], [], []
    tex_ids: dict[int, int] = {}  # id(source image) -> texture index: a shared image is stored once
    base = 0
    for pos, nrm, uv, faces, mat, tex in pieces:
        lens = np.linalg.norm(nrm, axis=1, keepdims=True)
        nrm = np.where(lens > 1e-12, nrm / np.maximum(lens, 1e-12), [0.0, 1.0, 0.0])
        v = np.concatenate([(pos - center) / radius, nrm, uv], axis=1).astype(np.float32)
        f = faces
        if total > MAX_TRIANGLES:
            v, f = _cluster(v, f, max(16, int(len(faces) * MAX_TRIANGLES / total)))
        if len(f) == 0:
            continue
        arr = None if tex is None or id(tex) in tex_ids else _texture_array(tex)
        mat = {"base_color": [float(c) for c in mat.get("base_color", [0.8, 0.8, 0.8, 1.0])][:4],
               "metallic": float(mat.get("metallic", 0.0)), "roughness": float(mat.get("roughness", 0.6))}
        if len(mat["base_color"]) == 3:
            mat["base_color"].append(1.0)
        if arr is not None:
            tex_ids[id(tex)] = len(texs)
            texs.append(arr)
        if tex is not None and id(tex) in tex_ids:
            # A texture replaces the diffuse colour (MTL/AC3D/PMD semantics); keep only its alpha.
            mat = dict(mat, base_color=[1.0, 1.0, 1.0, mat["base_color"][3]], texture=tex_ids[id(tex)])
        else:
            mat = dict(mat, texture=-1)
        parts.append((sum(len(i) for i in idx_out), f.size))
        idx_out.append((f.astype(np.int64) + base).ravel())
        verts_out.append(v)
        mats.append(mat)
        base += len(v)
    if not idx_out:
        raise ValueError("no triangles after cleaning")
    return MeshData(np.concatenate(verts_out), np.concatenate(idx_out).astype(np.uint32),
                    np.asarray(parts, np.int32), mats, texs)


def save_mesh(mesh: MeshData, path: Path) -> None:
    arrays = {"vertices": mesh.vertices, "indices": mesh.indices, "parts": mesh.parts,
              "materials": np.frombuffer(json.dumps(mesh.materials).encode(), dtype=np.uint8)}
    for i, t in enumerate(mesh.textures):
        arrays[f"tex_{i}"] = t
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)


def load_mesh_file(path: Path) -> MeshData:
    try:
        with np.load(path) as z:
            mats = json.loads(bytes(z["materials"]).decode())
            texs = [z[f"tex_{i}"] for i in range(sum(1 for k in z.files if k.startswith("tex_")))]
            return MeshData(z["vertices"], z["indices"], z["parts"], mats, texs)
    except Exception as exc:
        raise T2SError(f"indexed model {path} is unreadable: {exc}",
                       "delete the library folder and rerun t2s assets fetch (or index the library again)") from exc


def _convert_one(job: tuple) -> tuple[str, dict | str]:
    """Worker: load one source model and write its npz. Returns (model_id, meta or error string).

    ``job`` = (model_id, source path, 3x3 rotation or None, output npz[, loader name, loader options]).
    """
    model_id, src, rot, out = job[:4]
    loader_name = job[4] if len(job) > 4 else "trimesh"
    options = job[5] if len(job) > 5 else {}
    try:
        from .formats import loader

        loaded = loader(loader_name)(src, **options)
        rotation = np.asarray(rot, np.float64).reshape(3, 3) if rot else None
        if isinstance(loaded, list):
            mesh = mesh_from_parts(loaded, rotation)
            ntri_src = int(sum(len(p.faces) for p in loaded))
        else:
            mesh = mesh_from_trimesh(loaded, rotation)
            ntri_src = int(sum(len(g.faces) for g in loaded.geometry.values() if hasattr(g, "faces")))
    except Exception as exc:  # any loader failure means: exclude the model, keep the reason
        return model_id, f"{type(exc).__name__}: {exc}".strip()[:300]
    save_mesh(mesh, Path(out))
    ext = mesh.vertices[:, :3].max(0) - mesh.vertices[:, :3].min(0)
    return model_id, {"triangles_source": ntri_src, "triangles": mesh.triangles, "parts": int(len(mesh.parts)),
                      "textures": len(mesh.textures), "extent": [round(float(e), 4) for e in ext],
                      "bytes": Path(out).stat().st_size}


#: Errors that say nothing about the model itself: not recorded, so the next run tries again.
TRANSIENT_ERRORS = ("BadZipFile", "OSError", "MemoryError", "PermissionError", "BrokenProcessPool", "TimeoutError")


def _job_key(job: tuple) -> str:
    """What a converted model depends on: its source, rotation, loader and the conversion settings."""
    blob = json.dumps([list(job[1:2]) + [job[2]] + list(job[4:]), CONVERT_VERSION, MAX_TRIANGLES, MAX_TEXTURE],
                      sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def _done_result(job: tuple) -> dict | str | None:
    """The recorded result of a job converted earlier with the same key (npz intact), else None."""
    model_id, _, _, out = job[:4]
    side = Path(out).with_suffix(".json")
    try:
        rec = json.loads(side.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(rec, dict) or rec.get("key") != _job_key(job):
        return None
    res = rec.get("result")
    if isinstance(res, str):
        return res
    if isinstance(res, dict):
        f = Path(out)
        if f.is_file() and f.stat().st_size == res.get("bytes"):
            return res
    return None


def _convert_and_record(job: tuple) -> tuple[str, dict | str]:
    """Worker: convert, then record the result beside the npz so an interrupted index run resumes."""
    mid, res = _convert_one(job)
    if not (isinstance(res, str) and res.startswith(TRANSIENT_ERRORS)):  # I/O trouble: retried next run
        write_json(Path(job[3]).with_suffix(".json"), {"key": _job_key(job), "result": res})
    return mid, res


# ------------------------------------------------------------------------------------------------
# Sources
# ------------------------------------------------------------------------------------------------
def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9-]+", "-", text).strip("-").lower()


def classify(name: str, class_map: dict) -> str | None:
    """The class of a catalog name under a rule map (None when unmatched or excluded by a rule)."""
    from .sources import match_rule

    return match_rule(name, class_map)[0]


def sweethome3d_jobs(root: Path, models_dir: Path) -> tuple[list, dict[str, dict]]:
    from .sources import sweethome3d_models

    src = sweethome3d_models(root, models_dir)
    return src.jobs, src.metas


def folder_jobs(root: Path, models_dir: Path) -> tuple[list, dict[str, dict]]:
    jobs, metas = [], {}
    for cdir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for f in sorted(cdir.iterdir()):
            if f.suffix.lower() not in MESH_SUFFIXES:
                continue
            model_id = f"{_slug(cdir.name)}_{_slug(f.stem)}"
            metas[model_id] = {"id": model_id, "class": cdir.name, "name": f.stem, "catalog": str(root),
                               "creator": "", "license": "see source", "source": str(f)}
            jobs.append((model_id, str(f), None, str(models_dir / f"{model_id}.npz")))
    return jobs, metas


def convert_all(jobs: list, *, workers: int = 1, log: Callable[..., None] = print) -> dict[str, dict | str]:
    """Convert every job not already converted (resumable: each result is recorded beside its npz)."""
    results: dict[str, dict | str] = {}
    todo = []
    for job in jobs:
        done = _done_result(job)
        if done is None:
            todo.append(job)
        else:
            results[job[0]] = done
    if results:
        log(f"{len(results)} model(s) already converted, {len(todo)} to go")
    if not todo:
        return results
    Path(todo[0][3]).parent.mkdir(parents=True, exist_ok=True)
    t0, step = time.time(), max(50, len(todo) // 10)
    if workers > 1 and len(todo) > 1:
        with ProcessPoolExecutor(workers) as pool:
            for n, (mid, res) in enumerate(pool.map(_convert_and_record, todo, chunksize=4), 1):
                results[mid] = res
                if n % step == 0:
                    log(f"  converted {n}/{len(todo)} ({time.time() - t0:.0f}s)")
    else:
        for n, job in enumerate(todo, 1):
            mid, res = _convert_and_record(job)
            results[mid] = res
            if n % step == 0:
                log(f"  converted {n}/{len(todo)} ({time.time() - t0:.0f}s)")
    return results


def build_index(name: str, dest: Path, jobs: list, metas: dict[str, dict], *, source: str,
                workers: int = 1, min_models: int = 1, log: Callable[..., None] = print,
                extra: dict | None = None) -> dict:
    """Convert every model (in parallel, resumable), record exclusions with reasons, write ``index.json``.

    ``extra`` entries (e.g. the class-map hash, skipped/unclassified source models) go into the index.
    """
    models_dir = dest / "models"
    models_dir.mkdir(parents=True, exist_ok=True)
    results = convert_all(jobs, workers=workers, log=log)
    extra = dict(extra or {})
    models, excluded = [], dict(extra.pop("excluded", {}))
    for mid, res in results.items():
        if isinstance(res, str):
            excluded[mid] = res
        else:
            models.append({**metas[mid], **res, "file": f"models/{mid}.npz"})
    by_class: dict[str, list[str]] = {}
    for m in models:
        by_class.setdefault(m["class"], []).append(m["id"])
    small = {c: len(v) for c, v in by_class.items() if len(v) < min_models}
    for c in small:
        for mid in by_class.pop(c):
            excluded[mid] = f"class {c!r} has only {small[c]} readable model(s) (< {min_models})"
    models = [m for m in models if m["id"] not in excluded]
    index = {"version": INDEX_VERSION, "name": name, "source": source, "n_models": len(models),
             "classes": {c: sorted(v) for c, v in sorted(by_class.items())},
             "models": sorted(models, key=lambda m: m["id"]), "excluded": dict(sorted(excluded.items())),
             **extra}
    # Stale npz files of models no longer in the index are removed (a changed class map).
    keep = {f"{m['id']}" for m in models} | set(results)
    for f in models_dir.glob("*.npz"):
        if f.stem not in keep:
            f.unlink(missing_ok=True)
            f.with_suffix(".json").unlink(missing_ok=True)
    write_json(dest / "index.json", index, indent=1)
    return index


def library_root() -> Path:
    return cache_layout().libraries


def read_index(path: Path) -> dict | None:
    """A library's index if it is complete and intact (readable, current version, every model file
    present with its recorded size); None otherwise, so a fetch rebuilds it."""
    try:
        idx = json.loads((path / "index.json").read_text())
        if idx.get("version") != INDEX_VERSION:
            return None
        for m in idx["models"]:
            f = path / m["file"]
            if not f.is_file() or ("bytes" in m and f.stat().st_size != m["bytes"]):
                return None
        return idx
    except (OSError, json.JSONDecodeError, KeyError, TypeError):
        return None


def index_sweethome3d(root: Path, *, workers: int = 2, log: Callable[..., None] = print, force: bool = False,
                      version: str = "") -> dict:
    from .sources import sweethome3d_models

    dest = library_root() / "sweethome3d"
    if not force:
        idx = read_index(dest)
        if idx is not None and idx.get("class_map") == _class_map_hash():
            return idx
    src = sweethome3d_models(root, dest / "models", version=version)
    log(f"indexing {len(src.jobs)} Sweet Home 3D models with {workers} worker(s)...")
    return build_index("sweethome3d", dest, src.jobs, src.metas, source="debian:sweethome3d-furniture",
                       workers=workers, min_models=json.loads(CLASS_MAP.read_text())["min_models_per_class"], log=log,
                       extra={"excluded": src.excluded, "class_map": _class_map_hash(),
                              "sources": {"sweethome3d": src.summary()}})


def _class_map_hash() -> str:
    return hashlib.sha1(CLASS_MAP.read_bytes()).hexdigest()[:12]


def index_folder(root: str | Path, *, workers: int = 1, force: bool = False) -> Path:
    """Index ``<root>/<class>/<model>.{obj,...}`` once into ``<assets>/library/folder-<hash>/``."""
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise T2SError(f"library folder {root} does not exist", "give a folder laid out as <root>/<class>/<model>.obj")
    dest = library_root() / f"folder-{hashlib.sha1(str(root).encode()).hexdigest()[:10]}"
    files = sorted(str(p.relative_to(root)) + f":{p.stat().st_mtime_ns}" for p in root.glob("*/*")
                   if p.suffix.lower() in MESH_SUFFIXES)
    if not files:
        raise T2SError(f"library folder {root} has no <class>/<model>.{{obj,glb,ply,stl}} files",
                       "lay it out as <root>/<class>/<model>.obj (ShapeNet/ModelNet/Objaverse exports)")
    stamp = hashlib.sha1("\n".join(files).encode()).hexdigest()
    idx_path = dest / "index.json"
    if not force:
        idx = read_index(dest)
        if idx is not None and idx.get("stamp") == stamp:
            return dest
    jobs, metas = folder_jobs(root, dest / "models")
    idx = build_index(root.name, dest, jobs, metas, source=str(root), workers=workers)
    idx["stamp"] = stamp
    write_json(idx_path, idx, indent=1)
    return dest


# ------------------------------------------------------------------------------------------------
# Loading
# ------------------------------------------------------------------------------------------------
@dataclass
class Library:
    name: str
    path: Path
    classes: dict[str, list[str]]  # class -> sorted model ids
    models: dict[str, dict]
    excluded: dict[str, str]

    def class_names(self, limit: int | None = None, rule: str = "alphabetical") -> list[str]:
        """All class names (sorted), or ``limit`` of them chosen by :func:`select_classes` ``rule``."""
        names = sorted(self.classes)
        return names if limit is None else select_classes(self, limit, rule)

    def mesh(self, model_id: str) -> MeshData:
        if model_id not in self.models:
            raise T2SError(f"model {model_id!r} is not in library {self.name!r}")
        if "file" not in self.models[model_id]:
            raise T2SError(f"library {self.name!r} has no meshes (its models live in TDW's asset bundles)",
                           "render it with --backend tdw, or use --library sweethome3d with the gl backend")
        return _cached_mesh(str(self.path / self.models[model_id]["file"]))


#: Rules of :func:`select_classes` (documented in README "Assets").
CLASS_RULES = ("alphabetical", "most_models", "tdw")
TDW_CLASS_MAP = CURATED_DATA_DIR / "assets" / "tdw_classes.json"


def select_classes(library: "Library | str", n: int, rule: str = "most_models") -> list[str]:
    """A reproducible choice of ``n`` classes of a library (returned sorted by name).

    * ``alphabetical``: the first ``n`` class names in sorted order (the historical default).
    * ``most_models``: the ``n`` classes with the most models; ties broken by name.
    * ``tdw``: first the classes that stand for one of the paper's 100 TDW categories
      (``data/assets/tdw_classes.json``: class -> WordNet id), by model count then name, then
      the rest by ``most_models``.
    """
    lib = load_library(library) if isinstance(library, str) else library
    if rule not in CLASS_RULES:
        raise T2SError(f"unknown class-selection rule {rule!r}", f"use one of {', '.join(CLASS_RULES)}")
    if not 1 <= n <= len(lib.classes):
        raise T2SError(f"classes={n}: library {lib.name!r} has {len(lib.classes)} classes",
                       f"use 1..{len(lib.classes)} (or omit it for all)")
    names = sorted(lib.classes)
    if rule == "alphabetical":
        return names[:n]
    by_count = sorted(names, key=lambda c: (-len(lib.classes[c]), c))
    if rule == "tdw":
        tdw = set(json.loads(TDW_CLASS_MAP.read_text())["classes"])
        by_count = [c for c in by_count if c in tdw] + [c for c in by_count if c not in tdw]
    return sorted(by_count[:n])


@lru_cache(maxsize=256)
def _cached_mesh(path: str) -> MeshData:
    return load_mesh_file(Path(path))


def library_class_count(spec: str) -> int | None:
    """Number of classes of an indexed library, or None when it is not fetched/indexed here (cheap: reads the index)."""
    if spec == "tdw":
        return len(_tdw_library().classes)
    path = Path(spec).expanduser() if (os.sep in spec or Path(spec).expanduser().is_dir()) else library_root() / (
        "sweethome3d" if spec == "sh3d" else spec)
    try:
        return len(json.loads((path / "index.json").read_text())["classes"])
    except (OSError, json.JSONDecodeError, KeyError, TypeError):
        return None


@lru_cache(maxsize=8)
def load_library(spec: str = "sweethome3d") -> Library:
    """Load an indexed library by name (``sweethome3d``) or by folder path (indexed on first use)."""
    if spec == "tdw":
        return _tdw_library()
    if spec in ("sweethome3d", "sh3d"):
        path = library_root() / "sweethome3d"
    elif os.sep in spec or Path(spec).expanduser().is_dir():
        p = Path(spec).expanduser()
        path = p if (p / "index.json").is_file() and (p / "models").is_dir() else index_folder(p, workers=1)
    else:
        path = library_root() / spec
    idx_path = path / "index.json"
    if not idx_path.is_file():
        raise T2SError(f"object library {spec!r} is not fetched/indexed ({idx_path} missing)",
                       "run: t2s assets fetch  (or make assets); for your own models pass --library /path/to/<class>/<model>.obj")
    try:
        idx = json.loads(idx_path.read_text())
        idx["name"], idx["models"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise T2SError(f"the index of object library {spec!r} ({idx_path}) is corrupt ({type(exc).__name__}: {exc})",
                       "run: t2s assets fetch  (it detects the damage and indexes the library again)") from exc
    if not idx.get("classes"):
        raise T2SError(f"object library {spec!r} has no usable classes",
                       f"see the 'excluded' reasons in {idx_path}")
    return Library(idx["name"], path, idx["classes"], {m["id"]: m for m in idx["models"]}, idx.get("excluded", {}))


def _tdw_library() -> Library:
    """The paper's 100 classes / 787 TDW models (names only: for the TDW backend)."""
    from ..paths import PUBLISHED_DATA_DIR

    objs = json.loads((PUBLISHED_DATA_DIR / "tdw_simple_objs_100.json").read_text())
    cats = json.loads((PUBLISHED_DATA_DIR / "tdw_simple_objs_100_wcategory.json").read_text())
    models = {m: {"id": m, "class": wnid, "name": m, "category": cats.get(wnid, ""), "parts": 1,
                  "license": "TDW model library", "source": "tdw"} for wnid, ms in objs.items() for m in ms}
    return Library("tdw", PUBLISHED_DATA_DIR, {w: sorted(ms) for w, ms in sorted(objs.items())}, models, {})
