"""Pairwise losses on unlabelled pixels for mmseg 1.x decode heads (spec §4.3).

- ``AProAffinityLoss``: APro on sparse labels: the softmax map is propagated per class channel by the
  two-stage GP (image tree, then the same tree re-costed from the pass-1 output) and by LP (no box), and
  each pseudo label is pulled to with TEL's L1 over the unlabelled pixels; stop-gradient pseudo labels.
- ``TreeEnergyLoss``: TEL's released loss, the cascade of the LTF tree filter on the image tree (image in
  [0, 1], ``exp(-||dI||^2 / sigma)``) and, when ``in_channels`` is given, on the tree of a learned embedding
  (1x1 conv + BN + ReLU on the decoder feature, trained only through this loss); not stop-gradient.

Both are computed at the logit resolution: the image is bilinearly resized to it and the unlabelled mask
nearest-resized, as TEL does. APro's semantic weights and zetas are unknown (spec §4.3 [?]): the defaults
take TEL's weight (0.4 for each term) and APro's released SOLOv2 zetas; see the README.

Call signature (from the heads of ``apro_affinity.mmseg.heads``): ``loss(seg_logits, images, unlabeled,
features)`` with seg_logits (B, K, h, w), images (B, 3, H, W) normalised, unlabeled (B, H, W) bool and the
decoder feature (B, C, h', w') or None; returns a dict of named losses.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor, nn

from apro_affinity.apro_terms import apro_semantic_terms, tel_semantic_term

__all__ = ["AProAffinityLoss", "TreeEnergyLoss", "IMAGENET_MEAN", "IMAGENET_STD"]

IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


def _to_grid(seg_logits: Tensor, images: Tensor, unlabeled: Tensor) -> tuple[Tensor, Tensor]:
    size = tuple(seg_logits.shape[-2:])
    images = F.interpolate(images.float(), size=size, mode="bilinear", align_corners=False)
    unlabeled = F.interpolate(unlabeled[:, None].float(), size=size, mode="nearest")[:, 0] > 0.5
    return images, unlabeled


@MODELS.register_module()
class AProAffinityLoss(nn.Module):
    """APro's GP and LP soft-label terms on unlabelled pixels.

    Args:
        loss_weight_global: weight of the GP term (0.4, TEL's lambda; APro's is unknown).
        loss_weight_local: weight of the LP term (0.4).
        zeta_gl: GP pass-1 zeta on the normalised image (0.01).
        zeta_gh: GP pass-2 zeta on the pass-1 output (0.07; None = one pass).
        kernel_size: LP window (5).
        zeta_s: LP zeta (0.15).
        iterations: LP iterations (20).
        apply_to: ``"unlabeled"`` (sparse labels) or ``"all"`` pixels inside the image (CLIP-guided: the teacher
            labels every pixel, so the term regularises its noisy labels everywhere).
        impl: ``vlzoo.ops`` kernel choice.
    """

    def __init__(self, loss_weight_global: float = 0.4, loss_weight_local: float = 0.4, zeta_gl: float = 0.01,
                 zeta_gh: float | None = 0.07, kernel_size: int = 5, zeta_s: float = 0.15, iterations: int = 20,
                 apply_to: str = "unlabeled", impl: str = "auto"):
        super().__init__()
        if apply_to not in ("unlabeled", "all"):
            raise ValueError(f"apply_to must be 'unlabeled' or 'all', got {apply_to!r}")
        self.apply_to = apply_to
        self.loss_weight_global, self.loss_weight_local = loss_weight_global, loss_weight_local
        self.zeta_gl, self.zeta_gh, self.kernel_size, self.zeta_s = zeta_gl, zeta_gh, kernel_size, zeta_s
        self.iterations, self.impl = iterations, impl

    def forward(self, seg_logits: Tensor, images: Tensor, unlabeled: Tensor, features: Tensor | None = None
                ) -> dict[str, Tensor]:
        images, unlabeled = _to_grid(seg_logits, images, unlabeled)
        terms = apro_semantic_terms(seg_logits.float().softmax(dim=1), images, unlabeled, zeta_gl=self.zeta_gl,
                                    zeta_gh=self.zeta_gh, kernel_size=self.kernel_size, zeta_s=self.zeta_s,
                                    iterations=self.iterations, use_global=self.loss_weight_global > 0,
                                    use_local=self.loss_weight_local > 0, impl=self.impl)
        out = {}
        if "global" in terms:
            out["loss_apro_global"] = self.loss_weight_global * terms["global"]
        if "local" in terms:
            out["loss_apro_local"] = self.loss_weight_local * terms["local"]
        return out


@MODELS.register_module()
class TreeEnergyLoss(nn.Module):
    """TEL (Liang et al., CVPR 2022) as released: weight 0.4, sigma 0.02 (VOC).

    Args:
        loss_weight: lambda (0.4).
        sigma: low-level sigma on the [0, 1] image (0.02 VOC, 0.002 Cityscapes).
        in_channels: decoder-feature channels for the high-level embedding; None = low level only.
        embed_channels: embedding width (256 in TEL).
        mean: the normaliser's mean (to recover the [0, 1] image TEL builds its tree on).
        std: the normaliser's std.
        differentiable: keep the graph through the filter (TEL); False detaches the pseudo label.
        impl: ``vlzoo.ops`` kernel choice.
    """

    def __init__(self, loss_weight: float = 0.4, sigma: float = 0.02, in_channels: int | None = None,
                 embed_channels: int = 256, mean: tuple = IMAGENET_MEAN, std: tuple = IMAGENET_STD,
                 differentiable: bool = True, impl: str = "auto"):
        super().__init__()
        self.loss_weight, self.sigma, self.differentiable, self.impl = loss_weight, sigma, differentiable, impl
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.embed = None
        if in_channels is not None:
            self.embed = nn.Sequential(nn.Conv2d(in_channels, embed_channels, 1, bias=False),
                                       nn.BatchNorm2d(embed_channels), nn.ReLU(inplace=True))

    def forward(self, seg_logits: Tensor, images: Tensor, unlabeled: Tensor, features: Tensor | None = None
                ) -> dict[str, Tensor]:
        images01 = ((images.float() * self.std + self.mean) / 255.0).clamp(0.0, 1.0)
        images01, unlabeled = _to_grid(seg_logits, images01, unlabeled)
        embedding = None
        if self.embed is not None:
            if features is None:
                raise ValueError("TreeEnergyLoss with in_channels needs the decoder feature (use an AProXxxHead)")
            embedding = F.interpolate(self.embed(features), size=tuple(seg_logits.shape[-2:]), mode="bilinear",
                                      align_corners=False)
        term = tel_semantic_term(seg_logits.float().softmax(dim=1), images01, unlabeled, sigma=self.sigma,
                                 embedding=embedding, differentiable=self.differentiable, impl=self.impl)
        return {"loss_tel": self.loss_weight * term}
