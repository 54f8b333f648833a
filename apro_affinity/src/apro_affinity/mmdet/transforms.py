"""``GenerateBoxMask``: box supervision's stand-in instance masks, as an mmdet 3.x data transform.

Put it right after ``LoadAnnotations(with_bbox=True, with_mask=False)`` (the official pipelines do): the
filled rectangles become ``gt_masks`` (``BitmapMasks``) and every later geometric transform (resize, flip,
crop, pad) moves them with the image. Ground-truth masks are never loaded.
"""

from __future__ import annotations

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmdet.registry import TRANSFORMS
from mmdet.structures.mask import BitmapMasks

from apro_affinity.box_masks import boxes_to_masks

__all__ = ["GenerateBoxMask"]


@TRANSFORMS.register_module()
class GenerateBoxMask(BaseTransform):
    """Write ``results['gt_masks']`` as the filled ``gt_bboxes``.

    Required keys: ``img`` (or ``img_shape``), ``gt_bboxes``. Added key: ``gt_masks``.

    Args:
        inclusive_end: include the rounded end row and column (the official rule; see
            :func:`apro_affinity.box_masks.boxes_to_masks`).
    """

    def __init__(self, inclusive_end: bool = True):
        self.inclusive_end = inclusive_end

    def transform(self, results: dict) -> dict:
        if "gt_bboxes" not in results:
            raise KeyError(f"GenerateBoxMask needs 'gt_bboxes' (put LoadAnnotations(with_bbox=True) before it); "
                           f"image {results.get('img_path', '<unknown>')}")
        boxes = results["gt_bboxes"]
        tensor = boxes.tensor if hasattr(boxes, "tensor") else torch.as_tensor(np.asarray(boxes))
        height, width = (results["img"].shape[:2] if "img" in results else results["img_shape"][:2])
        masks = boxes_to_masks(tensor.reshape(-1, 4).float(), int(height), int(width),
                               inclusive_end=self.inclusive_end)
        results["gt_masks"] = BitmapMasks(masks.numpy().astype(np.uint8), int(height), int(width))
        return results

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(inclusive_end={self.inclusive_end})"
