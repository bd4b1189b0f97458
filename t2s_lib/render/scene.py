"""Scene sampling as plain data: one :class:`Scene` per (seed, setting, image index).

Semantics follow the paper's generator (reference section 2.2); units are metres and degrees.

* Every draw comes from a generator seeded by ``(seed, image index, parameter id)``: the values an
  image *would* get for a parameter do not depend on which other parameters vary, so two settings
  differing in one parameter differ in that parameter only (a controlled comparison), and any
  split of the work over workers/chunks gives identical scenes.
* A parameter that is off takes its canonical value: object in its fitted pose, camera at the
  fitted distance, the HDRI's own sun (direction) with intensity 1 and white colour, everything
  sharp (aperture f/70), one fixed HDRI seen from one fixed direction, the model's own materials.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from ..paths import PUBLISHED_DATA_DIR
from ..settings import PARAMETERS, SimSetting

#: Canonical camera: direction from the object to the camera (TDW: camera (1, 1.5, 1.8), object
#: centre about 1 m high), fitted distance, vertical field of view (TDW 60 degrees).
CAMERA_DIR = np.array([1.0, 0.5, 1.8]) / np.linalg.norm([1.0, 0.5, 1.8])
CAMERA_DISTANCE = 2.0
OBJECT_RADIUS = 0.65  # bounding-sphere radius the normalised model is scaled to (frames it in the middle)
FOV_DEG = 60.0
APERTURE_SHARP = 70.0  # TDW's default f-number: effectively everything in focus
_PARAM_ID = {name: i + 1 for i, name in enumerate(PARAMETERS)}


@dataclass(frozen=True)
class Material:
    """A procedural PBR material (stand-in for one entry of TDW's 141-material subset)."""

    name: str
    base_color: tuple[float, float, float]
    color2: tuple[float, float, float]
    metallic: float
    roughness: float
    pattern: int  # 0 none, 1 stripes, 2 checker, 3 noise
    pattern_scale: float


_KIND_RULES: list[tuple[str, dict[str, Any]]] = [
    (r"chrome|steel|alumin|silver|titanium|metal|grater|grill|brass|copper|gold", dict(metallic=1.0, rough=(0.1, 0.5))),
    (r"wood|parquet|cedar|ash|beech|wenge|zebrano|spruce|padauk|makore|palisander|chestnut|cork",
     dict(metallic=0.0, rough=(0.4, 0.8), pattern=1)),
    (r"tile|brick|cinderblock|slate|padded|honeycomb|square", dict(metallic=0.0, rough=(0.3, 0.8), pattern=2)),
    (r"concrete|stone|granite|marble|quartz|travertine|plaster|wall|asphalt|terrazzo", dict(metallic=0.0, rough=(0.5, 0.95), pattern=3)),
    (r"fabric|felt|carpet|silk|suede|shirt|synthetic|weave|kevlar|nylon|jersey|carbon", dict(metallic=0.0, rough=(0.7, 1.0), pattern=2)),
    (r"plastic|paint|resin|vinyl|elastomer|polystyrene|glass|ceramic|porcelain", dict(metallic=0.0, rough=(0.05, 0.6))),
]
_NAMED_COLORS = {"red": (0.6, 0.05, 0.04), "green": (0.1, 0.45, 0.1), "black": (0.02, 0.02, 0.02), "white": (0.85, 0.85, 0.82),
                 "gray": (0.35, 0.35, 0.35), "grey": (0.35, 0.35, 0.35), "orange": (0.8, 0.3, 0.02), "gold": (1.0, 0.77, 0.34),
                 "copper": (0.95, 0.64, 0.54), "brass": (0.91, 0.78, 0.42), "chocolate": (0.25, 0.12, 0.05),
                 "beige": (0.7, 0.6, 0.45), "moka": (0.35, 0.22, 0.12), "wheat": (0.85, 0.75, 0.55), "tomato": (0.8, 0.25, 0.15)}


@lru_cache(maxsize=1)
def material_table() -> tuple[Material, ...]:
    """One procedural material per name of the paper's 141-material subset.

    The name's words choose the kind (metal, wood, tiles, stone, fabric, plastic/paint), colours and
    roughness are drawn from a generator seeded by the name, so the table is fixed and reproducible.
    """
    names = (PUBLISHED_DATA_DIR / "material_subset.txt").read_text().split()
    out = []
    for name in names:
        rng = np.random.default_rng(int(hashlib.sha1(name.encode()).hexdigest()[:8], 16))
        kind: dict[str, Any] = dict(metallic=0.0, rough=(0.2, 0.9))
        for rx, k in _KIND_RULES:
            if re.search(rx, name):
                kind = k
                break
        if kind["metallic"] > 0:
            base = np.array([0.9, 0.9, 0.9]) * rng.uniform(0.6, 1.0)
        elif "wood" in name or "parquet" in name or "cork" in name:
            base = np.array([0.45, 0.27, 0.12]) * rng.uniform(0.4, 1.4)
        else:
            base = rng.uniform(0.05, 0.9, 3)
        for word, col in _NAMED_COLORS.items():
            if word in name.split("_"):
                base = np.array(col)
        base = np.clip(base, 0.01, 1.0)
        out.append(Material(name, tuple(float(x) for x in base), tuple(float(x) for x in np.clip(base * rng.uniform(0.5, 0.85), 0, 1)),
                            float(kind["metallic"]), float(rng.uniform(*kind["rough"])), int(kind.get("pattern", 0)),
                            float(rng.uniform(4.0, 16.0))))
    return tuple(out)


@dataclass(frozen=True)
class Scene:
    """Everything needed to render one image (plain, JSON-serialisable data)."""

    index: int
    seed: int
    class_name: str
    model: str
    hdri: str
    rotation_deg: tuple[float, float, float]  # pitch (x), yaw (y), roll (z), applied in that order
    distance_factor: float  # camera distance / fitted distance
    light_intensity: float  # multiplier of the sun strength (1 + delta)
    light_color: tuple[float, float, float]
    light_dir: tuple[float, float, float] | None  # world direction towards the sun; None = the HDRI's sun
    focus_distance: float  # metres
    aperture: float  # f-number (70 = sharp)
    view_dir: tuple[float, float, float] | None  # camera look direction (world); None = canonical
    materials: tuple[int, ...] | None  # per part index into material_table(); None = natural materials
    setting: str = ""

    def as_dict(self) -> dict[str, Any]:
        # the fields hold plain values and flat tuples: no deep copy (dataclasses.asdict cost ~0.4 ms)
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v) for f in _SCENE_FIELDS}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Scene":
        kw = {f.name: d[f.name] for f in dataclasses.fields(cls) if f.name in d}
        for k in ("rotation_deg", "light_color", "light_dir", "view_dir", "materials"):
            if kw.get(k) is not None:
                kw[k] = tuple(kw[k])
        return cls(**kw)


