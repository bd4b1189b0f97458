"""Study profiles: one YAML per scale (``smoke``, ``cpu``, ``paper``).

A profile is a nested dict with one section per stage (``render``, ``tasks``, ``task2vec``,
``policy``, ``pretrain``, ``evaluate``, ``cka``) plus top-level keys:

* ``name``: the profile name;
* ``device``: ``auto`` / ``cpu`` / ``cuda`` (device choice is a parameter, never a code edit);
* ``figures_dir``: where notebooks write figures (``figures`` for cpu/paper; the smoke profile
  writes under its run folder so tests never overwrite the committed figures);
* ``seed``: the study's base seed.

Relative paths are resolved against the project root. Users can pass a path to their own YAML
instead of a name; ``overrides`` (dotted keys) patch a loaded profile.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Mapping

import yaml

from .errors import T2SError
from .paths import PROFILES_DIR, PROJECT_ROOT, profile_run_dir

PROFILE_NAMES = ("smoke", "cpu", "paper")


def profile_path(name_or_path: str | Path) -> Path:
    text = str(name_or_path)
    if text in PROFILE_NAMES or (PROFILES_DIR / f"{text}.yaml").is_file():
        return PROFILES_DIR / f"{text}.yaml"
    path = Path(text).expanduser()
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path
    raise T2SError(
        f"unknown profile {text!r}",
        f"use one of {', '.join(PROFILE_NAMES)} or a path to a profile YAML file",
    )


def load_profile(name_or_path: str | Path = "smoke", overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Load a profile as a plain dict, with ``run_dir`` and ``figures_dir`` resolved to absolute paths."""
    path = profile_path(name_or_path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise T2SError(f"{path}: not valid YAML ({exc})", "fix the syntax of the profile file") from exc
    if not isinstance(data, dict):
        raise T2SError(f"{path}: a profile must be a mapping of sections", "see t2s_lib/profiles/cpu.yaml")
    data = copy.deepcopy(data)
    data.setdefault("name", path.stem)
    for dotted, value in (overrides or {}).items():
        _set_dotted(data, dotted, value)
    run_dir = data.get("run_dir") or str(profile_run_dir(data["name"]))
    data["run_dir"] = str(_abs(run_dir))
    data["figures_dir"] = str(_abs(data.get("figures_dir") or "figures"))
    data.setdefault("device", "auto")
    data.setdefault("seed", 0)
    data["profile_file"] = str(path)
    return data


def _abs(p: str | Path) -> Path:
    p = Path(p).expanduser()
    return p if p.is_absolute() else PROJECT_ROOT / p


def _set_dotted(data: dict, dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = data
    for key in keys[:-1]:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise T2SError(f"profile override {dotted!r}: {key!r} is not a section")
    node[keys[-1]] = value


def section(profile: Mapping[str, Any], name: str) -> dict[str, Any]:
    """A stage's section of a profile, with a clear error when the profile lacks it."""
    try:
        sec = profile[name]
    except KeyError:
        raise T2SError(
            f"profile {profile.get('name')!r} has no {name!r} section",
            f"add a '{name}:' section to {profile.get('profile_file', 'the profile YAML')}",
        ) from None
    return dict(sec or {})
