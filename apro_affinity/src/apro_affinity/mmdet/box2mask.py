"""Mask2Former trained with APro under box supervision (spec §4.1-§4.2, §5.1): ``Box2Mask`` + ``Box2MaskHead``.

The head is mmdet 3.x's ``Mask2FormerHead`` with box-supervised matching and losses, at every decoder output
(the initial prediction and each of the decoder layers: keys ``d0.*`` ... and the final ones):

- matching: ``ClassificationCost`` (2.0) + ``BoxMatchingCost`` (5.0, projection Dice, ``eps`` 1) on *full*
  masks: each query's logits are bilinearly upsampled to the box-mask size (the padded input) first, as in
  the official head (mmdet's Mask2Former matches on random point samples instead);
- ``loss_cls``: the unchanged cross-entropy (weight 2.0, no-object weight 0.1);
- ``loss_project``: ``BoxProjectionLoss`` (5.0) on the sigmoid masks against the box masks bilinearly
  resized to the mask grid (stride 4), mean over the matched queries;
- ``loss_local``: LP pseudo labels on the mask grid, ``sum |y^l - p| B / sum B`` over all matched queries;
- ``loss_global``: GP on a 96 x 96 grid (image and predictions bilinearly downscaled, one tree per image),
  the GP output and the downscaled prediction upsampled back to the mask grid, then the same L1.

The detector ``Box2Mask`` hands the normalised batch images to the head (the official ``maskformer.py``
wrapper does the same). Shape shorthand: B images, Q queries, G boxes, P matched queries, h x w the mask grid.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from mmdet.models.dense_heads import Mask2FormerHead
from mmdet.models.detectors import Mask2Former
from mmdet.models.utils import multi_apply
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmengine.structures import InstanceData
from torch import Tensor

from apro_affinity.apro_terms import apro_box_terms
from apro_affinity.box_masks import resize_box_masks

__all__ = ["Box2Mask", "Box2MaskHead"]


@MODELS.register_module()
class Box2MaskHead(Mask2FormerHead):
    """Mask2Former head with APro's box-supervised matching and losses.

    Args:
        zeta_gl: GP pass-1 zeta (0.03; 0.02 for VOC R-50).
        zeta_gh: GP pass-2 zeta (0.03).
        kernel_size: LP window (5).
        zeta_s: LP zeta (0.15).
        lp_iterations: LP iterations (20).
        global_size: GP grid (96, 96).
        loss_box: the box loss, ``dict(type='BoxProjectionLoss', loss_weight=5.0)``.
        loss_global_weight: GP term weight (1.0).
        loss_local_weight: LP term weight (1.0).
        use_global: train with the GP term (ablation switch).
        use_local: train with the LP term (ablation switch).
        apro_impl: ``vlzoo.ops`` kernel choice.
        **kwargs: everything ``Mask2FormerHead`` takes (its ``loss_mask`` / ``loss_dice`` are not used).
    """

    def __init__(self, *args, zeta_gl: float = 0.03, zeta_gh: float | None = 0.03, kernel_size: int = 5,
                 zeta_s: float = 0.15, lp_iterations: int = 20, global_size: tuple[int, int] = (96, 96),
                 loss_box: dict | None = None, loss_global_weight: float = 1.0, loss_local_weight: float = 1.0,
                 use_global: bool = True, use_local: bool = True, apro_impl: str = "auto", **kwargs):
        super().__init__(*args, **kwargs)
        self.loss_mask = None  # the point-sampled mask CE and Dice of Mask2Former need mask labels
        self.loss_dice = None
        self.loss_box = MODELS.build(loss_box or dict(type="BoxProjectionLoss", loss_weight=5.0))
        self.zeta_gl, self.zeta_gh = zeta_gl, zeta_gh
        self.kernel_size, self.zeta_s, self.lp_iterations = kernel_size, zeta_s, lp_iterations
        self.global_size = tuple(global_size)
        self.loss_global_weight, self.loss_local_weight = loss_global_weight, loss_local_weight
        self.use_global, self.use_local, self.apro_impl = use_global, use_local, apro_impl

    def _get_targets_single(self, cls_score: Tensor, mask_pred: Tensor, gt_instances: InstanceData,
                            img_meta: dict) -> tuple:
        """Hungarian assignment of one image on full-size masks (see the module docstring).

        Args:
            cls_score: (Q, num_classes + 1) class logits.
            mask_pred: (Q, h, w) mask logits.
            gt_instances: ``labels`` (G,) and ``masks`` (G, H, W) box masks.
            img_meta: image meta.

        Returns:
            The 7-tuple of ``Mask2FormerHead._get_targets_single``.
        """
        gt_labels = gt_instances.labels
        gt_masks = gt_instances.masks
        if hasattr(gt_masks, "to_tensor"):
            gt_masks = gt_masks.to_tensor(dtype=torch.float32, device=mask_pred.device)
        gt_masks = gt_masks.float()
        full = F.interpolate(mask_pred[:, None], size=tuple(gt_masks.shape[-2:]), mode="bilinear",
                             align_corners=False)[:, 0]
        assign_result = self.assigner.assign(
            pred_instances=InstanceData(scores=cls_score, masks=full),
            gt_instances=InstanceData(labels=gt_labels, masks=gt_masks),
            img_meta=img_meta)
        sampling_result = self.sampler.sample(
            assign_result=assign_result,
            pred_instances=InstanceData(scores=cls_score, masks=mask_pred),
            gt_instances=InstanceData(labels=gt_labels, masks=gt_masks))
        pos_inds, neg_inds = sampling_result.pos_inds, sampling_result.neg_inds
        labels = gt_labels.new_full((self.num_queries,), self.num_classes, dtype=torch.long)
        labels[pos_inds] = gt_labels[sampling_result.pos_assigned_gt_inds]
        label_weights = gt_labels.new_ones((self.num_queries,))
        mask_targets = gt_masks[sampling_result.pos_assigned_gt_inds]
        mask_weights = mask_pred.new_zeros((self.num_queries,))
        mask_weights[pos_inds] = 1.0
        return labels, label_weights, mask_targets, mask_weights, pos_inds, neg_inds, sampling_result

    def _loss_by_feat_single(self, cls_scores: Tensor, mask_preds: Tensor, batch_gt_instances: list,
                             batch_img_metas: list[dict], images: Tensor | None = None) -> tuple[Tensor, ...]:
        """Losses of one decoder output: ``(loss_cls, loss_project, loss_global, loss_local)``."""
        num_imgs = cls_scores.size(0)
        (labels_list, label_weights_list, mask_targets_list, mask_weights_list, _) = self.get_targets(
            [cls_scores[i] for i in range(num_imgs)], [mask_preds[i] for i in range(num_imgs)],
            batch_gt_instances, batch_img_metas)
        labels = torch.stack(labels_list).flatten(0, 1)
        label_weights = torch.stack(label_weights_list).flatten(0, 1)
        mask_weights = torch.stack(mask_weights_list)  # (B, Q)
        class_weight = cls_scores.new_tensor(self.class_weight)
        loss_cls = self.loss_cls(cls_scores.flatten(0, 1), labels, label_weights,
                                 avg_factor=class_weight[labels].sum())

        positive = mask_weights > 0
        logits = mask_preds[positive]  # (P, h, w), row-major over (image, query) like the targets
        if logits.shape[0] == 0:
            zero = mask_preds.sum() * 0.0
            return loss_cls, zero, zero, zero
        grid = tuple(logits.shape[-2:])
        box_masks = resize_box_masks(torch.cat(mask_targets_list), grid).to(logits.dtype)
        probs = logits.sigmoid()
        image_index = positive.nonzero()[:, 0]
        loss_project = self.loss_box(probs, box_masks)
        guidance = F.interpolate(images.float(), size=grid, mode="bilinear", align_corners=False)
        terms = apro_box_terms(probs, box_masks, guidance, image_index, zeta_gl=self.zeta_gl, zeta_gh=self.zeta_gh,
                               kernel_size=self.kernel_size, zeta_s=self.zeta_s, iterations=self.lp_iterations,
                               normalize="total", global_size=self.global_size, use_global=self.use_global,
                               use_local=self.use_local, impl=self.apro_impl)
        zero = probs.sum() * 0.0
        loss_global = self.loss_global_weight * terms["global"] if "global" in terms else zero
        loss_local = self.loss_local_weight * terms["local"] if "local" in terms else zero
        return loss_cls, loss_project, loss_global, loss_local

    def loss_by_feat(self, all_cls_scores: Tensor, all_mask_preds: Tensor, batch_gt_instances: list,
                     batch_img_metas: list[dict], images: Tensor | None = None) -> dict[str, Tensor]:
        """Losses of every decoder output (deep supervision): final keys plus ``d{i}.`` prefixed ones."""
        if images is None:
            raise ValueError("Box2MaskHead needs the batch images for its affinity terms: build the detector as "
                             "type='Box2Mask' (it passes them), not 'Mask2Former'")
        num_outputs = len(all_cls_scores)
        losses_cls, losses_project, losses_global, losses_local = multi_apply(
            self._loss_by_feat_single, all_cls_scores, all_mask_preds, [batch_gt_instances] * num_outputs,
            [batch_img_metas] * num_outputs, [images] * num_outputs)
        names = ["loss_cls", "loss_project"]
        names += ["loss_global"] if self.use_global else []
        names += ["loss_local"] if self.use_local else []
        per_name = {"loss_cls": losses_cls, "loss_project": losses_project, "loss_global": losses_global,
                    "loss_local": losses_local}
        loss_dict = {name: per_name[name][-1] for name in names}
        for i in range(num_outputs - 1):
            for name in names:
                loss_dict[f"d{i}.{name}"] = per_name[name][i]
        return loss_dict

    def loss(self, x: tuple[Tensor], batch_data_samples: SampleList, images: Tensor | None = None
             ) -> dict[str, Tensor]:
        """Forward and losses (``MaskFormerHead.loss`` with the batch images passed through)."""
        batch_img_metas = [s.metainfo for s in batch_data_samples]
        batch_gt_instances = [s.gt_instances for s in batch_data_samples]
        batch_gt_semantic_segs = [s.gt_sem_seg if "gt_sem_seg" in s else None for s in batch_data_samples]
        all_cls_scores, all_mask_preds = self(x, batch_data_samples)
        batch_gt_instances = self.preprocess_gt(batch_gt_instances, batch_gt_semantic_segs)
        return self.loss_by_feat(all_cls_scores, all_mask_preds, batch_gt_instances, batch_img_metas,
                                 images=images)


@MODELS.register_module()
class Box2Mask(Mask2Former):
    """Mask2Former whose head also receives the normalised batch images (APro's guidance) in training."""

    def loss(self, batch_inputs: Tensor, batch_data_samples: SampleList) -> dict[str, Tensor]:
        x = self.extract_feat(batch_inputs)
        return self.panoptic_head.loss(x, batch_data_samples, images=batch_inputs)
