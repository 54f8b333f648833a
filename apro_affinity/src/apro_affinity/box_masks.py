"""Box masks: the filled rectangles that stand in for instance masks under box supervision (spec §4.1, §7).

The official ``GenerateBoxMask`` pipeline step (APro's mmdet 2.25 fork, ``datasets/pipelines/loading.py``)
rounds each ``[x1, y1, x2, y2]`` box to integers and fills ``mask[y1:y2 + 1, x1:x2 + 1]``: the end row and
column are *included*. With tight COCO boxes (``x2 = x + w`` where ``x + w - 1`` is the last object column)
that paints one extra row and column; :func:`boxes_to_masks` keeps that rule as the default
(``inclusive_end=True``) and offers the exact half-open form (``inclusive_end=False``).

Shape shorthand: R boxes, H x W the image (or prediction grid).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["boxes_to_masks", "resize_box_masks", "box_projections"]


def boxes_to_masks(boxes: Tensor, height: int, width: int, *, inclusive_end: bool = True) -> Tensor:
    """Fill each box with ones on an ``height x width`` grid.

    Args:
        boxes: (R, 4) ``[x1, y1, x2, y2]`` in pixels (float or int).
        height: grid height H.
        width: grid width W.
        inclusive_end: fill rows ``round(y1)..round(y2)`` and columns ``round(x1)..round(x2)`` both
            included (the official ``GenerateBoxMask``); when False the end is excluded (``[x1, x2)``), the
            exact pixel extent of a tight COCO box.

    Returns:
        ``bool`` (R, H, W) masks. Boxes are clipped to the grid; a box outside it gives an empty mask.

    Raises:
        ValueError: ``boxes`` is not (R, 4), or the grid size is not positive.
    """
    if boxes.ndim != 2 or boxes.shape[-1] != 4:
        raise ValueError(f"boxes must be (R, 4) [x1, y1, x2, y2], got shape {tuple(boxes.shape)}")
    if height <= 0 or width <= 0:
        raise ValueError(f"grid size must be positive, got {height}x{width}")
    # torch.round rounds half to even, as numpy's round in the official pipeline step.
    x1, y1, x2, y2 = torch.round(boxes.to(torch.float64)).unbind(-1)
    if inclusive_end:
        x2, y2 = x2 + 1, y2 + 1
    cols = torch.arange(width, device=boxes.device, dtype=torch.float64)
    rows = torch.arange(height, device=boxes.device, dtype=torch.float64)
    in_cols = (cols[None] >= x1[:, None]) & (cols[None] < x2[:, None])  # (R, W)
    in_rows = (rows[None] >= y1[:, None]) & (rows[None] < y2[:, None])  # (R, H)
    return in_rows[:, :, None] & in_cols[:, None, :]


def resize_box_masks(masks: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinearly resize box masks to a prediction grid, as the Mask2Former head does (soft borders).

    Args:
        masks: (R, H, W) bool or float box masks.
        size: target (h, w).

    Returns:
        float (R, h, w) in [0, 1].
    """
    if masks.numel() == 0:
        return masks.new_zeros((masks.shape[0], *size), dtype=torch.float32)
    return F.interpolate(masks[:, None].float(), size=size, mode="bilinear", align_corners=False)[:, 0]


def box_projections(masks: Tensor) -> tuple[Tensor, Tensor]:
    """Max-projections of masks onto the two axes (the box projection of BoxInst and APro, spec §4.2).

    Args:
        masks: (R, H, W) probabilities or binary masks.

    Returns:
        ``(onto_x, onto_y)``: (R, W) the max over rows, (R, H) the max over columns.
    """
    return masks.amax(dim=-2), masks.amax(dim=-1)
