"""APro for mmdet 3.x: import this package (``custom_imports=dict(imports=['apro_affinity.mmdet'])``) and
its modules are registered in mmdet's own registries:

- ``MODELS``: ``BoxSOLOv2`` / ``BoxSOLOv2Head`` (SOLOv2 + APro), ``Box2Mask`` / ``Box2MaskHead``
  (Mask2Former + APro), ``BoxProjectionLoss``;
- ``TASK_UTILS``: ``BoxMatchingCost`` (projection-Dice Hungarian cost);
- ``TRANSFORMS``: ``GenerateBoxMask`` (box masks in place of instance masks);
- ``DATASETS``: ``ToyWorldInstanceDataset`` (the vlzoo toy world's COCO instances).

Configs live in ``apro_affinity/configs/mmdet/`` and run through mmdet's own tools
(``python tools/train.py CONFIG`` or ``mim train mmdet CONFIG``). Importing also registers the classes
mmengine checkpoints need under torch's weights-only loading (:func:`allow_mmengine_checkpoints`).
"""

from apro_affinity.mmdet.box2mask import Box2Mask, Box2MaskHead
from apro_affinity.mmdet.box_solov2 import BoxSOLOv2, BoxSOLOv2Head
from apro_affinity.mmdet.datasets import ToyWorldInstanceDataset
from apro_affinity.mmdet.losses import BoxProjectionLoss
from apro_affinity.mmdet.match_costs import BoxMatchingCost
from apro_affinity.mmdet.transforms import GenerateBoxMask
from apro_affinity.mmengine_compat import allow_mmengine_checkpoints

allow_mmengine_checkpoints()

__all__ = [
    "Box2Mask",
    "Box2MaskHead",
    "BoxMatchingCost",
    "BoxProjectionLoss",
    "BoxSOLOv2",
    "BoxSOLOv2Head",
    "GenerateBoxMask",
    "ToyWorldInstanceDataset",
    "allow_mmengine_checkpoints",
]
