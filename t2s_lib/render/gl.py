"""The default renderer: OpenGL 3.3 through EGL (moderngl), headless, same code on CPU and GPU.

On a machine without a GPU, EGL resolves to Mesa's llvmpipe (multi-threaded software
rasteriser); on an NVIDIA host it resolves to the driver's EGL (choose the device with
``device_index`` or ``T2S_EGL_DEVICE``).

Per image: (1) the HDRI is drawn as the background through the camera, sampled with each
sample's own texel footprint (analytic derivatives of the equirect mapping, trilinear), so small
images do not alias, large ones get the map's full resolution, and the stretched rows near the
poles are filtered along their stretch (hardware anisotropic filtering would be sharper there,
but on llvmpipe it made every image 4x slower); (2) the object is
shaded with a metallic-roughness BRDF: image-based lighting from the same HDRI (diffuse from its
9 SH irradiance coefficients, specular from its mip chain at a roughness-dependent level with
an analytic split-sum term) plus one directional sun light (GGX / Smith / Schlick); both passes
tone-map per sample and write sRGB colour plus the circle of confusion; (3) a post pass
resolves the anti-aliasing samples, depth of field (thin-lens circle of confusion, gather with
a Poisson disc) or FXAA, and the image is read back.

Anti-aliasing (``msaa`` = samples per pixel): 4 (default) renders the scene at 2x2 the output
size and box-filters it in the post pass (ordered-grid supersampling: edges, textures and
highlights are all anti-aliased); llvmpipe runs the fragment shader for every sample of a
hardware MSAA buffer anyway, and resolving 4 MSAA samples cost about twice as much CPU as the
2x2 supersample here (see BENCHMARKS.md). 2 and 8 use hardware MSAA; 0 renders one sample and
applies FXAA. ``aa="msaa"`` forces hardware MSAA for 4 samples too (the reference path).
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import T2SError
from .resolve import FOCAL_LENGTH, ResolvedScene, resolve_scene
from .scene import FOV_DEG, Scene, material_table

EGL_APT_PACKAGES = "libegl1 libegl-mesa0 libgl1-mesa-dri libgbm1"
SHADER_DIR = Path(__file__).resolve().parent / "shaders"


def shader_source(name: str, **defines: int) -> str:
    """GLSL of ``render/shaders/<name>``; fragment shaders of the scene passes share ``common.glsl``;
    ``defines`` become ``#define NAME value`` lines after the ``#version`` line (shader variants)."""
    text = (SHADER_DIR / name).read_text()
    if name in ("background.frag", "object.frag"):
        text = (SHADER_DIR / "common.glsl").read_text() + "\n" + text
    if defines:
        first, rest = text.split("\n", 1)
        text = first + "\n" + "".join(f"#define {k} {int(v)}\n" for k, v in defines.items()) + rest
    return text


def _fit_texture(t: np.ndarray, limit: int) -> np.ndarray:
    """Shrink a texture so its larger side is at most ``limit`` (min 32): cheaper upload and mip-mapping."""
    limit = max(32, int(limit))
    if max(t.shape[:2]) <= limit:
        return t
    from PIL import Image

    img = Image.fromarray(t)
    img.thumbnail((limit, limit), Image.Resampling.BOX)
    return np.asarray(img)


def _upload(ctx: Any, img: np.ndarray, dtype: str = "f1") -> Any:
    """A mip-mapped, trilinearly filtered texture from an (h, w, c) array."""
    import moderngl

    img = np.ascontiguousarray(img)
    tex = ctx.texture((img.shape[1], img.shape[0]), img.shape[2], img.tobytes(), dtype=dtype)
    tex.build_mipmaps()
    tex.filter = (moderngl.LINEAR_MIPMAP_LINEAR, moderngl.LINEAR)
    return tex


def _poisson_taps(n: int = 24) -> np.ndarray:
    """Fixed disc samples (golden-angle spiral): deterministic, evenly spread."""
    i = np.arange(n) + 0.5
    r = np.sqrt(i / n)
    t = i * math.pi * (3 - math.sqrt(5))
    return np.stack([r * np.cos(t), r * np.sin(t)], 1).astype("f4")


def _perspective(fov_deg: float, aspect: float, near: float, far: float) -> np.ndarray:
    f = 1.0 / math.tan(math.radians(fov_deg) / 2)
    return np.array([[f / aspect, 0, 0, 0], [0, f, 0, 0],
                     [0, 0, (far + near) / (near - far), 2 * far * near / (near - far)], [0, 0, -1, 0]])


