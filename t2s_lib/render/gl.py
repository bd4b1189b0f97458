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
from typing import Any, Callable

import numpy as np

from ..errors import T2SError
from .scene import APERTURE_SHARP, CAMERA_DIR, CAMERA_DISTANCE, FOV_DEG, OBJECT_RADIUS, Scene, material_table

EGL_APT_PACKAGES = "libegl1 libegl-mesa0 libgl1-mesa-dri libgbm1"
#: Thin lens of Unity's post-processing DOF (what TDW uses): 50 mm focal length, 24 mm film.
FOCAL_LENGTH = 0.050
FILM_HEIGHT = 0.024
SUN_STRENGTH = 6.0  # sun irradiance relative to an HDRI of mean radiance 0.6 (see assets.hdri)
#: Image-based light is scaled down so the sun dominates, as in TDW's skybox + directional light set-up.
ENV_LIGHT = 0.6
CANONICAL_SUN = np.array([-0.45, 0.75, 0.5]) / np.linalg.norm([-0.45, 0.75, 0.5])

_COMMON = """
#version 330
const float PI = 3.14159265;
uniform float exposure;
uniform int tonemap;       // 0 none (clamp), 1 ACES filmic, 2 Reinhard
uniform float coc_scale;   // pixels of CoC radius per unit |1 - S/z|
uniform float focus;
uniform float max_coc;
uniform int alpha_mode;    // 0: alpha = CoC / max_coc (for the DOF pass), 1: alpha = object mask
vec3 aces(vec3 x) { return clamp((x * (2.51 * x + 0.03)) / (x * (2.43 * x + 0.59) + 0.14), 0.0, 1.0); }
// Tone mapping happens per fragment so the multisampled buffer can be 8-bit (llvmpipe resolves
// float MSAA buffers several times slower); the CoC rides in alpha for the optional DOF pass.
vec4 finish(vec3 c, float invz, float is_object) {
    c *= exposure;
    if (tonemap == 1) c = aces(c);
    else if (tonemap == 2) c = c / (1.0 + c);
    c = pow(clamp(c, 0.0, 1.0), vec3(1.0 / 2.2));
    float a = alpha_mode == 1 ? is_object : min(1.0, coc_scale * abs(1.0 - focus * invz) / max(max_coc, 1e-6));
    return vec4(c, a);
}
vec2 equirect(vec3 d) {
    return vec2(0.5 + atan(d.x, -d.z) / (2.0 * PI), acos(clamp(d.y, -1.0, 1.0)) / PI);
}
"""

_BG_VS = """
#version 330
out vec2 v_ndc;
void main() {
    vec2 p = vec2((gl_VertexID << 1) & 2, gl_VertexID & 2) * 2.0 - 1.0;
    v_ndc = p;
    gl_Position = vec4(p, 1.0, 1.0);
}
"""

_BG_FS = _COMMON + """
uniform sampler2D env;
uniform mat3 cam_rot;     // camera -> rig
uniform mat3 env_rot;     // rig -> world (environment)
uniform float tan_half;
uniform float aspect;
uniform float bg_lod;
in vec2 v_ndc;
out vec4 frag;
void main() {
    vec3 d = normalize(cam_rot * vec3(v_ndc.x * tan_half * aspect, v_ndc.y * tan_half, -1.0));
    vec3 c = textureLod(env, equirect(env_rot * d), bg_lod).rgb;
    frag = finish(c, 0.0, 0.0);   // the background is infinitely far: inverse depth 0
}
"""

_OBJ_VS = """
#version 330
uniform mat4 mvp;
uniform mat4 model;
uniform mat3 normal_mat;
in vec3 in_pos;
in vec3 in_nrm;
in vec2 in_uv;
out vec3 v_pos;
out vec3 v_opos;
out vec3 v_nrm;
out vec2 v_uv;
void main() {
    vec4 w = model * vec4(in_pos, 1.0);
    v_pos = w.xyz;
    v_opos = in_pos;
    v_nrm = normal_mat * in_nrm;
    v_uv = in_uv;
    gl_Position = mvp * vec4(in_pos, 1.0);
}
"""

