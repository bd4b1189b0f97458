"""Offline tasks beyond grey digits: glyphs, icons, emoji, clip art and photographic cut-outs.

Builders follow the contract of :data:`t2s_lib.tasks.fetch.BUILDERS` (``() -> (arrays, classes,
provenance)``) and read only what Debian and npm packages ship, fetched through
:mod:`t2s_lib.fetching`. Versions are pinned in :data:`DEB_PINNED` / :data:`NPM_PINNED` (Debian 12
"bookworm"); apt always serves its current version, so the version actually unpacked is recorded in
``source.json`` (``versions``) and a difference from the pin is listed under ``version_mismatch``.

Split rule: every *source item* lies wholly in train or wholly in test, so no test image is a
near-copy of a training image.

* ``letters``: the 26 upper-case Latin letters rendered from 32 font packages (32 px, dark ink on
  light paper, random rotation/scale/shift). Test fonts come from the packages in
  :data:`LETTER_TEST_PACKAGES` (none of their designs is in train).
* ``icons``, ``emoji``, ``clipart``, ``objects``: one image per source picture (``objects``: several
  jittered views per picture); the split unit is a *group*: pictures with the same name (one icon
  in several themes, one emoji in two styles) and near-duplicates (12x12 thumbnails within
  :data:`NEAR_DUPLICATE_RMS`) are merged, then :func:`split_groups_70_30` puts 70 % of each class's
  groups in train.
"""

from __future__ import annotations

import hashlib
import json
import struct
import urllib.parse
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from ..errors import T2SError
from ..fetching import apt_package, apt_packages, npm_package, package_dir
from .splits import split_groups_70_30

#: Debian 12 versions the builders were written and checked against.
DEB_PINNED = {
    # letters: training fonts
    "fonts-dejavu-core": "2.37-6", "fonts-dejavu-extra": "2.37-6", "fonts-urw-base35": "20200910-7",
    "fonts-liberation2": "2.1.5-1", "fonts-adf-accanthis": "0.20190904-2", "fonts-adf-gillius": "0.20190904-2",
    "fonts-adf-universalis": "0.20190904-2", "fonts-adf-baskervald": "0.20190904-2",
    "fonts-adf-verana": "0.20190904-2", "fonts-adf-irianis": "0.20190904-2", "fonts-humor-sans": "1.0-4",
    "fonts-breip": "1:0.5.1-3", "fonts-isabella": "1.202-4", "fonts-femkeklaver": "1.0-4",
    "fonts-staypuft": "0.04-10", "fonts-beteckna": "0.5-3", "fonts-goudybookletter": "2010.07.03-6",
    "fonts-yanone-kaffeesatz": "2.0+git20211102+ds-1", "fonts-league-spartan": "2.210-1", "fonts-cabin": "1.5-3",
    "fonts-oldstandard": "2.2really-4", "fonts-ebgaramond": "0.016+git20210310.42d4f9f2-1",
    "fonts-cantarell": "0.303.1-1",
    # letters: test fonts
    "fonts-adf-switzera": "0.20190904-2", "fonts-adf-tribun": "0.20190904-2", "fonts-adf-romande": "0.20190904-2",
    "fonts-dustin": "20030517-14", "fonts-comic-neue": "2.51-4", "fonts-dkg-handwriting": "0.17-1",
    "fonts-blankenburg": "0.1-3", "fonts-open-sans": "1.11-2", "fonts-tomsontalks": "1.1-9",
    # icons, clip art, photo cut-outs
    "oxygen-icon-theme": "5:5.103.0-1", "tango-icon-theme": "0.8.90-11", "gnome-icon-theme": "3.12.0-5",
    "lxde-icon-theme": "0.5.1-2.1",
    "openclipart-png": "1:0.18+dfsg-19", "tuxpaint-stamps-default": "2022.06.04-1",
}
NPM_PINNED = {"emoji-datasource-twitter": "16.0.0", "emoji-datasource-google": "16.0.0"}

#: Two thumbnails (12x12 grey, 0..1) closer than this RMS difference are near-duplicates.
NEAR_DUPLICATE_RMS = 0.04

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
LETTER_SIZE = 32
LETTER_VIEWS = 2  # jittered renders per (font, letter)
LETTER_TEST_PACKAGES = (
    "fonts-adf-switzera", "fonts-adf-tribun", "fonts-adf-romande", "fonts-dustin", "fonts-comic-neue",
    "fonts-dkg-handwriting", "fonts-blankenburg", "fonts-open-sans", "fonts-tomsontalks",
)
LETTER_TRAIN_PACKAGES = tuple(p for p in DEB_PINNED if p.startswith("fonts-") and p not in LETTER_TEST_PACKAGES)
#: Symbol, dingbat and maths fonts: their letter code points are not letters (or duplicate a text face).
LETTER_EXCLUDED_FONTS = ("D050000L.otf", "StandardSymbolsPS.otf", "BerenisADFProMath-Regular.otf", "DejaVuMathTeXGyre.ttf")

