"""APro: label-efficient segmentation via affinity propagation (Li, Yuan et al., NeurIPS 2023; arXiv 2310.10533).

Public API (importing this package pulls in neither mmdet nor mmseg):

- losses (:mod:`apro_affinity.losses`): box projection Dice, the Mask2Former box matching cost, the soft-label
  L1 inside boxes, partial cross-entropy, TEL's unlabelled-pixel L1, BoxInst's pairwise term;
- box masks (:mod:`apro_affinity.box_masks`): the official ``GenerateBoxMask`` rule;
- pseudo labels (:mod:`apro_affinity.pseudo_labels`): two-stage global (GP), local (LP) and TEL's tree-filter
  pseudo labels on the ``vlzoo.ops`` kernels, stop-gradient;
- the heads' recipes (:mod:`apro_affinity.apro_terms`);
- MaskCLIP+ teacher labels (:mod:`apro_affinity.maskclip`).

Plugins: ``apro_affinity.mmdet`` (SOLOv2 / Mask2Former + APro for mmdet 3.x) and ``apro_affinity.mmseg``
(sparse-label and CLIP-guided semantic segmentation for mmseg 1.x) register their modules in mmdet's / mmseg's
registries on import. The miniature reproduction: ``config``, ``data``, ``modeling``, ``engine``, ``train``,
``evaluate``, ``reproduce``, ``demo``, ``report``. See ``apro_affinity/README.md``.
"""

from apro_affinity.apro_terms import apro_box_terms, apro_semantic_terms, tel_box_term, tel_semantic_term
from apro_affinity.box_masks import box_projections, boxes_to_masks, resize_box_masks
from apro_affinity.losses import (
    box_matching_cost,
    box_projection_loss,
    box_soft_label_l1,
    boxinst_pairwise_loss,
    dice_loss,
    lab_color_similarity,
    partial_cross_entropy,
    unlabeled_soft_label_l1,
)
from apro_affinity.pseudo_labels import (
    GlobalAffinityPropagation,
    LocalAffinityPropagation,
    TreeFilterPseudoLabels,
    global_pseudo_labels_per_instance,
)

__version__ = "0.1.0"

__all__ = [
    "GlobalAffinityPropagation",
    "LocalAffinityPropagation",
    "TreeFilterPseudoLabels",
    "apro_box_terms",
    "apro_semantic_terms",
    "box_matching_cost",
    "box_projection_loss",
    "box_projections",
    "box_soft_label_l1",
    "boxes_to_masks",
    "boxinst_pairwise_loss",
    "dice_loss",
    "global_pseudo_labels_per_instance",
    "lab_color_similarity",
    "partial_cross_entropy",
    "resize_box_masks",
    "tel_box_term",
    "tel_semantic_term",
    "unlabeled_soft_label_l1",
]
