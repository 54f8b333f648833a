"""What is visible of each object once the scene is painted: masks, boxes, areas, centroids, visible parts.

Every annotation file is written from these views, so boxes, areas, positions and relations all refer to
the *visible* pixels (what a model sees), not to the hidden geometry.

Shapes: S = image size; masks are (S, S) bool.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vlzoo.toyworld.scene import Layout, Scene, SceneObject
from vlzoo.toyworld.world import CATEGORY_IDS, MIN_PART_FRACTION, MIN_PART_PIXELS, scale_for

__all__ = ["ObjectView", "PartView", "visible_objects", "mask_bbox"]


def mask_bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    """Tight COCO box ``[x, y, w, h]`` (integers) of a non-empty (H, W) bool mask."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        raise ValueError("mask_bbox of an empty mask")
    return int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)


@dataclass(frozen=True)
class PartView:
    """The visible pixels of one part of an object."""

    name: str
    mask: np.ndarray
    """(S, S) bool."""
    area: int
    bbox: tuple[int, int, int, int]


@dataclass(frozen=True)
class ObjectView:
    """The visible pixels of one object and the facts derived from them."""

    index: int
    """Index into ``scene.objects`` (= depth)."""
    obj: SceneObject
    mask: np.ndarray
    """(S, S) bool: the pixels where this object is on top."""
    area: int
    """Visible pixel count."""
    full_area: int
    """Pixel count of the unoccluded shape."""
    bbox: tuple[int, int, int, int]
    """Tight COCO box [x, y, w, h] of the visible mask."""
    centroid: tuple[float, float]
    """(x, y) mean of the visible pixel centres."""
    parts: tuple[PartView, ...]
    """Visible parts that pass the visibility thresholds."""
    covered_by: tuple[int, ...]
    """Indices of the objects painted over some of this object's pixels."""

    @property
    def category_id(self) -> int:
        return CATEGORY_IDS[self.obj.category]

    @property
    def visible_fraction(self) -> float:
        return self.area / self.full_area


def visible_objects(scene: Scene, layout: Layout) -> list[ObjectView]:
    """One :class:`ObjectView` per scene object (back to front).

    Args:
        scene: the scene.
        layout: its layout (rasters and instance map).
    """
    size = scene.image_size
    min_part = max(3.0, MIN_PART_PIXELS * scale_for(size) ** 2)
    instance_map = layout.instance_map
    views = []
    for k, (obj, raster) in enumerate(zip(scene.objects, layout.rasters, strict=True)):
        window_ids = instance_map[raster.slices]
        on_top = window_ids == k + 1
        visible = raster.mask & on_top
        mask = raster.paste(visible, size)
        rows, cols = np.nonzero(visible)
        area = int(rows.size)
        rows += raster.y0
        cols += raster.x0
        # Pixel centres: pixel (i, j) spans [j, j + 1) x [i, i + 1).
        centroid = (float(cols.mean()) + 0.5, float(rows.mean()) + 0.5)
        bbox = (
            int(cols.min()),
            int(rows.min()),
            int(cols.max() - cols.min() + 1),
            int(rows.max() - rows.min() + 1),
        )
        covered = np.unique(window_ids[raster.mask & ~on_top])
        parts = []
        for name, part_mask in raster.parts.items():
            if name == "hole":
                # The hole is not the ring's own pixels: it is what shows through it (whatever is not
                # covered by an object painted above the ring).
                seen = part_mask & (window_ids <= k + 1)
                seen &= ~raster.mask
            else:
                seen = part_mask & on_top
            full = int(part_mask.sum())
            seen_area = int(seen.sum())
            if full == 0 or seen_area < min_part or seen_area < MIN_PART_FRACTION * full:
                continue
            part_full = raster.paste(seen, size)
            parts.append(PartView(name=name, mask=part_full, area=seen_area, bbox=mask_bbox(part_full)))
        views.append(
            ObjectView(
                index=k,
                obj=obj,
                mask=mask,
                area=area,
                full_area=int(raster.mask.sum()),
                bbox=bbox,
                centroid=centroid,
                parts=tuple(parts),
                covered_by=tuple(int(c) - 1 for c in covered if c > k + 1),
            )
        )
    return views
