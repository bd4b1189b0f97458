"""The dataset writer: a :class:`RenderJob` (one setting, plain data) rendered into an ImageFolder.

Layout of ``out`` (created only when complete, by renaming a ``.<name>.partial`` sibling)::

    <class>/<model>_<index>.jpg   one image per plan item (index = global image number, 6 digits)
    manifest.jsonl                one line per image: file, class, model, seed and every scene value
    dataset.json                  setting, counts, library, renderer and versions (no timings)

Work is split into fixed chunks of the plan; a chunk is complete when its part file
(``.parts/<chunk>.jsonl``) exists, written after its images. An interrupted run resumes from
the complete chunks; because every image depends only on (seed, setting, index), the result is
byte-identical to an uninterrupted run with any number of workers. One process at a time may
work on an output (an exclusive lock beside it); render workers are spawned processes that exit
when the driver dies.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import multiprocessing as mp
from multiprocessing import resource_tracker
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ..errors import T2SError
from ..capacity import RENDER_BYTES_PER_IMAGE, check_fits, image_file_bytes
from ..files import atomic_path, check_output_path, write_json
from ..procs import die_with_parent, output_lock
from ..registry import Registry
from ..settings import SimSetting, resolve_setting
from .scene import PlanItem, Scene, make_plan, sample_scene

#: 2: 2x2 supersampling for 4 samples, footprint-filtered background, repaired HDRIs (+ their index hash).
FORMAT_VERSION = 2
CHUNK = 32
IMAGE_FORMATS = ("jpg", "png")
MSAA_SAMPLES = (0, 2, 4, 8)
TONEMAPS = ("aces", "reinhard", "none")
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


@dataclass(frozen=True)
class RenderJob:
    """Everything that defines one rendered set (plain, picklable data)."""

    setting: str  # published key (presets and indices are resolved by :meth:`create`)
    images: int
    img_size: int
    seed: int = 0
    library: str = "sweethome3d"
    classes: int | tuple[str, ...] | None = None  # N classes (chosen by class_rule), explicit names, or all
    class_rule: str = "alphabetical"  # how N classes are chosen: alphabetical, most_models, tdw
    models_per_class: int | None = None  # use at most this many models of each class (the first by id)
    image_format: str = "jpg"
    backend: str = "gl"
    msaa: int = 4
    tonemap: str = "aces"
    workers: int = 1
    device_index: int | None = None  # EGL device (GPU) index

    @classmethod
    def create(cls, setting: str | SimSetting | int, images: int, img_size: int, **options: Any) -> "RenderJob":
        """A checked job; ``setting`` may be a key, an index 0..255 or a preset name."""
        classes = options.pop("classes", None)
        if classes is not None and not isinstance(classes, int):
            classes = tuple(sorted(str(c) for c in classes))
        job = cls(resolve_setting(setting).key, images, img_size, classes=classes, **options)
        job.check()
        return job

    def check(self) -> None:
        def bad(name: str, value: Any, fix: str) -> T2SError:
            return T2SError(f"render: {name}={value!r} is not valid", fix)

        if isinstance(self.images, bool) or not isinstance(self.images, int) or self.images < 1:
            raise bad("images", self.images, "ask for a positive number of images")
        if isinstance(self.img_size, bool) or not isinstance(self.img_size, int) or not 8 <= self.img_size <= 4096:
            raise bad("img_size", self.img_size, "use an integer number of pixels in 8..4096")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise bad("seed", self.seed, "use a non-negative integer seed")
        if self.image_format not in IMAGE_FORMATS:
            raise bad("image_format", self.image_format, "use jpg or png")
        if self.msaa not in MSAA_SAMPLES:
            raise bad("msaa", self.msaa, "use 0 (FXAA instead), 2, 4 or 8 samples")
        if self.tonemap not in TONEMAPS:
            raise bad("tonemap", self.tonemap, "use aces, reinhard or none")
        if self.models_per_class is not None and (not isinstance(self.models_per_class, int) or self.models_per_class < 1):
            raise bad("models_per_class", self.models_per_class, "use a positive number of models per class, or none")
        if self.class_rule not in ("alphabetical", "most_models", "tdw"):
            raise bad("class_rule", self.class_rule, "use alphabetical, most_models or tdw")
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 1:
            raise bad("workers", self.workers, "use 1 or more worker processes")
        RENDERERS.get(self.backend)  # unknown backend: a clear error before any work


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


def _gl_factory(size: int, library: Any, *, msaa: int = 4, tonemap: str = "aces", device_index: int | None = None,
                torch_process: bool = True) -> Any:
    from ..assets import load_hdri
    from .gl import GLRenderer

    return GLRenderer(size, library.mesh, load_hdri, msaa=msaa, tonemap=tonemap, device_index=device_index,
                      torch_process=torch_process)


def _tdw_factory(size: int, library: Any, **_: Any) -> Any:
    from .tdw import TDWRenderer

    return TDWRenderer(size)


#: Render backends by name; each factory takes (size, library, msaa=, tonemap=, device_index=, torch_process=).
RENDERERS: Registry = Registry("render backend")
RENDERERS.add("gl", _gl_factory)
RENDERERS.add("tdw", _tdw_factory)


def make_renderer(backend: str, size: int, library: Any, *, msaa: int = 4, tonemap: str = "aces",
                  device_index: int | None = None, torch_process: bool = True) -> Any:
    """A renderer for ``backend`` (``gl`` or ``tdw``) with a ``render(scene) -> uint8 HxWx3``."""
    return RENDERERS.get(backend)(size, library, msaa=msaa, tonemap=tonemap, device_index=device_index,
                                  torch_process=torch_process)


# ----- worker side (a spawned process per worker: GL contexts do not survive fork) -------------
_W: dict[str, Any] = {}


def _worker_init(job: RenderJob, library_path: str, work: str) -> None:
    die_with_parent()  # a killed driver leaves no render workers behind
    # Threads of llvmpipe: with several worker processes each would spawn one per core and fight.
    if job.workers > 1 and "LP_NUM_THREADS" not in os.environ and job.backend == "gl":
        os.environ["LP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // job.workers))
    src = SceneSource(resolve_setting(job.setting), job.seed, library_path)
    # these processes never import torch: no need to pre-load its compiler (see gl.avoid_llvm_clash)
    renderer = make_renderer(job.backend, job.img_size, src.library, msaa=job.msaa, tonemap=job.tonemap,
                             device_index=job.device_index, torch_process=False)
    _W.update(job=job, src=src, renderer=renderer)
    info = getattr(renderer, "info", {}) or {}
    marker = Path(work) / ".renderer.json"
    if info and not marker.is_file():  # which GL implementation rendered the set (llvmpipe / NVIDIA)
        write_json(marker, {k: info.get(k) for k in ("GL_RENDERER", "GL_VERSION", "GL_VENDOR")})


def _render_chunk(chunk: tuple[int, list[PlanItem], str]) -> tuple[int, int]:
    k, items, work = chunk
    job, src, rnd = _W["job"], _W["src"], _W["renderer"]
    made = _W.setdefault("dirs", set())
    rows = []
    for item in items:
        scene = src.scene(item)
        rel = f"{item.class_name}/{item.model}_{item.index:06d}.{job.image_format}"
        data = encode_image(rnd.render(scene), job.image_format)
        folder = f"{work}/{item.class_name}"
        if folder not in made:
            os.makedirs(folder, exist_ok=True)
            made.add(folder)
        # Written in place (no temporary + rename per image): a chunk counts only once its part
        # file exists, and an unfinished chunk is rendered again whole, so a torn image never survives.
        with open(f"{work}/{rel}", "wb") as fh:
            fh.write(data)
        rows.append(json.dumps({"file": rel, **scene.as_dict()}, separators=(",", ":")))
    with atomic_path(Path(work) / ".parts" / f"{k:06d}.jsonl") as tmp:
        tmp.write_text("\n".join(rows) + "\n")
    return k, len(items)


# ----- driver ---------------------------------------------------------------------------------
def plan_for(library: str, images: int, classes: int | Iterable[str] | None, class_rule: str = "alphabetical",
             models_per_class: int | None = None) -> tuple[list[str], list[PlanItem]]:
    from ..assets import load_library
    from ..assets.library import select_classes

    lib = load_library(library)
    if classes is None or isinstance(classes, int):
        names = lib.class_names() if classes is None else select_classes(lib, classes, class_rule)
    else:
        names = sorted(classes)
        unknown = [c for c in names if c not in lib.classes]
        if unknown:
            raise T2SError(f"unknown class(es) {unknown} in library {lib.name!r}",
                           f"use some of: {', '.join(lib.class_names())}")
    if images < len(names):
        raise T2SError(f"{images} images cannot cover {len(names)} classes", "ask for at least one image per class")
    return names, make_plan({c: sorted(lib.classes[c])[:models_per_class] for c in names}, images)


def _identity(job: RenderJob, names: list[str]) -> tuple[dict[str, Any], Any, str]:
    """The configuration that defines the output (compared on reuse and resume), the library, its hash."""
    from ..assets import load_library

    from ..assets.hdri import hdri_dir

    lib = load_library(job.library)
    index_hash = hashlib.sha1((lib.path / "index.json").read_bytes()).hexdigest()[:12]
    hdri_path = hdri_dir() / "index.json"
    hdri_hash = hashlib.sha1(hdri_path.read_bytes()).hexdigest()[:12] if hdri_path.is_file() else None
    config = {"format_version": FORMAT_VERSION, "hdri_index": hdri_hash, "setting": job.setting,
              "setting_bits": resolve_setting(job.setting).as_dict(), "images": job.images, "size": job.img_size,
              "seed": job.seed, "library": lib.name, "library_index": index_hash, "classes": names,
              "image_format": job.image_format, "backend": job.backend, "msaa": job.msaa, "tonemap": job.tonemap}
    if job.models_per_class is not None:  # (absent otherwise, so earlier sets keep their identity)
        config["models_per_class"] = job.models_per_class
    return config, lib, index_hash


def _check_output(out: Path, config: dict[str, Any]) -> bool:
    """True when ``out`` already holds this dataset; an error when it holds anything else."""
    check_output_path(out)
    meta = out / "dataset.json"
    if meta.is_file():
        try:
            done = json.loads(meta.read_text())
        except json.JSONDecodeError:
            done = {}
        if done.get("config") == config:
            return True
        raise T2SError(f"{out} already holds a dataset rendered with other parameters", "delete it or choose another --out")
    if out.exists() and any(out.iterdir()):
        raise T2SError(f"{out} exists and is not a complete dataset", "delete it or choose another --out")
    return False


def _prepare_partial(work: Path, config: dict[str, Any]) -> None:
    """Reuse a partial of the same configuration (dropping half-written temporary files), else start fresh.

    Only the lock holder gets here, so a partial with another configuration is an abandoned run's.
    """
    if work.exists():
        try:
            same = json.loads((work / ".config.json").read_text()) == config
        except (OSError, json.JSONDecodeError):
            same = False
        if not same:
            shutil.rmtree(work)
        else:
            for tmp in work.rglob(".*.tmp"):  # an interrupted atomic write
                tmp.unlink(missing_ok=True)
    (work / ".parts").mkdir(parents=True, exist_ok=True)
    write_json(work / ".config.json", config)


def _render_chunks(job: RenderJob, lib_path: str, work: Path, chunks: list[tuple[int, list[PlanItem], str]],
                   progress: bool, out_name: str) -> None:
    """Render the given chunks in spawned worker processes (each renders only; none imports torch)."""
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=sum(len(c[1]) for c in chunks), unit="img", desc=f"render {job.setting}", file=sys.stderr,
                   leave=False)
    ctx = mp.get_context("spawn")
    try:
        with ProcessPoolExecutor(min(job.workers, len(chunks)), mp_context=ctx, initializer=_worker_init,
                                 initargs=(job, lib_path, str(work))) as pool:
            for fut in as_completed([pool.submit(_render_chunk, c) for c in chunks]):
                _, n = fut.result()
                if bar:
                    bar.update(n)
    except BrokenProcessPool as exc:
        raise T2SError(f"a render worker died while rendering {out_name} ({exc})",
                       f"rerun to resume from the finished chunks; if it recurs, check the GL driver "
                       f"(t2s render ... --workers 1) and {work}") from exc
    finally:
        if bar:
            bar.close()
        # The spawn context started multiprocessing's resource tracker; stop and reap it now, so
        # that no process of this command outlives it (it would otherwise exit after us).
        resource_tracker._resource_tracker._stop()


def _finalize(job: RenderJob, work: Path, out: Path, plan: list[PlanItem], config: dict[str, Any], lib: Any,
              index_hash: str, n_chunks: int) -> None:
    """Manifest and dataset.json into the partial, then rename it to ``out``."""
    with atomic_path(work / "manifest.jsonl") as tmp:
        with open(tmp, "w") as fh:
            for k in range(n_chunks):
                fh.write((work / ".parts" / f"{k:06d}.jsonl").read_text())
    counts: dict[str, int] = {}
    models: set[str] = set()
    for item in plan:
        counts[item.class_name] = counts.get(item.class_name, 0) + 1
        models.add(item.model)
    aa = {0: "fxaa", 4: "2x2 supersample"}.get(job.msaa, f"{job.msaa}x hardware msaa")
    renderer_info: dict[str, Any] = {"backend": job.backend, "msaa": job.msaa, "fxaa": job.msaa <= 1,
                                     "anti_aliasing": aa, "tonemap": job.tonemap}
    if (work / ".renderer.json").is_file():
        renderer_info["gl"] = json.loads((work / ".renderer.json").read_text())
        (work / ".renderer.json").unlink()
    sim = resolve_setting(job.setting)
    write_json(work / "dataset.json", {
        "config": config, "setting": job.setting, "varied": sim.varied(), "n_images": len(plan),
        "n_classes": len(counts), "n_models": len(models), "images_per_class": counts,
        "library": {"name": lib.name, "path": str(lib.path), "index_sha1": index_hash},
        "renderer": renderer_info, "versions": _versions(),
    })
    shutil.rmtree(work / ".parts")
    (work / ".config.json").unlink()
    for tmp in work.rglob(".*.tmp"):  # nothing half-written goes into the finished set
        tmp.unlink(missing_ok=True)
    with atomic_path(out, is_dir=True) as tmp:
        tmp.rmdir()
        work.rename(tmp)


def run_render_job(job: RenderJob, out: Path | str, *, progress: bool = True, max_chunks: int | None = None) -> Path:
    """Render ``job`` into ``out`` (layout in the module doc); returns ``out`` once complete.

    Idempotent (a complete dataset with the same configuration is kept), resumable and atomic.
    ``max_chunks`` stops after that many chunks (tests use it to simulate an interruption): the
    work stays in the partial folder, whose path is returned.
    """
    job.check()
    out = check_output_path(out).resolve()
    # before the plan (which alone grows ~220 bytes an image): will the set fit in memory and on disk?
    check_fits(f"rendering {job.images} images at {job.img_size} px", memory=job.images * RENDER_BYTES_PER_IMAGE,
               disk=job.images * image_file_bytes(job.img_size, job.image_format), path=out.parent,
               fix="render fewer images (--images) or smaller ones (--img-size)")
    names, plan = plan_for(job.library, job.images, job.classes, job.class_rule, job.models_per_class)
    config, lib, index_hash = _identity(job, names)
    if _check_output(out, config):
        return out
    work = out.parent / f".{out.name}.partial"
    with output_lock(out, "a dataset being rendered"):
        if _check_output(out, config):  # finished by another process while we waited for nothing
            return out
        _prepare_partial(work, config)
        chunks = [plan[i:i + CHUNK] for i in range(0, len(plan), CHUNK)]
        pending = [(k, chunks[k], str(work)) for k in range(len(chunks))
                   if not (work / ".parts" / f"{k:06d}.jsonl").is_file()]
        if max_chunks is not None:
            pending = pending[:max_chunks]
        n_todo = sum(len(c[1]) for c in pending)
        t0 = time.perf_counter()
        if pending:
            _render_chunks(job, str(lib.path), work, pending, progress, out.name)
        elapsed = time.perf_counter() - t0
        missing = [k for k in range(len(chunks)) if not (work / ".parts" / f"{k:06d}.jsonl").is_file()]
        if missing:
            if max_chunks is not None:
                return work  # stopped early on purpose: the next call resumes
            raise T2SError(f"{len(missing)} chunk(s) of {out.name} were not rendered",
                           f"rerun the same command to resume from {work}")
        _finalize(job, work, out, plan, config, lib, index_hash, len(chunks))
    if progress and n_todo:
        print(f"rendered {n_todo} images of {job.setting} at {job.img_size}px in {elapsed:.1f}s "
              f"({n_todo / max(elapsed, 1e-9):.1f} img/s, {job.workers} worker(s)) -> {out}", file=sys.stderr)
    return out


def render_dataset(setting: str | SimSetting | int, out: Path | str, images: int, img_size: int, *,
                   progress: bool = True, max_chunks: int | None = None, **options: Any) -> Path:
    """Render ``images`` images of ``setting`` at ``img_size`` px into ``out``.

    ``options`` are :class:`RenderJob` fields (seed, library, classes, image_format, backend, msaa,
    tonemap, workers, device_index). See :func:`run_render_job`.
    """
    unknown = sorted(set(options) - {f.name for f in dataclasses.fields(RenderJob)})
    if unknown:
        raise T2SError(f"render_dataset: unknown option(s) {unknown}",
                       f"use: {', '.join(f.name for f in dataclasses.fields(RenderJob))}")
    return run_render_job(RenderJob.create(setting, images, img_size, **options), out, progress=progress,
                          max_chunks=max_chunks)


def read_manifest(out: Path | str) -> list[dict[str, Any]]:
    """The per-image records of a rendered dataset."""
    path = Path(out) / "manifest.jsonl"
    if not path.is_file():
        raise T2SError(f"{path} not found", "render the dataset first (t2s render ...)")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
