"""``BoxMatchingCost`` for mmdet 3.x's Hungarian assigners (APro's Mask2Former head, spec §4.2).

The cost of assigning query q to box g is the projection Dice of the query's mask against the box mask,
onto both axes, with ``eps`` added to numerator and denominator (1.0 in the released configs, weight 5.0).
The Mask2Former head of this plugin passes full masks (the query logits bilinearly upsampled to the box-mask
size), not the point samples mmdet's own Mask2Former uses for its mask costs.
"""

from __future__ import annotations

from mmdet.models.task_modules.assigners.match_cost import BaseMatchCost
from mmdet.registry import TASK_UTILS
from mmengine.structures import InstanceData
from torch import Tensor

from apro_affinity.losses import box_matching_cost

__all__ = ["BoxMatchingCost"]


@TASK_UTILS.register_module()
class BoxMatchingCost(BaseMatchCost):
    """Projection-Dice matching cost between predicted masks and box masks.

    Args:
        weight: cost weight.
        pred_act: apply a sigmoid to the predicted masks (they are logits in the Mask2Former head).
        eps: smoothing added to the Dice numerator and denominator.
    """

    def __init__(self, weight: float = 1.0, pred_act: bool = False, eps: float = 1e-3):
        super().__init__(weight=weight)
        self.pred_act, self.eps = pred_act, eps

    def __call__(self, pred_instances: InstanceData, gt_instances: InstanceData, img_meta: dict | None = None,
                 **kwargs) -> Tensor:
        """Args:
            pred_instances: with ``masks`` (Q, H, W) logits or probabilities.
            gt_instances: with ``masks`` (G, H, W) box masks on the same grid.
            img_meta: unused.

        Returns:
            (Q, G) weighted cost.
        """
        pred = pred_instances.masks
        if self.pred_act:
            pred = pred.sigmoid()
        gt = gt_instances.masks
        gt = gt.to_tensor(dtype=pred.dtype, device=pred.device) if hasattr(gt, "to_tensor") else gt.to(pred.dtype)
        return box_matching_cost(pred, gt, self.eps) * self.weight