ICON_THEMES = {  # package: folder of its 32x32 PNG icons (one sub-folder per freedesktop context)
    "oxygen-icon-theme": "usr/share/icons/oxygen/base/32x32",
    "tango-icon-theme": "usr/share/icons/Tango/32x32",
    "gnome-icon-theme": "usr/share/icons/gnome/32x32",
    "lxde-icon-theme": "usr/share/icons/nuoveXT2/32x32",
}
ICON_CLASSES = ["actions", "apps", "devices", "mimetypes", "places", "status"]
#: "actions" alone has ~870 icons (half of all): every class keeps at most this many (whole names, seeded).
ICON_MAX_PER_CLASS = 300

EMOJI_STYLES = {"twitter": "emoji-datasource-twitter", "google": "emoji-datasource-google"}
EMOJI_CATEGORIES = {  # emoji.json category: class name ("Component", the skin-tone swatches, is left out)
    "Smileys & Emotion": "smileys", "People & Body": "people", "Animals & Nature": "animals-nature",
    "Food & Drink": "food-drink", "Travel & Places": "travel-places", "Activities": "activities",
    "Objects": "objects", "Symbols": "symbols", "Flags": "flags",
}
EMOJI_SIZE = 32

CLIPART_ROOT = "usr/share/openclipart/png"
CLIPART_CLASSES = ["animals", "buildings", "food", "people", "plants", "tools", "transportation"]
CLIPART_SIZE = 48
#: A few dozen PNGs are large posters (up to 600 Mpx); pictures larger than this are left out.
CLIPART_MAX_PIXELS = 1_500_000

OBJECTS_ROOT = "usr/share/tuxpaint/stamps"
OBJECT_CLASSES = {  # class: stamp folders (sub-folders included, except cartoon/toy drawings)
    "mammal": ("animals/mammals", "animals/marsupials"),
    "bird": ("animals/birds",),
    "small-animal": ("animals/insects", "animals/fish", "animals/shellfish", "animals/amphibians", "animals/lizards"),
    "fruit-vegetable": ("food/fruit", "food/vegetables"),
    "plant": ("plants",),
    "vehicle": ("vehicles", "military/vehicles"),
}
OBJECT_SKIP_PARTS = ("cartoon", "toys")
OBJECT_SIZE = 48
OBJECT_VIEWS = 6  # jittered views per stamp (flip, rotation, scale, shift, background colour)


# ----- packages -----------------------------------------------------------------------------------
def deb_version(package: str) -> str:
    """Version of the unpacked Debian ``package`` (from its fetch stamp's archive name)."""
    stamp = package_dir("apt", package) / ".done.json"
    try:
        archive = json.loads(stamp.read_text())["archive"]  # <name>_<version>_<arch>.deb
        return urllib.parse.unquote(archive.split("_")[1])
    except (OSError, KeyError, IndexError, json.JSONDecodeError) as exc:
        raise T2SError(f"cannot read the version of Debian package {package} from {stamp}",
                       "delete that folder and run `t2s data fetch` again") from exc


class _Sources:
    """Fetches packages for one builder and records the versions used (and any drift from the pins)."""

    def __init__(self) -> None:
        self.versions: dict[str, str] = {}
        self.mismatch: dict[str, str] = {}

    def prefetch(self, packages: Iterable[str]) -> None:
        """Download all of ``packages`` at once (one apt start-up); :meth:`deb` then finds them unpacked."""
        apt_packages(list(packages))

    def deb(self, package: str) -> Path:
        root = apt_package(package)
        version = deb_version(package)
        self.versions[package] = version
        if DEB_PINNED.get(package) != version:
            self.mismatch[package] = f"pinned {DEB_PINNED.get(package)}, got {version}"
        return root

    def npm(self, name: str) -> Path:
        spec = f"{name}@{NPM_PINNED[name]}"
        self.versions[name] = NPM_PINNED[name]
        return npm_package(spec) / "package"

    def provenance(self, **fields) -> dict:
        prov = dict(fields, versions=self.versions)
        if self.mismatch:
            prov["version_mismatch"] = self.mismatch
        return prov


