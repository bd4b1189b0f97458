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
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import T2SError
from ..io import atomic_path, write_json
from ..paths import CURATED_DATA_DIR, cache_layout

INDEX_VERSION = 1
#: Above this many triangles a model is simplified (llvmpipe cost grows with triangles).
MAX_TRIANGLES = 12000
MAX_TEXTURE = 256
MESH_SUFFIXES = (".obj", ".glb", ".gltf", ".ply", ".stl", ".off")
CLASS_MAP = CURATED_DATA_DIR / "assets" / "sweethome3d_classes.json"
CATALOG_LICENSES = {
    "BlendSwap-CC-0": "CC0-1.0",
    "BlendSwap-CC-BY": "CC-BY-3.0",
    "KatorLegaz": "CC-BY-3.0-US",
    "Reallusion": "CC-BY-3.0-US",
    "Scopia": "CC-BY-3.0",
}


# ------------------------------------------------------------------------------------------------
# Mesh conversion
# ------------------------------------------------------------------------------------------------
@dataclass
class MeshData:
    """A normalised, render-ready model."""

    vertices: np.ndarray  # float32 (n, 8): position, normal, uv
    indices: np.ndarray  # uint32 (3 m,)
    parts: np.ndarray  # int32 (p, 2): first index, index count
    materials: list[dict[str, Any]]  # per part: base_color (rgba), metallic, roughness, texture (int or -1)
    textures: list[np.ndarray]  # uint8 (h, w, 4)

    @property
    def triangles(self) -> int:
        return int(len(self.indices) // 3)


def _material_of(visual: Any) -> tuple[dict[str, Any], np.ndarray | None]:
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
    arr = None
    if image is not None:
        try:
            img = image.convert("RGBA")
            img.thumbnail((MAX_TEXTURE, MAX_TEXTURE))
            arr = np.asarray(img, dtype=np.uint8)
            # A texture replaces the diffuse colour in MTL semantics; keep only its alpha.
            mat["base_color"] = [1.0, 1.0, 1.0, mat["base_color"][3]]
        except Exception:
            arr = None
    return mat, arr


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
    pieces = []
    for g, transform in geoms:
        if len(g.faces) == 0 or len(g.vertices) == 0:
            continue
        pos = trimesh.transformations.transform_points(np.asarray(g.vertices, np.float64), transform)
        nrm = np.asarray(g.vertex_normals, np.float64) @ np.asarray(transform)[:3, :3].T
        uv = getattr(g.visual, "uv", None)
        uv = np.zeros((len(pos), 2)) if uv is None or len(uv) != len(pos) else np.asarray(uv, np.float64)
        mat, tex = _material_of(g.visual)
        pieces.append((pos, nrm, uv, np.asarray(g.faces, np.int64), mat, tex))
    if not pieces:
        raise ValueError("no triangles")
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
        if tex is not None:
            mat = dict(mat, texture=len(texs))
            texs.append(tex)
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


def _convert_one(job: tuple[str, str, list[float] | None, str]) -> tuple[str, dict | str]:
    """Worker: load a mesh file and write its npz. Returns (model_id, meta or error string)."""
    model_id, src, rot, out = job
    import trimesh

    try:
        loaded = trimesh.load(src, force="scene", process=False)
        rotation = np.asarray(rot, np.float64).reshape(3, 3) if rot else None
        mesh = mesh_from_trimesh(loaded, rotation)
        ntri_src = int(sum(len(g.faces) for g in loaded.geometry.values() if hasattr(g, "faces")))
    except Exception as exc:  # any loader failure means: exclude the model, keep the reason
        return model_id, f"{type(exc).__name__}: {exc}".strip()[:300]
    save_mesh(mesh, Path(out))
    ext = mesh.vertices[:, :3].max(0) - mesh.vertices[:, :3].min(0)
    return model_id, {"triangles_source": ntri_src, "triangles": mesh.triangles, "parts": int(len(mesh.parts)),
                      "textures": len(mesh.textures), "extent": [round(float(e), 4) for e in ext],
                      "bytes": Path(out).stat().st_size}


# ------------------------------------------------------------------------------------------------
# Sources
# ------------------------------------------------------------------------------------------------
def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9-]+", "-", text).strip("-").lower()


