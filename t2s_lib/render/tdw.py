"""TDW backend (optional extra ``tdw``): the same :class:`Scene` records driven through a
ThreeDWorld build, for paper fidelity.

TDW's ``Controller()`` downloads its Unity build at start, so it cannot run on an offline
machine; here the backend is tested at the level of the commands it would send
(:func:`scene_commands`). With a TDW build available (``pip install tdw`` and a reachable or
local build), :class:`TDWRenderer` sends them and reads back the ``_img`` pass.

The object list is the paper's (``data/published/tdw_simple_objs_100.json``, library name
``tdw``) and the background pool is the paper's 43 skyboxes; the canonical pose is the paper's
(camera at (1, 1.5, 1.8), object fitted with TDW's own unit-scale helpers, which a live
controller would add).
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import numpy as np

from ..errors import T2SError
from ..paths import PUBLISHED_DATA_DIR
from .resolve import resolve_scene, yaw_pitch
from .scene import APERTURE_SHARP, Scene, material_table

TDW_DEFAULT_SKYBOX = "fish_hoek_beach_4k"
CAMERA_POSITION = {"x": 1.0, "y": 1.5, "z": 1.8}
OBJECT_ID = 1
AVATAR_ID = "a"


@lru_cache(maxsize=1)
def tdw_objects() -> dict[str, list[str]]:
    """The paper's 100 classes (wnid) -> TDW model names."""
    return json.loads((PUBLISHED_DATA_DIR / "tdw_simple_objs_100.json").read_text())


@lru_cache(maxsize=1)
def tdw_skyboxes() -> list[str]:
    return list(json.loads((PUBLISHED_DATA_DIR / "tdw_selected_skyboxes_tdw1.8.23.json").read_text())["selected_skyboxes"])


def tdw_hdri_name(scene_hdri: str) -> str:
    """Map a scene's HDRI to a TDW skybox: TDW names pass through, ours map by a stable hash."""
    boxes = tdw_skyboxes()
    if scene_hdri in boxes:
        return scene_hdri
    if scene_hdri in ("", "default") or scene_hdri.endswith("park"):
        return TDW_DEFAULT_SKYBOX
    import hashlib

    return boxes[int(hashlib.sha1(scene_hdri.encode()).hexdigest()[:8], 16) % len(boxes)]


