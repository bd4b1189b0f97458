"""Rendering throughput: images/s of the EGL/OpenGL renderer, and the same scenes through Mitsuba 3.

Prints, per image size and worker count:
* ``dataset img/s``: ``render_dataset`` end to end (scene sampling, rendering, JPEG encoding,
  writing, manifest; worker start-up included) -- what a user gets;
* ``render img/s``: the renderer alone on pre-sampled scenes in one process, after warm-up
  (wall clock and CPU time; CPU time is the steadier figure on a shared machine).
Then times the first scenes through Mitsuba 3 (``scalar_rgb``, path tracer, environment map +
sun + principled BSDF + thin-lens camera, same resolution, samples per pixel = MSAA samples) and
prints the speed ratio. Mitsuba is optional (``pip install mitsuba==3.9.1``); without it the
comparison is skipped.

Usage: python benchmarks/render.py [--sizes 64 128 224] [--workers 1 2] [--images 200]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from t2s_lib.settings import resolve_setting  # noqa: E402


def renderer_only(scenes, size: int, msaa: int) -> tuple[float, float]:
    from t2s_lib.assets import load_hdri, load_library
    from t2s_lib.render.gl import GLRenderer

    lib = load_library("sweethome3d")
    r = GLRenderer(size, lib.mesh, load_hdri, msaa=msaa)
    for s in scenes:  # warm-up: uploads meshes and HDRIs
        r.render(s)
    w0, c0 = time.perf_counter(), time.process_time()
    for s in scenes:
        r.render(s)
    w, c = time.perf_counter() - w0, time.process_time() - c0
    r.release()
    return len(scenes) / w, c / len(scenes) * 1000


def dataset_rate(setting: str, images: int, size: int, workers: int, classes: int, msaa: int) -> float:
    from t2s_lib.render import render_dataset

    tmp = Path(tempfile.mkdtemp(prefix="t2s-bench-"))
    try:
        t0 = time.perf_counter()
        render_dataset(setting, tmp / "ds", images=images, img_size=size, workers=workers, classes=classes, msaa=msaa,
                       progress=False)
        return images / (time.perf_counter() - t0)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def mitsuba_rate(scenes, size: int, spp: int) -> float | None:
    """The same scenes through Mitsuba 3 scalar_rgb (textures omitted: base colours only)."""
    try:
        import mitsuba as mi
    except ImportError:
        return None
    import trimesh

    mi.set_variant("scalar_rgb")
    from t2s_lib.assets import load_hdri, load_library
    from t2s_lib.render.resolve import resolve_scene
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
    t0 = time.perf_counter()
    for s in scenes:
        rs = resolve_scene(s, load_hdri(s.hdri).sun_dir)  # the same geometry and light the GL renderer draws
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
            sensor.update(type="thinlens", aperture_radius=rs.lens_aperture_radius, focus_distance=rs.focus_distance)
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
    rate = len(scenes) / (time.perf_counter() - t0)
    shutil.rmtree(tmp, ignore_errors=True)
    return rate


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 224])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--classes", type=int, default=20)
    ap.add_argument("--setting", default="domain_randomization")
    ap.add_argument("--msaa", type=int, nargs="+", default=[4, 0],
                    help="MSAA sample counts to time (0 = no MSAA, FXAA instead: the fast mode)")
    ap.add_argument("--compare", type=int, default=20, help="scenes timed through Mitsuba 3 (0: skip)")
    ap.add_argument("--compare-sizes", type=int, nargs="+", default=[64, 128])
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args(argv)

    from t2s_lib.render import sample_scenes

    setting = resolve_setting(args.setting)
    scenes = sample_scenes(setting, args.images, classes=args.classes)
    from t2s_lib.render.gl import create_context

    ctx = create_context()
    gl_name = ctx.info["GL_RENDERER"]
    ctx.release()
    print(f"# renderer: {gl_name}; setting {setting.key}; {args.images} images over {args.classes} classes; "
          f"AA modes {args.msaa}; cpu cores {os.cpu_count()}; load {os.getloadavg()[0]:.1f}")
    rows = []
    print(f"{'size':>5} {'AA':>6} {'workers':>7} {'dataset img/s':>14} {'render img/s':>13} {'render CPU ms/img':>18}")
    for size in args.sizes:
        for msaa in args.msaa:
            aa = f"msaa{msaa}" if msaa > 1 else "fxaa"
            r_rate, r_cpu = renderer_only(scenes, size, msaa)
            for w in args.workers:
                d_rate = dataset_rate(setting.key, args.images, size, w, args.classes, msaa)
                rows.append({"size": size, "aa": aa, "workers": w, "dataset_img_s": d_rate, "render_img_s": r_rate,
                             "render_cpu_ms": r_cpu})
                print(f"{size:>5} {aa:>6} {w:>7} {d_rate:>14.1f} {r_rate:>13.1f} {r_cpu:>18.2f}", flush=True)
    compare = []
    if args.compare:
        sub = scenes[:: max(1, len(scenes) // args.compare)][: args.compare]
        for size in args.compare_sizes:
            spp = max(1, args.msaa[0])
            mi_rate = mitsuba_rate(sub, size, spp=spp)
            if mi_rate is None:
                print("# Mitsuba 3 not installed (pip install mitsuba==3.9.1): comparison skipped")
                break
            gl_rate, _ = renderer_only(sub, size, args.msaa[0])
            compare.append({"size": size, "gl_img_s": gl_rate, "mitsuba_img_s": mi_rate, "ratio": gl_rate / mi_rate})
            print(f"# {size}px, {len(sub)} scenes: GL (MSAA {args.msaa[0]}x) {gl_rate:.1f} img/s vs Mitsuba 3 scalar_rgb "
                  f"{spp} spp {mi_rate:.1f} img/s -> {gl_rate / mi_rate:.1f}x", flush=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"renderer": gl_name, "rows": rows, "compare": compare}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