def avoid_llvm_clash() -> None:
    """Load torch's compiler (triton) now, before this process creates an llvmpipe context.

    Mesa's llvmpipe and triton each load an LLVM; a process that created an EGL context on
    llvmpipe and imports triton afterwards (torch pulls it in with the first optimiser) segfaults
    (moderngl 5.13 + Mesa EGL + torch 2.14). Importing it first is safe. Processes that never
    import torch (the spawned render workers) skip this (it costs ~2 s of CPU).
    """
    try:
        import torch._dynamo  # noqa: F401
    except ImportError:  # torch is not installed: nothing can clash
        pass


def create_context(device_index: int | None = None, *, torch_process: bool = True) -> Any:
    """A standalone EGL context, or a :class:`T2SError` naming the packages to install.

    ``torch_process=False`` declares that this process never imports torch (see :func:`avoid_llvm_clash`).
    """
    import moderngl

    if torch_process:
        avoid_llvm_clash()
    os.environ.setdefault("EGL_PLATFORM", "surfaceless")
    if device_index is None and os.environ.get("T2S_EGL_DEVICE"):
        device_index = int(os.environ["T2S_EGL_DEVICE"])
    kwargs: dict[str, Any] = {"standalone": True, "backend": "egl", "require": 330}
    if device_index is not None:
        kwargs["device_index"] = device_index
    try:
        return moderngl.create_context(**kwargs)
    except Exception as exc:
        raise T2SError(
            f"no headless OpenGL 3.3 context through EGL ({type(exc).__name__}: {exc})",
            f"install the EGL/GL driver packages: sudo apt-get install -y {EGL_APT_PACKAGES} "
            "(on NVIDIA hosts the driver's libEGL_nvidia must be installed; set T2S_EGL_DEVICE to choose a GPU)",
        ) from exc


class _Uniforms:
    """The uniforms of one program, looked up once: moderngl's ``name in prog`` walks every member,
    which cost ~2 ms of Python per image. Names the GLSL compiler dropped are ignored."""

    def __init__(self, prog: Any):
        import moderngl

        self.prog = prog
        self.members = {name: prog[name] for name in prog if isinstance(prog[name], moderngl.Uniform)}
        self.last: dict[str, Any] = {}

    def set(self, name: str, value: Any) -> None:
        """Set a uniform (skipped when unchanged since the last call)."""
        u = self.members.get(name)
        if u is not None and self.last.get(name) != value:
            u.value = value
            self.last[name] = value

    def write(self, name: str, data: bytes) -> None:
        u = self.members.get(name)
        if u is not None:
            u.write(data)


def _mat3(m: np.ndarray) -> bytes:
    """A 3x3 matrix for GLSL (column-major)."""
    return np.ascontiguousarray(np.asarray(m, dtype="f4").T).tobytes()


