"""mmseg 1.x decode heads for point- and scribble-supervised (and CLIP-guided) semantic segmentation.

Each ``APro*Head`` is an mmseg head plus :class:`SparseLabelHeadMixin`:

- the head's own ``loss_decode`` on the sparse label map is the partial cross-entropy (use
  ``CrossEntropyLoss(avg_non_ignore=True)``: the mean over labelled pixels, 255 = unlabelled);
- ``affinity_loss`` (``AProAffinityLoss`` or ``TreeEnergyLoss``) adds the pairwise term on the unlabelled
  pixels inside the image (the padding, outside ``img_shape``, is excluded as TEL's "-2" label is), or on every
  pixel inside the image when the loss has ``apply_to='all'`` (the CLIP-guided setting, where the teacher
  labels every pixel);
- the guidance image comes from the segmentor (``AProEncoderDecoder`` attaches it to each data sample as
  ``guide_image``), the decoder feature (the input of ``conv_seg``) is kept for TEL's embedding.

Heads: ``AProFCNHead`` (FCN), ``AProASPPHead`` (DeepLabV3), ``AProDepthwiseSeparableASPPHead``
(DeepLabV3+, TEL's network), ``AProDeepLabV2Head`` (DeepLabv2's ASPP: the sum of four dilated 3x3
classifiers, rates 6/12/18/24, MaskCLIP+'s student).
"""

from __future__ import annotations

import torch
from mmseg.models.decode_heads import ASPPHead, DepthwiseSeparableASPPHead, FCNHead
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS
from torch import Tensor, nn

__all__ = [
    "SparseLabelHeadMixin",
    "AProFCNHead",
    "AProASPPHead",
    "AProDepthwiseSeparableASPPHead",
    "AProDeepLabV2Head",
    "unlabeled_inside_image",
]


def unlabeled_inside_image(labels: Tensor, img_shapes: list[tuple[int, int]], ignore_index: int = 255) -> Tensor:
    """(B, H, W) bool: unlabelled pixels that lie inside each image's un-padded area.

    Args:
        labels: (B, H, W) label maps (padded batch).
        img_shapes: per image (h, w) before padding.
        ignore_index: the unlabelled value.
    """
    inside = torch.zeros_like(labels, dtype=torch.bool)
    for i, (h, w) in enumerate(img_shapes):
        inside[i, : int(h), : int(w)] = True
    return (labels == ignore_index) & inside


class SparseLabelHeadMixin:
    """Adds ``affinity_loss`` on unlabelled pixels to an mmseg decode head (see the module docstring).

    Args:
        affinity_loss: config of the pairwise loss (``dict(type='AProAffinityLoss', ...)``); None = pCE only.
    """

    def __init__(self, *args, affinity_loss: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.affinity_loss = MODELS.build(affinity_loss) if affinity_loss is not None else None
        self._decoder_feature: Tensor | None = None

    def cls_seg(self, feat: Tensor) -> Tensor:
        self._decoder_feature = feat  # TEL's high-level embedding is computed from it
        return super().cls_seg(feat)

    def loss_by_feat(self, seg_logits: Tensor, batch_data_samples: list) -> dict:
        losses = super().loss_by_feat(seg_logits, batch_data_samples)
        if self.affinity_loss is None:
            return losses
        if not all("guide_image" in s for s in batch_data_samples):
            raise ValueError(f"{type(self).__name__}: data samples carry no 'guide_image'; build the segmentor as "
                             f"type='AProEncoderDecoder' (it attaches the normalised images)")
        images = torch.stack([s.guide_image.data for s in batch_data_samples])
        labels = self._stack_batch_gt(batch_data_samples)[:, 0]
        shapes = [s.metainfo["img_shape"][:2] for s in batch_data_samples]
        if getattr(self.affinity_loss, "apply_to", "unlabeled") == "all":  # every pixel inside the image
            region = unlabeled_inside_image(torch.full_like(labels, self.ignore_index), shapes, self.ignore_index)
        else:
            region = unlabeled_inside_image(labels, shapes, self.ignore_index)
        losses.update(self.affinity_loss(seg_logits, images, region, self._decoder_feature))
        self._decoder_feature = None
        return losses


@MODELS.register_module()
class AProFCNHead(SparseLabelHeadMixin, FCNHead):
    """FCN head with the sparse-label pairwise loss."""


@MODELS.register_module()
class AProASPPHead(SparseLabelHeadMixin, ASPPHead):
    """DeepLabV3 ASPP head with the sparse-label pairwise loss."""


@MODELS.register_module()
class AProDepthwiseSeparableASPPHead(SparseLabelHeadMixin, DepthwiseSeparableASPPHead):
    """DeepLabV3+ head (TEL's network) with the sparse-label pairwise loss."""


@MODELS.register_module()
class AProDeepLabV2Head(SparseLabelHeadMixin, BaseDecodeHead):
    """DeepLabv2's ASPP classifier: ``sum_r conv3x3_dilation_r(x)`` straight to class logits.

    Args:
        dilations: the atrous rates (6, 12, 18, 24).
        **kwargs: ``BaseDecodeHead`` arguments (``channels`` is unused by this head but required by mmseg).
    """

    def __init__(self, dilations: tuple[int, ...] = (6, 12, 18, 24), **kwargs):
        kwargs.setdefault("init_cfg", None)  # there is no conv_seg to initialise; the branches are set below
        super().__init__(**kwargs)
        self.aspp = nn.ModuleList(
            nn.Conv2d(self.in_channels, self.out_channels, 3, padding=d, dilation=d) for d in dilations)
        for conv in self.aspp:
            nn.init.normal_(conv.weight, std=0.01)
            nn.init.zeros_(conv.bias)
        self.conv_seg = None  # the ASPP branches are the classifier

    def cls_seg(self, feat: Tensor) -> Tensor:
        self._decoder_feature = feat
        if self.dropout is not None:
            feat = self.dropout(feat)
        return sum(conv(feat) for conv in self.aspp)

    def forward(self, inputs):
        return self.cls_seg(self._transform_inputs(inputs))