def build_only_packages() -> list[tuple[str, str]]:
    """(registry, spec) of every package unpacked only to build these tasks (discarded afterwards)."""
    return [("apt", p) for p in DEB_PINNED] + [("npm", f"{n}@{v}") for n, v in NPM_PINNED.items()]


# ----- image helpers ------------------------------------------------------------------------------
def _png_pixels(path: Path) -> int:
    """Width x height from a PNG header (0 when the file is not a PNG)."""
    with open(path, "rb") as fh:
        head = fh.read(24)
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return 0
    width, height = struct.unpack(">II", head[16:24])
    return width * height


def _open_rgba(path: Path, max_pixels: int | None = None):
    """The picture as RGBA; None when it has more than ``max_pixels`` pixels (checked before decoding)."""
    from PIL import Image

    if max_pixels is not None and _png_pixels(path) > max_pixels:
        return None
    try:
        with Image.open(path) as im:
            im.load()
            return im.convert("RGBA")
    except (OSError, ValueError, SyntaxError) as exc:
        raise T2SError(f"cannot decode {path} ({type(exc).__name__}: {exc})",
                       "delete the unpacked package under the cache's packages/ folder and run `t2s data fetch` again") from exc


def _crop_to_content(im, max_side: int = 192):
    """Crop an RGBA picture to its opaque part (or to its non-white part when fully opaque) and
    shrink it to at most ``max_side`` px (later resizes and rotations then work on small images)."""
    from PIL import Image, ImageChops

    alpha = im.getchannel("A")
    if alpha.getextrema()[0] < 250:
        box = alpha.point(lambda a: 255 if a > 16 else 0).getbbox()
    else:
        box = ImageChops.invert(im.convert("L")).point(lambda v: 255 if v > 12 else 0).getbbox()
    im = im.crop(box) if box else im
    if max(im.size) > max_side:
        im.thumbnail((max_side, max_side), Image.LANCZOS, reducing_gap=1.5)
    return im


def _place(im, size: int, *, background=(255, 255, 255), fill: float = 0.9, rng: np.random.Generator | None = None) -> np.ndarray:
    """Paste an RGBA picture, scaled to ``fill`` of a square canvas, onto a plain background.

    With ``rng``: a random horizontal flip, rotation (+-12 deg), scale (0.7..1.0) and shift.
    """
    from PIL import Image, ImageOps

    if rng is not None:
        if rng.random() < 0.5:
            im = ImageOps.mirror(im)
        im = im.rotate(float(rng.uniform(-12, 12)), resample=Image.BICUBIC, expand=True)
        fill = float(rng.uniform(0.7, 1.0))
    scale = fill * size / max(im.size)
    w, h = max(1, round(im.width * scale)), max(1, round(im.height * scale))
    im = im.resize((w, h), Image.LANCZOS)
    x0, y0 = (size - w) // 2, (size - h) // 2
    if rng is not None:  # anywhere inside the canvas
        x0, y0 = int(rng.integers(0, size - w + 1)), int(rng.integers(0, size - h + 1))
    canvas = Image.new("RGBA", (size, size), tuple(int(c) for c in background) + (255,))
    canvas.alpha_composite(im, (x0, y0))
    return np.asarray(canvas.convert("RGB"), dtype=np.uint8)


def _thumbnails(images: np.ndarray) -> np.ndarray:
    """12x12 grey thumbnails in 0..1, flattened (for near-duplicate detection)."""
    from PIL import Image

    out = np.empty((len(images), 144), dtype=np.float32)
    for i, img in enumerate(images):
        out[i] = np.asarray(Image.fromarray(img).convert("L").resize((12, 12), Image.BILINEAR), dtype=np.float32).ravel() / 255.0
    return out


