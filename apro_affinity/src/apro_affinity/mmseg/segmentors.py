"""mmseg 1.x segmentors for sparse supervision: the guidance image for the heads, and MaskCLIP+ labels.

- ``AProEncoderDecoder``: an ``EncoderDecoder`` that, in training, attaches each normalised input image to
  its data sample as ``guide_image`` (``PixelData``), which the ``APro*Head`` losses read (the official APro
  Mask2Former wrapper passes the image to its head the same way).
- ``MaskClipPlusEncoderDecoder``: the CLIP-guided (annotation-free) setting. A frozen CLIP ViT teacher
  (:class:`apro_affinity.maskclip.MaskClipTeacher`, built from a ``vlzoo.clip`` model) labels every
  training image online; those labels replace ``gt_sem_seg`` as the target of the (partial) CE (255 where the
  teacher is not confident and on the padding), and the head's pairwise loss (``apply_to='all'`` in the configs)
  regularises them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from mmengine.structures import PixelData
from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS
from torch import Tensor

from apro_affinity.maskclip import MaskClipTeacher

__all__ = ["AProEncoderDecoder", "MaskClipPlusEncoderDecoder", "resolve_class_names"]


def resolve_class_names(spec) -> list[str]:
    """Class names for the teacher: a list, or ``dict(dataset='PascalVOCDataset', exclude=['background'])`` to take
    the ``classes`` of a registered mmseg dataset (minus ``exclude``), so configs need not copy long name lists."""
    if isinstance(spec, dict):
        from mmseg.registry import DATASETS

        name = spec.get("dataset")
        cls = DATASETS.get(name) if name else None
        if cls is None:
            raise ValueError(f"class_names: unknown mmseg dataset {name!r}")
        exclude = set(spec.get("exclude", ()))
        return [c for c in cls.METAINFO["classes"] if c not in exclude]
    names = list(spec)
    if not names or not all(isinstance(n, str) and n for n in names):
        raise ValueError(f"class_names must be non-empty strings, got {spec!r}")
    return names


@MODELS.register_module()
class AProEncoderDecoder(EncoderDecoder):
    """``EncoderDecoder`` whose training data samples carry the normalised input image (``guide_image``)."""

    def loss(self, inputs: Tensor, data_samples: list) -> dict:
        for image, sample in zip(inputs, data_samples):
            sample.guide_image = PixelData(data=image.detach())
        return super().loss(inputs, data_samples)


@MODELS.register_module()
class MaskClipPlusEncoderDecoder(AProEncoderDecoder):
    """Student segmentor trained on MaskCLIP+ pseudo labels of a frozen CLIP teacher.

    Args:
        clip_teacher: ``dict(model='ViT-B-16', weights='/path/open_clip_model.safetensors' or None, quick_gelu=False,
            class_names=[...] or dict(dataset=..., exclude=[...]), templates='simple', conf_thresh=0.,
            pd_thresh=0.)``; ``weights=None`` (or ``''``, ``'none'``, ``'random'``) is a random init (tests only). The model is built with
            :func:`vlzoo.clip.create_clip`; see :func:`resolve_class_names`.
        clip_mean: CLIP's normalisation mean (RGB, [0, 1] scale).
        clip_std: CLIP's normalisation std.
        **kwargs: ``EncoderDecoder`` arguments.
    """

    def __init__(self, clip_teacher: dict, clip_mean: Sequence[float] = (0.48145466, 0.4578275, 0.40821073),
                 clip_std: Sequence[float] = (0.26862954, 0.26130258, 0.27577711), **kwargs):
        super().__init__(**kwargs)
        from vlzoo.clip import create_clip

        cfg = dict(clip_teacher)
        allowed = {"model", "weights", "quick_gelu", "class_names", "templates", "conf_thresh", "pd_thresh"}
        if set(cfg) - allowed or "model" not in cfg or "class_names" not in cfg:
            raise ValueError(f"clip_teacher needs 'model' and 'class_names' (optional: weights, quick_gelu, "
                             f"templates, conf_thresh, pd_thresh); got keys {sorted(cfg)}")
        weights = cfg.get("weights")
        weights = None if weights in (None, "", "none", "random") else weights
        clip = create_clip(cfg["model"], weights=weights, quick_gelu=cfg.get("quick_gelu", False))
        self.teacher = MaskClipTeacher(clip, resolve_class_names(cfg["class_names"]), cfg.get("templates", "simple"),
                                       conf_thresh=cfg.get("conf_thresh", 0.0), pd_thresh=cfg.get("pd_thresh", 0.0),
                                       ignore_index=self.decode_head.ignore_index)
        self.register_buffer("clip_mean", torch.tensor(clip_mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("clip_std", torch.tensor(clip_std).view(1, 3, 1, 1), persistent=False)

    def _clip_inputs(self, inputs: Tensor) -> Tensor:
        """mmseg-normalised RGB -> CLIP-normalised RGB."""
        pre = self.data_preprocessor
        rgb01 = (inputs * pre.std.view(1, -1, 1, 1) + pre.mean.view(1, -1, 1, 1)) / 255.0
        return (rgb01 - self.clip_mean) / self.clip_std

    def loss(self, inputs: Tensor, data_samples: list) -> dict:
        ignore = self.decode_head.ignore_index
        with torch.no_grad():
            labels = self.teacher.pseudo_labels(self._clip_inputs(inputs), tuple(inputs.shape[-2:]))
        for label, sample in zip(labels, data_samples):
            h, w = sample.metainfo["img_shape"][:2]
            padded = torch.full_like(label, ignore)
            padded[:h, :w] = label[:h, :w]
            sample.gt_sem_seg = PixelData(data=padded[None])
        return super().loss(inputs, data_samples)