def scene_commands(scene: Scene, *, size: int = 256, first: bool = False, previous: Scene | None = None) -> list[dict[str, Any]]:
    """The TDW commands that realise ``scene`` (one image), as JSON-ready dicts.

    ``first`` adds the one-time scene set-up (the paper's empty ProcGen scene, kinematic avatar,
    FOV 60, 256x256 JPEG pass, post-processing values); ``previous`` lets the object and skybox be
    kept when unchanged, like the original generator.
    """
    cmds: list[dict[str, Any]] = []
    if first:
        cmds += [
            {"$type": "create_empty_environment"},
            {"$type": "set_render_quality", "render_quality": 5},
            {"$type": "set_screen_size", "width": size, "height": size},
            {"$type": "create_avatar", "type": "A_Img_Caps_Kinematic", "id": AVATAR_ID},
            {"$type": "set_pass_masks", "pass_masks": ["_img"], "avatar_id": AVATAR_ID},
            {"$type": "set_img_pass_encoding", "value": False},
            {"$type": "set_field_of_view", "field_of_view": 60, "avatar_id": AVATAR_ID},
            {"$type": "set_camera_clipping_planes", "near": 0.01, "far": 160, "avatar_id": AVATAR_ID},
            {"$type": "set_anti_aliasing", "mode": "subpixel", "avatar_id": AVATAR_ID},
            {"$type": "set_vignette", "enabled": False},
            {"$type": "set_post_exposure", "post_exposure": 0.6},
            {"$type": "set_contrast", "contrast": -20},
            {"$type": "set_saturation", "saturation": 10},
            {"$type": "set_screen_space_reflections", "enabled": False},
            {"$type": "set_shadow_strength", "strength": 1.0},
            {"$type": "simulate_physics", "value": False},
        ]
    hdri = tdw_hdri_name(scene.hdri)
    if previous is None or tdw_hdri_name(previous.hdri) != hdri:
        cmds.append({"$type": "add_hdri_skybox", "name": hdri})  # also resets the sun from the skybox record
    if previous is None or previous.model != scene.model:
        if previous is not None:
            cmds.append({"$type": "destroy_object", "id": OBJECT_ID})
        cmds += [
            {"$type": "add_object", "name": scene.model, "id": OBJECT_ID, "position": {"x": 0, "y": 0, "z": 0},
             "rotation": {"x": 0, "y": 0, "z": 0}},
            {"$type": "scale_object", "id": OBJECT_ID, "scale_factor": {"x": 1, "y": 1, "z": 1}},
        ]
    # canonical pose, then the sampled rotation: pitch, yaw, roll
    cmds.append({"$type": "rotate_object_to", "id": OBJECT_ID, "rotation": {"x": 0, "y": 0, "z": 0, "w": 1}})
    for axis, angle in zip(("pitch", "yaw", "roll"), scene.rotation_deg):
        if angle:
            cmds.append({"$type": "rotate_object_by", "id": OBJECT_ID, "axis": axis, "angle": float(angle)})
    # camera distance: object moved along the camera->object line, d relative to the fitted distance
    d = float(scene.distance_factor)
    cam = np.array([CAMERA_POSITION[k] for k in "xyz"])
    obj0 = np.array([0.0, 1.0, 0.0])
    pos = cam + d * (obj0 - cam)
    cmds.append({"$type": "teleport_object", "id": OBJECT_ID, "position": dict(zip("xyz", map(float, pos)))})
    cmds.append({"$type": "teleport_avatar_to", "avatar_id": AVATAR_ID, "position": CAMERA_POSITION})
    if scene.view_dir is None:
        cmds.append({"$type": "look_at_position", "avatar_id": AVATAR_ID, "position": dict(zip("xyz", map(float, pos)))})
    else:  # object parented to the camera, camera turned to a random direction: background changes
        cmds.append({"$type": "parent_object_to_avatar", "id": OBJECT_ID, "avatar_id": AVATAR_ID, "sensor": True})
        target = cam + np.asarray(scene.view_dir)
        cmds.append({"$type": "look_at_position", "avatar_id": AVATAR_ID, "position": dict(zip("xyz", map(float, target)))})
        cmds.append({"$type": "unparent_object", "id": OBJECT_ID})
    cmds.append({"$type": "adjust_directional_light_intensity_by", "intensity": float(scene.light_intensity - 1.0)})
    r, g, b = scene.light_color
    cmds.append({"$type": "set_directional_light_color", "color": {"r": r, "g": g, "b": b, "a": 1.0}})
    if scene.light_dir is not None:  # else TDW keeps the skybox's own sun, as the resolver's rule says
        yaw, pitch = yaw_pitch(resolve_scene(scene).sun_dir_world)
        cmds.append({"$type": "rotate_directional_light_by", "angle": yaw, "axis": "yaw"})
        cmds.append({"$type": "rotate_directional_light_by", "angle": pitch, "axis": "pitch"})
    cmds.append({"$type": "set_aperture", "aperture": float(scene.aperture)})
    if scene.aperture < APERTURE_SHARP:
        cmds.append({"$type": "set_focus_distance", "focus_distance": float(scene.focus_distance)})
    if scene.materials is not None:
        table = material_table()
        for slot, m in enumerate(scene.materials):
            name = table[m].name
            cmds.append({"$type": "add_material", "name": name})
            cmds.append({"$type": "set_visual_material", "id": OBJECT_ID, "material_index": slot,
                         "material_name": name, "object_name": scene.model})
    cmds.append({"$type": "send_images", "frequency": "once", "avatar_id": AVATAR_ID})
    return cmds


class TDWRenderer:
    """Renders scenes through a live TDW controller (needs ``pip install tdw`` and a TDW build)."""

    def __init__(self, size: int = 256):
        try:
            from tdw.controller import Controller  # noqa: F401
        except ImportError as exc:
            raise T2SError("the TDW backend needs the 'tdw' package and a TDW build",
                           "pip install 't2s-lib[tdw]' on a machine with a display or TDW build; "
                           "offline, use --backend gl") from exc
        self.size = size
        try:
            from tdw.controller import Controller

            self.controller = Controller(launch_build=True)
        except Exception as exc:
            raise T2SError(f"could not start a TDW build ({type(exc).__name__}: {exc})",
                           "TDW downloads its Unity build at start: run on a networked host, or use --backend gl") from exc
        self._previous: Scene | None = None

    def render(self, scene: Scene) -> np.ndarray:  # pragma: no cover - needs a TDW build
        import io

        from PIL import Image
        from tdw.output_data import Images

        cmds = scene_commands(scene, size=self.size, first=self._previous is None, previous=self._previous)
        resp = self.controller.communicate(cmds)
        self._previous = scene
        for r in resp[:-1]:
            if r[4:8] == b"imag":
                images = Images(r)
                return np.asarray(Image.open(io.BytesIO(images.get_image(0))).convert("RGB"))
        raise T2SError("TDW returned no image", "check the TDW build's log")

    def release(self) -> None:  # pragma: no cover
        self.controller.communicate({"$type": "terminate"})
