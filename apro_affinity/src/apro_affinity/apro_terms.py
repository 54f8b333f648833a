"""The APro and TEL loss terms as the heads use them: pseudo labels (``pseudo_labels``) + L1 (``losses``).

One place for the recipe, shared by the mmdet heads, the mmseg heads and the miniature trainer:

- :func:`apro_box_terms` (spec §4.1). SOLOv2 head: GP and LP on the mask grid, per-instance normalisation,
  mean over instances (``normalize="instance"``). Mask2Former head: LP on the mask grid; GP on a
  ``global_size`` grid (96 x 96): image and sigmoid predictions are bilinearly downscaled, and the GP output
  and the downscaled prediction are both upsampled back before the L1, so the gradient runs through the
  resampling; both terms are normalised by the total box area (``normalize="total"``).
- :func:`apro_semantic_terms` (spec §4.3, structure from TEL): GP per class channel (image tree, then the same
  tree re-costed from the pass-1 output) and LP without a box, each with TEL's unlabelled-pixel L1.
- :func:`tel_box_term` / :func:`tel_semantic_term`: the Tree Energy Loss baseline, the LTF filter on the image
  tree (and on an embedding's tree when one is given) in place of GP/LP, with the same L1.

The weights (2.0 / 1.0 for SOLOv2, 1.0 / 1.0 for Mask2Former, lambda for the semantic tasks) are applied by
the callers. Shape shorthand: R instances, B images, K classes, h x w the prediction grid.
"""

from __future__ import annotations

from torch import Tensor

from apro_affinity.losses import box_soft_label_l1, unlabeled_soft_label_l1
from apro_affinity.pseudo_labels import (
    GlobalAffinityPropagation,
    LocalAffinityPropagation,
    TreeFilterPseudoLabels,
    global_pseudo_labels_per_instance,
    resize_to,
)

__all__ = ["apro_box_terms", "apro_semantic_terms", "tel_box_term", "tel_semantic_term"]


def _reduce(term: Tensor, normalize: str) -> Tensor:
    return term.mean() if normalize == "instance" else term


def apro_box_terms(probs: Tensor, box_masks: Tensor, images: Tensor, image_index: Tensor, *,
                   zeta_gl: float, zeta_gh: float | None, kernel_size: int, zeta_s: float, iterations: int = 20,
                   normalize: str = "instance", global_size: tuple[int, int] | None = None,
                   use_global: bool = True, use_local: bool = True, impl: str = "auto") -> dict[str, Tensor]:
    """APro's global and local soft-label terms for instance masks under box supervision.

    Args:
        probs: (R, h, w) mask probabilities (sigmoid of the logits), with graph.
        box_masks: (R, h, w) box masks on the same grid.
        images: (B, 3, h, w) mmdet-normalised images resized to the grid.
        image_index: (R,) the image of each instance.
        zeta_gl: GP pass-1 zeta.
        zeta_gh: GP pass-2 zeta (None: pass 1 only).
        kernel_size: LP window k.
        zeta_s: LP zeta.
        iterations: LP iterations T.
        normalize: ``"instance"`` (SOLOv2: per-instance box area, then the mean) or ``"total"``
            (Mask2Former: the total box area).
        global_size: run GP on this grid (Mask2Former: (96, 96)); None runs it on the mask grid.
        use_global: compute the GP term.
        use_local: compute the LP term.
        impl: ``vlzoo.ops`` kernel choice.

    Returns:
        ``{"global": scalar, "local": scalar}`` (only the terms asked for), unweighted.
    """
    out: dict[str, Tensor] = {}
    if probs.shape[0] == 0:
        zero = probs.sum() * 0.0
        return {name: zero for name, on in (("global", use_global), ("local", use_local)) if on}
    grid = tuple(probs.shape[-2:])
    if use_local:
        lp = LocalAffinityPropagation(kernel_size, zeta_s, iterations, impl=impl)
        local = lp(probs[:, None], images[image_index.long()], box_masks[:, None])[:, 0]
        out["local"] = _reduce(box_soft_label_l1(probs, local, box_masks, normalize), normalize)
    if use_global:
        if global_size is None or tuple(global_size) == grid:
            pseudo = global_pseudo_labels_per_instance(probs, images, image_index, zeta_gl, zeta_gh, impl=impl)
            compared = probs
        else:
            small_probs = resize_to(probs[:, None], tuple(global_size))
            small_images = resize_to(images, tuple(global_size))
            small_pseudo = global_pseudo_labels_per_instance(small_probs[:, 0], small_images, image_index,
                                                             zeta_gl, zeta_gh, impl=impl)
            pseudo = resize_to(small_pseudo[:, None], grid)[:, 0]
            compared = resize_to(small_probs, grid)[:, 0]  # the gradient flows through both resamplings
        out["global"] = _reduce(box_soft_label_l1(compared, pseudo, box_masks, normalize), normalize)
    return out


