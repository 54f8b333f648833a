"""APro for mmseg 1.x: import this package (``custom_imports=dict(imports=['apro_affinity.mmseg'])``) and its
modules are registered in mmseg's own registries:

- ``MODELS``: ``AProEncoderDecoder`` (passes the guidance image), ``MaskClipPlusEncoderDecoder`` (CLIP-guided
  pseudo labels), the heads ``AProFCNHead``, ``AProASPPHead``, ``AProDepthwiseSeparableASPPHead``,
  ``AProDeepLabV2Head``, and the losses ``AProAffinityLoss`` and ``TreeEnergyLoss``;
- ``DATASETS``: ``ToyWorldSegDataset`` (the vlzoo toy world's label PNGs), ``VOCSparseDataset``.

Configs live in ``apro_affinity/configs/mmseg/`` and run through mmseg's own tools. The VOC sparse label PNGs
are made with ``python -m apro_affinity.mmseg.convert_voc_sparse``.
"""

from apro_affinity.mmengine_compat import allow_mmengine_checkpoints
from apro_affinity.mmseg.datasets import ToyWorldSegDataset, VOCSparseDataset
from apro_affinity.mmseg.heads import (
    AProASPPHead,
    AProDeepLabV2Head,
    AProDepthwiseSeparableASPPHead,
    AProFCNHead,
    SparseLabelHeadMixin,
)
from apro_affinity.mmseg.losses import AProAffinityLoss, TreeEnergyLoss
from apro_affinity.mmseg.segmentors import AProEncoderDecoder, MaskClipPlusEncoderDecoder

allow_mmengine_checkpoints()

__all__ = [
    "AProASPPHead",
    "AProAffinityLoss",
    "AProDeepLabV2Head",
    "AProDepthwiseSeparableASPPHead",
    "AProEncoderDecoder",
    "AProFCNHead",
    "MaskClipPlusEncoderDecoder",
    "SparseLabelHeadMixin",
    "ToyWorldSegDataset",
    "TreeEnergyLoss",
    "VOCSparseDataset",
    "allow_mmengine_checkpoints",
]
