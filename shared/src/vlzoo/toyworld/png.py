"""A small deterministic PNG encoder (RGB and VOC-palette label images).

Written here rather than through PIL so the bytes depend on nothing but the pixels and zlib: no encoder
options, metadata or library version can change them ("same seed, same bytes"). Any PNG reader (PIL,
OpenCV) decodes the files; label PNGs are palette ("P") images whose values are class indices, with the
standard PASCAL VOC colour map as palette.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

__all__ = ["encode_png", "voc_palette", "VOC_PALETTE"]

_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def voc_palette(n: int = 256) -> np.ndarray:
    """The PASCAL VOC colour map: class c's colour interleaves the bits of c over R, G, B (MSB first).

    Returns:
        (n, 3) uint8; entry 0 is black, 1 is (128, 0, 0), 255 is (224, 224, 192).
    """
    cmap = np.zeros((n, 3), dtype=np.uint8)
    for index in range(n):
        r = g = b = 0
        c = index
        for shift in range(7, -1, -1):
            r |= ((c >> 0) & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        cmap[index] = (r, g, b)
    return cmap


VOC_PALETTE = voc_palette()
"""(256, 3) uint8 VOC colour map."""


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def encode_png(pixels: np.ndarray, palette: np.ndarray | None = None, level: int = 6) -> bytes:
    """Encode an image as PNG bytes.

    Args:
        pixels: (H, W, 3) uint8 RGB, or (H, W) uint8 indices when ``palette`` is given.
        palette: (N, 3) uint8 palette (N <= 256) for an indexed ("P") image; None for RGB.
        level: zlib compression level.

    Returns:
        The PNG file content. Rows use the "Up" filter for RGB (smaller files on smooth backgrounds) and no
        filter for label images.
    """
    pixels = np.ascontiguousarray(pixels)
    if pixels.dtype != np.uint8:
        raise ValueError(f"PNG pixels must be uint8, got {pixels.dtype}")
    if palette is None:
        if pixels.ndim != 3 or pixels.shape[2] != 3:
            raise ValueError(f"an RGB PNG needs (H, W, 3) pixels, got {pixels.shape}")
        height, width = pixels.shape[:2]
        rows = pixels.reshape(height, width * 3)
        # Up filter: each byte minus the byte above it (mod 256); the first row is unchanged.
        filtered = rows.copy()
        filtered[1:] = rows[1:] - rows[:-1]
        raw = np.concatenate([np.full((height, 1), 2, dtype=np.uint8), filtered], axis=1)
        header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
        extra = b""
    else:
        if pixels.ndim != 2:
            raise ValueError(f"a palette PNG needs (H, W) indices, got {pixels.shape}")
        palette = np.asarray(palette, dtype=np.uint8)
        if palette.ndim != 2 or palette.shape[1] != 3 or not 1 <= palette.shape[0] <= 256:
            raise ValueError(f"palette must be (N <= 256, 3), got {palette.shape}")
        height, width = pixels.shape
        raw = np.concatenate([np.zeros((height, 1), dtype=np.uint8), pixels], axis=1)
        header = struct.pack(">IIBBBBB", width, height, 8, 3, 0, 0, 0)
        extra = _chunk(b"PLTE", palette.tobytes())
    return b"".join(
        [
            _SIGNATURE,
            _chunk(b"IHDR", header),
            extra,
            _chunk(b"IDAT", zlib.compress(raw.tobytes(), level)),
            _chunk(b"IEND", b""),
        ]
    )
