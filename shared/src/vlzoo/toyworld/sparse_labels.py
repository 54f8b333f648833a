"""Sparse labels derived from the masks: ScribbleSup-style scribbles and "What's the point"-style clicks.

Both are VOC label images: value = class (0 background, 1..16 shapes), 255 = unlabelled. They are subsets
of the full semantic mask by construction.

"Depth" below is a pixel's distance to the nearest pixel of another region (another object or the
background), computed for the whole image by one Euclidean distance transform.

- Scribbles: one free-hand-looking stroke per object (a polyline through 3-5 random pixels of depth >= half
  the object's deepest, ordered along their main axis) kept where its depth is >= 40 % of the
  deepest (at most 3 px at 96 px, at least 1 px); thin objects whose stroke would vanish get their medial
  ridge. The background gets 2-3 local strokes (anchors within 30 % of the image size of the first one),
  kept >= 3 px (at 96 px) from every object. Strokes are 1 px wide at 96 px, scaled with the image size.
- Points: one click per object at a random pixel of depth >= 60 % of its deepest, and one background click.

Shapes: S = image size; label images are (S, S) uint8.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from vlzoo.toyworld.views import ObjectView
from vlzoo.toyworld.world import scale_for

__all__ = ["IGNORE_INDEX", "semantic_labels", "region_depth", "sparse_labels"]

IGNORE_INDEX = 255
"""Label value of unlabelled pixels (VOC convention)."""


def semantic_labels(views: Sequence[ObjectView], image_size: int) -> np.ndarray:
    """(S, S) uint8 semantic mask: each visible object's pixels carry its category id, 0 elsewhere."""
    labels = np.zeros((image_size, image_size), dtype=np.uint8)
    for view in views:
        labels[view.mask] = view.category_id
    return labels


def region_depth(regions: np.ndarray) -> np.ndarray:
    """Distance of every pixel to the nearest pixel of a different region (1 next to a border).

    Args:
        regions: (S, S) int region ids (0 background, k + 1 object k).

    Returns:
        (S, S) float; the image border does not count as a region border.
    """
    border = np.zeros(regions.shape, dtype=bool)
    vertical = regions[1:] != regions[:-1]
    horizontal = regions[:, 1:] != regions[:, :-1]
    border[1:] |= vertical
    border[:-1] |= vertical
    border[:, 1:] |= horizontal
    border[:, :-1] |= horizontal
    if not border.any():
        return np.full(regions.shape, float(max(regions.shape)))
    return ndimage.distance_transform_edt(~border) + 1.0


def _first_hits(good: np.ndarray, count: np.ndarray) -> np.ndarray:
    """(K, C) bool: the first ``count[k]`` True entries of each row of ``good`` (K, C)."""
    return good & (np.cumsum(good, axis=1) <= count[:, None])


def _deepest_pixel(depth: np.ndarray, regions: np.ndarray, region: int) -> np.ndarray:
    """(2,) int64 (row, col) of the deepest pixel of ``region`` (the fallback when sampling found none)."""
    flat = int(np.argmax(np.where(regions == region, depth, -1.0)))
    return np.array(divmod(flat, depth.shape[1]), dtype=np.int64)


def _sample(
    depth: np.ndarray,
    regions: np.ndarray,
    owner_region: np.ndarray,
    minimum: np.ndarray,
    candidates: np.ndarray,
) -> np.ndarray:
    """Which candidate pixels lie in their row's region at depth >= the region's minimum.

    Args:
        depth, regions: (S, S) maps.
        owner_region: (K,) region of each row.
        minimum: (R,) least depth per region.
        candidates: (K, C, 2) int (row, col), possibly outside the image.

    Returns:
        (K, C) bool.
    """
    size = depth.shape[0]
    inside = ((candidates >= 0) & (candidates < size)).all(axis=-1)
    # Out-of-image candidates are read at a clamped position and then rejected by ``inside``.
    r = np.minimum(np.maximum(candidates[..., 0], 0), size - 1)
    c = np.minimum(np.maximum(candidates[..., 1], 0), size - 1)
    region = owner_region[:, None]
    return inside & (regions[r, c] == region) & (depth[r, c] >= minimum[owner_region][:, None])