_OBJ_FS = _COMMON + """
uniform sampler2D env;
uniform sampler2D tex;
uniform mat3 env_rot;
uniform vec3 sh[9];
uniform float env_maxlod;
uniform float env_light;
uniform vec3 cam_pos;
uniform vec3 sun_dir;
uniform vec3 sun_rad;
uniform vec4 base_color;
uniform float metallic;
uniform float roughness;
uniform int has_tex;
uniform int pattern;
uniform vec3 color2;
uniform float pattern_scale;
in vec3 v_pos;
in vec3 v_opos;
in vec3 v_nrm;
in vec2 v_uv;
out vec4 frag;

vec3 irradiance(vec3 n) {   // E(n)/pi from 9 SH coefficients
    return max(sh[0] * 0.282095
        + sh[1] * 0.488603 * n.y + sh[2] * 0.488603 * n.z + sh[3] * 0.488603 * n.x
        + sh[4] * 1.092548 * n.x * n.y + sh[5] * 1.092548 * n.y * n.z
        + sh[6] * 0.315392 * (3.0 * n.z * n.z - 1.0) + sh[7] * 1.092548 * n.x * n.z
        + sh[8] * 0.546274 * (n.x * n.x - n.y * n.y), vec3(0.0));
}
vec2 env_brdf(float nv, float r) {   // analytic split-sum approximation (Karis 2014)
    vec4 r4 = r * vec4(-1.0, -0.0275, -0.572, 0.022) + vec4(1.0, 0.0425, 1.04, -0.04);
    float a = min(r4.x * r4.x, exp2(-9.28 * nv)) * r4.x + r4.y;
    return vec2(-1.04, 1.04) * a + r4.zw;
}
float hash3(vec3 p) { return fract(sin(dot(p, vec3(12.9898, 78.233, 37.719))) * 43758.5453); }
float vnoise(vec3 p) {
    vec3 i = floor(p); vec3 f = fract(p); f = f * f * (3.0 - 2.0 * f);
    float a = mix(mix(hash3(i), hash3(i + vec3(1,0,0)), f.x), mix(hash3(i + vec3(0,1,0)), hash3(i + vec3(1,1,0)), f.x), f.y);
    float b = mix(mix(hash3(i + vec3(0,0,1)), hash3(i + vec3(1,0,1)), f.x), mix(hash3(i + vec3(0,1,1)), hash3(i + vec3(1,1,1)), f.x), f.y);
    return mix(a, b, f.z);
}
void main() {
    vec3 n = normalize(v_nrm);
    if (!gl_FrontFacing) n = -n;     // furniture meshes are often not closed / consistently wound
    vec3 v = normalize(cam_pos - v_pos);
    if (dot(n, v) < 0.0) n = normalize(n - 1.01 * dot(n, v) * v);
    vec4 albedo4 = base_color;
    if (has_tex == 1) {
        vec4 t = texture(tex, v_uv);
        albedo4 *= vec4(pow(t.rgb, vec3(2.2)), t.a);
    }
    vec3 albedo = pow(albedo4.rgb, vec3(1.0));
    if (pattern == 1) {          // wood-like bands
        float s = sin((v_opos.x + 0.3 * vnoise(v_opos * 3.0)) * pattern_scale * 3.0);
        albedo = mix(albedo, color2, smoothstep(-0.2, 0.8, s));
    } else if (pattern == 2) {   // tiles / weave
        vec3 q = floor(v_opos * pattern_scale);
        albedo = mix(albedo, color2, mod(q.x + q.y + q.z, 2.0));
    } else if (pattern == 3) {   // stone-like noise
        albedo = mix(albedo, color2, vnoise(v_opos * pattern_scale));
    }
    float r = clamp(roughness, 0.04, 1.0);
    vec3 f0 = mix(vec3(0.04), albedo, metallic);
    float nv = max(dot(n, v), 1e-4);
    // sun: GGX distribution, Smith-Schlick visibility, Schlick Fresnel
    vec3 l = normalize(sun_dir);
    vec3 h = normalize(l + v);
    float nl = max(dot(n, l), 0.0);
    float nh = max(dot(n, h), 0.0);
    float a2 = r * r * r * r;
    float dd = nh * nh * (a2 - 1.0) + 1.0;
    float D = a2 / (PI * dd * dd);
    float k = (r + 1.0) * (r + 1.0) / 8.0;
    float G = (nv / (nv * (1.0 - k) + k)) * (nl / (nl * (1.0 - k) + k));
    vec3 F = f0 + (1.0 - f0) * pow(1.0 - max(dot(h, v), 0.0), 5.0);
    vec3 spec_sun = D * G * F / max(4.0 * nv * nl, 1e-4);
    vec3 kd = (1.0 - F) * (1.0 - metallic);
    vec3 col = (kd * albedo / PI + spec_sun) * sun_rad * nl;
    // image-based light
    vec3 Fa = f0 + (max(vec3(1.0 - r), f0) - f0) * pow(1.0 - nv, 5.0);
    col += env_light * (1.0 - Fa) * (1.0 - metallic) * albedo * irradiance(env_rot * n);
    vec3 rr = env_rot * reflect(-v, n);
    vec3 pref = textureLod(env, equirect(rr), r * env_maxlod).rgb;
    vec2 ab = env_brdf(nv, r);
    col += env_light * pref * (f0 * ab.x + ab.y);
    frag = finish(col, 1.0 / max(length(cam_pos - v_pos), 1e-3), 1.0);
}
"""

