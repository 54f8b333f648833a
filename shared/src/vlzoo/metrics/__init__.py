"""Vectorised evaluation metrics shared by the papers, each tested against a brute-force loop.

- :mod:`vlzoo.metrics.multilabel`    per-label AP / mAP, micro F1@K, the QKS SEEN / ZSL / GZSL protocol
- :mod:`vlzoo.metrics.segmentation`  confusion matrix, mIoU, pixel accuracy, a streaming meter
- :mod:`vlzoo.metrics.coco_eval`     COCO box / mask AP through pycocotools, with input checks
- :mod:`vlzoo.metrics.vqa`           VQAv2 / TextVQA soft accuracy, GQA exact match, POPE, OCRBench, MMBench

``python -m vlzoo.metrics.bench`` times ``mean_average_precision`` against a scikit-learn loop.
"""

from vlzoo.metrics.coco_eval import coco_box_ap, coco_mask_ap, load_coco_gt
from vlzoo.metrics.multilabel import (
    evaluation_subset,
    f1_at_k,
    mean_average_precision,
    per_label_average_precision,
    qks_subsets,
)
from vlzoo.metrics.segmentation import SegmentationMeter, confusion_matrix, mean_iou
from vlzoo.metrics.vqa import (
    exact_match_accuracy,
    mmbench_letter,
    normalize_vqa_answer,
    ocrbench_match,
    pope_answer,
    pope_metrics,
    vqa_accuracy,
    vqa_soft_accuracy,
)

__all__ = [
    "SegmentationMeter",
    "coco_box_ap",
    "coco_mask_ap",
    "confusion_matrix",
    "evaluation_subset",
    "exact_match_accuracy",
    "f1_at_k",
    "load_coco_gt",
    "mean_average_precision",
    "mean_iou",
    "mmbench_letter",
    "normalize_vqa_answer",
    "ocrbench_match",
    "per_label_average_precision",
    "pope_answer",
    "pope_metrics",
    "qks_subsets",
    "vqa_accuracy",
    "vqa_soft_accuracy",
]
