"""COCO box / mask AP: a thin, validating wrapper over pycocotools' ``COCOeval``.

Used for APro's box-supervised instance segmentation (``/work/shared/specs/apro.md``: COCO-style mask
AP / AP50 / AP75) and Osprey's open-vocabulary instance segmentation.

Predictions are a list of dicts, one per detected instance::

    {"image_id": int, "category_id": int, "score": float,
     "mask": (H, W) bool ndarray                     # or
     "segmentation": {"size": [H, W], "counts": ...}  # COCO RLE (compressed str/bytes or uncompressed list)
     "bbox": [x, y, w, h]}                            # box AP; derived from the mask when absent

What this adds to pycocotools: inputs are checked with errors naming the prediction's index (unknown
image or category id, mask size that differs from the image, missing score); pycocotools' prints are
silenced unless ``verbose``; an empty prediction list evaluates to AP 0 instead of raising; results come
back in percent. The ground truth is deep-copied, because ``COCOeval`` rewrites annotations in place.

Returned keys: ``AP`` (IoU .50:.95), ``AP50``, ``AP75``, ``APs``, ``APm``, ``APl`` (COCO area ranges),
all with ``max_detections`` per image. COCOeval's ``-1`` (no ground truth in that area range) is
returned as NaN.

Detail: for mask AP each detection's area is its mask area (small / medium / large of unmatched
detections). pycocotools' own ``loadRes`` uses the box area whenever a result also carries a ``bbox``;
we build the result set directly so that cannot happen.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

__all__ = ["coco_mask_ap", "coco_box_ap", "load_coco_gt"]

_STAT_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl")


def _quiet(verbose: bool):
    return contextlib.nullcontext() if verbose else contextlib.redirect_stdout(io.StringIO())


def load_coco_gt(coco_gt, *, verbose: bool = False) -> COCO:
    """A private ``COCO`` index of the ground truth.

    Args:
        coco_gt: path to a COCO json, the loaded dict, or a ``pycocotools.coco.COCO`` (copied, not mutated).
        verbose: let pycocotools print.

    Raises:
        FileNotFoundError / ValueError: missing file, unreadable json, or a malformed dataset.
    """
    if isinstance(coco_gt, COCO):
        dataset, source = copy.deepcopy(coco_gt.dataset), "the COCO object"
    elif isinstance(coco_gt, (str, os.PathLike)):
        path = Path(coco_gt)
        if not path.is_file():
            raise FileNotFoundError(f"COCO ground-truth file not found: {path}")
        try:
            dataset = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON ({err})") from err
        source = str(path)
    elif isinstance(coco_gt, Mapping):
        dataset, source = copy.deepcopy(dict(coco_gt)), "the ground-truth dict"
    else:
        raise TypeError(f"coco_gt must be a path, a dict or a pycocotools COCO, got {type(coco_gt).__name__}")
    _check_dataset(dataset, source)
    gt = COCO()
    gt.dataset = dataset
    with _quiet(verbose):
        gt.createIndex()
    return gt


def _check_dataset(dataset, source: str) -> None:
    if not isinstance(dataset, dict):
        raise ValueError(f"{source}: a COCO dataset is a JSON object, got {type(dataset).__name__}")
    for key in ("images", "annotations", "categories"):
        if not isinstance(dataset.get(key), list):
            raise ValueError(f"{source}: missing list '{key}'")
    for i, img in enumerate(dataset["images"]):
        if not isinstance(img, dict) or "id" not in img:
            raise ValueError(f"{source}: images[{i}] has no 'id'")
    for i, cat in enumerate(dataset["categories"]):
        if not isinstance(cat, dict) or "id" not in cat:
            raise ValueError(f"{source}: categories[{i}] has no 'id'")
    for i, ann in enumerate(dataset["annotations"]):
        missing = [
            k for k in ("id", "image_id", "category_id", "area") if not isinstance(ann, dict) or k not in ann
        ]
        if missing:
            raise ValueError(f"{source}: annotations[{i}] lacks {missing} (COCOeval needs them)")


def _image_sizes(gt: COCO) -> dict:
    return {img_id: (img.get("height"), img.get("width")) for img_id, img in gt.imgs.items()}


def _rle_of(pred: Mapping, index: int, size: tuple) -> dict:
    """Compressed RLE of a prediction's ``mask`` or ``segmentation``, checked against the image size."""
    height, width = size
    if "mask" in pred:
        mask = np.asarray(pred["mask"])
        if mask.ndim != 2:
            raise ValueError(f"predictions[{index}]: 'mask' must be (H, W), got shape {mask.shape}")
        if height is not None and mask.shape != (height, width):
            raise ValueError(
                f"predictions[{index}]: mask shape {mask.shape} != image {pred['image_id']} "
                f"size ({height}, {width})"
            )
        return mask_utils.encode(np.asfortranarray(mask != 0, dtype=np.uint8))
    rle = pred.get("segmentation")
    if not isinstance(rle, Mapping) or "counts" not in rle or "size" not in rle:
        raise ValueError(
            f"predictions[{index}]: needs a 'mask' (H, W) array or a 'segmentation' RLE dict with 'size' "
            "and 'counts' (polygons are not accepted as results)"
        )
    h, w = (int(v) for v in rle["size"])
    if height is not None and (h, w) != (height, width):
        raise ValueError(
            f"predictions[{index}]: RLE size ({h}, {w}) != image {pred['image_id']} size ({height}, {width})"
        )
    if isinstance(rle["counts"], list):  # uncompressed RLE
        return mask_utils.frPyObjects(dict(rle), h, w)
    return {"size": [h, w], "counts": rle["counts"]}