def apro_semantic_terms(probs: Tensor, images: Tensor, unlabeled: Tensor, *, zeta_gl: float,
                        zeta_gh: float | None, kernel_size: int, zeta_s: float, iterations: int = 20,
                        use_global: bool = True, use_local: bool = True, impl: str = "auto") -> dict[str, Tensor]:
    """APro's terms for point/scribble supervision: the L1 to GP/LP pseudo labels on unlabelled pixels.

    Args:
        probs: (B, K, h, w) softmax probabilities, with graph.
        images: (B, 3, h, w) normalised images on the grid.
        unlabeled: (B, h, w) bool: unlabelled pixels inside the image (padding excluded).
        zeta_gl, zeta_gh: GP zetas of the two passes (``zeta_gh`` None: one pass).
        kernel_size, zeta_s, iterations: LP settings.
        use_global, use_local: which terms to compute.
        impl: ``vlzoo.ops`` kernel choice.

    Returns:
        ``{"global": scalar, "local": scalar}`` (those asked for), unweighted.
    """
    out: dict[str, Tensor] = {}
    if use_global:
        pseudo = GlobalAffinityPropagation(zeta_gl, zeta_gh, impl=impl)(probs, images)
        out["global"] = unlabeled_soft_label_l1(probs, pseudo, unlabeled)
    if use_local:
        pseudo = LocalAffinityPropagation(kernel_size, zeta_s, iterations, impl=impl)(probs, images)
        out["local"] = unlabeled_soft_label_l1(probs, pseudo, unlabeled)
    return out


def tel_box_term(probs: Tensor, box_masks: Tensor, images01: Tensor, image_index: Tensor, *, sigma: float = 0.02,
                 embedding: Tensor | None = None, differentiable: bool = False, normalize: str = "instance",
                 impl: str = "auto") -> Tensor:
    """TEL as a box-supervised pairwise term: the L1 to the tree-filtered prediction inside each box.

    Args:
        probs: (R, h, w) mask probabilities.
        box_masks: (R, h, w) box masks.
        images01: (B, 3, h, w) images scaled to [0, 1] (TEL's low-level features, no mean/std).
        image_index: (R,) the image of each instance.
        sigma: low-level sigma (0.02 VOC).
        embedding: optional (B, D, h, w) high-level embedding, filtered on its own tree after the image tree.
        differentiable: keep the graph through the filter (TEL); False detaches.
        normalize: ``"instance"`` or ``"total"``, as in :func:`apro_box_terms`.
        impl: ``vlzoo.ops`` kernel choice.

    Returns:
        Scalar, unweighted.
    """
    if probs.shape[0] == 0:
        return probs.sum() * 0.0
    index = image_index.long()
    tel = TreeFilterPseudoLabels(sigma_low=sigma, differentiable=differentiable, impl=impl)
    pseudo = tel(probs[:, None], images01[index], None if embedding is None else embedding[index])[:, 0]
    if differentiable:
        box = box_masks.to(probs.dtype)
        term = (pseudo - probs).abs() * box
        per = term.flatten(1).sum(1) / box.flatten(1).sum(1).clamp(min=1.0)
        return per.mean() if normalize == "instance" else term.sum() / box.sum().clamp(min=1.0)
    return _reduce(box_soft_label_l1(probs, pseudo, box_masks, normalize), normalize)


def tel_semantic_term(probs: Tensor, images01: Tensor, unlabeled: Tensor, *, sigma: float = 0.02,
                      embedding: Tensor | None = None, differentiable: bool = False, impl: str = "auto") -> Tensor:
    """TEL's released loss (before its weight 0.4): L1 on unlabelled pixels to the cascaded tree filter.

    Args:
        probs: (B, K, h, w) softmax probabilities.
        images01: (B, 3, h, w) images in [0, 1].
        unlabeled: (B, h, w) bool unlabelled pixels.
        sigma: low-level sigma (0.02 VOC).
        embedding: optional (B, D, h, w) high-level embedding (TEL: a 1x1 conv + BN + ReLU on the decoder).
        differentiable: keep the graph (TEL's released loss is not stop-gradient).
        impl: ``vlzoo.ops`` kernel choice.

    Returns:
        Scalar, unweighted.
    """
    pseudo = TreeFilterPseudoLabels(sigma_low=sigma, differentiable=differentiable, impl=impl)(probs, images01,
                                                                                                embedding)
    return unlabeled_soft_label_l1(probs, pseudo, unlabeled, detach_target=not differentiable)
