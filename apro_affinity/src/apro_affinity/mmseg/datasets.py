"""mmseg 1.x datasets: the vlzoo toy world's label PNGs, and PASCAL VOC with sparse label folders.

- ``ToyWorldSegDataset``: ``<world>/<split>/images/*.png`` with label PNGs of the same stem in
  ``semantic/`` (full masks, for validation), ``scribbles/`` or ``points/`` (255 = unlabelled); 17 classes
  (background + the 16 shapes).
- ``VOCSparseDataset``: PASCAL VOC 2012 (aug) images with ScribbleSup scribbles or "What's the point"
  clicks rasterised into label PNGs (see :mod:`apro_affinity.mmseg.convert_voc_sparse`); a
  ``PascalVOCDataset`` whose label folder is the sparse one.
"""

from __future__ import annotations

from mmseg.datasets import BaseSegDataset, PascalVOCDataset
from mmseg.registry import DATASETS

from vlzoo.data import voc_colormap
from vlzoo.toyworld.world import CATEGORIES

__all__ = ["ToyWorldSegDataset", "VOCSparseDataset"]


@DATASETS.register_module()
class ToyWorldSegDataset(BaseSegDataset):
    """Toy-world semantic labels (index 0 background, i the i-th shape category, 255 unlabelled)."""

    METAINFO = {
        "classes": ("background", *CATEGORIES),
        "palette": [[int(v) for v in c] for c in voc_colormap(len(CATEGORIES) + 1)],
    }

    def __init__(self, img_suffix: str = ".png", seg_map_suffix: str = ".png", **kwargs):
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix, reduce_zero_label=False, **kwargs)


@DATASETS.register_module()
class VOCSparseDataset(PascalVOCDataset):
    """PASCAL VOC with a sparse label folder (``data_prefix=dict(seg_map_path='scribbles_png')``)."""