def _results(gt: COCO, predictions: Sequence[Mapping], iou_type: str) -> COCO:
    """Validated result set as a ``COCO`` index (what ``loadRes`` builds, with checks and mask areas)."""
    if not isinstance(predictions, Sequence) or isinstance(predictions, (str, bytes)):
        raise TypeError(f"predictions must be a list of dicts, got {type(predictions).__name__}")
    sizes = _image_sizes(gt)
    anns = []
    for i, pred in enumerate(predictions):
        if not isinstance(pred, Mapping):
            raise TypeError(f"predictions[{i}] must be a dict, got {type(pred).__name__}")
        for key in ("image_id", "category_id", "score"):
            if key not in pred:
                raise ValueError(f"predictions[{i}] lacks '{key}'")
        if pred["image_id"] not in sizes:
            raise ValueError(f"predictions[{i}]: image_id {pred['image_id']!r} is not in the ground truth")
        if pred["category_id"] not in gt.cats:
            raise ValueError(
                f"predictions[{i}]: category_id {pred['category_id']!r} is not in the ground truth"
            )
        try:
            score = float(pred["score"])
        except (TypeError, ValueError):
            score = math.nan
        if not math.isfinite(score):
            raise ValueError(f"predictions[{i}]: score {pred['score']!r} is not a finite number")
        ann = {
            "id": i + 1,
            "image_id": pred["image_id"],
            "category_id": pred["category_id"],
            "score": score,
            "iscrowd": 0,
        }
        if iou_type == "segm":
            rle = _rle_of(pred, i, sizes[pred["image_id"]])
            ann.update(
                segmentation=rle, area=float(mask_utils.area(rle)), bbox=mask_utils.toBbox(rle).tolist()
            )
        else:
            if "bbox" in pred:
                box = [float(v) for v in pred["bbox"]]
                if len(box) != 4 or not all(math.isfinite(v) for v in box) or box[2] < 0 or box[3] < 0:
                    raise ValueError(
                        f"predictions[{i}]: bbox must be [x, y, w, h] with w, h >= 0, got {pred['bbox']!r}"
                    )
            elif "mask" in pred or "segmentation" in pred:
                box = mask_utils.toBbox(_rle_of(pred, i, sizes[pred["image_id"]])).tolist()
            else:
                raise ValueError(f"predictions[{i}] has no 'bbox' (nor a mask to derive it from)")
            ann.update(bbox=box, area=box[2] * box[3])
        anns.append(ann)
    res = COCO()
    res.dataset = {
        "images": list(gt.dataset["images"]),
        "categories": copy.deepcopy(gt.dataset["categories"]),
        "annotations": anns,
    }
    with _quiet(verbose=False):
        res.createIndex()
    return res


def _evaluate(coco_gt, predictions, iou_type: str, max_detections: int, verbose: bool) -> dict[str, float]:
    if isinstance(max_detections, bool) or not isinstance(max_detections, int) or max_detections < 1:
        raise ValueError(f"max_detections must be a positive int, got {max_detections!r}")
    gt = load_coco_gt(coco_gt, verbose=verbose)
    if iou_type == "segm":
        for img_id, size in _image_sizes(gt).items():
            if None in size:
                raise ValueError(f"ground-truth image {img_id!r} lacks 'height'/'width' (mask AP needs them)")
        for ann in gt.dataset["annotations"]:
            if "segmentation" not in ann:
                raise ValueError(
                    f"ground-truth annotation id {ann['id']} has no 'segmentation' (mask AP needs it)"
                )
    else:
        for ann in gt.dataset["annotations"]:
            if "bbox" not in ann:
                raise ValueError(f"ground-truth annotation id {ann['id']} has no 'bbox' (box AP needs it)")
    dt = _results(gt, predictions, iou_type)
    with _quiet(verbose):
        evaluator = COCOeval(gt, dt, iouType=iou_type)
        evaluator.params.maxDets = [1, 10, max_detections]
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return {
        key: (math.nan if value < 0 else float(value) * 100.0)
        for key, value in zip(_STAT_KEYS, evaluator.stats)
    }


def coco_mask_ap(
    coco_gt, predictions, *, max_detections: int = 100, verbose: bool = False
) -> dict[str, float]:
    """COCO mask AP (``iouType="segm"``) in percent.

    Args:
        coco_gt: COCO json path, dict or ``COCO`` (images need ``height``/``width``, annotations
            ``segmentation`` and ``area``).
        predictions: list of dicts with ``image_id``, ``category_id``, ``score`` and ``mask`` (H, W) or
            ``segmentation`` (RLE). An empty list scores 0.
        max_detections: detections per image kept (COCO: 100).
        verbose: print pycocotools' log and summary table.

    Returns:
        ``{"AP", "AP50", "AP75", "APs", "APm", "APl"}``; NaN where the ground truth has no object in an
        area range.
    """
    return _evaluate(coco_gt, predictions, "segm", max_detections, verbose)


def coco_box_ap(
    coco_gt, predictions, *, max_detections: int = 100, verbose: bool = False
) -> dict[str, float]:
    """COCO box AP (``iouType="bbox"``) in percent; predictions carry ``bbox`` [x, y, w, h] (or a mask).

    Same arguments and result keys as :func:`coco_mask_ap`.
    """
    return _evaluate(coco_gt, predictions, "bbox", max_detections, verbose)