_SCENE_FIELDS = dataclasses.fields(Scene)


@dataclass(frozen=True)
class PlanItem:
    """Which object image ``index`` shows: class, model, its position among that model's images."""

    index: int
    class_name: str
    model: str
    model_ordinal: int  # global model number in the plan (seeds the model's HDRI cycle)
    j: int  # image number within the model
    n_model: int  # images of this model


def make_plan(classes: dict[str, list[str]], images: int) -> list[PlanItem]:
    """Split ``images`` evenly over the classes (sorted), then over each class's models.

    Remainders go to the first classes / models, so the total is exactly ``images``.
    """
    names = sorted(classes)
    plan: list[PlanItem] = []
    per_class, extra = divmod(images, len(names))
    ordinal = 0
    for ci, cname in enumerate(names):
        n_c = per_class + (ci < extra)
        models = sorted(classes[cname])
        per_model, mextra = divmod(n_c, len(models))
        for mi, model in enumerate(models):
            n_m = per_model + (mi < mextra)
            for j in range(n_m):
                plan.append(PlanItem(len(plan), cname, model, ordinal, j, n_m))
            ordinal += 1
    return plan


def _rng(seed: int, index: int, param: str) -> np.random.Generator:
    return np.random.default_rng([seed & 0xFFFFFFFF, index, _PARAM_ID.get(param, 99)])