def _order_strokes(anchors: np.ndarray, owner: np.ndarray) -> np.ndarray:
    """Permutation sorting anchors by stroke, and within a stroke along the anchors' main axis (so a stroke
    does not zigzag back and forth)."""
    n = int(owner.max()) + 1
    count = np.maximum(np.bincount(owner, minlength=n), 1)
    mean = np.stack([np.bincount(owner, anchors[:, i], minlength=n) for i in (0, 1)], axis=1) / count[:, None]
    d = anchors - mean[owner]
    var_r, var_c, cov = (
        np.bincount(owner, w, minlength=n) for w in (d[:, 0] ** 2, d[:, 1] ** 2, d[:, 0] * d[:, 1])
    )
    angle = 0.5 * np.arctan2(2.0 * cov, var_r - var_c)
    along = d[:, 0] * np.cos(angle)[owner] + d[:, 1] * np.sin(angle)[owner]
    return np.lexsort((along, owner))


def _rasterize_strokes(anchors: np.ndarray, owner: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixels along the polylines through consecutive anchors of the same stroke, sampled every 0.5 px.

    Args:
        anchors: (A, 2) float (row, col), grouped by stroke and ordered along it.
        owner: (A,) stroke of each anchor.

    Returns:
        ``(pixels, stroke)``: (M, 2) int pixels and (M,) their stroke.
    """
    same = owner[:-1] == owner[1:]
    # Every anchor also starts a zero-length segment, so a one-anchor stroke still marks its pixel.
    starts = np.concatenate([anchors[:-1][same], anchors])
    ends = np.concatenate([anchors[1:][same], anchors])
    segment_owner = np.concatenate([owner[:-1][same], owner])
    steps = np.ceil(2.0 * np.hypot(*(ends - starts).T)).astype(np.int64) + 1
    segment = np.repeat(np.arange(len(steps)), steps)
    offset = np.arange(int(steps.sum())) - np.repeat(np.cumsum(steps) - steps, steps)
    t = (offset / np.maximum(steps[segment] - 1, 1))[:, None]
    samples = starts[segment] + t * (ends[segment] - starts[segment])
    return np.floor(samples).astype(np.int64), segment_owner[segment]


def sparse_labels(
    views: Sequence[ObjectView], image_size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Scribble and point label images of one scene (vectorised over objects and strokes).

    Args:
        views: the visible objects.
        image_size: S.
        rng: the image's label stream.

    Returns:
        ``(scribbles, points)``: two (S, S) uint8 images, 255 where unlabelled.
    """
    s = scale_for(image_size)
    n = len(views)
    regions = np.zeros((image_size, image_size), dtype=np.int64)  # 0 background, k + 1 object k
    for k, view in enumerate(views):
        regions[view.mask] = k + 1
    depth = region_depth(regions)
    background = regions == 0
    has_background = bool(background.any())
    deepest = np.zeros(n + 1)
    deepest[0] = depth[background].max() if has_background else 0.0
    for k, (x, y, w, h) in enumerate(v.bbox for v in views):
        # The object's deepest pixel lies in its box: a small window instead of the whole image.
        deepest[k + 1] = depth[y : y + h, x : x + w][regions[y : y + h, x : x + w] == k + 1].max()
    keep_out = max(2.0, 3.0 * s) + 1.0  # depth counts 1 next to a border
    # Per region: the least depth of a stroke pixel, of a stroke anchor, of a click.
    stroke_min = np.maximum(1.0, np.minimum(0.4 * deepest, 3.0 * s))
    anchor_min = 0.5 * deepest
    click_min = 0.6 * deepest
    stroke_min[0], anchor_min[0] = keep_out, min(1.5 * keep_out, deepest[0])
    label_of = np.array([0] + [v.category_id for v in views], dtype=np.uint8)
    boxes = np.array([v.bbox for v in views], dtype=np.int64).reshape(n, 4)
    object_region = np.arange(1, n + 1)

    def in_boxes(count: int) -> np.ndarray:
        """(n, count, 2) random pixels inside each object's box."""
        rows = rng.integers(boxes[:, 1:2], (boxes[:, 1] + boxes[:, 3])[:, None], size=(n, count))
        cols = rng.integers(boxes[:, 0:1], (boxes[:, 0] + boxes[:, 2])[:, None], size=(n, count))
        return np.stack([rows, cols], axis=-1)

    # Stroke anchors: 3-5 per object, inside its box; 3-4 per background stroke, near a random first one.
    candidates = in_boxes(64)
    take = _first_hits(
        _sample(depth, regions, object_region, anchor_min, candidates), rng.integers(3, 6, size=n)
    )
    anchors, owner = [candidates[take]], [np.nonzero(take)[0]]
    for k in np.flatnonzero(~take.any(axis=1)):
        anchors.append(_deepest_pixel(depth, regions, k + 1)[None])
        owner.append(np.array([k]))
    n_background = int(rng.integers(2, 4)) if has_background else 0
    if n_background:
        bg_region = np.zeros(n_background, dtype=np.int64)
        starts = rng.integers(image_size, size=(n_background, 64, 2))
        start_ok = _sample(depth, regions, bg_region, anchor_min, starts)
        first = np.where(
            start_ok.any(axis=1)[:, None],
            starts[np.arange(n_background), start_ok.argmax(axis=1)],
            _deepest_pixel(depth, regions, 0),
        )
        reach = 0.3 * image_size
        spread = np.round(first[:, None, :] + rng.uniform(-reach, reach, size=(n_background, 64, 2))).astype(
            np.int64
        )
        spread = np.concatenate([first[:, None, :], spread], axis=1)  # the first anchor always qualifies
        good = _sample(depth, regions, bg_region, anchor_min, spread)
        good[:, 0] = True
        take = _first_hits(good, rng.integers(3, 5, size=n_background))
        anchors.append(spread[take])
        owner.append(n + np.nonzero(take)[0])
    anchors = np.concatenate(anchors).astype(np.float64) + 0.5
    owner = np.concatenate(owner)
    stroke_region = np.concatenate([object_region, np.zeros(n_background, dtype=np.int64)])

    scribbles = np.full((image_size, image_size), IGNORE_INDEX, dtype=np.uint8)
    order = _order_strokes(anchors, owner)
    pixels, stroke = _rasterize_strokes(anchors[order], owner[order])
    width = max(1, int(round(image_size / 160)))
    if width > 1:
        reach_px = np.arange(width) - (width - 1) // 2
        offsets = np.stack(np.meshgrid(reach_px, reach_px, indexing="ij"), axis=-1).reshape(-1, 2)
        pixels = (pixels[:, None, :] + offsets[None]).reshape(-1, 2)
        stroke = np.repeat(stroke, len(offsets))
    keep = _sample(depth, regions, stroke_region[stroke], stroke_min, pixels[:, None, :])[:, 0]
    pixels, stroke = pixels[keep], stroke[keep]
    scribbles[pixels[:, 0], pixels[:, 1]] = label_of[stroke_region[stroke]]
    for k in np.flatnonzero(np.bincount(stroke, minlength=n + n_background)[:n] < 2):
        # A thin object whose stroke vanished: use its medial ridge.
        scribbles[(regions == k + 1) & (depth >= 0.8 * deepest[k + 1])] = label_of[k + 1]

    # Clicks: one per object inside its box, one in the background.
    points = np.full((image_size, image_size), IGNORE_INDEX, dtype=np.uint8)
    candidates = in_boxes(64)
    good = _sample(depth, regions, object_region, click_min, candidates)
    for k in range(n):
        row, col = candidates[k, good[k].argmax()] if good[k].any() else _deepest_pixel(depth, regions, k + 1)
        points[row, col] = label_of[k + 1]
    if has_background:
        candidates = rng.integers(image_size, size=(1, 64, 2))
        good = _sample(depth, regions, np.zeros(1, dtype=np.int64), click_min, candidates)[0]
        row, col = candidates[0, good.argmax()] if good.any() else _deepest_pixel(depth, regions, 0)
        points[row, col] = 0
    return scribbles, points
