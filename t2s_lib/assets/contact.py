"""Purity audit: one contact sheet per class (every model rendered once, canonical view).

``t2s assets contact-sheet --library NAME --out DIR`` writes ``DIR/<class>.png`` (a grid of one
all-off render per model, labelled with the model id and name) and ``DIR/index.json``. Anyone can
then check that each class is one visual category.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

ALL_OFF = "0_0_0_0_0_1_0_0_0"


def _label_font(size: int) -> Any:
    from PIL import ImageFont

    for name in ("DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default()


def class_sheet(cls: str, ids: Sequence[str], images: Sequence[np.ndarray], names: Sequence[str],
                *, per_row: int = 8, tile: int = 128) -> Any:
    """A PIL image: the class name on top, then a grid of tiles with 'id / name' under each."""
    from PIL import Image, ImageDraw

    label_h, title_h = 24, 26
    rows = max(1, -(-len(images) // per_row))
    sheet = Image.new("RGB", (per_row * tile, title_h + rows * (tile + label_h)), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((4, 4), f"{cls}  ({len(images)} models)", fill="black", font=_label_font(16))
    small = _label_font(9)
    for k, (img, mid, name) in enumerate(zip(images, ids, names)):
        r, c = divmod(k, per_row)
        x, y = c * tile, title_h + r * (tile + label_h)
        sheet.paste(Image.fromarray(np.asarray(img)[..., :3]).resize((tile, tile)), (x, y))
        draw.text((x + 2, y + tile + 1), mid[-26:], fill="black", font=small)
        draw.text((x + 2, y + tile + 12), str(name)[:26], fill=(90, 90, 90), font=small)
    return sheet


def contact_sheets(library: str, out: str | Path, *, classes: Sequence[str] | None = None, size: int = 128,
                   per_row: int = 8, log: Callable[..., None] = print) -> Path:
    """Render every model of ``library`` once (all-off setting, canonical view) into per-class sheets."""
    from ..files import write_json
    from ..render import render_scene_images, sample_scenes
    from .library import load_library

    lib = load_library(library)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    names = list(classes) if classes else sorted(lib.classes)
    unknown = [c for c in names if c not in lib.classes]
    if unknown:
        from ..errors import T2SError

        raise T2SError(f"unknown class(es) {unknown} in library {lib.name!r}", f"use some of: {', '.join(sorted(lib.classes))}")
    summary: dict[str, Any] = {"library": lib.name, "setting": ALL_OFF, "classes": {}}
    for k, cls in enumerate(names):
        ids = lib.classes[cls]
        scenes = sample_scenes(ALL_OFF, len(ids), seed=0, library=library, classes=[cls])
        imgs = render_scene_images(scenes, size, library=library)
        order = [s.model for s in scenes]
        sheet = class_sheet(cls, order, imgs, [lib.models[m].get("name", "") for m in order], per_row=per_row,
                            tile=size)
        sheet.save(out / f"{cls}.png")
        summary["classes"][cls] = order
        log(f"[{k + 1}/{len(names)}] {cls}: {len(ids)} models -> {out / (cls + '.png')}")
    write_json(out / "index.json", summary)
    return out
