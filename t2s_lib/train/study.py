"""Notebook 04 logic: render (if needed) and pre-train one backbone per simulation setting of a profile."""

from __future__ import annotations

from pathlib import Path

from ..errors import T2SError
from ..profiles import Profile


def setting_keys(prof: Profile) -> list[str]:
    """The profile's ``pretrain.settings`` (presets, keys or indices) as published key strings."""
    return prof.setting_keys()


def render_job(prof: Profile, key: str):
    """The :class:`~t2s_lib.render.RenderJob` of a setting's pre-training set at this profile's scale."""
    from ..render import RenderJob

    spec, rnd = prof.pretrain.render, prof.render
    return RenderJob.create(key, spec.images, spec.img_size, seed=prof.seed, classes=spec.classes,
                            class_rule=spec.class_rule, library=rnd.library,
                            workers=rnd.workers, msaa=rnd.msaa, tonemap=rnd.tonemap, image_format=rnd.image_format)


def ensure_image_set(prof: Profile, key: str) -> Path:
    """The rendered set of a setting, rendering it with the profile's sizes when it is not there yet."""
    from ..render import run_render_job

    out = prof.layout.image_set(key)
    if (out / "dataset.json").is_file():
        return out
    return run_render_job(render_job(prof, key), out, progress=False)


def pretrain_settings(prof: Profile, *, device: str | None = None, progress: bool = True) -> dict[str, Path]:
    """Pre-train (or resume / reuse) one backbone per setting; returns ``{setting_key: checkpoint}``."""
    from ..settings import resolve_setting
    from .loop import pretrain

    out: dict[str, Path] = {}
    base_seed = int(prof.pretrain.recipe.get("seed", prof.seed))
    for key in prof.setting_keys():
        data = ensure_image_set(prof, key)
        cfg = prof.pretrain.config(data=str(data), out=str(prof.layout.pretrain_run(key)),
                                   device=device or prof.device,
                                   # independent initialisations per setting (the paper's runs were unseeded),
                                   # reproducible: base seed + the setting's index 0..255
                                   seed=base_seed + resolve_setting(key).index, progress=progress)
        out[key] = pretrain(cfg)
    return out


def training_curves(prof: Profile):
    """One long table (setting, epoch, lr, train_loss, images_per_s, ...) over the profile's runs."""
    import pandas as pd

    from .loop import read_metrics

    frames = []
    for key in prof.setting_keys():
        run = prof.layout.pretrain_run(key)
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
