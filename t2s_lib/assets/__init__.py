"""Fetched assets: 3D object libraries and HDRI environment maps (see ``fetch.py``)."""

from .fetch import assets_dir, fetch_assets
from .hdri import HDRI, background_pool, hdri_index, load_hdri
from .library import Library, MeshData, index_folder, load_library

__all__ = ["assets_dir", "fetch_assets", "HDRI", "background_pool", "hdri_index", "load_hdri", "Library",
           "MeshData", "index_folder", "load_library"]
