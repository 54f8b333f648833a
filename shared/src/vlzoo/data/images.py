"""Image files: decode to RGB with clear errors, and read the size from the header alone.

``load_image`` follows the convention of every reference loader in this repo (``Image.open(p).convert("RGB")``):
palette, grey and RGBA images become RGB (alpha is dropped, not composited), and EXIF orientation is not
applied. Unlike the references it fails loudly, with :class:`ImageError` naming the file, on a missing,
corrupt or truncated file (Pillow's ``LOAD_TRUNCATED_IMAGES`` is left off, so a half-written JPEG is never
silently padded with grey) and on modes whose conversion would lose information (16-bit, 32-bit int, float).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

from PIL import Image, UnidentifiedImageError

from vlzoo.data.errors import ImageError

__all__ = ["ImageSize", "load_image", "image_size", "CONVERTIBLE_MODES"]

CONVERTIBLE_MODES = frozenset({"1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr"})
"""Pillow modes that :func:`load_image` converts to RGB; any other mode (``I;16``, ``I``, ``F``, ...) is an error."""


class ImageSize(NamedTuple):
    """Image size in the ``(height, width)`` order used by every array in ``vlzoo.data`` (not Pillow's (w, h))."""

    height: int
    width: int


def _require_image_file(path: Path) -> None:
    if not path.exists():
        raise ImageError(path, "image file not found")
    if not path.is_file():
        raise ImageError(path, "not a regular file")


def _open_image(path: Path) -> Image.Image:
    try:
        return Image.open(path)
    except Image.DecompressionBombError as exc:
        raise ImageError(path, f"refusing to decode an image this large ({exc})") from exc
    except UnidentifiedImageError as exc:
        raise ImageError(path, "not a recognised image file (corrupt, empty or unsupported format)") from exc
    except OSError as exc:
        raise ImageError(path, f"corrupt or truncated image header ({exc})") from exc


def load_image(path: str | os.PathLike) -> Image.Image:
    """Decode an image file fully and return it as an RGB Pillow image.

    Args:
        path: the image file.

    Returns:
        A ``PIL.Image.Image`` in mode ``"RGB"`` of size (W, H), detached from the file (the file is closed).

    Raises:
        ImageError: missing file, unrecognised or corrupt data, truncated data, or a mode outside
            :data:`CONVERTIBLE_MODES`.
    """
    path = Path(path)
    _require_image_file(path)
    with _open_image(path) as img:
        try:
            img.load()
        except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError, EOFError... for bad data
            raise ImageError(path, f"corrupt or truncated image data ({exc})") from exc
        if img.mode not in CONVERTIBLE_MODES:
            raise ImageError(
                path,
                f"unsupported image mode {img.mode!r}: only 8-bit modes convert to RGB without losing "
                "information; convert the file to 8-bit first",
            )
        if img.mode == "P" and "transparency" in img.info:
            # Pillow warns when a palette image with a transparency table goes straight to RGB.
            return img.convert("RGBA").convert("RGB")
        return img.convert("RGB")


def image_size(path: str | os.PathLike) -> ImageSize:
    """The ``(height, width)`` of an image read from its header, without decoding the pixels.

    Raises:
        ImageError: missing file or a file Pillow does not recognise as an image.
    """
    path = Path(path)
    _require_image_file(path)
    with _open_image(path) as img:
        width, height = img.size
    return ImageSize(height=height, width=width)
