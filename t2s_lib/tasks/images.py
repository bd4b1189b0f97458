"""Decoding a task's image file into the 8-bit RGB picture every model here sees.

Every file-based task (a user's ImageFolder, the paper's datasets) decodes through
:func:`decode_rgb`, so bit depth, colour mode and size are checked in one place:

* PIL's ``convert("RGB")`` clips instead of scaling: a 16-bit PNG (mode ``I;16``) turns all white
  and a float TIFF (mode ``F``) all black. High-bit-depth and float images (modes ``I;16``,
  ``I;16B``, ``I;16L``, ``I;16N``, ``I``, ``F``) are scaled to 0..255 by **their own range**
  (minimum to maximum of the finite values of that image), not by the range of their type: 16-bit
  files often hold 10- or 12-bit sensor data and float images have no fixed range, and a type-range
  scaling would leave both near-blank. The ordering of pixel values is kept; absolute brightness
  across images is not. A constant image maps to 0 (black); NaN maps to the minimum, +-inf to the
  maximum / minimum.
* Transparency (``RGBA``, ``LA``, ``PA``, a palette or grey/RGB image with a transparent colour) is
  composited onto white, as a viewer shows it, instead of dropping alpha (which leaves transparent
  pixels at whatever colour they store, usually black). ``CMYK``, ``YCbCr``, ``P``, ``L`` and ``1``
  convert with PIL's rules.
* Decompression bombs: an image with more than :data:`MAX_IMAGE_PIXELS` pixels is refused from its
  header, before decoding, with a :class:`ImageDecodeError` naming the file (a larger ``max_pixels``
  is capped by PIL's own refusal at twice ``PIL.Image.MAX_IMAGE_PIXELS``).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from ..errors import T2SError

#: PIL's default limit (it warns above it and refuses at twice it): 0.25 GiB as RGBA, far above any
#: task image; larger headers are decompression bombs or scans that need downscaling first.
MAX_IMAGE_PIXELS = 89_478_485

#: PIL modes with more than 8 bits per pixel, which ``convert("RGB")`` clips.
HIGH_DEPTH_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")

#: The fix line for a file that cannot be used; names the option of the API and of the CLI commands that have it.
BAD_IMAGE_FIX = ("replace or delete the file, or skip and count such files: on_bad_image='skip' in Python, "
                 "--on-bad-image skip with `t2s task2vec` or `t2s adapt`")


class ImageDecodeError(T2SError):
    """An image file could not be decoded or is refused (names the file)."""


def decode_rgb(path: str | Path, max_pixels: int = MAX_IMAGE_PIXELS):
    """The image file at ``path`` as an 8-bit RGB ``PIL.Image`` (see the module docstring for how
    bit depths, modes and transparency are mapped). Raises :class:`ImageDecodeError` for a file
    that cannot be decoded, has an unsupported mode, or has more than ``max_pixels`` pixels."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            # PIL warns above its own limit; the check below refuses such images with a clearer error
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path)
        with im:
            # the header gives the size: refuse a bomb before allocating its pixels
            if im.width * im.height > max_pixels:
                raise _too_large(path, im.width, im.height, max_pixels)
            im.load()
            return to_rgb(im, path)
    except Image.DecompressionBombError as exc:  # PIL's own limit, checked while opening the header
        raise _too_large(path, 0, 0, max_pixels, str(exc)) from exc
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
        raise ImageDecodeError(f"cannot decode image {path} ({exc.__class__.__name__}: {exc})", BAD_IMAGE_FIX) from exc


def to_rgb(im, path: str | Path = "image"):
    """A loaded ``PIL.Image`` of any mode as a new 8-bit RGB image (the rules of :func:`decode_rgb`)."""
    from PIL import Image

    if im.mode in HIGH_DEPTH_MODES:
        return Image.fromarray(scale_to_uint8(np.asarray(im)), mode="L").convert("RGB")
    if im.has_transparency_data:
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    try:
        return im.convert("RGB")
    except ValueError as exc:  # e.g. LAB or HSV, which PIL cannot convert without a colour profile
        raise ImageDecodeError(f"image {path} has colour mode {im.mode!r}, which cannot be converted to RGB ({exc})",
                               "save it as an 8-bit RGB or greyscale image; " + BAD_IMAGE_FIX) from exc


def scale_to_uint8(values: np.ndarray) -> np.ndarray:
    """``values`` (any real dtype) mapped linearly from their finite [min, max] to 0..255 uint8.

    A constant (or all non-finite) array maps to 0 rather than dividing by zero; NaN and -inf
    map to 0, +inf to 255. Computed in float64, so 32-bit integers keep their ordering.
    """
    v = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(v)
    if not finite.any():
        return np.zeros(v.shape, dtype=np.uint8)
    lo, hi = float(v[finite].min()), float(v[finite].max())
    if hi <= lo:
        return np.zeros(v.shape, dtype=np.uint8)
    v = np.nan_to_num(v, nan=lo, posinf=hi, neginf=lo)
    return np.rint((v - lo) * (255.0 / (hi - lo))).clip(0, 255).astype(np.uint8)


def _too_large(path: str | Path, width: int, height: int, max_pixels: int, detail: str = "") -> ImageDecodeError:
    size = f"{width} x {height} = {width * height} pixels" if width else (detail or "too many pixels")
    return ImageDecodeError(
        f"image {path} is too large to decode ({size}; the limit is {max_pixels} pixels): "
        "a decompression bomb or an oversized scan",
        f"downscale it (e.g. `convert {path} -resize 4096x4096 OUT`) or delete it; or skip and count such "
        "files: on_bad_image='skip' in Python, --on-bad-image skip with `t2s task2vec` or `t2s adapt`")
