"""COCO run-length encoding of boolean masks, JSON-safe (``counts`` as str), via pycocotools."""

from __future__ import annotations

import numpy as np
from pycocotools import mask as mask_utils

__all__ = ["encode_rle"]


def encode_rle(mask: np.ndarray) -> dict:
    """Compressed COCO RLE of an (H, W) bool mask: ``{"size": [H, W], "counts": str}``."""
    rle = mask_utils.encode(np.asfortranarray(mask, dtype=np.uint8))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}
