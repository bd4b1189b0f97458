"""The default renderer: OpenGL 3.3 through EGL (moderngl), headless, same code on CPU and GPU.

On a machine without a GPU, EGL resolves to Mesa's llvmpipe (multi-threaded software
rasteriser); on an NVIDIA host it resolves to the driver's EGL (choose the device with
``device_index`` or ``T2S_EGL_DEVICE``).

Per image: (1) the HDRI is drawn as the background through the camera (sampled at the mip level
that matches the pixel footprint, so small images do not alias); (2) the object is shaded with a
metallic-roughness BRDF: image-based lighting from the same HDRI (diffuse from its 9 SH
irradiance coefficients, specular from its mip chain at a roughness-dependent level with an
analytic split-sum term) plus one directional sun light (GGX / Smith / Schlick); both passes
write HDR colour and inverse view depth into a multisampled float buffer; (3) a post pass
resolves depth of field (thin-lens circle of confusion, gather with a Poisson disc), applies
exposure and a tone curve and encodes sRGB.
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


def shader_source(name: str) -> str:
    """GLSL of ``render/shaders/<name>``; fragment shaders of the scene passes share ``common.glsl``."""
    text = (SHADER_DIR / name).read_text()
    if name in ("background.frag", "object.frag"):
        text = (SHADER_DIR / "common.glsl").read_text() + "\n" + text
    return text


def _uset(prog: Any, name: str, value: Any) -> None:
    """Set a uniform if the shader kept it (GLSL compilers drop unused ones, differently per driver)."""
    if name in prog:
        prog[name].value = value


def _uwrite(prog: Any, name: str, data: bytes) -> None:
    if name in prog:
        prog[name].write(data)


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


class GLRenderer:
    """Renders :class:`Scene` records to uint8 RGB images.

    ``msaa`` (0, 2, 4, 8), ``fxaa`` (default: on when ``msaa`` is 0) and ``tonemap`` ("aces",
    "reinhard", "none") are the quality knobs. On llvmpipe, MSAA costs about 2-3x the
    single-sample render; ``msaa=0`` with FXAA is the fast mode;
    ``mesh_lookup(model_id) -> MeshData`` and ``hdri_lookup(name) -> HDRI`` supply assets.
    GPU copies of meshes and HDRIs are cached (LRU) so consecutive images of a model are cheap.
    """

    def __init__(self, size: int, mesh_lookup: Callable[[str], Any], hdri_lookup: Callable[[str], Any], *,
                 msaa: int = 4, tonemap: str = "aces", exposure: float = 1.0, dof_taps: int = 16,
                 fxaa: bool | None = None, device_index: int | None = None, cache_models: int = 64,
                 torch_process: bool = True):
        if tonemap not in ("aces", "reinhard", "none"):
            raise T2SError(f"unknown tone mapping {tonemap!r}", "use aces, reinhard or none")
        self.size = int(size)
        if not 8 <= self.size <= 4096:
            raise T2SError(f"image size {size} out of range", "use 8..4096 pixels")
        import moderngl

        self.mesh_lookup, self.hdri_lookup = mesh_lookup, hdri_lookup
        self.ctx = create_context(device_index, torch_process=torch_process)
        self.info = dict(self.ctx.info)
        ctx = self.ctx
        self.msaa = int(msaa) if msaa and msaa > 1 else 0
        # Without MSAA, FXAA (one cheap post pass) smooths edges unless switched off explicitly.
        self.fxaa = (not self.msaa) if fxaa is None else bool(fxaa)
        self.exposure, self.dof_taps = float(exposure), int(min(24, max(4, dof_taps)))
        self.tonemap = {"none": 0, "aces": 1, "reinhard": 2}[tonemap]
        sz = (self.size, self.size)
        fullscreen = shader_source("fullscreen.vert")
        self.bg_prog = ctx.program(vertex_shader=fullscreen, fragment_shader=shader_source("background.frag"))
        self.obj_prog = ctx.program(vertex_shader=shader_source("object.vert"), fragment_shader=shader_source("object.frag"))
        self.post_prog = ctx.program(vertex_shader=fullscreen, fragment_shader=shader_source("post.frag"))
        self.empty_vao = ctx.vertex_array(self.bg_prog, [])
        self.post_vao = ctx.vertex_array(self.post_prog, [])
        if self.msaa:
            self.ms_color = ctx.renderbuffer(sz, 4, samples=self.msaa)
            self.ms_depth = ctx.depth_renderbuffer(sz, samples=self.msaa)
            self.ms_fbo = ctx.framebuffer([self.ms_color], self.ms_depth)
        # single-sample target: the render target without MSAA, the resolve target with it
        self.ldr_tex = ctx.texture(sz, 4)
        self.ldr_tex.filter = (moderngl.LINEAR, moderngl.LINEAR)
        self.ldr_tex.repeat_x = self.ldr_tex.repeat_y = False
        self.ldr_depth = ctx.depth_renderbuffer(sz)
        self.ldr_fbo = ctx.framebuffer([self.ldr_tex], self.ldr_depth)
        self.out_rb = ctx.renderbuffer(sz, 4)
        self.out_fbo = ctx.framebuffer([self.out_rb])
        _uwrite(self.post_prog, "taps", _poisson_taps(24).tobytes())
        _uset(self.post_prog, "ldr", 0)
        _uset(self.post_prog, "texel", (1.0 / self.size, 1.0 / self.size))
        _uset(self.obj_prog, "env", 0)
        _uset(self.obj_prog, "tex", 1)
        _uset(self.bg_prog, "env", 0)
        for prog in (self.bg_prog, self.obj_prog):
            _uset(prog, "exposure", self.exposure)
            _uset(prog, "tonemap", self.tonemap)
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
        texs = []
        for t in mesh.textures:
            texs.append(_upload(ctx, _fit_texture(t, 2 * self.size)))
        entry = (vao, vbo, ibo, texs, mesh)
        self._models[model_id] = entry
        while len(self._models) > self.cache_models:
            _, old = self._models.popitem(last=False)
            for obj in (old[0], old[1], old[2], *old[3]):
                obj.release()
        return entry

    def _env(self, name: str) -> Any:
        if name in self._envs:
            self._envs.move_to_end(name)
            return self._envs[name]

        h = self.hdri_lookup(name)
        img = h.image
        # The background never needs more than ~6 texels per output pixel across 360 degrees
        # (60 degree field of view); smaller maps upload and mip-map several times faster.
        while img.shape[1] > max(256, 8 * self.size) and img.shape[0] % 2 == 0 and img.shape[1] % 2 == 0:
            img = img.reshape(img.shape[0] // 2, 2, img.shape[1] // 2, 2, 3).astype(np.float32).mean(axis=(1, 3))
        img = np.ascontiguousarray(img, dtype=np.float16)
        tex = _upload(self.ctx, img, dtype="f2")
        tex.repeat_x, tex.repeat_y = True, False
        maxlod = math.log2(img.shape[1])
        entry = (tex, h, maxlod, img.shape[1])
        self._envs[name] = entry
        while len(self._envs) > 32:
            _, old = self._envs.popitem(last=False)
            old[0].release()
        return entry

    # ----- rendering --------------------------------------------------------------------------
    def render(self, scene: Scene, *, mask: bool = False) -> np.ndarray:
        """Render one scene to an (size, size, 3) uint8 array (``mask``: the object coverage, uint8)."""
        vao, _, _, texs, mesh = self._model(scene.model)
        env_tex, hdri, maxlod, env_width = self._env(scene.hdri)
        rs = resolve_scene(scene, hdri.sun_dir)
        sharp = self._set_lens(rs, mask)
        target = self.ms_fbo if self.msaa else self.ldr_fbo
        target.use()
        self.ctx.viewport = (0, 0, self.size, self.size)
        self.ctx.clear(0.0, 0.0, 0.0, 0.0, depth=1.0)
        env_tex.use(0)
        self._draw_background(rs, env_width)
        self._draw_object(rs, scene, vao, texs, mesh, hdri, maxlod)
        if self.msaa:
            self.ctx.copy_framebuffer(self.ldr_fbo, self.ms_fbo)
        if mask:
            raw = np.frombuffer(self.ldr_fbo.read(components=4, alignment=1), np.uint8)
            return raw.reshape(self.size, self.size, 4)[::-1, :, 3].copy()
        return self._post(sharp)

    def _set_lens(self, rs: ResolvedScene, mask: bool) -> bool:
        """Depth-of-field uniforms of both scene passes; returns whether the image is all sharp."""
        max_coc = self.size * 0.05
        coc_scale = rs.coc_scale(self.size)
        focus = 1.0 if rs.sharp else max(rs.focus_distance, FOCAL_LENGTH * 1.01)
        for prog in (self.bg_prog, self.obj_prog):
            for name, value in (("coc_scale", coc_scale), ("focus", focus), ("max_coc", max_coc), ("alpha_mode", int(mask))):
                _uset(prog, name, value)
        return rs.sharp

    def _draw_background(self, rs: ResolvedScene, env_width: int) -> None:
        """The HDRI through the camera (no depth test/write: it sits at infinity)."""
        import moderngl

        self.ctx.disable(moderngl.DEPTH_TEST | moderngl.CULL_FACE)
        bp = self.bg_prog
        _uwrite(bp, "cam_rot", rs.cam_rot.T.astype("f4").tobytes())  # GLSL is column-major
        _uwrite(bp, "env_rot", rs.env_rot.T.astype("f4").tobytes())
        _uset(bp, "tan_half", math.tan(math.radians(rs.fov_deg) / 2))
        _uset(bp, "aspect", 1.0)
        # mip level matching the pixel footprint: pixel angle / texel angle
        _uset(bp, "bg_lod", max(0.0, math.log2((math.radians(rs.fov_deg) / self.size) / (2 * math.pi / env_width))))
        self.empty_vao.render(moderngl.TRIANGLES, vertices=3)

    def _draw_object(self, rs: ResolvedScene, scene: Scene, vao: Any, texs: list, mesh: Any, hdri: Any,
                     maxlod: float) -> None:
        """The object, one draw per material part (its own materials, or random ones from the table)."""
        import moderngl

        self.ctx.enable(moderngl.DEPTH_TEST)
        op = self.obj_prog
        model = rs.model_matrix()
        _uwrite(op, "mvp", (self.proj @ rs.view_matrix() @ model).T.astype("f4").tobytes())
        _uwrite(op, "model", model.T.astype("f4").tobytes())
        _uwrite(op, "normal_mat", rs.object_rot.T.astype("f4").tobytes())
        _uwrite(op, "env_rot", rs.env_rot.T.astype("f4").tobytes())
        _uwrite(op, "sh", np.asarray(hdri.sh, "f4").tobytes())
        _uset(op, "env_maxlod", maxlod - 1.0)
        _uset(op, "env_light", rs.env_light)
        _uset(op, "cam_pos", tuple(float(x) for x in rs.cam_pos))
        _uset(op, "sun_dir", tuple(float(x) for x in rs.sun_dir))
        _uset(op, "sun_rad", rs.sun_radiance)
        table = material_table() if scene.materials is not None else None
        for p, (first, count) in enumerate(mesh.parts):
            if table is not None:
                m = table[scene.materials[p % len(scene.materials)]]
                _uset(op, "base_color", (*m.base_color, 1.0))
                _uset(op, "metallic", m.metallic)
                _uset(op, "roughness", m.roughness)
                _uset(op, "has_tex", 0)
                _uset(op, "pattern", m.pattern)
                _uset(op, "color2", m.color2)
                _uset(op, "pattern_scale", m.pattern_scale)
            else:
                mat = mesh.materials[p]
                _uset(op, "base_color", tuple(mat["base_color"][:4]) if len(mat["base_color"]) >= 4 else (*mat["base_color"][:3], 1.0))
                _uset(op, "metallic", float(mat["metallic"]))
                _uset(op, "roughness", float(mat["roughness"]))
                _uset(op, "pattern", 0)
                ti = int(mat.get("texture", -1))
                _uset(op, "has_tex", 1 if ti >= 0 else 0)
                (texs[ti] if ti >= 0 else self._white).use(1)
            vao.render(moderngl.TRIANGLES, vertices=int(count), first=int(first))

    def _post(self, sharp: bool) -> np.ndarray:
        """Depth of field and/or FXAA in one pass over the resolved image, then read back (rows flipped)."""
        import moderngl

        if sharp and not self.fxaa:
            src = self.ldr_fbo
        else:
            self.out_fbo.use()
            self.ctx.disable(moderngl.DEPTH_TEST)
            self.ldr_tex.use(0)
            pp = self.post_prog
            _uset(pp, "max_coc", 0.0 if sharp else self.size * 0.05)
            _uset(pp, "n_taps", self.dof_taps)
            _uset(pp, "fxaa", int(self.fxaa))
            self.post_vao.render(moderngl.TRIANGLES, vertices=3)
            src = self.out_fbo
        data = src.read(components=3, alignment=1)
        # GL rows start at the bottom
        return np.frombuffer(data, np.uint8).reshape(self.size, self.size, 3)[::-1].copy()

    def object_mask(self, scene: Scene, coverage: float = 0.5) -> np.ndarray:
        """Boolean mask of pixels the object covers by more than ``coverage`` (0 = any sample)."""
        return self.render(scene, mask=True) > int(coverage * 255)

    def release(self) -> None:
        for entry in self._models.values():
            for obj in (entry[0], entry[1], entry[2], *entry[3]):
                obj.release()
        for entry in self._envs.values():
            entry[0].release()
        self._models.clear()
        self._envs.clear()
        self.ctx.release()
