"""The synthetic image generator: scene sampling, the EGL/OpenGL renderer, the TDW command
backend and the dataset writer. Public API::

    from t2s_lib.render import render_dataset, render_scene_images, sample_scenes

See ``scene.py`` for the parameter semantics, ``gl.py`` for the renderer, ``dataset.py`` for the
output layout.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..settings import SimSetting, resolve_setting
from .dataset import RENDERERS, RenderJob, SceneSource, make_renderer, plan_for, read_manifest, render_dataset, run_render_job
from .scene import PARAMETERS, Scene, make_plan, material_table, sample_scene, vary_one


def sample_scenes(setting: str | SimSetting, images: int, *, seed: int = 0, library: str = "sweethome3d",
                  classes: int | Sequence[str] | None = None, class_rule: str = "alphabetical") -> list[Scene]:
    """The scenes ``render_dataset`` would render (no rendering)."""
    sim = resolve_setting(setting)
    _, plan = plan_for(library, images, classes, class_rule)
    src = SceneSource(sim, seed, library)
    return [src.scene(item) for item in plan]


_RENDERER_CACHE: dict[tuple, Any] = {}


def render_scene_images(scenes: Sequence[Scene], img_size: int = 128, *, library: str = "sweethome3d",
                        msaa: int = 4, tonemap: str = "aces", backend: str = "gl") -> list[np.ndarray]:
    """Render scenes to uint8 arrays in this process (renderer cached per size/quality).

    The EGL context is created here; :func:`t2s_lib.render.gl.create_context` first loads torch's
    compiler so this process may train afterwards (see ``gl.avoid_llvm_clash``).
    """
    from ..assets import load_library

    key = (img_size, library, msaa, tonemap, backend)
    if key not in _RENDERER_CACHE:
        _RENDERER_CACHE[key] = make_renderer(backend, img_size, load_library(library), msaa=msaa, tonemap=tonemap)
    rnd = _RENDERER_CACHE[key]
    return [rnd.render(s) for s in scenes]


def figure8_scenes(base: Scene, n: int = 5, *, seed: int = 0, library: str = "sweethome3d") -> dict[str, list[Scene]]:
    """For each of the 8 parameters, ``n`` scenes that differ from ``base`` only in that parameter."""
    from ..assets import background_pool, load_library

    lib = load_library(library)
    parts = int(lib.models[base.model].get("parts", 1))
    pool = background_pool()
    return {p: [vary_one(base, p, v, seed=seed, hdri_pool=pool, n_parts=parts) for v in range(n)] for p in PARAMETERS}


__all__ = ["RenderJob", "render_dataset", "run_render_job", "render_scene_images", "sample_scenes", "figure8_scenes", "read_manifest", "Scene",
           "sample_scene", "make_plan", "material_table", "RENDERERS"]