def _unit(rng: np.random.Generator) -> tuple[float, float, float]:
    v = rng.normal(size=3)
    v /= max(np.linalg.norm(v), 1e-9)
    return tuple(float(x) for x in v)


def sample_scene(setting: SimSetting, seed: int, item: PlanItem, *, n_parts: int, hdri_pool: list[str],
                 default_hdri: str) -> Scene:
    """Sample the scene of one image. Pure function of its arguments."""
    s, i = setting, item.index
    r = _rng(seed, i, "pose_rot")
    rot = tuple(float(x) for x in r.uniform(-180.0, 180.0, 3)) if s.pose_rot else (0.0, 0.0, 0.0)
    r = _rng(seed, i, "pose_scale")
    dist = float(r.uniform(0.4, 1.5)) if s.pose_scale else 1.0
    r = _rng(seed, i, "lighting_intensity")
    inten = 1.0 + float(r.uniform(-0.6, 0.6)) if s.lighting_intensity else 1.0
    r = _rng(seed, i, "lighting_color")
    col = tuple(float(x) for x in r.uniform(0.05, 1.0, 3)) if s.lighting_color else (1.0, 1.0, 1.0)
    r = _rng(seed, i, "lighting_dir")
    ldir = _unit(r) if s.lighting_dir else None
    r = _rng(seed, i, "blur")
    focus_off, aperture, coin = float(r.uniform(-1, 1)), float(r.uniform(0.5, 1.2)), float(r.uniform())
    obj_dist = CAMERA_DISTANCE * dist
    if s.blur and coin < 0.75:
        focus = max(0.1, obj_dist + focus_off)
    else:
        focus, aperture = obj_dist, APERTURE_SHARP
    r = _rng(seed, i, "backgr")
    view = _unit(r) if s.backgr else None
    if s.backgr:
        # Per model: a random permutation of the pool, each map shown for k consecutive images (paper: >= 2).
        perm = np.random.default_rng([seed & 0xFFFFFFFF, item.model_ordinal, 1000]).permutation(len(hdri_pool))
        k = max(2, round(item.n_model / len(hdri_pool)))
        hdri = hdri_pool[int(perm[(item.j // k) % len(hdri_pool)])]
    else:
        hdri = default_hdri
    r = _rng(seed, i, "materials")
    mats = tuple(int(x) for x in r.integers(0, len(material_table()), max(1, n_parts))) if s.materials else None
    return Scene(i, seed, item.class_name, item.model, hdri, rot, dist, inten, col, ldir, focus, aperture, view, mats,
                 setting=s.key)


def vary_one(base: Scene, param: str, value_index: int, *, seed: int = 0, hdri_pool: list[str] | None = None,
             n_parts: int = 1) -> Scene:
    """``base`` with only ``param`` re-drawn (draw number ``value_index``): the Figure 8 rows."""
    item = PlanItem(value_index, base.class_name, base.model, 0, value_index * 2, 2 * max(1, len(hdri_pool or [1])))
    one = SimSetting().replace(**{param: True})
    drawn = sample_scene(one, seed, item, n_parts=n_parts, hdri_pool=hdri_pool or [base.hdri], default_hdri=base.hdri)
    fields = {
        "pose_rot": ["rotation_deg"], "pose_scale": ["distance_factor", "focus_distance"],
        "lighting_intensity": ["light_intensity"], "lighting_color": ["light_color"], "lighting_dir": ["light_dir"],
        "blur": ["focus_distance", "aperture"], "backgr": ["hdri", "view_dir"], "materials": ["materials"],
    }[param]
    changes = {f: getattr(drawn, f) for f in fields}
    if param == "blur" and drawn.aperture == APERTURE_SHARP:  # show the shallow-DOF case in the figure
        changes["aperture"] = 0.5 + 0.7 * ((value_index * 0.37) % 1)
    if param == "pose_scale":
        changes["focus_distance"] = CAMERA_DISTANCE * drawn.distance_factor
    return dataclasses.replace(base, **changes)
