"""Semantic-segmentation metrics: confusion matrix, per-class IoU / mIoU, pixel accuracy, a streaming meter.

Used by APro's weakly-supervised segmentation results (``/work/shared/specs/apro.md``: mIoU on VOC val,
Context-59, COCO-Stuff) and Osprey's open-vocabulary segmentation (mIoU).

Shape shorthand: ``K`` classes; ``pred`` and ``gt`` are integer label maps of any (equal) shape, e.g.
(H, W) or (B, H, W). Pixels whose ``gt`` equals ``ignore_index`` are left out everywhere.

Definitions (as mmseg / the VOC devkit compute them from the accumulated confusion ``M``, rows = ground
truth, columns = prediction):

- ``IoU_k = M[k, k] / (sum_j M[k, j] + sum_i M[i, k] - M[k, k])`` (TP / (TP + FP + FN));
- a class absent from both ``gt`` and ``pred`` (union 0) has IoU **NaN** and is left out of the mean;
  a class absent from ``gt`` but predicted somewhere has IoU 0 and counts;
- ``mIoU`` = mean of the non-NaN IoUs; ``pixel accuracy = trace(M) / sum(M)``;
- class accuracy ``M[k, k] / sum_j M[k, j]`` (NaN for classes absent from ``gt``), ``mAcc`` its nan-mean.

All values are returned in percent.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["confusion_matrix", "mean_iou", "SegmentationMeter"]


def _as_label_tensor(x, name: str) -> torch.Tensor:
    t = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer class indices, got dtype {t.dtype}")
    return t.detach()


def confusion_matrix(pred, gt, num_classes: int, ignore_index: int | None = 255) -> torch.Tensor:
    """Pixel confusion matrix by one ``bincount``.

    Args:
        pred: integer predicted classes, any shape (batched is fine), values in [0, K).
        gt: integer ground truth, same shape, values in [0, K) or ``ignore_index``.
        num_classes: K.
        ignore_index: gt value to skip (``None``: skip nothing).

    Returns:
        (K, K) int64 tensor on ``gt``'s device; ``M[i, j]`` = pixels of true class i predicted as j.

    Raises:
        ValueError: shapes differ, or a gt / pred value outside [0, K) at a labelled pixel.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    pred = _as_label_tensor(pred, "pred")
    gt = _as_label_tensor(gt, "gt")
    if pred.shape != gt.shape:
        raise ValueError(f"pred shape {tuple(pred.shape)} != gt shape {tuple(gt.shape)}")
    pred = pred.to(gt.device).reshape(-1).long()
    gt = gt.reshape(-1).long()
    if ignore_index is not None:
        labelled = gt != ignore_index
        if not bool(labelled.all()):
            pred, gt = pred[labelled], gt[labelled]
    if gt.numel():
        for name, values in (("gt", gt), ("pred", pred)):
            bad = (values < 0) | (values >= num_classes)
            if bool(bad.any()):
                found = torch.unique(values[bad])[:8].tolist()
                where = "" if ignore_index is None else f" (ignore_index={ignore_index} excluded)"
                raise ValueError(
                    f"{name} holds values outside [0, {num_classes}) at labelled pixels{where}: {found}"
                )
    counts = torch.bincount(gt * num_classes + pred, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def _metrics_from_confusion(confusion: torch.Tensor) -> dict:
    m = confusion.double().cpu()
    tp = m.diagonal()
    gt_pixels = m.sum(1)
    pred_pixels = m.sum(0)
    union = gt_pixels + pred_pixels - tp
    iou = torch.where(union > 0, tp / union, torch.full_like(tp, math.nan))
    class_acc = torch.where(gt_pixels > 0, tp / gt_pixels, torch.full_like(tp, math.nan))
    total = m.sum()

    def nanmean(x: torch.Tensor) -> float:
        x = x[~torch.isnan(x)]
        return float(x.mean()) * 100.0 if x.numel() else math.nan

    return {
        "miou": nanmean(iou),
        "iou": iou * 100.0,
        "pixel_accuracy": float(tp.sum() / total) * 100.0 if total > 0 else math.nan,
        "macc": nanmean(class_acc),
        "class_accuracy": class_acc * 100.0,
    }


def mean_iou(
    pred_or_confusion, gt=None, num_classes: int | None = None, ignore_index: int | None = 255
) -> dict:
    """mIoU, per-class IoU and pixel accuracy from label maps or from an accumulated confusion matrix.

    Args:
        pred_or_confusion: predicted label map(s) when ``gt`` is given, else a (K, K) confusion matrix
            (rows = ground truth) such as :func:`confusion_matrix` returns.
        gt: ground-truth label map(s), same shape as the prediction; ``None`` for the confusion form.
        num_classes: K (required with label maps; checked against the matrix otherwise).
        ignore_index: gt value to skip (label maps only).

    Returns:
        ``{"miou": float, "iou": (K,) float64, "pixel_accuracy": float, "macc": float,
        "class_accuracy": (K,) float64}`` in percent. Classes absent from both gt and prediction have
        NaN IoU and are excluded from ``miou`` (module docstring). With no labelled pixel at all every
        value is NaN.
    """
    if gt is None:
        confusion = _as_label_tensor(pred_or_confusion, "confusion")
        if confusion.dim() != 2 or confusion.shape[0] != confusion.shape[1]:
            raise ValueError(
                "without gt the first argument must be a (K, K) confusion matrix, "
                f"got shape {tuple(confusion.shape)}"
            )
        if num_classes is not None and confusion.shape[0] != num_classes:
            raise ValueError(
                f"confusion matrix is {confusion.shape[0]}x{confusion.shape[0]}, num_classes={num_classes}"
            )
        if bool((confusion < 0).any()):
            raise ValueError("confusion matrix has negative counts")
    else:
        if num_classes is None:
            raise ValueError("num_classes is required when passing label maps")
        confusion = confusion_matrix(pred_or_confusion, gt, num_classes, ignore_index)
    return _metrics_from_confusion(confusion)


class SegmentationMeter:
    """Accumulates a confusion matrix over batches; ``compute()`` gives :func:`mean_iou`'s dict.

    Example::

        meter = SegmentationMeter(num_classes=21)
        for images, labels in loader:
            meter.update(model(images).argmax(1), labels)
        result = meter.compute()   # {"miou": ..., "iou": ..., ...}
    """

    def __init__(self, num_classes: int, ignore_index: int | None = 255):
        """Args: num_classes: K. ignore_index: gt value skipped (``None``: none)."""
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self._confusion: torch.Tensor | None = None
        self.num_updates = 0

    def reset(self) -> None:
        """Forget everything accumulated."""
        self._confusion = None
        self.num_updates = 0

    def update(self, pred, gt) -> None:
        """Add one batch: ``pred`` / ``gt`` integer label maps of equal shape (any batch layout)."""
        batch = confusion_matrix(pred, gt, self.num_classes, self.ignore_index)
        if self._confusion is None:
            self._confusion = batch
        else:
            self._confusion += batch.to(self._confusion.device)
        self.num_updates += 1

    @property
    def confusion(self) -> torch.Tensor:
        """(K, K) int64 accumulated confusion (rows = ground truth); zeros before any update."""
        if self._confusion is None:
            return torch.zeros(self.num_classes, self.num_classes, dtype=torch.int64)
        return self._confusion

    def compute(self) -> dict:
        """Metrics of everything seen since the last reset (see :func:`mean_iou`)."""
        if self._confusion is None:
            raise RuntimeError("SegmentationMeter.compute() before any update()")
        return _metrics_from_confusion(self._confusion)
