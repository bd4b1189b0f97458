"""Rendering throughput: images/s of the EGL/OpenGL renderer, and the same scenes through Mitsuba 3.

Per image size and anti-aliasing mode it prints:

* ``dataset``: ``render_dataset`` end to end, exactly what ``t2s render`` does (scene sampling,
  rendering, JPEG encoding, files, manifest; spawned workers' start-up included): wall-clock
  images/s, CPU ms per image (this process plus every worker and its llvmpipe threads, from
  ``getrusage``), and ``2000 / CPU ms``, the rate 2 otherwise idle cores would give;
* ``render``: the renderer alone on pre-sampled scenes in one process after warm-up (wall and CPU).

Modes: ``ssaa4`` (the default ``--msaa 4``: 2x2 supersample), ``msaa4hw`` (hardware 4x MSAA, the
previous default and the reference path), ``fxaa`` (``--msaa 0``).
Then it times a subset of the scenes through Mitsuba 3 (``scalar_rgb`` path tracer, environment
map + sun + principled BSDF + thin lens, 4 spp, base colours only) against the GL renderer on the
same scenes in the same run and prints the ratio (wall and CPU). Mitsuba is optional
(``pip install mitsuba==3.9.1``); without it the comparison is skipped.
The load average is printed with every row: on a shared machine wall-clock rates fall with it,
while CPU time per image moves much less.

Usage: python benchmarks/render.py [--sizes 64 128 224] [--modes ssaa4 msaa4hw fxaa] [--images 1000]
       [--workers 2] [--classes N] [--compare 20] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from t2s_lib.settings import resolve_setting  # noqa: E402

MODES = {"ssaa4": dict(msaa=4), "msaa4hw": dict(msaa=4, aa="msaa"), "fxaa": dict(msaa=0)}


def _cpu() -> float:
    """CPU seconds of this process and of its finished children (workers and their threads)."""
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def renderer_only(scenes, size: int, mode: str) -> tuple[float, float]:
    """(img/s wall, CPU ms/img) of the renderer alone, after a warm-up pass that uploads the assets."""
    from t2s_lib.assets import load_hdri, load_library
    from t2s_lib.render.gl import GLRenderer

    lib = load_library("sweethome3d")
    r = GLRenderer(size, lib.mesh, load_hdri, cache_models=1024, torch_process=False, **MODES[mode])
    with r.ctx:
        for s in scenes:
            r.render(s)
        w0, c0 = time.perf_counter(), time.process_time()
        for s in scenes:
            r.render(s)
        w, c = time.perf_counter() - w0, time.process_time() - c0
    r.release()
    return len(scenes) / w, c / len(scenes) * 1000


def aa_quality(size: int, n: int = 20) -> dict[str, tuple[float, float]]:
    """Mean absolute error (grey levels; all pixels, edge pixels) of each anti-aliasing mode against a
    16-sample reference (the 2x2 supersample at twice the size, box-filtered), on sharp scenes."""
    from t2s_lib.assets import load_hdri, load_library
    from t2s_lib.render import sample_scenes
    from t2s_lib.render.gl import GLRenderer

    lib = load_library("sweethome3d")
    scenes = sample_scenes("0_0_1_1_1_3_0_1_1", 10 * n, classes=20)[::10][:n]  # all but blur/background vary

    def run(scale: int = 1, **kw):
        r = GLRenderer(size * scale, lib.mesh, load_hdri, torch_process=False, **kw)
        with r.ctx:
            out = [r.render(s).astype(np.float32) for s in scenes]
        r.release()
        return [x.reshape(size, scale, size, scale, 3).mean(axis=(1, 3)) for x in out]

    ref = run(2, msaa=4)
    res = {}
    for mode, kw in {**MODES, "none": dict(msaa=0, fxaa=False)}.items():
        imgs = run(**kw)
        err, edge = [], []
        for a, b in zip(imgs, ref):
            g = np.abs(np.diff(b.mean(-1), axis=1))[:-1, :] + np.abs(np.diff(b.mean(-1), axis=0))[:, :-1]
            err.append(np.abs(a - b).mean())
            if (g > 20).any():
                edge.append(np.abs(a - b)[:-1, :-1][g > 20].mean())
        res[mode] = (float(np.mean(err)), float(np.mean(edge)))
    return res


def dataset_rate(setting: str, images: int, size: int, workers: int, classes: int | None, mode: str) -> dict:
    """``render_dataset`` end to end in spawned workers (what ``t2s render`` runs)."""
    from t2s_lib.render import render_dataset

    if mode == "msaa4hw":
        return {}  # hardware MSAA is a renderer option only (the dataset path uses the default)
    tmp = Path(tempfile.mkdtemp(prefix="t2s-bench-"))
    try:
        load0, c0, t0 = os.getloadavg()[0], _cpu(), time.perf_counter()
        render_dataset(setting, tmp / "ds", images=images, img_size=size, workers=workers, classes=classes,
                       msaa=MODES[mode]["msaa"], progress=False)
        wall, cpu = time.perf_counter() - t0, _cpu() - c0
        return {"wall_s": wall, "img_s": images / wall, "cpu_ms": cpu / images * 1000,
                "est_2core_img_s": 2 * images / cpu, "load": [round(load0, 1), round(os.getloadavg()[0], 1)]}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def mitsuba_rate(scenes, size: int, spp: int) -> tuple[float, float] | None:
    """(img/s wall, CPU ms/img) of the same scenes through Mitsuba 3 scalar_rgb (base colours only)."""
    try:
        import mitsuba as mi
    except ImportError:
        return None
    import trimesh

    mi.set_variant("scalar_rgb")
    from t2s_lib.assets import load_hdri, load_library
    from t2s_lib.render.resolve import FOCAL_LENGTH, resolve_scene
    from t2s_lib.render.scene import material_table

    lib = load_library("sweethome3d")
    tmp = Path(tempfile.mkdtemp(prefix="t2s-mitsuba-"))
    plys: dict[str, list] = {}
    envs: dict[str, object] = {}

    def parts_of(model: str):
        # one PLY per material part, written once (not timed)
        if model not in plys:
            md = lib.mesh(model)
            out = []
            for p, (first, count) in enumerate(md.parts):
                idx = md.indices[first:first + count].reshape(-1, 3)
                used, remap = np.unique(idx, return_inverse=True)
                v = md.vertices[used]
                tm = trimesh.Trimesh(v[:, :3], remap.reshape(-1, 3), vertex_normals=v[:, 3:6], process=False)
                f = tmp / f"{model}_{p}.ply"
                f.write_bytes(trimesh.exchange.ply.export_ply(tm, encoding="binary", vertex_normal=True))
                out.append((str(f), md.materials[p]))
            plys[model] = out
        return plys[model]

    def env_of(name: str):
        if name not in envs:
            envs[name] = mi.Bitmap(np.ascontiguousarray(load_hdri(name).image.astype(np.float32)))
        return envs[name]

    for s in scenes:
        parts_of(s.model)
        env_of(s.hdri)
    table = material_table()
    w0, c0 = time.perf_counter(), time.process_time()
    for s in scenes:
        rs = resolve_scene(s, load_hdri(s.hdri).sun_dir)
        obj = rs.model_matrix()
        env_m = np.eye(4)
        env_m[:3, :3] = rs.env_rot.T
        # Mitsuba's envmap convention differs from ours by a fixed rotation; irrelevant for timing.
        scene = {"type": "scene", "integrator": {"type": "path", "max_depth": 3},
                 "env": {"type": "envmap", "bitmap": env_of(s.hdri), "scale": rs.env_light,
                         "to_world": mi.ScalarTransform4f(env_m.tolist())},
                 "sun": {"type": "directional", "direction": (-rs.sun_dir).tolist(),
                         "irradiance": {"type": "rgb", "value": list(rs.sun_radiance)}}}
        sensor = {"type": "perspective", "fov": rs.fov_deg, "fov_axis": "y",
                  "to_world": mi.ScalarTransform4f().look_at(origin=rs.cam_pos.tolist(), target=[0, 0, 0], up=[0, 1, 0]),
                  "film": {"type": "hdrfilm", "width": size, "height": size, "rfilter": {"type": "box"}},
                  "sampler": {"type": "independent", "sample_count": spp}}
        if not rs.sharp:
            sensor.update(type="thinlens", aperture_radius=FOCAL_LENGTH / rs.aperture / 2,
                          focus_distance=rs.focus_distance)
        scene["sensor"] = sensor
        for p, (fname, mat) in enumerate(parts_of(s.model)):
            if s.materials is not None:
                tm = table[s.materials[p % len(s.materials)]]
                color, metallic, rough = tm.base_color, tm.metallic, tm.roughness
            else:
                color, metallic, rough = mat["base_color"][:3], mat["metallic"], mat["roughness"]
            scene[f"part{p}"] = {"type": "ply", "filename": fname, "to_world": mi.ScalarTransform4f(obj.tolist()),
                                 "bsdf": {"type": "principled", "base_color": {"type": "rgb", "value": [float(c) for c in color]},
                                          "metallic": float(metallic), "roughness": float(rough)}}
        img = mi.render(mi.load_dict(scene), spp=spp)
        np.asarray(img)
    w, c = time.perf_counter() - w0, time.process_time() - c0
    shutil.rmtree(tmp, ignore_errors=True)
    return len(scenes) / w, c / len(scenes) * 1000


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 224])
    ap.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    ap.add_argument("--workers", type=int, nargs="+", default=[2])
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--classes", type=int, default=None, help="first N classes (default: all)")
    ap.add_argument("--setting", default="domain_randomization")
    ap.add_argument("--render-images", type=int, default=200, help="scenes timed through the renderer alone")
    ap.add_argument("--compare", type=int, default=20, help="scenes timed through Mitsuba 3 (0: skip)")
    ap.add_argument("--compare-sizes", type=int, nargs="+", default=[64, 128, 224])
    ap.add_argument("--quality-sizes", type=int, nargs="*", default=[64, 128],
                    help="sizes of the anti-aliasing quality check (error against a 16-sample reference)")
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args(argv)

    from t2s_lib.render import sample_scenes
    from t2s_lib.render.gl import create_context

    setting = resolve_setting(args.setting)
    scenes = sample_scenes(setting, args.images, classes=args.classes)
    sub = scenes[:: max(1, len(scenes) // args.render_images)][: args.render_images]
    ctx = create_context(torch_process=False)
    gl_name = ctx.info["GL_RENDERER"]
    ctx.release()
    date = time.strftime("%Y-%m-%d %H:%M")
    print(f"# {date}; renderer: {gl_name}; setting {setting.key}; {args.images} images, "
          f"{'all' if args.classes is None else args.classes} classes; cpu cores {os.cpu_count()}; "
          f"load {os.getloadavg()[0]:.1f}", flush=True)
    rows = []
    print(f"{'size':>5} {'mode':>8} {'workers':>7} {'dataset img/s':>13} {'CPU ms/img':>10} {'est 2 free cores':>16} "
          f"{'render img/s':>12} {'render CPU ms':>13} {'load':>10}", flush=True)
    for size in args.sizes:
        for mode in args.modes:
            r_rate, r_cpu = renderer_only(sub, size, mode)
            for w in args.workers:
                d = dataset_rate(setting.key, args.images, size, w, args.classes, mode)
                rows.append({"size": size, "mode": mode, "workers": w, **{f"dataset_{k}": v for k, v in d.items()},
                             "render_img_s": r_rate, "render_cpu_ms": r_cpu})
                if d:
                    print(f"{size:>5} {mode:>8} {w:>7} {d['img_s']:>13.1f} {d['cpu_ms']:>10.2f} {d['est_2core_img_s']:>16.0f} "
                          f"{r_rate:>12.1f} {r_cpu:>13.2f} {str(d['load']):>10}", flush=True)
                else:
                    print(f"{size:>5} {mode:>8} {'-':>7} {'-':>13} {'-':>10} {'-':>16} {r_rate:>12.1f} {r_cpu:>13.2f} "
                          f"{os.getloadavg()[0]:>10.1f}", flush=True)
    compare = []
    if args.compare:
        few = scenes[:: max(1, len(scenes) // args.compare)][: args.compare]
        for size in args.compare_sizes:
            mi = mitsuba_rate(few, size, spp=4)
            if mi is None:
                print("# Mitsuba 3 not installed (pip install mitsuba==3.9.1): comparison skipped")
                break
            gl_rate, gl_cpu = renderer_only(few, size, "ssaa4")
            compare.append({"size": size, "gl_img_s": gl_rate, "gl_cpu_ms": gl_cpu, "mitsuba_img_s": mi[0],
                            "mitsuba_cpu_ms": mi[1], "ratio_wall": gl_rate / mi[0], "ratio_cpu": mi[1] / gl_cpu,
                            "load": round(os.getloadavg()[0], 1)})
            print(f"# {size}px, {len(few)} scenes: GL (4 samples/px) {gl_rate:.1f} img/s, {gl_cpu:.2f} CPU ms vs Mitsuba 3 "
                  f"scalar_rgb 4 spp {mi[0]:.1f} img/s, {mi[1]:.1f} CPU ms -> {gl_rate / mi[0]:.1f}x wall, "
                  f"{mi[1] / gl_cpu:.1f}x CPU (load {os.getloadavg()[0]:.1f})", flush=True)
    quality = {}
    for size in args.quality_sizes:
        quality[size] = aa_quality(size)
        print(f"# AA quality {size}px, mean abs error vs 16-sample reference (all / edge pixels): "
              + ", ".join(f"{m} {a:.2f} / {e:.2f}" for m, (a, e) in quality[size].items()), flush=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"date": date, "renderer": gl_name, "setting": setting.key,
                                               "images": args.images, "rows": rows, "compare": compare,
                                               "quality": quality}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
