"""APro's online soft pseudo labels, built on the ``vlzoo.ops`` kernels (spec §2.2-§2.4, §3.4).

- **Global affinity propagation (GP)**, two stages on one tree (spec §2.2). Pass 1: the minimum spanning tree
  of the 4-connected grid of the (mmdet-normalised, resized) image, and
  ``y1_i = (p_i + sum_{j != i} exp(-w_ij / zeta_gl^2) p_j) / (1 + sum_{j != i} exp(-w_ij / zeta_gl^2))``,
  ``w_ij`` the largest colour cost on the tree path. Pass 2: the *same* tree re-costed from the embedding
  ``E = y1`` (``w = (y1_k - y1_l)^2`` summed over channels), propagating ``y1`` with ``zeta_gh``.
- **Local affinity propagation (LP)** (spec §2.3): ``T`` normalised iterations of a k x k Gaussian colour
  kernel ``exp(-||I_i - I_j||^2 / zeta_s^2)`` (out-of-image neighbours excluded), started from ``p * B``
  and re-masked by the box ``B`` after every step.
- GP and LP are independent: both start from the raw prediction (spec §2.4, the released code).
- **Tree filter** (TEL baseline, spec §3.3): LTF's path-product filter, low level on the image with edge
  weights ``exp(-||dI||^2 / sigma)`` then high level on a learned embedding's own tree.

Every APro pseudo label is a constant (stop-gradient): the official GP autograd function returns ``None`` for
every input and LP runs under ``no_grad`` (spec §3.4). The tree filter keeps its graph when asked
(``differentiable=True``), as TEL's released loss does.

Shape shorthand: B images, R instances, K signal channels (classes or instances), C feature channels,
H x W the prediction grid.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vlzoo import ops

__all__ = [
    "GlobalAffinityPropagation",
    "LocalAffinityPropagation",
    "TreeFilterPseudoLabels",
    "global_pseudo_labels_per_instance",
    "resize_to",
]


def resize_to(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear resize of (N, C, H, W) to ``size`` (align_corners=False, as the official heads do)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class GlobalAffinityPropagation(nn.Module):
    """Two-stage GP (spec §2.2): the image tree with ``zeta_low``, then the same tree re-costed from the
    pass-1 output with ``zeta_high``.

    Args:
        zeta_low: ``zeta_gl`` (0.01 SOLOv2; 0.03 Mask2Former, 0.02 for Mask2Former R-50 VOC).
        zeta_high: ``zeta_gh`` (0.07 SOLOv2; 0.03 Mask2Former); ``None`` runs pass 1 only.
        impl: kernel choice passed to ``vlzoo.ops`` (``"auto"``, ``"reference"``, ``"cpu"``, ``"cuda"``).
    """

    def __init__(self, zeta_low: float = 0.01, zeta_high: float | None = 0.07, impl: str = "auto"):
        super().__init__()
        if zeta_low <= 0 or (zeta_high is not None and zeta_high <= 0):
            raise ValueError(f"zeta values must be positive, got zeta_low={zeta_low}, zeta_high={zeta_high}")
        self.zeta_low, self.zeta_high, self.impl = float(zeta_low), zeta_high, impl

    @torch.no_grad()
    def forward(self, probs: Tensor, image: Tensor, tree: Tensor | None = None) -> Tensor:
        """Args:
            probs: (B, K, H, W) predictions in [0, 1] (each channel is propagated independently).
            image: (B, C, H, W) guidance image on the same grid.
            tree: optional (B, H*W - 1, 2) spanning tree of ``image`` (built here when None).

        Returns:
            (B, K, H, W) detached pseudo labels.
        """
        probs = probs.detach().float()
        image = image.detach().float()
        if self.zeta_high is None:
            return ops.global_propagate(probs, image, self.zeta_low, tree=tree, impl=self.impl)
        return ops.global_propagate_two_stage(probs, image, self.zeta_low, float(self.zeta_high), tree=tree,
                                              impl=self.impl)

    def extra_repr(self) -> str:
        return f"zeta_low={self.zeta_low}, zeta_high={self.zeta_high}"


def global_pseudo_labels_per_instance(probs: Tensor, images: Tensor, image_index: Tensor, zeta_low: float,
                                      zeta_high: float | None, impl: str = "auto") -> Tensor:
    """GP for instance masks: one tree per image, shared by that image's instances.

    The official SOLOv2 head rebuilds the same MST for every instance of an image; here it is built once per
    image and indexed. Pass 2 stays per instance (its embedding is the instance's own pass-1 output).

    Args:
        probs: (R, H, W) instance mask probabilities.
        images: (B, C, H, W) guidance images on the mask grid.
        image_index: (R,) int, the image of each instance.
        zeta_low: pass-1 ``zeta_gl``.
        zeta_high: pass-2 ``zeta_gh`` (None: pass 1 only).
        impl: ``vlzoo.ops`` kernel choice.

    Returns:
        (R, H, W) detached pseudo labels.
    """
    if probs.shape[0] == 0:
        return probs.detach().clone()
    with torch.no_grad():
        images = images.detach().float()
        trees = ops.grid_mst(images, impl=impl)
        image_index = image_index.long()
        gp = GlobalAffinityPropagation(zeta_low, zeta_high, impl=impl)
        return gp(probs[:, None], images[image_index], tree=trees[image_index])[:, 0]


class LocalAffinityPropagation(nn.Module):
    """LP (spec §2.3): ``iterations`` normalised k x k colour-kernel smoothing steps, re-masked by the box.

    Args:
        kernel_size: k (5; 3 for SOLOv2 on COCO).
        zeta: ``zeta_s`` (0.15).
        iterations: T (20).
        impl: ``vlzoo.ops`` kernel choice.
    """

    def __init__(self, kernel_size: int = 5, zeta: float = 0.15, iterations: int = 20, impl: str = "auto"):
        super().__init__()
        if kernel_size % 2 != 1 or kernel_size < 1:
            raise ValueError(f"kernel_size must be a positive odd number, got {kernel_size}")
        if zeta <= 0 or iterations < 0:
            raise ValueError(f"need zeta > 0 and iterations >= 0, got zeta={zeta}, iterations={iterations}")
        self.kernel_size, self.zeta, self.iterations, self.impl = kernel_size, float(zeta), iterations, impl

    @torch.no_grad()
    def forward(self, probs: Tensor, image: Tensor, mask: Tensor | None = None) -> Tensor:
        """Args:
            probs: (B, K, H, W) predictions.
            image: (B, C, H, W) guidance image on the same grid.
            mask: optional (B, 1 or K, H, W) box masks (the signal starts as ``p * B`` and is re-masked).

        Returns:
            (B, K, H, W) detached pseudo labels (exactly 0 outside the mask).
        """
        return ops.local_propagate(probs.detach().float(), image.detach().float(), kernel_size=self.kernel_size,
                                   zeta=self.zeta, iterations=self.iterations,
                                   mask=None if mask is None else mask.detach().float(), impl=self.impl)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, zeta={self.zeta}, iterations={self.iterations}"


class TreeFilterPseudoLabels(nn.Module):
    """TEL's soft pseudo labels (spec §4.3): the LTF filter on the image tree, then on an embedding's tree.

    Args:
        sigma_low: low-level edge weight ``exp(-||dI||^2 / sigma)`` on the image in [0, 1] (0.02 for VOC).
        sigma_high: high-level edge weight ``exp(-||de||^2 / sigma)`` (TEL uses 1: no sigma).
        differentiable: keep the autograd graph through the filter (TEL's released loss); False detaches.
        impl: ``vlzoo.ops`` kernel choice (a differentiable filter runs the PyTorch reference).
    """

    def __init__(self, sigma_low: float = 0.02, sigma_high: float = 1.0, differentiable: bool = False,
                 impl: str = "auto"):
        super().__init__()
        self.sigma_low, self.sigma_high = float(sigma_low), float(sigma_high)
        self.differentiable, self.impl = differentiable, impl

    def forward(self, probs: Tensor, image: Tensor, embedding: Tensor | None = None) -> Tensor:
        """Args:
            probs: (B, K, H, W) predictions.
            image: (B, 3, H, W) the image in [0, 1] on the same grid.
            embedding: optional (B, D, H, W) high-level embedding (its own MST is built, as TEL does).

        Returns:
            (B, K, H, W) filtered signal (detached unless ``differentiable``).
        """
        context = torch.enable_grad() if self.differentiable else torch.no_grad()
        with context:
            signal = probs if self.differentiable else probs.detach()
            image = image.detach().float()
            tree = ops.grid_mst(image, impl=self.impl)
            out = ops.tree_filter(signal, image, tree, sigma=self.sigma_low, differentiable=self.differentiable,
                                  impl=self.impl)
            if embedding is not None:
                high_tree = ops.grid_mst(embedding.detach().float(), impl=self.impl)
                feats = embedding if self.differentiable else embedding.detach()
                out = ops.tree_filter(out, feats, high_tree, sigma=self.sigma_high,
                                      differentiable=self.differentiable, impl=self.impl)
        return out if self.differentiable else out.detach()