_POST_FS = """
#version 330
uniform sampler2D ldr;     // tone-mapped colour, alpha = CoC / max_coc
uniform vec2 texel;
uniform float max_coc;
uniform vec2 taps[24];
uniform int n_taps;
uniform int fxaa;
in vec2 v_ndc;
out vec4 frag;
float luma(vec3 c) { return dot(c, vec3(0.299, 0.587, 0.114)); }
// FXAA (Lottes 2009, the compact variant): blur along the local edge direction where contrast is high.
vec3 fxaa_at(vec2 uv) {
    vec3 nw = texture(ldr, uv + vec2(-1.0, -1.0) * texel).rgb;
    vec3 ne = texture(ldr, uv + vec2(1.0, -1.0) * texel).rgb;
    vec3 sw = texture(ldr, uv + vec2(-1.0, 1.0) * texel).rgb;
    vec3 se = texture(ldr, uv + vec2(1.0, 1.0) * texel).rgb;
    vec3 m = texture(ldr, uv).rgb;
    float lnw = luma(nw), lne = luma(ne), lsw = luma(sw), lse = luma(se), lm = luma(m);
    float lmin = min(lm, min(min(lnw, lne), min(lsw, lse)));
    float lmax = max(lm, max(max(lnw, lne), max(lsw, lse)));
    vec2 dir = vec2(-((lnw + lne) - (lsw + lse)), (lnw + lsw) - (lne + lse));
    float reduce = max((lnw + lne + lsw + lse) * (0.25 / 8.0), 1.0 / 128.0);
    float rcp_min = 1.0 / (min(abs(dir.x), abs(dir.y)) + reduce);
    dir = clamp(dir * rcp_min, vec2(-8.0), vec2(8.0)) * texel;
    vec3 a = 0.5 * (texture(ldr, uv + dir * (1.0 / 3.0 - 0.5)).rgb + texture(ldr, uv + dir * (2.0 / 3.0 - 0.5)).rgb);
    vec3 b = a * 0.5 + 0.25 * (texture(ldr, uv - dir * 0.5).rgb + texture(ldr, uv + dir * 0.5).rgb);
    float lb = luma(b);
    return (lb < lmin || lb > lmax) ? a : b;
}
void main() {
    vec2 uv = v_ndc * 0.5 + 0.5;
    vec4 c0 = texture(ldr, uv);
    float r0 = c0.a * max_coc;
    vec3 acc = c0.rgb; float wsum = 1.0;
    if (r0 <= 0.5 && fxaa == 1) acc = fxaa_at(uv);
    if (r0 > 0.5) {
        for (int i = 0; i < n_taps; ++i) {
            vec2 o = taps[i] * r0;
            vec4 s = texture(ldr, uv + o * texel);
            // a sample contributes if its own blur disc reaches this pixel (keeps a sharp
            // foreground from bleeding into a blurred background and vice versa)
            float w = clamp(s.a * max_coc - length(o) + 1.0, 0.0, 1.0);
            acc += s.rgb * w; wsum += w;
        }
    }
    frag = vec4(acc / wsum, 1.0);
}
"""


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


