"""Mesh-format loaders for the object library.

Every loader turns one source model into a list of :class:`RawPart` (positions, faces, optional
normals and uvs, one material, an optional texture image); :func:`t2s_lib.assets.library.mesh_from_parts`
normalises, simplifies and packs them into a render-ready ``MeshData``. A loader raises
``ValueError`` (or any exception) for a file it cannot use; the indexer then excludes the model and
records the reason.

Loaders (``LOADERS[name](src, **options)``):

* ``trimesh``: OBJ/MTL, glTF/GLB, PLY, STL, OFF through trimesh (Sweet Home 3D catalogs).
* ``pmd``: 0 A.D. PMD binary meshes + DDS/PNG textures (``pmd.py``; an actor XML names them).
* ``ac3d``: FlightGear AC3D ``.ac`` text models + PNG/SGI RGB textures (``ac3d.py``).
* ``md2``: Quake II MD2 models as used by UFO:AI + PNG/JPG skins (``md2.py``).
* ``vrml``: VRML 2.0 ``.wrl`` IndexedFaceSets with material colours, as KiCad exports them (``vrml.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

DEFAULT_MATERIAL = {"base_color": [0.8, 0.8, 0.8, 1.0], "metallic": 0.0, "roughness": 0.6}


@dataclass
class RawPart:
    """One material part of a source model, in the model's own coordinates."""

    positions: np.ndarray  # float (n, 3)
    faces: np.ndarray  # int (m, 3) indices into positions
    normals: np.ndarray | None = None  # float (n, 3); None = computed from the faces
    uvs: np.ndarray | None = None  # float (n, 2), OpenGL convention (v up); None = zeros
    material: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_MATERIAL))
    texture: Any = None  # PIL.Image (any mode) or None


def vertex_normals(pos: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted vertex normals (unit length; zero-area fans get +y)."""
    pos = np.asarray(pos, np.float64)
    faces = np.asarray(faces, np.int64)
    fn = np.cross(pos[faces[:, 1]] - pos[faces[:, 0]], pos[faces[:, 2]] - pos[faces[:, 0]])
    vn = np.zeros_like(pos)
    for k in range(3):
        np.add.at(vn, faces[:, k], fn)
    lens = np.linalg.norm(vn, axis=1, keepdims=True)
    return np.where(lens > 1e-20, vn / np.maximum(lens, 1e-20), [0.0, 1.0, 0.0])


def open_image(path: Any) -> Any:
    """A texture image as a loaded PIL image (DDS DXT1/3/5, PNG, JPEG, SGI RGB, TGA all via Pillow)."""
    from PIL import Image

    img = Image.open(path)
    img.load()
    return img


def _trimesh_loader(src: str, **_: Any) -> Any:
    import trimesh

    return trimesh.load(src, force="scene", process=False)


def loader(name: str) -> Callable[..., Any]:
    """The loader function named ``name`` (imported lazily: workers load only what they use)."""
    if name == "trimesh":
        return _trimesh_loader
    if name == "pmd":
        from .pmd import load_actor

        return load_actor
    if name == "ac3d":
        from .ac3d import load_ac3d

        return load_ac3d
    if name == "md2":
        from .md2 import load_md2

        return load_md2
    if name == "vrml":
        from .vrml import load_vrml

        return load_vrml
    raise ValueError(f"unknown mesh loader {name!r}")


LOADER_NAMES = ("trimesh", "pmd", "ac3d", "md2", "vrml")

__all__ = ["RawPart", "vertex_normals", "open_image", "loader", "LOADER_NAMES", "DEFAULT_MATERIAL"]
