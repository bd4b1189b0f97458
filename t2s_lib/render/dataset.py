"""The dataset writer: ``render_dataset`` renders one setting into an ImageFolder.

Layout of ``out`` (created only when complete, by renaming a ``.<name>.partial`` sibling)::

    <class>/<model>_<index>.jpg   one image per plan item (index = global image number, 6 digits)
    manifest.jsonl                one line per image: file, class, model, seed and every scene value
    dataset.json                  setting, counts, library, renderer and versions (no timings)

Work is split into fixed chunks of the plan; a chunk is complete when its part file
(``.parts/<chunk>.jsonl``) exists, written after its images. An interrupted run resumes from
the complete chunks; because every image depends only on (seed, setting, index), the result is
byte-identical to an uninterrupted run with any number of workers.
"""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing as mp
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ..errors import T2SError
from ..io import atomic_path, write_json
from ..registry import Registry
from ..settings import SimSetting, resolve_setting
from .scene import PlanItem, Scene, make_plan, sample_scene

FORMAT_VERSION = 1
CHUNK = 32
IMAGE_FORMATS = ("jpg", "png")
JPEG_QUALITY = 95


def _versions() -> dict[str, str]:
    import moderngl
    import PIL

    from .. import __version__

    return {"t2s_lib": __version__, "moderngl": moderngl.__version__, "numpy": np.__version__, "pillow": PIL.__version__}


def encode_image(img: np.ndarray, image_format: str) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    pil = Image.fromarray(img)
    if image_format == "jpg":
        pil.save(buf, format="JPEG", quality=JPEG_QUALITY, subsampling=0)
    else:
        pil.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


class SceneSource:
    """Everything needed to turn plan items into scenes (library, HDRI pool, setting, seed)."""

    def __init__(self, setting: SimSetting, seed: int, library: str):
        from ..assets import background_pool, hdri_index, load_library

        self.setting, self.seed = setting, seed
        self.library = load_library(library)
        self.pool = background_pool()
        self.default_hdri = hdri_index()["default"]

    def scene(self, item: PlanItem) -> Scene:
        parts = int(self.library.models[item.model].get("parts", 1))
        return sample_scene(self.setting, self.seed, item, n_parts=parts, hdri_pool=self.pool,
                            default_hdri=self.default_hdri)


def _gl_factory(size: int, library: Any, *, msaa: int = 4, tonemap: str = "aces", device_index: int | None = None) -> Any:
    from ..assets import load_hdri
    from .gl import GLRenderer

    return GLRenderer(size, library.mesh, load_hdri, msaa=msaa, tonemap=tonemap, device_index=device_index)


def _tdw_factory(size: int, library: Any, **_: Any) -> Any:
    from .tdw import TDWRenderer

    return TDWRenderer(size)


#: Render backends by name; each factory takes (size, library, msaa=, tonemap=, device_index=).
RENDERERS: Registry = Registry("render backend")
RENDERERS.add("gl", _gl_factory)
RENDERERS.add("tdw", _tdw_factory)


def make_renderer(backend: str, size: int, library: Any, *, msaa: int = 4, tonemap: str = "aces",
                  device_index: int | None = None) -> Any:
    """A renderer for ``backend`` (``gl`` or ``tdw``) with a ``render(scene) -> uint8 HxWx3``."""
    return RENDERERS.get(backend)(size, library, msaa=msaa, tonemap=tonemap, device_index=device_index)


# ----- worker side ----------------------------------------------------------------------------
_W: dict[str, Any] = {}


