"""SOLOv2 trained with APro under box supervision (spec §4.1-§4.2, §5.1): ``BoxSOLOv2`` + ``BoxSOLOv2Head``.

The head is mmdet 3.x's ``SOLOV2Head`` with its Dice mask loss replaced by APro's box-supervised losses on
every positive grid cell's mask (R of them, over all levels and images):

- ``loss_mask``: the box projection Dice (``BoxProjectionLoss``, weight 3.0), mean over the R masks;
- ``loss_global``: ``2.0 * mean_r sum |y^g - p| B / max(sum B, 1)`` with the two-stage GP pseudo label
  (``zeta_gl`` then ``zeta_gh``) on the mask-feature grid;
- ``loss_local``: ``mean_r sum |y^l - p| B / max(sum B, 1)`` with the LP pseudo label (k x k, ``zeta_s``, T
  iterations) on the same grid;
- ``loss_cls``: the unchanged Focal loss of SOLOv2.

Targets come from SOLOv2's own assignment run on the box masks of ``GenerateBoxMask`` (the centre of mass of
a box mask is the box centre). The detector ``BoxSOLOv2`` hands the normalised batch images to the head,
which resizes them bilinearly to the mask grid (stride 4) as the GP/LP guidance.

Deviation: the official fork uses its own SOLOv2 head (mmdet 2.x "SOLOv2" with masks upsampled x2 per
level); mmdet 3.x's SOLOV2Head predicts every level's masks on the shared stride-4 mask feature map.

Shape shorthand: B images, R positive masks, h x w the mask grid.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from mmdet.models.dense_heads import SOLOV2Head
from mmdet.models.detectors import SOLOv2
from mmdet.models.utils import multi_apply
from mmdet.registry import MODELS
from mmdet.utils import InstanceList
from torch import Tensor

from apro_affinity.apro_terms import apro_box_terms

__all__ = ["BoxSOLOv2", "BoxSOLOv2Head"]


@MODELS.register_module()
class BoxSOLOv2Head(SOLOV2Head):
    """SOLOv2 head with APro's box-supervised mask losses.

    Args:
        zeta_gl: GP pass-1 zeta (0.01).
        zeta_gh: GP pass-2 zeta (0.07).
        kernel_size: LP window (5 on VOC, 3 on COCO).
        zeta_s: LP zeta (0.15).
        lp_iterations: LP iterations (20).
        loss_global_weight: weight of the GP term (2.0, hard-coded in the official head).
        loss_local_weight: weight of the LP term (1.0).
        use_global: train with the GP term (ablation switch).
        use_local: train with the LP term (ablation switch).
        apro_impl: ``vlzoo.ops`` kernel choice (``"auto"``).
        loss_mask: the box loss config, ``dict(type='BoxProjectionLoss', loss_weight=3.0)``.
        **kwargs: everything ``SOLOV2Head`` takes.
    """

    def __init__(self, *args, zeta_gl: float = 0.01, zeta_gh: float | None = 0.07, kernel_size: int = 5,
                 zeta_s: float = 0.15, lp_iterations: int = 20, loss_global_weight: float = 2.0,
                 loss_local_weight: float = 1.0, use_global: bool = True, use_local: bool = True,
                 apro_impl: str = "auto", **kwargs):
        kwargs.setdefault("loss_mask", dict(type="BoxProjectionLoss", loss_weight=3.0))
        super().__init__(*args, **kwargs)
        self.zeta_gl, self.zeta_gh = zeta_gl, zeta_gh
        self.kernel_size, self.zeta_s, self.lp_iterations = kernel_size, zeta_s, lp_iterations
        self.loss_global_weight, self.loss_local_weight = loss_global_weight, loss_local_weight
        self.use_global, self.use_local, self.apro_impl = use_global, use_local, apro_impl

    def _positive_mask_logits(self, mlvl_kernel_preds: list[Tensor], mask_feats: Tensor,
                              pos_indexes: list) -> tuple[list[Tensor], list[Tensor]]:
        """Dynamic-conv mask logits of the positive grid cells, per level, with the image of each.

        Returns:
            ``(logits, image_index)``: per level, (R_l, h, w) logits and (R_l,) image indices (R_l may be 0).
        """
        h, w = mask_feats.shape[-2:]
        logits, image_index = [], []
        for lvl_kernel_preds, lvl_pos_indexes in zip(mlvl_kernel_preds, zip(*pos_indexes)):
            lvl_logits, lvl_images = [], []
            for img_id, (kernels, index) in enumerate(zip(lvl_kernel_preds, lvl_pos_indexes)):
                if len(index) == 0:
                    continue
                kernels = kernels.view(kernels.shape[0], -1)[:, index]  # (C * s * s, n)
                n = kernels.shape[1]
                weight = kernels.permute(1, 0).reshape(n, -1, self.dynamic_conv_size, self.dynamic_conv_size)
                lvl_logits.append(F.conv2d(mask_feats[[img_id]], weight, stride=1).view(n, h, w))
                lvl_images.append(torch.full((n,), img_id, dtype=torch.long, device=mask_feats.device))
            if lvl_logits:
                logits.append(torch.cat(lvl_logits))
                image_index.append(torch.cat(lvl_images))
            else:
                logits.append(mask_feats.new_zeros((0, h, w)))
                image_index.append(torch.zeros(0, dtype=torch.long, device=mask_feats.device))
        return logits, image_index

    def loss_by_feat(self, mlvl_kernel_preds: list[Tensor], mlvl_cls_preds: list[Tensor], mask_feats: Tensor,
                     batch_gt_instances: InstanceList, batch_img_metas: list[dict], images: Tensor | None = None,
                     **kwargs) -> dict:
        """APro losses from the head outputs.

        Args:
            mlvl_kernel_preds: per level (B, C, S, S) dynamic kernels.
            mlvl_cls_preds: per level (B, num_classes, S, S) class logits.
            mask_feats: (B, C, h, w) the unified mask features.
            batch_gt_instances: ``bboxes``, ``labels`` and ``masks`` (box masks from ``GenerateBoxMask``).
            batch_img_metas: image metas.
            images: (B, 3, H, W) the normalised (padded) batch images, passed by :class:`BoxSOLOv2`.

        Returns:
            ``loss_mask``, ``loss_global``, ``loss_local`` (when enabled) and ``loss_cls``.
        """
        if images is None:
            raise ValueError("BoxSOLOv2Head needs the batch images for its affinity terms: build the detector "
                             "as type='BoxSOLOv2' (it passes them), not 'SOLOv2'")
        featmap_sizes = mask_feats.size()[-2:]
        pos_mask_targets, labels, pos_masks, pos_indexes = multi_apply(
            self._get_targets_single, batch_gt_instances, featmap_sizes=featmap_sizes)

        logits, image_index = self._positive_mask_logits(mlvl_kernel_preds, mask_feats, pos_indexes)
        logits = torch.cat(logits)  # (R, h, w), level-major then image order, as the targets below
        image_index = torch.cat(image_index)
        box_masks = torch.cat([torch.cat(lvl, 0) for lvl in zip(*pos_mask_targets)]).to(logits.dtype)
        num_pos = int(logits.shape[0])

        losses: dict[str, Tensor] = {}
        if num_pos > 0:
            probs = logits.sigmoid()
            losses["loss_mask"] = self.loss_mask(probs, box_masks)
            guidance = F.interpolate(images.float(), size=tuple(featmap_sizes), mode="bilinear",
                                     align_corners=False)
            terms = apro_box_terms(probs, box_masks, guidance, image_index, zeta_gl=self.zeta_gl,
                                   zeta_gh=self.zeta_gh, kernel_size=self.kernel_size, zeta_s=self.zeta_s,
                                   iterations=self.lp_iterations, normalize="instance",
                                   use_global=self.use_global, use_local=self.use_local, impl=self.apro_impl)
        else:
            zero = mask_feats.sum() * 0.0
            losses["loss_mask"] = zero
            terms = {name: zero for name, on in (("global", self.use_global), ("local", self.use_local)) if on}
        if "global" in terms:
            losses["loss_global"] = self.loss_global_weight * terms["global"]
        if "local" in terms:
            losses["loss_local"] = self.loss_local_weight * terms["local"]

        flatten_labels = torch.cat([torch.cat([img_lvl.flatten() for img_lvl in lvl]) for lvl in zip(*labels)])
        flatten_cls_preds = torch.cat([lvl.permute(0, 2, 3, 1).reshape(-1, self.num_classes)
                                       for lvl in mlvl_cls_preds])
        losses["loss_cls"] = self.loss_cls(flatten_cls_preds, flatten_labels, avg_factor=num_pos + 1)
        return losses


@MODELS.register_module()
class BoxSOLOv2(SOLOv2):
    """SOLOv2 whose mask head also receives the normalised batch images (APro's guidance) in training."""

    def loss(self, batch_inputs: Tensor, batch_data_samples: list, **kwargs) -> dict:
        return super().loss(batch_inputs, batch_data_samples, images=batch_inputs, **kwargs)
