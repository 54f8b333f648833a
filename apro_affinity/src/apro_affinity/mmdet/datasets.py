"""``ToyWorldInstanceDataset``: the vlzoo toy world's COCO ``instances.json`` as an mmdet 3.x dataset.

A plain ``CocoDataset`` with the toy world's 16 shape categories as its metainfo, so a toy config needs only
``data_root``, ``ann_file`` and ``data_prefix``. Split folders are ``<world>/<split>/{images/, instances.json}``.
"""

from __future__ import annotations

from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS

from vlzoo.data import voc_colormap
from vlzoo.toyworld.world import CATEGORIES

__all__ = ["ToyWorldInstanceDataset"]


@DATASETS.register_module()
class ToyWorldInstanceDataset(CocoDataset):
    """COCO-format instances of the toy world (categories in COCO id order 1..16)."""

    METAINFO = {
        "classes": tuple(CATEGORIES),
        "palette": [tuple(int(v) for v in c) for c in voc_colormap(len(CATEGORIES) + 1)[1:]],
    }
