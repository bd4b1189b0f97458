"""Scene resolution in one place: a :class:`~t2s_lib.render.scene.Scene` (plain sampled values) plus
its HDRI's metadata become the geometry and lighting every renderer draws (Kubric style: the
scene is data, renderers consume the resolved form).

Frames: the *rig* frame has the object at the origin and the camera on the canonical line
(:data:`~t2s_lib.render.scene.CAMERA_DIR`). The background parameter turns the whole rig
(camera with the object parented to it, as in the paper) towards ``scene.view_dir``; in the rig
frame that is a rotation of the *environment*, ``env_rot`` (rig -> world). World directions
(the HDRI, the sun) are mapped into the rig with ``env_rot.T``.

Sun: the sampled direction when light direction varies; otherwise the canonical sun (front-left,
about 48 degrees up) under the fixed background, or the HDRI's own sun when the background
varies (TDW re-sets the sun from the skybox record whenever it loads one), lifted to at least
~15 degrees of elevation so the object is never lit from below the horizon.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .scene import APERTURE_SHARP, CAMERA_DIR, CAMERA_DISTANCE, FOV_DEG, OBJECT_RADIUS, Scene

#: Thin lens of Unity's post-processing DOF (what TDW uses): 50 mm focal length, 24 mm film.
FOCAL_LENGTH = 0.050
FILM_HEIGHT = 0.024
SUN_STRENGTH = 6.0  # sun irradiance relative to an HDRI of mean radiance 0.6 (see assets.hdri)
#: Image-based light is scaled down so the sun dominates, as in TDW's skybox + directional light set-up.
ENV_LIGHT = 0.6
CANONICAL_SUN = np.array([-0.45, 0.75, 0.5]) / np.linalg.norm([-0.45, 0.75, 0.5])
#: A varying-background sun below this height (sine of ~15 degrees) would leave the object unlit.
MIN_SUN_HEIGHT = 0.26


def rotation_xyz(deg: Sequence[float]) -> np.ndarray:
    """Rotation by pitch (x), then yaw (y), then roll (z), each about the world axes."""
    px, yw, rl = (math.radians(a) for a in deg)
    cx, sx, cy, sy, cz, sz = math.cos(px), math.sin(px), math.cos(yw), math.sin(yw), math.cos(rl), math.sin(rl)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def look_rotation(forward: np.ndarray) -> np.ndarray:
    """Camera-to-world rotation (columns right, up, back) looking along ``forward``, world up +y."""
    fx, fy, fz = (float(v) for v in forward)
    n = math.sqrt(fx * fx + fy * fy + fz * fz)
    fx, fy, fz = fx / n, fy / n, fz / n
    ux, uy, uz = (0.0, 1.0, 0.0) if abs(fy) < 0.999 else (0.0, 0.0, 1.0)
    # right = f x up, true_up = right x f (plain floats: numpy's cross costs ~50 us per call)
    rx, ry, rz = fy * uz - fz * uy, fz * ux - fx * uz, fx * uy - fy * ux
    n = math.sqrt(rx * rx + ry * ry + rz * rz)
    rx, ry, rz = rx / n, ry / n, rz / n
    tx, ty, tz = ry * fz - rz * fy, rz * fx - rx * fz, rx * fy - ry * fx
    return np.array([[rx, tx, -fx], [ry, ty, -fy], [rz, tz, -fz]])


@dataclass(frozen=True)
class ResolvedScene:
    """What a renderer needs for one image, in the rig frame (object at the origin)."""

    cam_pos: np.ndarray  # (3,) camera position
    cam_rot: np.ndarray  # (3, 3) camera -> rig (columns right, up, back)
    env_rot: np.ndarray  # (3, 3) rig -> world (environment map)
    object_rot: np.ndarray  # (3, 3) the sampled object rotation
    object_scale: float  # the normalised model (bounding-sphere radius 1) is scaled by this
    sun_dir_world: np.ndarray  # (3,) unit vector towards the sun, world frame
    sun_dir: np.ndarray  # (3,) the same in the rig frame
    sun_radiance: tuple[float, float, float]  # colour x intensity x SUN_STRENGTH
    env_light: float  # scale of the image-based light
    fov_deg: float
    sharp: bool  # aperture f/70: everything in focus
    focus_distance: float  # metres (meaningful when not sharp)
    aperture: float  # f-number

    @property
    def object_distance(self) -> float:
        return float(np.linalg.norm(self.cam_pos))

    def model_matrix(self) -> np.ndarray:
        m = np.eye(4)
        m[:3, :3] = self.object_rot * self.object_scale
        return m

    def view_matrix(self) -> np.ndarray:
        v = np.eye(4)
        v[:3, :3] = self.cam_rot.T
        v[:3, 3] = -self.cam_rot.T @ self.cam_pos
        return v

    def coc_scale(self, size: int) -> float:
        """Circle-of-confusion radius in pixels per unit of ``|1 - focus / z|`` (0 when sharp)."""
        if self.sharp:
            return 0.0
        focus = max(self.focus_distance, FOCAL_LENGTH * 1.01)
        coc_m = FOCAL_LENGTH ** 2 / (self.aperture * (focus - FOCAL_LENGTH))  # CoC diameter at z = inf
        return coc_m / FILM_HEIGHT * size / 2

    @property
    def lens_aperture_radius(self) -> float:
        """Thin-lens aperture radius in metres (for path tracers)."""
        return FOCAL_LENGTH / self.aperture / 2


_CAM_ROT = look_rotation(-CAMERA_DIR)


def sun_direction(scene: Scene, hdri_sun_dir: Sequence[float] | None) -> np.ndarray:
    """The world direction towards the sun for ``scene`` (see the module doc for the rule)."""
    if scene.light_dir is not None:
        sun = np.asarray(scene.light_dir, dtype=np.float64)
    elif scene.view_dir is None or hdri_sun_dir is None:
        sun = CANONICAL_SUN.copy()
    else:
        sun = np.asarray(hdri_sun_dir, dtype=np.float64).copy()
        sun[1] = max(sun[1], MIN_SUN_HEIGHT)
    return sun / np.linalg.norm(sun)


def resolve_scene(scene: Scene, hdri_sun_dir: Sequence[float] | None = None) -> ResolvedScene:
    """Resolve ``scene`` given the direction of its HDRI's own sun (``HDRI.sun_dir``)."""
    cam_pos = CAMERA_DIR * CAMERA_DISTANCE * scene.distance_factor
    cam_rot = _CAM_ROT
    env_rot = np.eye(3) if scene.view_dir is None else look_rotation(np.asarray(scene.view_dir)) @ cam_rot.T
    sun_world = sun_direction(scene, hdri_sun_dir)
    radiance = tuple(float(c) * SUN_STRENGTH * scene.light_intensity for c in scene.light_color)
    return ResolvedScene(cam_pos=cam_pos, cam_rot=cam_rot, env_rot=env_rot, object_rot=rotation_xyz(scene.rotation_deg),
                         object_scale=OBJECT_RADIUS, sun_dir_world=sun_world, sun_dir=env_rot.T @ sun_world,
                         sun_radiance=radiance, env_light=ENV_LIGHT, fov_deg=FOV_DEG,
                         sharp=scene.aperture >= APERTURE_SHARP, focus_distance=float(scene.focus_distance),
                         aperture=float(scene.aperture))


def yaw_pitch(direction: Sequence[float]) -> tuple[float, float]:
    """Yaw (about +y, from +z towards +x) and pitch (elevation) in degrees of a direction."""
    x, y, z = (float(v) for v in direction)
    return float(np.degrees(np.arctan2(x, z))), float(np.degrees(np.arcsin(np.clip(y, -1, 1))))