def _worker_init(cfg: dict[str, Any]) -> None:
    # Threads of llvmpipe: with several worker processes each would spawn one per core and fight.
    if cfg["workers"] > 1 and "LP_NUM_THREADS" not in os.environ and cfg["backend"] == "gl":
        os.environ["LP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // cfg["workers"]))
    src = SceneSource(resolve_setting(cfg["setting"]), cfg["seed"], cfg["library"])
    _W["src"] = src
    _W["cfg"] = cfg
    _W["renderer"] = make_renderer(cfg["backend"], cfg["size"], src.library, msaa=cfg["msaa"], tonemap=cfg["tonemap"],
                                   device_index=cfg.get("device_index"))
    info = getattr(_W["renderer"], "info", {}) or {}
    marker = Path(cfg["work"]) / ".renderer.json"
    if info and not marker.is_file():  # which GL implementation rendered the set (llvmpipe / NVIDIA)
        write_json(marker, {k: info.get(k) for k in ("GL_RENDERER", "GL_VERSION", "GL_VENDOR")})


def _render_chunk(job: tuple[int, list[PlanItem], str]) -> tuple[int, int]:
    k, items, work = job
    cfg, src, rnd = _W["cfg"], _W["src"], _W["renderer"]
    work_dir = Path(work)
    rows = []
    for item in items:
        scene = src.scene(item)
        rel = f"{item.class_name}/{item.model}_{item.index:06d}.{cfg['image_format']}"
        data = encode_image(rnd.render(scene), cfg["image_format"])
        dest = work_dir / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(dest) as tmp:
            tmp.write_bytes(data)
        rows.append(json.dumps({"file": rel, **scene.as_dict()}, separators=(",", ":")))
    with atomic_path(work_dir / ".parts" / f"{k:06d}.jsonl") as tmp:
        tmp.write_text("\n".join(rows) + "\n")
    return k, len(items)


# ----- driver ---------------------------------------------------------------------------------
def plan_for(library: str, images: int, classes: int | Iterable[str] | None) -> tuple[list[str], list[PlanItem]]:
    from ..assets import load_library

    lib = load_library(library)
    if classes is None or isinstance(classes, int):
        if isinstance(classes, int) and not 1 <= classes <= len(lib.classes):
            raise T2SError(f"classes={classes}: library {lib.name!r} has {len(lib.classes)} classes",
                           f"use 1..{len(lib.classes)} (or omit it for all)")
        names = lib.class_names(classes)
    else:
        names = sorted(classes)
        unknown = [c for c in names if c not in lib.classes]
        if unknown:
            raise T2SError(f"unknown class(es) {unknown} in library {lib.name!r}",
                           f"use some of: {', '.join(lib.class_names())}")
    if images < len(names):
        raise T2SError(f"{images} images cannot cover {len(names)} classes", "ask for at least one image per class")
    return names, make_plan({c: lib.classes[c] for c in names}, images)


def render_dataset(setting: str | SimSetting, out: Path | str, images: int, size: int, seed: int = 0,
                   library: str = "sweethome3d", workers: int = 1, classes: int | Iterable[str] | None = None,
                   image_format: str = "jpg", backend: str = "gl", *, msaa: int = 4, tonemap: str = "aces",
                   device_index: int | None = None, progress: bool = True, max_chunks: int | None = None,
                   isolate: bool = True) -> Path:
    """Render ``images`` images of ``setting`` at ``size`` px into ``out`` (layout in the module doc).

    Idempotent (an existing complete dataset with the same parameters is kept), resumable, and
    atomic (``out`` appears only when complete). ``max_chunks`` stops after that many chunks
    (used by tests to simulate an interruption); the partial work is kept for the next call.
    ``isolate`` (default) renders in spawned worker processes even for ``workers=1``: a process
    that created an llvmpipe context and later imports triton (torch's compiler) segfaults.
    ``isolate=False`` with one worker renders in this process (the CLI does: it exits after).
    Returns ``out``.
    """
    from ..assets import load_library

    sim = resolve_setting(setting)
    if image_format not in IMAGE_FORMATS:
        raise T2SError(f"unknown image format {image_format!r}", "use jpg or png")
    if not isinstance(images, int) or images < 1:
        raise T2SError(f"images={images!r}: must be a positive integer")
    if not isinstance(size, int) or not 8 <= size <= 4096:
        raise T2SError(f"size={size!r}: must be an integer number of pixels in 8..4096")
    RENDERERS.get(backend)  # unknown backend: a clear error before any work
    workers = max(1, int(workers))
    out = Path(out).expanduser().resolve()
    names, plan = plan_for(library, images, classes)
    lib = load_library(library)
    index_hash = hashlib.sha1((lib.path / "index.json").read_bytes()).hexdigest()[:12]
    config = {"format_version": FORMAT_VERSION, "setting": sim.key, "setting_bits": sim.as_dict(), "images": images,
              "size": size, "seed": seed, "library": lib.name, "library_index": index_hash, "classes": names,
              "image_format": image_format, "backend": backend, "msaa": msaa, "tonemap": tonemap}
    if (out / "dataset.json").is_file():
        done = json.loads((out / "dataset.json").read_text())
        if done.get("config") == config:
            return out
        raise T2SError(f"{out} already holds a dataset rendered with other parameters",
                       "delete it or choose another --out")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise T2SError(f"{out} exists and is not a complete dataset", "delete it or choose another --out")
    work = out.parent / f".{out.name}.partial"
    if work.exists():
        try:
            same = json.loads((work / ".config.json").read_text()) == config
        except (OSError, json.JSONDecodeError):
            same = False
        if not same:
            shutil.rmtree(work)
    (work / ".parts").mkdir(parents=True, exist_ok=True)
    write_json(work / ".config.json", config)
    chunks = [plan[i:i + CHUNK] for i in range(0, len(plan), CHUNK)]
    pending = [k for k in range(len(chunks)) if not (work / ".parts" / f"{k:06d}.jsonl").is_file()]
    if max_chunks is not None:
        pending = pending[:max_chunks]
    cfg = {"setting": sim.key, "seed": seed, "library": str(lib.path),
           "size": size, "image_format": image_format, "backend": backend, "msaa": msaa, "tonemap": tonemap,
           "workers": workers, "device_index": device_index, "work": str(work)}
    n_todo = sum(len(chunks[k]) for k in pending)
    t0 = time.perf_counter()
    bar = None
    if progress and n_todo:
        from tqdm import tqdm

        bar = tqdm(total=n_todo, unit="img", desc=f"render {sim.key}", file=sys.stderr, leave=False)
    jobs = [(k, chunks[k], str(work)) for k in pending]
    if jobs:
        # In-process rendering loads Mesa's LLVM (llvmpipe) into the caller, and importing triton
        # (torch's compiler) afterwards segfaults: so by default even one worker is a spawned process.
        if workers == 1 and not isolate:
            _worker_init(cfg)
            try:
                for job in jobs:
                    _, n = _render_chunk(job)
                    if bar:
                        bar.update(n)
            finally:
                if hasattr(_W.get("renderer"), "release"):
                    _W["renderer"].release()
                _W.clear()
        else:
            from concurrent.futures import ProcessPoolExecutor, as_completed
            from concurrent.futures.process import BrokenProcessPool

            # spawn: a fresh process per worker (GL contexts do not survive fork); a worker that
            # dies (e.g. a GL driver crash) raises BrokenProcessPool instead of hanging.
            ctx = mp.get_context("spawn")
            try:
                with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_init, initargs=(cfg,)) as pool:
                    for fut in as_completed([pool.submit(_render_chunk, job) for job in jobs]):
                        _, n = fut.result()
                        if bar:
                            bar.update(n)
            except BrokenProcessPool as exc:
                raise T2SError(f"a render worker died while rendering {out.name} ({exc})",
                               f"rerun to resume from the finished chunks; if it recurs, check the GL driver "
                               f"(t2s render ... --workers 1) and {work}") from exc
    if bar:
        bar.close()
    elapsed = time.perf_counter() - t0
    if any(not (work / ".parts" / f"{k:06d}.jsonl").is_file() for k in range(len(chunks))):
        return out  # stopped early on purpose (max_chunks): resume later
    with atomic_path(work / "manifest.jsonl") as tmp:
        with open(tmp, "w") as fh:
            for k in range(len(chunks)):
                fh.write((work / ".parts" / f"{k:06d}.jsonl").read_text())
    counts: dict[str, int] = {}
    models: dict[str, int] = {}
    for item in plan:
        counts[item.class_name] = counts.get(item.class_name, 0) + 1
        models.setdefault(item.model, 0)
    renderer_info = {"backend": backend, "msaa": msaa, "fxaa": msaa <= 1, "tonemap": tonemap}
    if (work / ".renderer.json").is_file():
        renderer_info["gl"] = json.loads((work / ".renderer.json").read_text())
        (work / ".renderer.json").unlink()
    write_json(work / "dataset.json", {
        "config": config, "setting": sim.key, "varied": sim.varied(), "n_images": len(plan), "n_classes": len(names),
        "n_models": len(models), "images_per_class": counts, "library": {"name": lib.name, "path": str(lib.path),
                                                                          "index_sha1": index_hash},
        "renderer": renderer_info, "versions": _versions(),
    })
    shutil.rmtree(work / ".parts")
    (work / ".config.json").unlink()
    with atomic_path(out, is_dir=True) as tmp:
        tmp.rmdir()
        work.rename(tmp)
    if progress and n_todo:
        print(f"rendered {n_todo} images of {sim.key} at {size}px in {elapsed:.1f}s "
              f"({n_todo / max(elapsed, 1e-9):.1f} img/s, {workers} worker(s)) -> {out}", file=sys.stderr)
    return out


def read_manifest(out: Path | str) -> list[dict[str, Any]]:
    """The per-image records of a rendered dataset."""
    path = Path(out) / "manifest.jsonl"
    if not path.is_file():
        raise T2SError(f"{path} not found", "render the dataset first (t2s render ...)")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
