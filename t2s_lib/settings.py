"""The simulation setting: 8 binary parameters and the published key string.

A setting says, for each of the 8 variation factors, whether it is *fixed* (0) or *varies* per
image (1). The published code stores it as a 9-field record whose string form joins the values
with ``_`` in sorted field order::

    backgr _ blur _ lighting_color _ lighting_dir _ lighting_intensity _ materials _ pose_cam _ pose_rot _ pose_scale

``pose_cam`` is always 0 (unused) and ``materials`` is encoded 1 (natural) / 3 (random per image).
The 256 training sets were enumerated with the 8-bit binary of i (MSB first) assigned to
(pose_rot, pose_scale, lighting_intensity, lighting_color, lighting_dir, blur, backgr, materials).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Iterator, Mapping

from .errors import T2SError

#: The 8 parameters in the paper's order (poster naming in ``PARAMETER_LABELS``).
PARAMETERS: tuple[str, ...] = (
    "pose_rot",
    "pose_scale",
    "lighting_intensity",
    "lighting_color",
    "lighting_dir",
    "blur",
    "backgr",
    "materials",
)

PARAMETER_LABELS: dict[str, str] = {
    "pose_rot": "Object rotation",
    "pose_scale": "Camera distance",
    "lighting_intensity": "Light intensity",
    "lighting_color": "Light colour",
    "lighting_dir": "Light direction",
    "blur": "Focus blur",
    "backgr": "Background",
    "materials": "Materials",
}

#: One letter per parameter (``SimSetting.code``): Rotation, Scale (camera distance), light Intensity,
#: light Colour, light Direction, Blur, backGround, Materials.
SHORT_CODES = "RSICDBGM"

#: Fields of the published key, in sorted order (9 fields: ``pose_cam`` is the unused 9th).
KEY_FIELDS: tuple[str, ...] = tuple(sorted(PARAMETERS + ("pose_cam",)))

#: Policy heads are in alphabetical order of the 8 parameters (as in the released controller).
HEAD_ORDER: tuple[str, ...] = tuple(sorted(PARAMETERS))

_MATERIALS_CODE = {0: 1, 1: 3}  # on/off -> key value
_MATERIALS_DECODE = {1: 0, 3: 1}


@dataclass(frozen=True, order=True)
class SimSetting:
    """Which of the 8 factors vary (True) or stay fixed (False). Plain, hashable data."""

    pose_rot: bool = False
    pose_scale: bool = False
    lighting_intensity: bool = False
    lighting_color: bool = False
    lighting_dir: bool = False
    blur: bool = False
    backgr: bool = False
    materials: bool = False

    # ----- conversions -------------------------------------------------------------------
    @property
    def key(self) -> str:
        """The published 9-field key string, e.g. ``1_1_1_1_1_3_0_1_1`` for domain randomisation."""
        return format_key(self)

    @property
    def index(self) -> int:
        """Index 0..255 in the published enumeration (bit 7 = pose_rot ... bit 0 = materials)."""
        value = 0
        for name in PARAMETERS:
            value = (value << 1) | int(getattr(self, name))
        return value

    def bits(self, order: tuple[str, ...] = PARAMETERS) -> tuple[int, ...]:
        """0/1 values in the given parameter order (default: the paper's order)."""
        return tuple(int(getattr(self, name)) for name in order)

    def as_dict(self) -> dict[str, bool]:
        return dataclasses.asdict(self)

    def varied(self) -> list[str]:
        """Names of the parameters that vary."""
        return [name for name in PARAMETERS if getattr(self, name)]

    @property
    def code(self) -> str:
        """Eight letters, one per parameter in the paper's order, ``-`` where it is fixed:
        R(otation) S(cale/distance) I(ntensity) C(olour) D(irection) B(lur) G(round) M(aterials)."""
        return "".join(letter if getattr(self, name) else "-" for name, letter in zip(PARAMETERS, SHORT_CODES))

    def replace(self, **changes: bool) -> "SimSetting":
        unknown = set(changes) - set(PARAMETERS)
        if unknown:
            raise T2SError(f"unknown simulation parameter(s) {sorted(unknown)}", f"use: {', '.join(PARAMETERS)}")
        return dataclasses.replace(self, **{k: bool(v) for k, v in changes.items()})

    # ----- constructors ------------------------------------------------------------------
    @classmethod
    def from_index(cls, index: int) -> "SimSetting":
        if not isinstance(index, int) or not 0 <= index < 256:
            raise T2SError(f"setting index {index!r} out of range", "use an integer 0..255")
        values = {name: bool((index >> (7 - i)) & 1) for i, name in enumerate(PARAMETERS)}
        return cls(**values)

    @classmethod
    def from_bits(cls, bits: Mapping[str, int | bool]) -> "SimSetting":
        missing = set(PARAMETERS) - set(bits)
        if missing:
            raise T2SError(f"setting is missing parameter(s) {sorted(missing)}", f"give all of: {', '.join(PARAMETERS)}")
        return cls(**{name: bool(bits[name]) for name in PARAMETERS})

    def __str__(self) -> str:
        return self.key


def format_key(setting: SimSetting) -> str:
    """Published key string of a setting (sorted fields, ``pose_cam`` 0, materials 1/3)."""
    values = []
    for field in KEY_FIELDS:
        if field == "pose_cam":
            values.append(0)
        elif field == "materials":
            values.append(_MATERIALS_CODE[int(setting.materials)])
        else:
            values.append(int(getattr(setting, field)))
    return "_".join(str(v) for v in values)


def _is_ascii_int(text: str) -> bool:
    """Only 0-9 (``str.isdigit`` also accepts e.g. Arabic-Indic and superscript digits)."""
    return bool(text) and text.isascii() and text.isdigit()


def parse_key(key: str) -> SimSetting:
    """Parse a published key string; malformed keys raise a :class:`T2SError` saying why."""
    if not isinstance(key, str):
        raise T2SError(f"setting key must be a string, got {type(key).__name__}")
    parts = key.strip().split("_")
    expected = "_".join(KEY_FIELDS)
    if len(parts) != len(KEY_FIELDS):
        raise T2SError(
            f"malformed setting key {key!r}: {len(parts)} fields, expected {len(KEY_FIELDS)} ({expected})",
            "write 9 integers joined by '_', e.g. 1_1_1_1_1_3_0_1_1 (domain randomisation)",
        )
    values: dict[str, bool] = {}
    for field, text in zip(KEY_FIELDS, parts):
        if not _is_ascii_int(text):
            raise T2SError(f"malformed setting key {key!r}: field {field} is {text!r}, not an integer 0-9",
                           "write 9 ASCII digits joined by '_', e.g. 1_1_1_1_1_3_0_1_1 (domain randomisation)")
        number = int(text)
        if field == "pose_cam":
            if number != 0:
                raise T2SError(
                    f"setting key {key!r}: pose_cam={number} is not supported",
                    "pose_cam (camera offset) was never used by the paper; set it to 0",
                )
        elif field == "materials":
            if number not in _MATERIALS_DECODE:
                raise T2SError(
                    f"setting key {key!r}: materials={number}, expected 1 (natural) or 3 (random per image)"
                )
            values[field] = bool(_MATERIALS_DECODE[number])
        else:
            if number not in (0, 1):
                raise T2SError(f"setting key {key!r}: {field}={number}, expected 0 (fixed) or 1 (varies)")
            values[field] = bool(number)
    return SimSetting(**values)


def all_settings() -> list[SimSetting]:
    """The 256 settings in the published enumeration order (index 0..255)."""
    return [SimSetting.from_index(i) for i in range(256)]


def iter_keys() -> Iterator[str]:
    for setting in all_settings():
        yield setting.key


#: Named presets. ``domain_randomization`` varies everything; ``all_off`` fixes everything.
PRESETS: dict[str, SimSetting] = {
    "domain_randomization": SimSetting(**{name: True for name in PARAMETERS}),
    "all_off": SimSetting(),
    # The single setting best on average over the 12 seen tasks of the published table.
    "best_seen_fixed": parse_key("1_1_1_1_1_1_0_0_1"),
}


def resolve_setting(spec: str | int | SimSetting) -> SimSetting:
    """Accept a key string, a preset name, an index 0..255 or a SimSetting."""
    if isinstance(spec, SimSetting):
        return spec
    if isinstance(spec, int) and not isinstance(spec, bool):
        return SimSetting.from_index(spec)
    text = str(spec).strip()
    if text in PRESETS:
        return PRESETS[text]
    if _is_ascii_int(text):
        return SimSetting.from_index(int(text))
    if "_" in text:
        return parse_key(text)
    raise T2SError(
        f"unknown setting {spec!r}",
        f"give a 9-field key like 1_1_1_1_1_3_0_1_1, an index 0..255, or a preset: {', '.join(PRESETS)}",
    )
