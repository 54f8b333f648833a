"""Label PNGs in the PASCAL VOC style: one class index per pixel (semantic masks, scribbles, point labels).

A label PNG stores class indices, either as a palette image (mode ``"P"``: the pixel values are palette
indices, the palette only colours them for viewing; VOC's ``SegmentationClass``, ScribbleSup's scribbles) or as
a greyscale image (mode ``"L"``: ADE20K, COCO-Stuff, Cityscapes ``labelIds``). 255 marks "ignore" (VOC's object
boundaries, unlabelled pixels of scribble and point annotations).

The classic mistake is a mask saved after colour rendering (an RGB PNG of the palette colours): its values
are colours, not classes, and reading it as labels silently trains on garbage, so :func:`read_label_png`
rejects RGB/RGBA images with that explanation.

The VOC colour map gives class ``i`` the colour whose bits interleave the bits of ``i``: bit ``3k + c`` of
``i`` (c = 0, 1, 2 for red, green, blue) becomes bit ``7 - k`` of channel ``c``. So 1 -> (128, 0, 0),
15 (person) -> (192, 128, 128), 255 -> (224, 224, 192).
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from vlzoo.data.errors import DataError, ImageError
from vlzoo.data.images import _open_image, _require_image_file
from vlzoo.run import atomic_write_bytes

__all__ = ["read_label_png", "write_label_png", "voc_colormap"]

_LABEL_MODES = ("P", "L", "1")


def voc_colormap(num_colors: int = 256) -> np.ndarray:
    """The PASCAL VOC colour map, ``uint8`` (num_colors, 3): bit-interleaved colours of the class indices."""
    if not 0 < num_colors <= 256:
        raise ValueError(f"num_colors must be in [1, 256], got {num_colors}")
    index = np.arange(num_colors, dtype=np.int64)
    colors = np.zeros((num_colors, 3), dtype=np.int64)
    for k in range(8):  # 8 groups of 3 bits: group k fills bit (7 - k) of red, green and blue
        for channel in range(3):
            colors[:, channel] |= ((index >> (3 * k + channel)) & 1) << (7 - k)
    return colors.astype(np.uint8)


def read_label_png(path: str | os.PathLike, num_classes: int | None = None, ignore_index: int | None = 255, *,
                   expected_size: tuple[int, int] | None = None, dtype: Any = np.uint8) -> np.ndarray:
    """Read a label PNG (palette ``"P"`` or greyscale ``"L"``) as class indices.

    Args:
        path: the PNG file.
        num_classes: when given, every value must be ``< num_classes`` or equal ``ignore_index``.
        ignore_index: the "no label" value allowed beyond the classes (None: no such value).
        expected_size: ``(H, W)`` the labels must have (usually the size of the matching image).
        dtype: output dtype, ``np.uint8`` (as stored) or e.g. ``np.int64`` for loss functions.

    Returns:
        Array (H, W) of class indices.

    Raises:
        ImageError: missing, corrupt or truncated file; an RGB/RGBA (colour-rendered) image; another mode.
        DataError: size differs from ``expected_size``; values outside the classes.
    """
    path = Path(path)
    _require_image_file(path)
    with _open_image(path) as img:
        try:
            img.load()
        except Exception as exc:  # Pillow raises several types for bad data
            raise ImageError(path, f"corrupt or truncated image data ({exc})") from exc
        if img.mode in ("RGB", "RGBA", "RGBX"):
            raise ImageError(
                path,
                f"label PNG is a colour image (mode {img.mode!r}), probably a colour-rendered mask: labels must "
                "be a palette ('P') or greyscale ('L') PNG whose pixel values are class indices",
            )
        if img.mode not in _LABEL_MODES:
            raise ImageError(path, f"unsupported label PNG mode {img.mode!r}: expected 'P' or 'L' (8-bit)")
        labels = np.array(img, dtype=np.uint8)  # a writable copy (asarray of a Pillow image is read-only)
    if expected_size is not None and tuple(labels.shape) != tuple(expected_size):
        raise DataError(path, f"label size (H, W) = {tuple(labels.shape)} does not match the expected "
                              f"{tuple(expected_size)}")
    if num_classes is not None:
        bad = labels >= num_classes
        if ignore_index is not None:
            bad &= labels != ignore_index
        if bad.any():
            values = np.flatnonzero(np.bincount(labels[bad], minlength=256))
            row, col = np.argwhere(bad)[0]
            shown = ", ".join(str(v) for v in values[:10]) + (", ..." if len(values) > 10 else "")
            allowed = f"class indices 0..{num_classes - 1}"
            if ignore_index is not None:
                allowed += f" or the ignore index {ignore_index}"
            raise DataError(path, f"{int(bad.sum())} pixels hold values [{shown}] that are not {allowed} "
                                  f"(first at row {row}, column {col})")
    return labels.astype(dtype, copy=False)


def write_label_png(path: str | os.PathLike, labels: Any, palette: str | np.ndarray | None = "voc") -> Path:
    """Write class indices as a label PNG, atomically.

    Args:
        path: destination ``.png``.
        labels: integer array-like (H, W) with values in ``[0, 255]`` (numpy array or CPU tensor).
        palette: ``"voc"`` (the VOC colour map, mode ``"P"``), a ``uint8`` array (N <= 256, 3) of colours
            (mode ``"P"``; entries past N are black), or None (greyscale mode ``"L"``).

    Returns:
        The written path. Reading it back with :func:`read_label_png` gives ``labels`` exactly.

    Raises:
        ValueError: not 2-D, not integer, values outside ``[0, 255]``, or a bad palette.
    """
    array = np.asarray(labels)
    if array.ndim != 2:
        raise ValueError(f"labels must be 2-D (H, W), got shape {array.shape}")
    if not (np.issubdtype(array.dtype, np.integer) or array.dtype == bool):
        raise ValueError(f"labels must be an integer array, got dtype {array.dtype}")
    if array.size and (array.min() < 0 or array.max() > 255):
        raise ValueError(f"label values must be in [0, 255] to fit an 8-bit PNG, got [{array.min()}, {array.max()}]")
    img = Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8))  # mode "L"
    if palette is not None:
        if isinstance(palette, str):
            if palette != "voc":
                raise ValueError(f"palette must be 'voc', an (N, 3) colour array or None, got {palette!r}")
            colors = voc_colormap(256)
        else:
            colors = np.asarray(palette)
            if colors.ndim != 2 or colors.shape[1] != 3 or not 0 < colors.shape[0] <= 256:
                raise ValueError(f"palette must have shape (N <= 256, 3), got {colors.shape}")
            if not np.issubdtype(colors.dtype, np.integer) or colors.min() < 0 or colors.max() > 255:
                raise ValueError("palette colours must be integers in [0, 255]")
        # Pad to 256 entries: with a short palette Pillow writes fewer bits per pixel and cuts the values.
        full = np.zeros((256, 3), dtype=np.uint8)
        full[: len(colors)] = colors
        img.putpalette(full.tobytes(), rawmode="RGB")  # turns the "L" image into "P"
    buffer = io.BytesIO()
    img.save(buffer, format="PNG")
    return atomic_write_bytes(path, buffer.getvalue())
