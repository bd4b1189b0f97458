"""Figures and tables of the renderer notebook (01_render): logic here, the notebook only calls."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..ledger import current as current_ledger
from ..settings import PARAMETER_LABELS, PARAMETERS, SimSetting, resolve_setting

THROUGHPUT_KIND = "render.throughput"


def base_scene(class_name: str = "chair", *, library: str = "sweethome3d", seed: int = 0):
    """A canonical (all-off) scene of the first model of ``class_name`` (or of the first class)."""
    from ..assets import load_library
    from . import sample_scenes

    lib = load_library(library)
    cls = class_name if class_name in lib.classes else lib.class_names()[0]
    return sample_scenes(SimSetting(), len(lib.classes[cls]), classes=[cls], seed=seed, library=library)[0]


def figure8(img_size: int = 96, n: int = 5, *, class_name: str = "chair", library: str = "sweethome3d"):
    """The paper's Figure 8 analog: one row per parameter, ``n`` images varying only that parameter."""
    import matplotlib.pyplot as plt

    from . import figure8_scenes, render_scene_images

    rows = figure8_scenes(base_scene(class_name, library=library), n, library=library)
    fig, axes = plt.subplots(len(PARAMETERS), n, figsize=(1.6 * n + 1.6, 1.6 * len(PARAMETERS)))
    for r, (param, scenes) in enumerate(rows.items()):
        for c, img in enumerate(render_scene_images(scenes, img_size, library=library)):
            ax = axes[r, c]
            ax.imshow(img)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(PARAMETER_LABELS[param], rotation=0, ha="right", va="center", fontsize=9)
    fig.suptitle("Each row varies one simulation parameter; everything else canonical")
    fig.tight_layout()
    return fig


def sample_grid(settings: Sequence[str], images: int = 16, img_size: int = 64, *, classes: int | None = None,
                library: str = "sweethome3d", seed: int = 0, per_row: int = 8):
    """A few images of each setting (spread over classes), one block of rows per setting."""
    import matplotlib.pyplot as plt

    from ..assets import load_library
    from . import render_scene_images, sample_scenes

    lib = load_library(library)
    n_cls = classes or len(lib.classes)
    blocks = []
    for spec in settings:
        sim = resolve_setting(spec)
        # one image per class where possible: sample a plan with several images per class and stride
        scenes = sample_scenes(sim, max(images, n_cls) * 2, classes=n_cls, seed=seed, library=library)
        step = max(1, len(scenes) // images)
        blocks.append((sim, render_scene_images(scenes[::step][:images], img_size, library=library)))
    n_rows = sum(int(np.ceil(len(imgs) / per_row)) for _, imgs in blocks)
    fig, axes = plt.subplots(n_rows, per_row, figsize=(1.3 * per_row, 1.4 * n_rows), squeeze=False)
    r = 0
    for sim, imgs in blocks:
        for start in range(0, len(imgs), per_row):
            for c in range(per_row):
                ax = axes[r, c]
                ax.set_xticks([])
                ax.set_yticks([])
                ax.axis("off") if start + c >= len(imgs) else ax.imshow(imgs[start + c])
            if start == 0:
                varied = ", ".join(PARAMETER_LABELS[p] for p in sim.varied()) or "nothing"
                axes[r, 0].set_title(f"{sim.key}  (varies: {varied})", loc="left", fontsize=8)
            r += 1
    fig.tight_layout()
    return fig


def _cpu_seconds() -> float:
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def throughput_table(img_sizes: Sequence[int], images: int, workers: Sequence[int], *, setting: str = "domain_randomization",
                     classes: int = 10, library: str = "sweethome3d", msaa: int = 4):
    """images/s of ``render_dataset`` end to end, per size and worker count (a pandas DataFrame)."""
    import pandas as pd

    from ..assets import load_library
    from . import render_dataset

    classes = min(classes, len(load_library(library).classes))
    ledger = current_ledger()  # inside a study the figures show the recorded measurement (machine in provenance)
    rows: list[dict[str, Any]] = []
    for size in img_sizes:
        for w in workers:
            def measure(size=size, w=w) -> dict[str, Any]:
                tmp = Path(tempfile.mkdtemp(prefix="t2s-throughput-"))
                try:
                    c0, t0 = _cpu_seconds(), time.perf_counter()
                    render_dataset(setting, tmp / "ds", images=images, img_size=size, workers=w, classes=classes,
                                   library=library, msaa=msaa, progress=False)
                    dt, cpu = time.perf_counter() - t0, _cpu_seconds() - c0
                finally:
                    shutil.rmtree(tmp, ignore_errors=True)
                # CPU time (this process + the workers and their llvmpipe threads) is steadier than wall
                # time on a shared machine; 2 / CPU s per image = what 2 otherwise idle cores would give
                return {"size_px": size, "workers": w, "images": images, "seconds": dt, "img_per_s": images / dt,
                        "cpu_ms_per_img": cpu / images * 1000, "load_avg": os.getloadavg()[0]}

            identity = {"setting": setting, "size_px": size, "workers": w, "images": images, "classes": classes,
                        "library": library, "msaa": msaa}
            rows.append(ledger.measure(THROUGHPUT_KIND, identity, measure, what=f"render throughput at {size} px, "
                                       f"{w} worker(s)") if ledger is not None else measure())
    return pd.DataFrame(rows).set_index(["size_px", "workers"])