class GLRenderer:
    """Renders :class:`Scene` records to uint8 RGB images.

    ``msaa`` (samples per pixel: 0, 2, 4, 8), ``aa`` ("auto": 4 samples as a 2x2 supersample,
    others as hardware MSAA; "msaa": always hardware MSAA), ``fxaa`` (default: on when ``msaa``
    is 0) and ``tonemap`` ("aces", "reinhard", "none") are the quality knobs.
    ``mesh_lookup(model_id) -> MeshData`` and ``hdri_lookup(name) -> HDRI`` supply assets.
    GPU copies of meshes and HDRIs are cached (LRU) so consecutive images of a model are cheap.
    """

    def __init__(self, size: int, mesh_lookup: Callable[[str], Any], hdri_lookup: Callable[[str], Any], *,
                 msaa: int = 4, tonemap: str = "aces", exposure: float = 1.0, dof_taps: int = 16,
                 fxaa: bool | None = None, device_index: int | None = None, cache_models: int = 64,
                 torch_process: bool = True, aa: str = "auto"):
        if tonemap not in ("aces", "reinhard", "none"):
            raise T2SError(f"unknown tone mapping {tonemap!r}", "use aces, reinhard or none")
        if aa not in ("auto", "msaa"):
            raise T2SError(f"unknown anti-aliasing mode {aa!r}", "use auto or msaa")
        self.size = int(size)
        if not 8 <= self.size <= 4096:
            raise T2SError(f"image size {size} out of range", "use 8..4096 pixels")
        import moderngl

        self.mesh_lookup, self.hdri_lookup = mesh_lookup, hdri_lookup
        self.ctx = create_context(device_index, torch_process=torch_process)
        self.info = dict(self.ctx.info)
        ctx = self.ctx
        samples = int(msaa) if msaa and msaa > 1 else 0
        # 4 samples: a 2x2 supersample (scale 2) unless hardware MSAA is asked for
        self.ss = 2 if samples == 4 and aa == "auto" else 1
        self.msaa = samples if self.ss == 1 else 0
        self.samples = samples
        # Without any multisampling, FXAA (in the post pass) smooths edges unless switched off explicitly.
        self.fxaa = (not samples) if fxaa is None else bool(fxaa)
        self.exposure, self.dof_taps = float(exposure), int(min(24, max(4, dof_taps)))
        self.tonemap = {"none": 0, "aces": 1, "reinhard": 2}[tonemap]
        self.render_size = self.size * self.ss
        sz, rsz = (self.size, self.size), (self.render_size, self.render_size)
        fullscreen = shader_source("fullscreen.vert")
        self.bg_prog = ctx.program(vertex_shader=fullscreen, fragment_shader=shader_source("background.frag"))
        self.obj_prog = ctx.program(vertex_shader=shader_source("object.vert"), fragment_shader=shader_source("object.frag"))
        # post-pass variants: sharp (resolve only, or FXAA) and shallow depth of field (DOF, + FXAA)
        self.posts = {}
        for dof in (0, 1):
            prog = ctx.program(vertex_shader=fullscreen,
                               fragment_shader=shader_source("post.frag", DOF=dof, FXAA=int(self.fxaa)))
            self.posts[bool(dof)] = (prog, _Uniforms(prog), ctx.vertex_array(prog, []))
        self.bg_u, self.obj_u = _Uniforms(self.bg_prog), _Uniforms(self.obj_prog)
        self.empty_vao = ctx.vertex_array(self.bg_prog, [])
        if self.msaa:
            self.ms_color = ctx.renderbuffer(sz, 4, samples=self.msaa)
            self.ms_depth = ctx.depth_renderbuffer(sz, samples=self.msaa)
            self.ms_fbo = ctx.framebuffer([self.ms_color], self.ms_depth)
        # single-sample scene target: the render target (at ss x the size), or the MSAA resolve target
        self.ldr_tex = ctx.texture(rsz, 4)
        self.ldr_tex.filter = (moderngl.LINEAR, moderngl.LINEAR)
        self.ldr_tex.repeat_x = self.ldr_tex.repeat_y = False
        self.ldr_depth = ctx.depth_renderbuffer(rsz)
        self.ldr_fbo = ctx.framebuffer([self.ldr_tex], self.ldr_depth)
        self.out_rb = ctx.renderbuffer(sz, 4)
        self.out_fbo = ctx.framebuffer([self.out_rb])
        self._out = bytearray(self.size * self.size * 3)
        for _, pu, _ in self.posts.values():
            pu.write("taps", _poisson_taps(24).tobytes())
            pu.set("ldr", 0)
            pu.set("texel", (1.0 / self.size, 1.0 / self.size))
            pu.set("n_taps", self.dof_taps)
            pu.set("max_coc", self.size * 0.05)
        self.obj_u.set("env", 0)
        self.obj_u.set("tex", 1)
        self.bg_u.set("env", 0)
        for u in (self.bg_u, self.obj_u):
            u.set("exposure", self.exposure)
            u.set("tonemap", self.tonemap)
            u.set("aspect", 1.0)
        self._white = ctx.texture((1, 1), 4, bytes([255, 255, 255, 255]))
        self._models: OrderedDict[str, Any] = OrderedDict()
        self._envs: OrderedDict[str, Any] = OrderedDict()
        self.cache_models = cache_models
        self.proj = _perspective(FOV_DEG, 1.0, 0.02, 200.0)

    # ----- asset upload -----------------------------------------------------------------------
    def _model(self, model_id: str) -> Any:
        if model_id in self._models:
            self._models.move_to_end(model_id)
            return self._models[model_id]

        mesh = self.mesh_lookup(model_id)
        ctx = self.ctx
        vbo = ctx.buffer(np.ascontiguousarray(mesh.vertices, dtype="f4").tobytes())
        ibo = ctx.buffer(np.ascontiguousarray(mesh.indices, dtype="u4").tobytes())
        vao = ctx.vertex_array(self.obj_prog, [(vbo, "3f 3f 2f", "in_pos", "in_nrm", "in_uv")], ibo)
        # textures are uploaded (and mip-mapped) on first use: random materials never need them
        texs: list[Any] = [None] * len(mesh.textures)
        # per part: (first, count, material uniforms) prepared once
        mats = []
        for p, (first, count) in enumerate(mesh.parts):
            mat = mesh.materials[p]
            bc = mat["base_color"]
            ti = int(mat.get("texture", -1))
            mats.append((int(first), int(count), tuple(bc[:4]) if len(bc) >= 4 else (*bc[:3], 1.0),
                         float(mat["metallic"]), float(mat["roughness"]), ti))
        entry = (vao, vbo, ibo, texs, mesh, mats)
        self._models[model_id] = entry
        while len(self._models) > self.cache_models:
            _, old = self._models.popitem(last=False)
            for obj in (old[0], old[1], old[2], *old[3]):
                if obj is not None:
                    obj.release()
        return entry

    def _env(self, name: str) -> Any:
        if name in self._envs:
            self._envs.move_to_end(name)
            return self._envs[name]

        import moderngl

        h = self.hdri_lookup(name)
        img = h.image
        # The background needs at most ~2.7 texels per output pixel (16 x size across 360 degrees
        # with a 60-degree view: the 2x2 supersample's samples get a texel each, and bilinear
        # magnification does not blur what a box filter would keep); larger maps only cost upload.
        while img.shape[1] > max(512, 16 * self.size) and img.shape[0] % 2 == 0 and img.shape[1] % 2 == 0:
            img = img.reshape(img.shape[0] // 2, 2, img.shape[1] // 2, 2, 3).astype(np.float32).mean(axis=(1, 3))
        img = np.ascontiguousarray(img, dtype=np.float16)
        tex = _upload(self.ctx, img, dtype="f2")
        tex.repeat_x, tex.repeat_y = True, False
        tex.filter = (moderngl.LINEAR_MIPMAP_LINEAR, moderngl.LINEAR)
        maxlod = math.log2(img.shape[1])
        entry = (tex, h, maxlod, img.shape[1], np.asarray(h.sh, "f4").tobytes())
        self._envs[name] = entry
        while len(self._envs) > 32:
            _, old = self._envs.popitem(last=False)
            old[0].release()
        return entry

    # ----- rendering --------------------------------------------------------------------------
    def render(self, scene: Scene, *, mask: bool = False) -> np.ndarray:
        """Render one scene to an (size, size, 3) uint8 array (``mask``: the object coverage, uint8)."""
        import moderngl

        model = self._model(scene.model)
        env = self._env(scene.hdri)
        rs = resolve_scene(scene, env[1].sun_dir)
        sharp = self._set_lens(rs, mask)
        ctx = self.ctx
        target = self.ms_fbo if self.msaa else self.ldr_fbo
        target.use()
        ctx.viewport = (0, 0, self.render_size, self.render_size)
        ctx.clear(0.0, 0.0, 0.0, 0.0, depth=1.0)
        env[0].use(0)
        ctx.disable(moderngl.DEPTH_TEST | moderngl.CULL_FACE)
        self._draw_background(rs, env[3])
        ctx.enable(moderngl.DEPTH_TEST)
        self._draw_object(rs, scene, model, env)
        if self.msaa:
            ctx.copy_framebuffer(self.ldr_fbo, self.ms_fbo)
        if mask:
            n = self.render_size
            raw = np.frombuffer(self.ldr_fbo.read(components=4, alignment=1), np.uint8).reshape(n, n, 4)[::-1, :, 3]
            if self.ss > 1:  # coverage of the output pixel: mean of its samples
                raw = raw.reshape(self.size, self.ss, self.size, self.ss).astype(np.float32).mean(axis=(1, 3))
                raw = np.rint(raw).astype(np.uint8)
            return raw.copy()
        return self._post(sharp)

    def _set_lens(self, rs: ResolvedScene, mask: bool) -> bool:
        """Depth-of-field uniforms of both scene passes; returns whether the image is all sharp."""
        max_coc = self.size * 0.05
        coc_scale = rs.coc_scale(self.size)
        focus = 1.0 if rs.sharp else max(rs.focus_distance, FOCAL_LENGTH * 1.01)
        for u in (self.bg_u, self.obj_u):
            u.set("coc_scale", coc_scale)
            u.set("focus", focus)
            u.set("max_coc", max_coc)
            u.set("alpha_mode", int(mask))
        return rs.sharp

    def _draw_background(self, rs: ResolvedScene, env_width: int) -> None:
        """The HDRI through the camera (no depth test/write: it sits at infinity)."""
        import moderngl

        u = self.bg_u
        u.write("cam_rot", _mat3(rs.cam_rot))
        u.write("env_rot", _mat3(rs.env_rot))
        u.set("tan_half", math.tan(math.radians(rs.fov_deg) / 2))
        self.empty_vao.render(moderngl.TRIANGLES, vertices=3)

    def _draw_object(self, rs: ResolvedScene, scene: Scene, model: Any, env: Any) -> None:
        """The object, one draw per material part (its own materials, or random ones from the table)."""
        import moderngl

        vao, _, _, texs, mesh, mats = model
        u = self.obj_u
        m = rs.model_matrix()
        u.write("mvp", np.ascontiguousarray((self.proj @ rs.view_matrix() @ m).T, dtype="f4").tobytes())
        u.write("model", np.ascontiguousarray(m.T, dtype="f4").tobytes())
        u.write("normal_mat", _mat3(rs.object_rot))
        u.write("env_rot", _mat3(rs.env_rot))
        u.write("sh", env[4])
        u.set("env_maxlod", env[2] - 1.0)
        u.set("env_light", rs.env_light)
        u.set("cam_pos", tuple(float(x) for x in rs.cam_pos))
        u.set("sun_dir", tuple(float(x) for x in rs.sun_dir))
        u.set("sun_rad", rs.sun_radiance)
        table = material_table() if scene.materials is not None else None
        for p, (first, count, base_color, metallic, roughness, ti) in enumerate(mats):
            if table is not None:
                mt = table[scene.materials[p % len(scene.materials)]]
                u.set("base_color", (*mt.base_color, 1.0))
                u.set("metallic", mt.metallic)
                u.set("roughness", mt.roughness)
                u.set("has_tex", 0)
                u.set("pattern", mt.pattern)
                u.set("color2", mt.color2)
                u.set("pattern_scale", mt.pattern_scale)
            else:
                u.set("base_color", base_color)
                u.set("metallic", metallic)
                u.set("roughness", roughness)
                u.set("pattern", 0)
                u.set("has_tex", 1 if ti >= 0 else 0)
                if ti >= 0 and texs[ti] is None:
                    texs[ti] = _upload(self.ctx, _fit_texture(mesh.textures[ti], 2 * self.size))
                (texs[ti] if ti >= 0 else self._white).use(1)
            vao.render(moderngl.TRIANGLES, vertices=count, first=first)

    def _post(self, sharp: bool) -> np.ndarray:
        """Resolve the samples, depth of field and/or FXAA in one pass; read back (rows flipped)."""
        import moderngl

        if sharp and not self.fxaa and self.ss == 1:
            src = self.ldr_fbo
        else:
            self.out_fbo.use()
            self.ctx.viewport = (0, 0, self.size, self.size)
            self.ctx.disable(moderngl.DEPTH_TEST)
            self.ldr_tex.use(0)
            self.posts[not sharp][2].render(moderngl.TRIANGLES, vertices=3)
            src = self.out_fbo
        src.read_into(self._out, components=3, alignment=1)
        # GL rows start at the bottom
        return np.frombuffer(self._out, np.uint8).reshape(self.size, self.size, 3)[::-1].copy()

    def object_mask(self, scene: Scene, coverage: float = 0.5) -> np.ndarray:
        """Boolean mask of pixels the object covers by more than ``coverage`` (0 = any sample)."""
        return self.render(scene, mask=True) > int(coverage * 255)

    def release(self) -> None:
        for entry in self._models.values():
            for obj in (entry[0], entry[1], entry[2], *entry[3]):
                if obj is not None:
                    obj.release()
        for entry in self._envs.values():
            entry[0].release()
        self._models.clear()
        self._envs.clear()
        self.ctx.release()