def _rot_xyz(deg: tuple[float, float, float]) -> np.ndarray:
    """Rotation by pitch (x), then yaw (y), then roll (z), each about the world axes."""
    px, yw, rl = (math.radians(a) for a in deg)
    cx, sx, cy, sy, cz, sz = math.cos(px), math.sin(px), math.cos(yw), math.sin(yw), math.cos(rl), math.sin(rl)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def look_rotation(forward: np.ndarray) -> np.ndarray:
    """Camera-to-world rotation (columns right, up, back) looking along ``forward``, world up +y."""
    f = forward / np.linalg.norm(forward)
    up = np.array([0.0, 1.0, 0.0]) if abs(f[1]) < 0.999 else np.array([0.0, 0.0, 1.0])
    right = np.cross(f, up)
    right /= np.linalg.norm(right)
    true_up = np.cross(right, f)
    return np.stack([right, true_up, -f], axis=1)


def _perspective(fov_deg: float, aspect: float, near: float, far: float) -> np.ndarray:
    f = 1.0 / math.tan(math.radians(fov_deg) / 2)
    return np.array([[f / aspect, 0, 0, 0], [0, f, 0, 0],
                     [0, 0, (far + near) / (near - far), 2 * far * near / (near - far)], [0, 0, -1, 0]])


