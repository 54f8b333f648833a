"""``BoxProjectionLoss`` for mmdet 3.x: the box projection Dice of BoxInst / APro (spec §4.2).

``L_proj = Dice(max_rows p, max_rows B) + Dice(max_cols p, max_cols B)`` per instance, times ``loss_weight``
(3.0 in the SOLOv2 configs, 5.0 in the Mask2Former ones). Inputs are probabilities (the heads apply the
sigmoid), shapes (R, H, W) or (R, 1, H, W).
"""

from __future__ import annotations

from mmdet.registry import MODELS
from torch import Tensor, nn

from apro_affinity.losses import box_projection_loss

__all__ = ["BoxProjectionLoss"]


@MODELS.register_module()
class BoxProjectionLoss(nn.Module):
    """Box projection Dice loss.

    Args:
        loss_weight: multiplier of the loss.
        eps: Dice denominator epsilon (1e-5 in the official code).
        reduction: ``"mean"`` over instances (what both APro heads do) or ``"none"`` (per instance).
    """

    def __init__(self, loss_weight: float = 1.0, eps: float = 1e-5, reduction: str = "mean"):
        super().__init__()
        if reduction not in ("mean", "none"):
            raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
        self.loss_weight, self.eps, self.reduction = loss_weight, eps, reduction

    def forward(self, mask_probs: Tensor, box_masks: Tensor, reduction_override: str | None = None) -> Tensor:
        """Args:
            mask_probs: (R, H, W) or (R, 1, H, W) mask probabilities.
            box_masks: box masks of the same shape.
            reduction_override: ``"mean"`` or ``"none"`` instead of the configured reduction.

        Returns:
            Scalar (``"mean"``; 0 with a graph when R = 0) or (R,) (``"none"``).
        """
        if mask_probs.dim() == 4:
            mask_probs, box_masks = mask_probs.flatten(0, 1), box_masks.flatten(0, 1)
        per_instance = box_projection_loss(mask_probs, box_masks, self.eps) * self.loss_weight
        reduction = reduction_override or self.reduction
        if reduction == "none":
            return per_instance
        return per_instance.mean() if per_instance.numel() else mask_probs.sum() * 0.0