def merge_near_duplicates(images: np.ndarray, keys: Iterable[str], rms: float = NEAR_DUPLICATE_RMS) -> np.ndarray:
    """Group ids: images with the same key, or whose thumbnails are within ``rms``, share a group."""
    keys = list(keys)
    parent = list(range(len(keys)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(i: int, j: int) -> None:
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)

    first: dict[str, int] = {}
    for i, k in enumerate(keys):
        union(i, first.setdefault(k, i))
    t = _thumbnails(images)
    sq = (t * t).sum(1)
    limit = rms * rms * t.shape[1]
    for start in range(0, len(t), 512):
        block = t[start : start + 512]
        d2 = sq[start : start + 512, None] + sq[None, :] - 2.0 * block @ t.T
        for i, j in zip(*np.nonzero(d2 < limit)):
            if start + i < j:
                union(int(start + i), int(j))
    roots = [find(i) for i in range(len(keys))]
    return np.unique(roots, return_inverse=True)[1].astype(np.int64)


def _split_grouped(x: np.ndarray, y: np.ndarray, keys: list[str]) -> tuple[dict[str, np.ndarray], dict]:
    """Group near-duplicates, split whole groups 70/30 per class; returns arrays and split counts."""
    groups = merge_near_duplicates(x, keys)
    tr, te = split_groups_70_30(y, groups)
    arrays = {"x_train": x[tr], "y_train": y[tr], "x_test": x[te], "y_test": y[te]}
    counts = {"images": int(len(y)), "groups": int(groups.max() + 1),
              "groups_train": int(len(np.unique(groups[tr]))), "groups_test": int(len(np.unique(groups[te])))}
    return arrays, counts


def _cap_per_class(labels: list[int], keys: list[str], cap: int, seed: int = 0) -> list[int]:
    """Indices kept when each class keeps at most ``cap`` images, taking whole keys in a seeded random order."""
    rng = np.random.RandomState(seed)
    keep: list[int] = []
    for label in sorted(set(labels)):
        idx = [i for i, lab in enumerate(labels) if lab == label]
        if len(idx) <= cap:
            keep += idx
            continue
        by_key: dict[str, list[int]] = {}
        for i in idx:
            by_key.setdefault(keys[i], []).append(i)
        names = sorted(by_key)
        rng.shuffle(names)
        chosen: list[int] = []
        for name in names:
            if len(chosen) + len(by_key[name]) <= cap:
                chosen += by_key[name]
        keep += chosen
    return sorted(keep)


def _stack(images: list[np.ndarray], labels: list[int]) -> tuple[np.ndarray, np.ndarray]:
    return np.stack(images).astype(np.uint8), np.asarray(labels, dtype=np.int64)


# ----- letters (glyphs) ---------------------------------------------------------------------------
def _font_files(root: Path) -> list[Path]:
    files = [p for p in (root / "usr/share/fonts").rglob("*") if p.suffix.lower() in (".ttf", ".otf")]
    return sorted(p for p in files if p.name not in LETTER_EXCLUDED_FONTS and not p.is_symlink())


def render_glyph(font, char: str, rng: np.random.Generator | None, size: int = LETTER_SIZE) -> np.ndarray:
    """One letter, dark on light, its ink scaled to 70-90 % of the cell; ``rng``: rotation, scale, shift."""
    from PIL import Image, ImageDraw

    canvas = Image.new("L", (320, 320), 0)
    ImageDraw.Draw(canvas).text((160, 160), char, font=font, fill=255, anchor="mm")
    box = canvas.getbbox()
    if box is None:
        return np.zeros((0, 0), dtype=np.uint8)
    glyph = canvas.crop(box)
    fill, dx, dy = 0.8, 0, 0
    if rng is not None:
        glyph = glyph.rotate(float(rng.uniform(-10, 10)), resample=Image.BICUBIC, expand=True)
        fill = float(rng.uniform(0.7, 0.9))
    scale = fill * size / max(glyph.size)
    w, h = max(1, round(glyph.width * scale)), max(1, round(glyph.height * scale))
    glyph = glyph.resize((w, h), Image.LANCZOS)
    if rng is not None:
        dx, dy = (int(v) for v in rng.integers(-2, 3, size=2))
    out = Image.new("L", (size, size), 0)
    out.paste(glyph, (min(max((size - w) // 2 + dx, 0), size - w), min(max((size - h) // 2 + dy, 0), size - h)))
    return 255 - np.asarray(out, dtype=np.uint8)


def _usable_font(path: Path):
    """The font at 64 px, or None when a letter is missing or two letters render alike (.notdef boxes)."""
    from PIL import ImageFont

    try:
        font = ImageFont.truetype(str(path), 64)
    except OSError:
        return None
    renders = [render_glyph(font, c, None) for c in LETTERS]
    if any(r.size == 0 for r in renders) or len({r.tobytes() for r in renders}) < len(LETTERS):
        return None
    return font


def _render_package_letters(root: Path, rng: np.random.Generator, seen: set[str], log: list[str]):
    xs, ys, n_fonts = [], [], 0
    for path in _font_files(root):
        digest = hashlib.sha1(path.read_bytes()).hexdigest()
        if digest in seen:  # the same font file shipped twice
            continue
        seen.add(digest)
        font = _usable_font(path)
        if font is None:
            log.append(path.name)
            continue
        n_fonts += 1
        for label, char in enumerate(LETTERS):
            for _ in range(LETTER_VIEWS):
                xs.append(render_glyph(font, char, rng))
                ys.append(label)
    return xs, ys, n_fonts


def build_letters():
    src = _Sources()
    src.prefetch(LETTER_TRAIN_PACKAGES + LETTER_TEST_PACKAGES)
    seen: set[str] = set()
    skipped: list[str] = []
    parts, fonts = {}, {}
    for side, packages, seed in (("train", LETTER_TRAIN_PACKAGES, 1000), ("test", LETTER_TEST_PACKAGES, 2000)):
        rng = np.random.default_rng(seed)
        xs, ys = [], []
        for package in packages:
            px, py, n = _render_package_letters(src.deb(package), rng, seen, skipped)
            xs += px
            ys += py
            fonts[package] = n
        parts[f"x_{side}"], parts[f"y_{side}"] = _stack(xs, ys)
    return parts, list(LETTERS), src.provenance(
        source=f"{len(fonts)} Debian font packages (fonts-dejavu-core {src.versions['fonts-dejavu-core']}, fonts-urw-base35 "
               f"{src.versions['fonts-urw-base35']}, fonts-adf-*, ...; all versions under 'versions')",
        license="free font licences (OFL-1.1, GPL-2+ with font exception, Apache-2.0, LGPL, public domain; per package)",
        split=f"by font package: train fonts from {len(LETTER_TRAIN_PACKAGES)} packages, test fonts from "
              f"{len(LETTER_TEST_PACKAGES)} others ({', '.join(LETTER_TEST_PACKAGES)}); {LETTER_VIEWS} jittered renders "
              "(rotation +-10 deg, scale 70-90 %, shift +-2 px) per font and letter",
        fonts_per_package=fonts, fonts_skipped=skipped, domain="glyphs")


# ----- icons ----------------------------------------------------------------------------------------
def build_icons():
    src = _Sources()
    src.prefetch(ICON_THEMES)
    xs, ys, keys = [], [], []
    for package, folder in ICON_THEMES.items():
        root = src.deb(package) / folder
        for label, context in enumerate(ICON_CLASSES):
            for path in sorted((root / context).glob("*.png")):
                if path.is_symlink():  # an alias of another icon (its target is listed itself)
                    continue
                xs.append(_place(_open_rgba(path), 32, fill=1.0))
                ys.append(label)
                keys.append(f"name:{path.stem}")
    keep = _cap_per_class(ys, keys, ICON_MAX_PER_CLASS)
    x, y = _stack([xs[i] for i in keep], [ys[i] for i in keep])
    arrays, counts = _split_grouped(x, y, [keys[i] for i in keep])
    counts["left_out_over_class_cap"] = len(ys) - len(keep)
    return arrays, ICON_CLASSES, src.provenance(
        source="Debian " + ", ".join(f"{p} {v}" for p, v in src.versions.items()) + " (32x32 PNG icons)",
        license="LGPL-3+ (Oxygen, LXDE nuoveXT2), public domain (Tango), GPL-2+ (GNOME)",
        split="icon context folder is the class; icons with the same name in any theme, and near-duplicates, form one "
              f"group; at most {ICON_MAX_PER_CLASS} icons per class (random whole names, RandomState(0)); per-class 70/30 "
              "of groups (RandomState(0)); aliases (symlinks) skipped",
        groups=counts, domain="icons")


# ----- emoji ----------------------------------------------------------------------------------------
def build_emoji():
    src = _Sources()
    roots = {style: src.npm(pkg) for style, pkg in EMOJI_STYLES.items()}
    entries = json.loads((roots["twitter"] / "emoji.json").read_text())
    classes = list(EMOJI_CATEGORIES.values())
    xs, ys, keys = [], [], []
    for e in sorted(entries, key=lambda e: e["sort_order"]):
        if e["category"] not in EMOJI_CATEGORIES:
            continue
        for style, root in roots.items():
            path = root / "img" / style / "64" / e["image"]
            if e.get(f"has_img_{style}") and path.is_file():
                xs.append(_place(_open_rgba(path), EMOJI_SIZE, fill=1.0))
                ys.append(classes.index(EMOJI_CATEGORIES[e["category"]]))
                keys.append(f"emoji:{e['unified']}")
    x, y = _stack(xs, ys)
    arrays, counts = _split_grouped(x, y, keys)
    return arrays, classes, src.provenance(
        source="npm emoji-datasource-twitter@16.0.0 + emoji-datasource-google@16.0.0 (img/<style>/64, emoji.json)",
        license="Twemoji graphics CC-BY-4.0 (Twitter), Noto emoji Apache-2.0 (Google); data MIT",
        split="emoji.json category is the class; both styles of one emoji, and near-duplicates, form one group; "
              "per-class 70/30 of groups (RandomState(0)); skin-tone variants not used",
        groups=counts, domain="emoji")


# ----- clip art ------------------------------------------------------------------------------------
def build_clipart():
    src = _Sources()
    root = src.deb("openclipart-png") / CLIPART_ROOT
    xs, ys, keys, too_large = [], [], [], []
    for label, cls in enumerate(CLIPART_CLASSES):
        for path in sorted((root / cls).rglob("*.png")):
            if path.is_symlink():
                continue
            im = _open_rgba(path, CLIPART_MAX_PIXELS)
            if im is None:
                too_large.append(str(path.relative_to(root)))
                continue
            xs.append(_place(_crop_to_content(im), CLIPART_SIZE))
            ys.append(label)
            keys.append(f"file:{path.relative_to(root)}")
    x, y = _stack(xs, ys)
    arrays, counts = _split_grouped(x, y, keys)
    counts["left_out_over_max_pixels"] = len(too_large)
    return arrays, CLIPART_CLASSES, src.provenance(
        source=f"Debian openclipart-png {src.versions['openclipart-png']} (Open Clip Art Library 0.18)",
        license="public domain (Creative Commons Public Domain Dedication)",
        split="top-level category folder is the class; near-duplicates (e.g. colour and black-and-white versions) "
              "form one group; per-class 70/30 of groups (RandomState(0)); symlinked copies skipped",
        groups=counts, domain="clipart")


# ----- photographic cut-outs (Tux Paint stamps) ----------------------------------------------------
def _object_files(root: Path) -> list[tuple[Path, int]]:
    out = []
    for label, folders in enumerate(OBJECT_CLASSES.values()):
        for folder in folders:
            for path in sorted((root / folder).rglob("*.png")):
                rel = path.relative_to(root).parts
                if not path.is_symlink() and not any(s in part for part in rel for s in OBJECT_SKIP_PARTS):
                    out.append((path, label))
    return out


def build_objects():
    src = _Sources()
    root = src.deb("tuxpaint-stamps-default") / OBJECTS_ROOT
    pictures, labels, keys, base = [], [], [], []
    for path, label in _object_files(root):
        im = _crop_to_content(_open_rgba(path))
        pictures.append(im)
        labels.append(label)
        keys.append(f"file:{path.relative_to(root)}")
        base.append(_place(im, OBJECT_SIZE))
    groups = merge_near_duplicates(np.stack(base), keys)
    tr, te = split_groups_70_30(np.asarray(labels), groups)
    arrays: dict[str, np.ndarray] = {}
    for side, idx, seed in (("train", tr, 1000), ("test", te, 2000)):
        rng = np.random.default_rng(seed)
        xs, ys = [], []
        for i in idx:
            for _ in range(OBJECT_VIEWS):
                xs.append(_place(pictures[i], OBJECT_SIZE, background=rng.integers(150, 256, size=3), rng=rng))
                ys.append(labels[i])
        arrays[f"x_{side}"], arrays[f"y_{side}"] = _stack(xs, ys)
    counts = {"stamps": len(labels), "groups": int(groups.max() + 1), "stamps_train": int(len(tr)), "stamps_test": int(len(te))}
    return arrays, list(OBJECT_CLASSES), src.provenance(
        source=f"Debian tuxpaint-stamps-default {src.versions['tuxpaint-stamps-default']} (PNG stamps, mostly cut-out photographs)",
        license="GPL-2 (Tux Paint stamps)",
        split=f"stamp folder is the class (cartoon/toy sub-folders left out); stamps and their near-duplicates split "
              f"per class 70/30 by group (RandomState(0)); {OBJECT_VIEWS} jittered views per stamp (flip, rotation, "
              "scale, shift, plain background colour), views of one stamp all on its side",
        groups=counts, domain="objects")


SOURCE_BUILDERS: dict[str, Callable] = {
    "letters": build_letters,
    "icons": build_icons,
    "emoji": build_emoji,
    "clipart": build_clipart,
    "objects": build_objects,
}