def create_context(device_index: int | None = None) -> Any:
    """A standalone EGL context, or a :class:`T2SError` naming the packages to install."""
    import moderngl

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
                 fxaa: bool | None = None, device_index: int | None = None, cache_models: int = 64):
        if tonemap not in ("aces", "reinhard", "none"):
            raise T2SError(f"unknown tone mapping {tonemap!r}", "use aces, reinhard or none")
        self.size = int(size)
        if not 8 <= self.size <= 4096:
            raise T2SError(f"image size {size} out of range", "use 8..4096 pixels")
        import moderngl

        self.mesh_lookup, self.hdri_lookup = mesh_lookup, hdri_lookup
        self.ctx = create_context(device_index)
        self.info = dict(self.ctx.info)
        ctx = self.ctx
        self.msaa = int(msaa) if msaa and msaa > 1 else 0
        # Without MSAA, FXAA (one cheap post pass) smooths edges unless switched off explicitly.
        self.fxaa = (not self.msaa) if fxaa is None else bool(fxaa)
        self.exposure, self.dof_taps = float(exposure), int(min(24, max(4, dof_taps)))
        self.tonemap = {"none": 0, "aces": 1, "reinhard": 2}[tonemap]
        sz = (self.size, self.size)
        self.bg_prog = ctx.program(vertex_shader=_BG_VS, fragment_shader=_BG_FS)
        self.obj_prog = ctx.program(vertex_shader=_OBJ_VS, fragment_shader=_OBJ_FS)
        self.post_prog = ctx.program(vertex_shader=_BG_VS, fragment_shader=_POST_FS)
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
        import moderngl

        ctx = self.ctx
        vao, _, _, texs, mesh = self._model(scene.model)
        env_tex, hdri, maxlod, env_width = self._env(scene.hdri)
        # Rig frame: object at the origin, camera on the canonical line at the sampled distance.
        # The background parameter turns the whole rig (camera with the object parented to it)
        # towards view_dir, so in the rig frame the *environment* rotates: env_rot maps rig -> world.
        cam_pos = CAMERA_DIR * CAMERA_DISTANCE * scene.distance_factor
        cam_rot = look_rotation(-CAMERA_DIR)
        if scene.view_dir is not None:
            env_rot = look_rotation(np.asarray(scene.view_dir)) @ cam_rot.T
        else:
            env_rot = np.eye(3)
        # Sun direction: sampled when lighting_dir varies; otherwise the canonical sun (front-left,
        # 45 degrees up) under the fixed background, or the HDRI's own sun when the background
        # varies (TDW re-sets the sun from the skybox record whenever it loads one).
        if scene.light_dir is not None:
            sun_world = np.asarray(scene.light_dir, dtype=np.float64)
        elif scene.view_dir is None:
            sun_world = CANONICAL_SUN.copy()
        else:
            sun_world = np.asarray(hdri.sun_dir, dtype=np.float64).copy()
            sun_world[1] = max(sun_world[1], 0.26)  # a sun below ~15 degrees would leave the object unlit
        sun_world /= np.linalg.norm(sun_world)
        sun_rig = env_rot.T @ sun_world
        model = np.eye(4)
        model[:3, :3] = _rot_xyz(scene.rotation_deg) * OBJECT_RADIUS
        view = np.eye(4)
        view[:3, :3] = cam_rot.T
        view[:3, 3] = -cam_rot.T @ cam_pos
        mvp = self.proj @ view @ model
        normal_mat = _rot_xyz(scene.rotation_deg)
        tan_half = math.tan(math.radians(FOV_DEG) / 2)

        sharp = scene.aperture >= APERTURE_SHARP
        max_coc = self.size * 0.05
        if sharp:
            coc_scale, focus = 0.0, 1.0
        else:
            focus = max(scene.focus_distance, FOCAL_LENGTH * 1.01)
            coc_m = FOCAL_LENGTH ** 2 / (scene.aperture * (focus - FOCAL_LENGTH))  # CoC diameter at z = inf
            coc_scale = coc_m / FILM_HEIGHT * self.size / 2
        for prog in (self.bg_prog, self.obj_prog):
            for name, value in (("coc_scale", coc_scale), ("focus", focus), ("max_coc", max_coc), ("alpha_mode", int(mask))):
                _uset(prog, name, value)
        target = self.ms_fbo if self.msaa else self.ldr_fbo
        target.use()
        ctx.viewport = (0, 0, self.size, self.size)
        ctx.clear(0.0, 0.0, 0.0, 0.0, depth=1.0)
        env_tex.use(0)
        # background (no depth test/write: it sits at infinity)
        ctx.disable(moderngl.DEPTH_TEST | moderngl.CULL_FACE)
        bp = self.bg_prog
        _uwrite(bp, "cam_rot", cam_rot.T.astype("f4").tobytes())  # GLSL is column-major
        _uwrite(bp, "env_rot", env_rot.T.astype("f4").tobytes())
        _uset(bp, "tan_half", tan_half)
        _uset(bp, "aspect", 1.0)
        # mip level matching the pixel footprint: pixel angle / texel angle
        _uset(bp, "bg_lod", max(0.0, math.log2((math.radians(FOV_DEG) / self.size) / (2 * math.pi / env_width))))
        self.empty_vao.render(moderngl.TRIANGLES, vertices=3)
        # object
        ctx.enable(moderngl.DEPTH_TEST)
        op = self.obj_prog
        _uwrite(op, "mvp", mvp.T.astype("f4").tobytes())
        _uwrite(op, "model", model.T.astype("f4").tobytes())
        _uwrite(op, "normal_mat", normal_mat.T.astype("f4").tobytes())
        _uwrite(op, "env_rot", env_rot.T.astype("f4").tobytes())
        _uwrite(op, "sh", np.asarray(hdri.sh, "f4").tobytes())
        _uset(op, "env_maxlod", maxlod - 1.0)
        _uset(op, "env_light", ENV_LIGHT)
        _uset(op, "cam_pos", tuple(float(x) for x in cam_pos))
        _uset(op, "sun_dir", tuple(float(x) for x in sun_rig))
        _uset(op, "sun_rad", tuple(float(c) * SUN_STRENGTH * scene.light_intensity for c in scene.light_color))
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
        if self.msaa:
            ctx.copy_framebuffer(self.ldr_fbo, self.ms_fbo)
        if mask:
            raw = np.frombuffer(self.ldr_fbo.read(components=4, alignment=1), np.uint8)
            return raw.reshape(self.size, self.size, 4)[::-1, :, 3].copy()
        if sharp and not self.fxaa:
            src = self.ldr_fbo
        else:  # depth of field and/or FXAA: one pass over the resolved image
            self.out_fbo.use()
            ctx.disable(moderngl.DEPTH_TEST)
            self.ldr_tex.use(0)
            pp = self.post_prog
            _uset(pp, "max_coc", 0.0 if sharp else max_coc)
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