def read_catalog(path: Path) -> list[dict[str, str]]:
    """Parse a PluginFurnitureCatalog.properties file into one dict per numbered entry."""
    entries: dict[int, dict[str, str]] = {}
    for line in path.read_text(encoding="latin-1").splitlines():
        m = re.match(r"^(\w+)#(\d+)=(.*)$", line)
        if m:
            entries.setdefault(int(m.group(2)), {})[m.group(1)] = m.group(3).strip()
    return [entries[k] for k in sorted(entries)]


def classify(name: str, class_map: dict) -> str | None:
    lower = name.lower().strip()
    for rule in class_map["rules"]:
        if re.search(rule["match"], lower):
            return rule["class"]
    return None


def sweethome3d_jobs(root: Path, models_dir: Path) -> tuple[list, dict[str, dict]]:
    class_map = json.loads(CLASS_MAP.read_text())
    excluded_ids = set(class_map.get("exclude_ids", []))
    jobs, metas = [], {}
    for props in sorted(root.glob("*/PluginFurnitureCatalog.properties")):
        catalog = props.parent.name
        for e in read_catalog(props):
            name = e.get("name", "")
            cls = classify(name, class_map)
            if cls is None or "model" not in e:
                continue
            model_id = _slug(e["model"].rsplit("/", 1)[0].lstrip("/")).replace("/", "_")
            if model_id in excluded_ids:
                continue
            src = props.parent / e["model"].lstrip("/")
            rot = [float(x) for x in e["modelRotation"].split()] if e.get("modelRotation") else None
            metas[model_id] = {"id": model_id, "class": cls, "name": name, "catalog": catalog,
                               "creator": e.get("creator", ""), "license": CATALOG_LICENSES.get(catalog, "see catalog"),
                               "source": f"debian:sweethome3d-furniture/{catalog}.sh3f{e['model']}"}
            jobs.append((model_id, str(src), rot, str(models_dir / f"{model_id}.npz")))
    return jobs, metas


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


def build_index(name: str, dest: Path, jobs: list, metas: dict[str, dict], *, source: str,
                workers: int = 1, min_models: int = 1, log: Callable[..., None] = print) -> dict:
    """Convert every model (in parallel), record exclusions with reasons, write ``index.json``."""
    models_dir = dest / "models"
    models_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict | str] = {}
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(workers) as pool:
            for mid, res in pool.map(_convert_one, jobs, chunksize=4):
                results[mid] = res
    else:
        for job in jobs:
            mid, res = _convert_one(job)
            results[mid] = res
    models, excluded = [], {}
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
             "models": sorted(models, key=lambda m: m["id"]), "excluded": dict(sorted(excluded.items()))}
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


def index_sweethome3d(root: Path, *, workers: int = 2, log: Callable[..., None] = print, force: bool = False) -> dict:
    dest = library_root() / "sweethome3d"
    idx_path = dest / "index.json"
    if not force:
        idx = read_index(dest)
        if idx is not None and idx.get("class_map") == _class_map_hash():
            return idx
    jobs, metas = sweethome3d_jobs(root, dest / "models")
    log(f"indexing {len(jobs)} Sweet Home 3D models with {workers} worker(s)...")
    idx = build_index("sweethome3d", dest, jobs, metas, source="debian:sweethome3d-furniture",
                      workers=workers, min_models=json.loads(CLASS_MAP.read_text())["min_models_per_class"], log=log)
    idx["class_map"] = _class_map_hash()
    write_json(idx_path, idx, indent=1)
    return idx


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

    def class_names(self, limit: int | None = None) -> list[str]:
        names = sorted(self.classes)
        return names if limit is None else names[:limit]

    def mesh(self, model_id: str) -> MeshData:
        if model_id not in self.models:
            raise T2SError(f"model {model_id!r} is not in library {self.name!r}")
        if "file" not in self.models[model_id]:
            raise T2SError(f"library {self.name!r} has no meshes (its models live in TDW's asset bundles)",
                           "render it with --backend tdw, or use --library sweethome3d with the gl backend")
        return _cached_mesh(str(self.path / self.models[model_id]["file"]))


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
