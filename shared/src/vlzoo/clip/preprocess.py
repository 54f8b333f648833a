"""Image preprocessing for the CLIP towers on tensors: resize, crop / pad, CLIP mean/std normalisation.

Shape shorthand: B images, H x W input size, S output size.

For PIL images use ``ClipModel.preprocess`` (open_clip's own eval transform: bicubic resize of the shortest
edge, center crop, mean/std), which is the official pipeline. The helpers here work on batched tensors, on
any device, for pipelines that already hold pixels as tensors:

- ``mode="shortest"``: resize the shortest edge to S, center-crop S x S (CLIP / HF ``CLIPImageProcessor``);
- ``mode="squash"``: resize straight to S x S, aspect ratio not kept (Osprey: the whole frame, stretched);
- ``mode="longest"``: resize the longest edge to S, pad to S x S centred with the mean colour, which is 0
  after normalisation (LLaVA's ``expand2square``).

Resizing uses ``F.interpolate(antialias=True)`` and clamps to [0, 1]; it approximates, but is not
bit-identical to, PIL's resampling.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from open_clip import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD

__all__ = ["CLIP_MEAN", "CLIP_STD", "RESIZE_MODES", "normalize_images", "preprocess_images", "to_unit_float"]

CLIP_MEAN: tuple[float, float, float] = tuple(OPENAI_DATASET_MEAN)
CLIP_STD: tuple[float, float, float] = tuple(OPENAI_DATASET_STD)
RESIZE_MODES = ("shortest", "squash", "longest")


def to_unit_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 in [0, 255] -> float32 in [0, 1]; floating input is taken to be in [0, 1] already."""
    if images.dtype == torch.uint8:
        return images.float() / 255.0
    if not images.is_floating_point():
        raise TypeError(f"images must be uint8 or floating point, got {images.dtype}")
    return images.float()


def normalize_images(
    images: torch.Tensor, mean: Sequence[float] = CLIP_MEAN, std: Sequence[float] = CLIP_STD
) -> torch.Tensor:
    """(…, 3, H, W) uint8 or [0, 1] float -> (…, 3, H, W) float32 ``(x - mean) / std`` per channel."""
    x = to_unit_float(images)
    if x.ndim < 3 or x.shape[-3] != 3:
        raise ValueError(f"expected images with 3 channels at dim -3, got shape {tuple(images.shape)}")
    m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(3, 1, 1)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).view(3, 1, 1)
    return (x - m) / s


def _resize_one(
    x: torch.Tensor, size: int, mode: str, interpolation: str, mean: Sequence[float]
) -> torch.Tensor:
    """(B, 3, H, W) in [0, 1] -> (B, 3, size, size) in [0, 1]."""
    h, w = x.shape[-2:]
    if mode == "squash":
        target = (size, size)
    elif mode == "shortest":
        scale = size / min(h, w)
        target = (max(size, round(h * scale)), max(size, round(w * scale)))
    else:
        scale = size / max(h, w)
        target = (min(size, max(1, round(h * scale))), min(size, max(1, round(w * scale))))
    if target != (h, w):
        x = F.interpolate(x, size=target, mode=interpolation, align_corners=False, antialias=True).clamp_(
            0.0, 1.0
        )
    th, tw = target
    if mode == "shortest":
        top, left = (th - size) // 2, (tw - size) // 2
        return x[..., top : top + size, left : left + size]
    if mode == "longest":
        canvas = (
            torch.tensor(mean, dtype=x.dtype, device=x.device)
            .view(1, 3, 1, 1)
            .expand(x.shape[0], 3, size, size)
        )
        canvas = canvas.clone()
        top, left = (size - th) // 2, (size - tw) // 2
        canvas[..., top : top + th, left : left + tw] = x
        return canvas
    return x


def preprocess_images(
    images: torch.Tensor | Sequence[torch.Tensor],
    size: int,
    mode: str = "shortest",
    interpolation: str = "bicubic",
    mean: Sequence[float] = CLIP_MEAN,
    std: Sequence[float] = CLIP_STD,
) -> torch.Tensor:
    """Resize (see the module docstring) and normalise images for a CLIP tower.

    Args:
        images: (B, 3, H, W) or (3, H, W) uint8 / [0, 1] float tensor, or a list of (3, H_i, W_i) tensors
            of different sizes.
        size: output side S.
        mode: ``"shortest"``, ``"squash"`` or ``"longest"``.
        interpolation: ``"bicubic"`` or ``"bilinear"``.
        mean, std: normalisation constants (CLIP's by default).

    Returns:
        (B, 3, S, S) float32, normalised.
    """
    if mode not in RESIZE_MODES:
        raise ValueError(f"mode must be one of {RESIZE_MODES}, got {mode!r}")
    if interpolation not in ("bicubic", "bilinear"):
        raise ValueError(f"interpolation must be 'bicubic' or 'bilinear', got {interpolation!r}")
    if size < 1:
        raise ValueError(f"size must be positive, got {size}")
    if isinstance(images, torch.Tensor):
        batch = images.unsqueeze(0) if images.ndim == 3 else images
        if batch.ndim != 4 or batch.shape[1] != 3:
            raise ValueError(f"expected (B, 3, H, W) or (3, H, W) images, got shape {tuple(images.shape)}")
        out = _resize_one(to_unit_float(batch), size, mode, interpolation, mean)
    else:
        items = list(images)
        if not items:
            raise ValueError("images is empty")
        for i, img in enumerate(items):
            if img.ndim != 3 or img.shape[0] != 3:
                raise ValueError(f"image {i}: expected shape (3, H, W), got {tuple(img.shape)}")
        out = torch.cat(
            [_resize_one(to_unit_float(img)[None], size, mode, interpolation, mean) for img in items]
        )
    return normalize_images(out, mean, std)
