"""Notebook 04 logic: render (if needed) and pre-train one backbone per simulation setting of a profile."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping

from ..errors import T2SError
from ..profiles import section


def image_set_dir(prof: Mapping[str, Any], key: str) -> Path:
    return Path(prof["run_dir"]) / "render" / key


def pretrain_dir(prof: Mapping[str, Any], key: str) -> Path:
    return Path(prof["run_dir"]) / "pretrain" / key


def setting_keys(prof: Mapping[str, Any]) -> list[str]:
    """The profile's ``pretrain.settings`` (presets, keys or indices) as published key strings."""
    from ..settings import resolve_setting

    return [resolve_setting(s).key for s in section(prof, "pretrain").get("settings", [])]


def ensure_image_set(prof: Mapping[str, Any], key: str) -> Path:
    """The rendered set of a setting, rendering it with the profile's sizes when it is not there yet."""
    out = image_set_dir(prof, key)
    if (out / "dataset.json").is_file():
        return out
    # Importing triton (pulled in by torch._dynamo when the first optimiser is built) after the
    # renderer has created an EGL context segfaults the process (seen with moderngl 5.13 + Mesa EGL
    # + torch 2.14 triton); importing it first, before any GL context exists, avoids the crash.
    import torch._dynamo  # noqa: F401

    try:
        from ..render import render_dataset
    except ImportError as exc:
        raise T2SError(f"image set {out} is missing and the renderer is not available ({exc})",
                       "run notebook 01 / `t2s render` first, or install the complete project") from exc
    spec = dict(section(prof, "pretrain").get("render", {}))
    render_cfg = dict(prof.get("render") or {})
    kwargs: dict[str, Any] = {"images": int(spec.get("images", 100)), "size": int(spec.get("size", 64)),
                              "seed": int(prof.get("seed", 0)), "classes": spec.get("classes")}
    # renderer defaults of the profile's render: section (library, workers, msaa, tonemap)
    for name in ("library", "workers", "msaa", "tonemap", "image_format"):
        if render_cfg.get(name) is not None:
            kwargs[name] = render_cfg[name]
    return Path(render_dataset(key, out, progress=False, **kwargs))


def pretrain_settings(prof: Mapping[str, Any], *, device: str | None = None, progress: bool = True) -> dict[str, Path]:
    """Pre-train (or resume / reuse) one backbone per setting; returns ``{setting_key: checkpoint}``."""
    from .loop import PretrainConfig, pretrain

    recipe = dict(section(prof, "pretrain").get("recipe", {}))
    fields = {f.name for f in dataclasses.fields(PretrainConfig)}
    unknown = set(recipe) - fields
    if unknown:
        raise T2SError(f"profile pretrain.recipe has unknown key(s) {sorted(unknown)}", f"use: {', '.join(sorted(fields))}")
    from ..settings import resolve_setting

    out: dict[str, Path] = {}
    base_seed = int(recipe.pop("seed", prof.get("seed", 0)))
    for key in setting_keys(prof):
        data = ensure_image_set(prof, key)
        cfg = PretrainConfig(**{**recipe, "data": str(data), "out": str(pretrain_dir(prof, key)),
                                "device": device or prof.get("device", "auto"),
                                # independent initialisations per setting (the paper's runs were unseeded),
                                # reproducible: base seed + the setting's index 0..255
                                "seed": base_seed + resolve_setting(key).index,
                                "progress": progress})
        out[key] = pretrain(cfg)
    return out


def training_curves(prof: Mapping[str, Any]):
    """One long table (setting, epoch, lr, train_loss, images_per_s, ...) over the profile's runs."""
    import pandas as pd

    from .loop import read_metrics

    frames = []
    for key in setting_keys(prof):
        run = pretrain_dir(prof, key)
        if (run / "metrics.jsonl").is_file():
            frames.append(read_metrics(run).assign(setting=key))
    if not frames:
        raise T2SError("no pre-training metrics found for this profile", "run notebook 04 (pretrain_settings) first")
    return pd.concat(frames, ignore_index=True)


def plot_training_curves(curves):
    """Training loss and learning rate per epoch, one line per setting."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    df = curves[curves["epoch"] > 0]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    sns.lineplot(df, x="epoch", y="train_loss", hue="setting", marker="o", ax=axes[0])
    axes[0].set_title("Pre-training loss (mixup/cutmix targets)")
    axes[0].legend(fontsize=7, title="setting", title_fontsize=8)
    sns.lineplot(df, x="epoch", y="lr", hue="setting", ax=axes[1], legend=False)
    axes[1].set_title("Learning rate (cosine, warmup)")
    fig.tight_layout()
    return fig


def setting_label(key: str) -> str:
    """A readable name for a setting key: the preset name, or the varied factors (``vary: blur+backgr``)."""
    from ..settings import PRESETS, resolve_setting

    if key.startswith("scratch"):
        return "no pre-training"
    for name, preset in PRESETS.items():
        if preset.key == key:
            return name
    try:
        varied = resolve_setting(key).varied()
    except T2SError:
        return key
    return "vary: " + "+".join(varied) if varied else key
