"""APro's losses and the pairwise baselines it is compared with (spec §4).

Box supervision (APro's released box code, ``box_projection_loss.py`` and the two heads):

- box projection Dice (spec §4.2): ``L_proj = Dice(max_rows p, max_rows B) + Dice(max_cols p, max_cols B)``
  with ``Dice(x, t) = 1 - 2 sum(x t) / (sum(x^2) + sum(t^2) + 1e-5)``;
- the matching cost of the Mask2Former head (``BoxMatchingCost``): the same two projection Dice terms for
  every (query, box) pair, with ``eps = 1`` added to the numerator and the denominator;
- the soft-label L1 inside boxes (spec §4.1): ``L = sum |y - p| B / max(sum B, 1)`` per instance (SOLOv2)
  or over all matched queries together (Mask2Former), ``y`` a stop-gradient pseudo label (GP or LP), so
  ``dL/dp = -sign(y - p) B / sum B``;
- the BoxInst pairwise term (AdelaiDet defaults): on the 8 neighbours of a 3x3 window with dilation 2,
  ``-log P(same label)`` with ``P = p_i p_j + (1 - p_i)(1 - p_j)``, on edges inside the box whose LAB
  colour similarity ``exp(-||lab_i - lab_j|| / 2)`` is at least 0.3, averaged over those edges.

Sparse (point / scribble) supervision (spec §4.3, TEL's released loss):

- partial cross-entropy: the mean CE over labelled pixels (255 = unlabelled, ignored);
- the soft-label L1 on unlabelled pixels, TEL's normaliser: ``sum_{i in U} sum_k |y_ik - p_ik| / |U|``.
  APro's pseudo labels are stop-gradient; TEL's are not (``detach_target=False`` keeps the graph).

Shape shorthand: R instances, Q queries, G ground-truth boxes, B images, K classes, H x W a grid,
E = kernel_size^2 - 1 neighbours.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from apro_affinity.box_masks import box_projections

__all__ = [
    "dice_loss",
    "box_projection_loss",
    "box_matching_cost",
    "box_soft_label_l1",
    "partial_cross_entropy",
    "unlabeled_soft_label_l1",
    "rgb_to_lab",
    "neighbour_unfold",
    "lab_color_similarity",
    "boxinst_pairwise_loss",
]


def dice_loss(x: Tensor, target: Tensor, eps: float = 1e-5) -> Tensor:
    """Squared-denominator Dice loss per row: ``1 - 2 sum(x t) / (sum(x^2) + sum(t^2) + eps)``.

    Args:
        x: (R, ...) predictions.
        target: (R, ...) targets, same shape.
        eps: added to the denominator only (the official ``dice_coefficient``).

    Returns:
        (R,) losses.
    """
    x = x.reshape(x.shape[0], -1)
    target = target.reshape(target.shape[0], -1).to(x.dtype)
    intersection = (x * target).sum(dim=1)
    union = (x * x).sum(dim=1) + (target * target).sum(dim=1) + eps
    return 1.0 - 2.0 * intersection / union


def box_projection_loss(probs: Tensor, box_masks: Tensor, eps: float = 1e-5) -> Tensor:
    """Box projection loss of BoxInst / APro (spec §4.2), one value per instance.

    Args:
        probs: (R, H, W) mask probabilities (sigmoid of the logits).
        box_masks: (R, H, W) box masks (binary, or soft after a bilinear resize).
        eps: Dice denominator epsilon.

    Returns:
        (R,) ``Dice(proj_x p, proj_x B) + Dice(proj_y p, proj_y B)``; multiply by the loss weight
        (3.0 for SOLOv2, 5.0 for Mask2Former) and average over instances.
    """
    if probs.shape != box_masks.shape:
        raise ValueError(f"probs {tuple(probs.shape)} and box_masks {tuple(box_masks.shape)} differ in shape")
    px, py = box_projections(probs)
    bx, by = box_projections(box_masks.to(probs.dtype))
    return dice_loss(px, bx, eps) + dice_loss(py, by, eps)


def _pairwise_dice_cost(x: Tensor, t: Tensor, eps: float) -> Tensor:
    """(Q, L) x (G, L) -> (Q, G): ``1 - (2 <x, t> + eps) / (|x|^2 + |t|^2 + eps)``."""
    numerator = 2.0 * x @ t.transpose(0, 1)
    denominator = (x * x).sum(1)[:, None] + (t * t).sum(1)[None, :]
    return 1.0 - (numerator + eps) / (denominator + eps)


def box_matching_cost(probs: Tensor, box_masks: Tensor, eps: float = 1.0) -> Tensor:
    """The Hungarian matching cost of APro's Mask2Former head (official ``BoxMatchingCost``), unweighted.

    Args:
        probs: (Q, H, W) query mask probabilities.
        box_masks: (G, H, W) box masks on the same grid.
        eps: added to numerator and denominator (1.0 in the released configs).

    Returns:
        (Q, G) cost: projection Dice onto x plus projection Dice onto y.
    """
    if probs.shape[-2:] != box_masks.shape[-2:]:
        raise ValueError(f"probs grid {tuple(probs.shape[-2:])} != box grid {tuple(box_masks.shape[-2:])}")
    px, py = box_projections(probs)
    bx, by = box_projections(box_masks.to(probs.dtype))
    return _pairwise_dice_cost(px, bx, eps) + _pairwise_dice_cost(py, by, eps)


def box_soft_label_l1(probs: Tensor, pseudo: Tensor, box_masks: Tensor, normalize: str = "instance") -> Tensor:
    """L1 between predictions and stop-gradient pseudo labels inside the boxes (spec §4.1).

    Args:
        probs: (R, H, W) mask probabilities.
        pseudo: (R, H, W) pseudo labels (GP or LP output); detached here, whatever the caller passed.
        box_masks: (R, H, W) box masks B.
        normalize: ``"instance"``: ``sum |y - p| B / max(sum B, 1)`` per instance (SOLOv2 head, then averaged by
            the caller); ``"total"``: one scalar, the sum over all instances divided by the total box area
            (Mask2Former head).

    Returns:
        (R,) for ``"instance"``, a scalar for ``"total"``.
    """
    if not (probs.shape == pseudo.shape == box_masks.shape):
        raise ValueError(f"shapes differ: probs {tuple(probs.shape)}, pseudo {tuple(pseudo.shape)}, "
                         f"box_masks {tuple(box_masks.shape)}")
    box_masks = box_masks.to(probs.dtype)
    term = (pseudo.detach() - probs).abs() * box_masks
    if normalize == "instance":
        return term.flatten(1).sum(1) / box_masks.flatten(1).sum(1).clamp(min=1.0)
    if normalize == "total":
        return term.sum() / box_masks.sum().clamp(min=1.0)
    raise ValueError(f"normalize must be 'instance' or 'total', got {normalize!r}")


def partial_cross_entropy(logits: Tensor, labels: Tensor, ignore_index: int = 255) -> Tensor:
    """Cross-entropy averaged over labelled pixels only (points, scribbles); 0 when nothing is labelled.

    Args:
        logits: (B, K, H, W) class logits at the label resolution.
        labels: (B, H, W) int class indices, ``ignore_index`` for unlabelled pixels.
        ignore_index: the "no label" value.

    Returns:
        Scalar loss (keeps the graph even when every pixel is unlabelled).
    """
    if logits.shape[0] != labels.shape[0] or logits.shape[2:] != labels.shape[1:]:
        raise ValueError(f"logits {tuple(logits.shape)} do not match labels {tuple(labels.shape)}")
    labelled = labels != ignore_index
    if not bool(labelled.any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits, labels.long(), ignore_index=ignore_index, reduction="sum") / labelled.sum()


def unlabeled_soft_label_l1(probs: Tensor, pseudo: Tensor, unlabeled: Tensor, detach_target: bool = True) -> Tensor:
    """TEL's soft-label energy on unlabelled pixels: ``sum_{i in U} sum_k |y_ik - p_ik| / max(|U|, 1)``.

    Args:
        probs: (B, K, H, W) softmax probabilities.
        pseudo: (B, K, H, W) soft pseudo labels.
        unlabeled: (B, H, W) bool, the pixels U the term covers (unlabelled and inside the image).
        detach_target: stop the gradient through ``pseudo`` (APro); False keeps it (TEL's released loss).

    Returns:
        Scalar loss.
    """
    if probs.shape != pseudo.shape or probs.shape[:1] + probs.shape[2:] != unlabeled.shape:
        raise ValueError(f"shapes differ: probs {tuple(probs.shape)}, pseudo {tuple(pseudo.shape)}, "
                         f"unlabeled {tuple(unlabeled.shape)}")
    target = pseudo.detach() if detach_target else pseudo
    weight = unlabeled.to(probs.dtype)[:, None]
    return ((target - probs).abs() * weight).sum() / weight.sum().clamp(min=1.0)


def rgb_to_lab(rgb: Tensor) -> Tensor:
    """sRGB in [0, 255] to CIE L*a*b* (D65 white), the conversion of ``skimage.color.rgb2lab``.

    Args:
        rgb: (B, 3, H, W) sRGB values in [0, 255].

    Returns:
        (B, 3, H, W) L in [0, 100], a and b roughly in [-128, 127].
    """
    c = (rgb.to(torch.float64) / 255.0).clamp(0.0, 1.0)
    linear = torch.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)
    to_xyz = linear.new_tensor([[0.412453, 0.357580, 0.180423],
                                [0.212671, 0.715160, 0.072169],
                                [0.019334, 0.119193, 0.950227]])
    xyz = torch.einsum("ij,bjhw->bihw", to_xyz, linear)
    white = linear.new_tensor([0.95047, 1.0, 1.08883]).view(1, 3, 1, 1)
    t = xyz / white
    f = torch.where(t > 0.008856, t.clamp(min=1e-12) ** (1.0 / 3.0), 7.787 * t + 16.0 / 116.0)
    lightness = torch.where(t[:, 1:2] > 0.008856, 116.0 * f[:, 1:2] - 16.0, 903.3 * t[:, 1:2])
    a = 500.0 * (f[:, 0:1] - f[:, 1:2])
    b = 200.0 * (f[:, 1:2] - f[:, 2:3])
    return torch.cat([lightness, a, b], dim=1).to(rgb.dtype if rgb.is_floating_point() else torch.float32)


def neighbour_unfold(x: Tensor, kernel_size: int = 3, dilation: int = 2) -> Tensor:
    """The ``kernel_size^2 - 1`` neighbours of every pixel (centre excluded), zero outside the grid.

    Args:
        x: (B, C, H, W).
        kernel_size: odd window size.
        dilation: spacing between window taps.

    Returns:
        (B, C, E, H, W), E = kernel_size^2 - 1, neighbours in row-major window order without the centre.
    """
    if kernel_size % 2 != 1:
        raise ValueError(f"kernel_size must be odd, got {kernel_size}")
    b, c, h, w = x.shape
    pad = dilation * (kernel_size // 2)
    cols = F.unfold(x, kernel_size=kernel_size, dilation=dilation, padding=pad).view(b, c, kernel_size**2, h, w)
    centre = kernel_size**2 // 2
    return torch.cat([cols[:, :, :centre], cols[:, :, centre + 1:]], dim=2)


def lab_color_similarity(images: Tensor, kernel_size: int = 3, dilation: int = 2) -> Tensor:
    """BoxInst's colour similarity ``exp(-||lab_i - lab_j|| / 2)`` to each neighbour; 0 for off-image ones.

    Args:
        images: (B, 3, H, W) sRGB in [0, 255] at the mask resolution (BoxInst average-pools the image to the
            mask stride first).
        kernel_size: window size (3).
        dilation: window dilation (2).

    Returns:
        (B, E, H, W) similarities in [0, 1].
    """
    lab = rgb_to_lab(images.float())
    neighbours = neighbour_unfold(lab, kernel_size, dilation)
    inside = neighbour_unfold(torch.ones_like(lab[:, :1]), kernel_size, dilation)[:, 0]
    distance = (lab[:, :, None] - neighbours).norm(dim=1)
    return torch.exp(-distance * 0.5) * inside


def boxinst_pairwise_loss(mask_logits: Tensor, similarity: Tensor, box_masks: Tensor, threshold: float = 0.3,
                          kernel_size: int = 3, dilation: int = 2) -> Tensor:
    """BoxInst's pairwise term: ``-log P(y_i = y_j)`` on similar-colour edges inside the box.

    Args:
        mask_logits: (R, H, W) mask logits (the term is computed in log space from them).
        similarity: (R, E, H, W) colour similarity of each instance's image (:func:`lab_color_similarity`).
        box_masks: (R, H, W) box masks at the same resolution.
        threshold: edges with similarity below it are ignored (tau = 0.3).
        kernel_size: window size used for ``similarity``.
        dilation: window dilation used for ``similarity``.

    Returns:
        Scalar: the weighted mean over edges (0 with a graph when no edge qualifies). BoxInst multiplies it
        by a warm-up factor ``min(iter / 10000, 1)``.
    """
    logits = mask_logits[:, None]
    log_fg = F.logsigmoid(logits)
    log_bg = F.logsigmoid(-logits)
    log_fg_nb = neighbour_unfold(log_fg, kernel_size, dilation)[:, 0]  # (R, E, H, W)
    log_bg_nb = neighbour_unfold(log_bg, kernel_size, dilation)[:, 0]
    log_same = torch.logaddexp(log_fg + log_fg_nb, log_bg + log_bg_nb)  # log(p_i p_j + (1-p_i)(1-p_j))
    inside = neighbour_unfold(torch.ones_like(logits[:1]), kernel_size, dilation)[:, 0]  # off-image edges: 0
    weights = (similarity >= threshold).to(mask_logits.dtype) * box_masks[:, None].to(mask_logits.dtype) * inside
    return (-log_same * weights).sum() / weights.sum().clamp(min=1.0)
