"""Scene sampling: which objects an image holds, where, in which paint order, and on which background.

A :class:`Scene` is the scene graph every annotation is generated from (so answers are true by
construction). Sampling draws 1..5 objects one after the other, back to front; each candidate is rasterised
and accepted only if every object below it keeps >= 60 % of its pixels (and a minimum count) visible, and if
objects that touch or overlap have different colours (two touching red shapes would read as one blob).
A candidate that cannot be placed after a few tries is re-drawn (new size/category); a scene that cannot be
completed is re-started, and after the last restart the objects placed so far are kept.

Randomness: every image has its own ``numpy.random.Generator`` seeded from ``(seed, split, index, stream)``
(:func:`image_rng`), so image ``i`` is the same whatever was generated before it.
"""

from __future__ import annotations

import colorsys
import math
import zlib
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from vlzoo.toyworld.shapes import ShapeRaster, rasterize
from vlzoo.toyworld.world import (
    BACKGROUNDS,
    CATEGORIES,
    CATEGORY_FREQUENCY,
    COLORS,
    MAX_OBJECTS,
    MIN_VISIBLE_FRACTION,
    MIN_VISIBLE_PIXELS,
    SIZES,
    check_image_size,
    scale_for,
)

__all__ = [
    "SceneObject",
    "Background",
    "Scene",
    "Layout",
    "image_rng",
    "split_code",
    "sample_scene",
    "sample_scene_and_layout",
    "layout_scene",
    "scene_for",
    "STREAM_SCENE",
    "STREAM_LANGUAGE",
    "STREAM_LABELS",
    "STREAM_TEXT",
]

STREAM_SCENE = 0
"""RNG stream for the scene itself (objects, background, texture seed)."""
STREAM_LANGUAGE = 1
"""RNG stream for captions, questions and region conversations."""
STREAM_LABELS = 2
"""RNG stream for scribbles and clicks."""
STREAM_TEXT = 3
"""RNG stream for the text-only sentences of ``texts.json``."""

_SPLIT_CODES = {"train": 0, "val": 1, "test": 2}
_CATEGORY_CDF = np.cumsum([CATEGORY_FREQUENCY[c] for c in CATEGORIES])
_CATEGORY_CDF /= _CATEGORY_CDF[-1]
_COLOR_NAMES = tuple(COLORS)
_SIZE_NAMES = tuple(SIZES)
_ROTATION_JITTER = {"arrow": 15.0, "house": 15.0, "heart": 15.0, "cross": 15.0}
_ARROW_DIRECTIONS = {0.0: "right", 90.0: "up", 180.0: "left", 270.0: "down"}
_POSITION_TRIES = 25
_ATTRIBUTE_TRIES = 3
_SCENE_RESTARTS = 10
_TOUCH_GAP = 2  # must stay below shapes._WINDOW_MARGIN (the dilation happens inside the window)
_DILATE = ndimage.generate_binary_structure(2, 1)


def split_code(split: str) -> int:
    """A stable integer for a split name (train 0, val 1, test 2, anything else a CRC32 of the name)."""
    return _SPLIT_CODES.get(split, zlib.crc32(split.encode("utf-8")) & 0x7FFFFFFF)


def image_rng(seed: int, split: str, index: int, stream: int) -> np.random.Generator:
    """The generator for one image's stream; independent of every other image and stream."""
    if seed < 0 or index < 0:
        raise ValueError(f"seed and index must be >= 0, got seed={seed}, index={index}")
    return np.random.default_rng([int(seed), split_code(split), int(index), int(stream)])


@dataclass(frozen=True)
class SceneObject:
    """One object of a scene (all pixel values in image pixels)."""

    category: str
    """Shape category (a :data:`CATEGORIES` name)."""
    color: str
    """Colour name (a :data:`COLORS` key)."""
    size: str
    """Size name (a :data:`SIZES` key)."""
    center: tuple[float, float]
    """(x, y) of the shape-frame origin, pixels."""
    radius: float
    """Circumscribed radius, pixels (diameter within the size's range, scaled to the image size)."""
    rotation: float
    """Counter-clockwise rotation in degrees."""
    depth: int
    """Paint order: 0 is painted first (at the back)."""
    rgb: tuple[int, int, int]
    """The object's base colour: the named colour plus a per-object jitter."""
    shading: tuple[float, float]
    """Linear shading (gx, gy): the colour is scaled by 1 + (gx dx + gy dy) / radius across the object."""
    direction: str | None = None
    """Where an arrow points (right/up/left/down); None for other categories."""

    @property
    def phrase(self) -> str:
        """'small red star'."""
        return f"{self.size} {self.color} {self.category}"


@dataclass(frozen=True)
class Background:
    """The background texture."""

    kind: str
    """One of :data:`BACKGROUNDS`."""
    colors: tuple[tuple[int, int, int], tuple[int, int, int]]
    """The two colours the texture mixes."""
    angle: float
    """Direction of stripes/gradient/checker, degrees."""
    period: float
    """Stripe/checker period or noise cell size, pixels."""


@dataclass(frozen=True)
class Scene:
    """A sampled scene: what :func:`~vlzoo.toyworld.render.render_scene` paints."""

    image_size: int
    background: Background
    objects: tuple[SceneObject, ...]
    """Back to front (``objects[k].depth == k``)."""
    texture_seed: int
    """Seed of the pixel noise (so rendering is a pure function of the scene)."""


@dataclass(frozen=True)
class Layout:
    """The rasterised scene: per-object windows and who is on top where."""

    rasters: tuple[ShapeRaster, ...]
    instance_map: np.ndarray
    """(S, S) int16: 0 = background, k + 1 = object k is the top-most object at that pixel."""


def _min_visible_pixels(image_size: int) -> float:
    return max(4.0, MIN_VISIBLE_PIXELS * scale_for(image_size) ** 2)


def _raster_for(obj: SceneObject, image_size: int) -> ShapeRaster:
    return rasterize(obj.category, obj.center, obj.radius, obj.rotation, image_size)


def layout_scene(scene: Scene) -> Layout:
    """Rasterise every object and composite the instance map (painter's order)."""
    size = scene.image_size
    instance_map = np.zeros((size, size), dtype=np.int16)
    rasters = []
    for k, obj in enumerate(scene.objects):
        raster = _raster_for(obj, size)
        window = instance_map[raster.slices]
        window[raster.mask] = k + 1
        rasters.append(raster)
    return Layout(rasters=tuple(rasters), instance_map=instance_map)


def _sample_attributes(rng: np.random.Generator, image_size: int, depth: int) -> dict:
    # Inverse-CDF draw (Generator.choice with p= is ~10x slower for one sample).
    category = CATEGORIES[
        min(int(np.searchsorted(_CATEGORY_CDF, rng.random(), side="right")), len(CATEGORIES) - 1)
    ]
    color = _COLOR_NAMES[int(rng.integers(len(_COLOR_NAMES)))]
    size = _SIZE_NAMES[int(rng.integers(len(_SIZE_NAMES)))]
    lo, hi = SIZES[size]
    radius = 0.5 * float(rng.uniform(lo, hi)) * scale_for(image_size)
    direction = None
    if category == "arrow":
        base = float(rng.choice(list(_ARROW_DIRECTIONS)))
        direction = _ARROW_DIRECTIONS[base]
        rotation = base + float(rng.uniform(-1, 1)) * _ROTATION_JITTER["arrow"]
    else:
        rotation = float(rng.uniform(-1, 1)) * _ROTATION_JITTER.get(category, 25.0)
    jitter = rng.uniform(-8, 8, size=3).tolist()
    rgb = tuple(min(255, max(0, round(c + j))) for c, j in zip(COLORS[color], jitter))
    angle = float(rng.uniform(0, 2 * math.pi))
    strength = float(rng.uniform(0.0, 0.08))
    shading = (strength * math.cos(angle), strength * math.sin(angle))
    return dict(
        category=category,
        color=color,
        size=size,
        radius=radius,
        rotation=rotation,
        depth=depth,
        rgb=rgb,
        shading=shading,
        direction=direction,
    )


def _try_place(
    rng: np.random.Generator,
    attrs: dict,
    placed: list[SceneObject],
    full_area: list[int],
    instance_map: np.ndarray,
    image_size: int,
) -> tuple[SceneObject, ShapeRaster] | None:
    """Try random centres for one object; return it with its raster if the constraints hold."""
    radius = attrs["radius"]
    lo, hi = radius + 1.0, image_size - radius - 1.0
    if hi <= lo:
        return None
    min_pixels = _min_visible_pixels(image_size)
    n = len(placed)
    same_color = np.array([o.color == attrs["color"] for o in placed], dtype=bool)
    visible = np.bincount(instance_map.ravel(), minlength=n + 1)[1:]
    needed = np.maximum(MIN_VISIBLE_FRACTION * np.asarray(full_area, dtype=np.float64), min_pixels)
    for _ in range(_POSITION_TRIES):
        center = (float(rng.uniform(lo, hi)), float(rng.uniform(lo, hi)))
        raster = rasterize(attrs["category"], center, radius, attrs["rotation"], image_size)
        if raster.mask.sum() < min_pixels:
            continue
        if n:
            window = instance_map[raster.slices]
            # Pixels each lower object would lose under the new one.
            lost = np.bincount(window[raster.mask], minlength=n + 1)[1:]
            if np.any((lost > 0) & (visible - lost < needed)):
                continue
            if not same_color.any():
                return SceneObject(center=center, **attrs), raster
            # Same-coloured objects may not overlap or come within _TOUCH_GAP pixels of each other.
            grown = ndimage.binary_dilation(raster.mask, structure=_DILATE, iterations=_TOUCH_GAP)
            near = np.unique(window[grown])
            if same_color[near[near > 0] - 1].any():
                continue
        obj = SceneObject(center=center, **attrs)
        return obj, raster
    return None


def _sample_objects(rng: np.random.Generator, image_size: int) -> tuple[list[SceneObject], Layout]:
    n_objects = int(rng.integers(1, MAX_OBJECTS + 1))
    best: tuple[list[SceneObject], Layout] = (
        [],
        Layout((), np.zeros((image_size, image_size), dtype=np.int16)),
    )
    for _ in range(_SCENE_RESTARTS):
        placed: list[SceneObject] = []
        rasters: list[ShapeRaster] = []
        full_area: list[int] = []
        instance_map = np.zeros((image_size, image_size), dtype=np.int16)
        for depth in range(n_objects):
            result = None
            for _ in range(_ATTRIBUTE_TRIES):
                attrs = _sample_attributes(rng, image_size, depth)
                result = _try_place(rng, attrs, placed, full_area, instance_map, image_size)
                if result is not None:
                    break
            if result is None:
                break
            obj, raster = result
            instance_map[raster.slices][raster.mask] = depth + 1
            placed.append(obj)
            rasters.append(raster)
            full_area.append(int(raster.mask.sum()))
        layout = Layout(rasters=tuple(rasters), instance_map=instance_map)
        if len(placed) == n_objects:
            return placed, layout
        if len(placed) > len(best[0]):
            best = (placed, layout)
    return best


def _hsv_rgb(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v)) * 255.0


def _sample_background(rng: np.random.Generator, objects: list[SceneObject], image_size: int) -> Background:
    kind = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
    object_rgb = np.array([o.rgb for o in objects], dtype=np.float64).reshape(-1, 3)
    colors = None
    for _ in range(30):
        if objects and rng.random() < 0.3:
            # Share a hue with one of the objects, desaturated: colour alone does not give objects away.
            r, g, b = (np.array(objects[int(rng.integers(len(objects)))].rgb) / 255.0).tolist()
            hue = colorsys.rgb_to_hsv(r, g, b)[0]
        else:
            hue = float(rng.random())
        sat = float(rng.uniform(0.05, 0.45))
        val = float(rng.uniform(0.25, 0.85))
        first = _hsv_rgb(hue, sat, val)
        dv = float(rng.uniform(0.12, 0.3)) * (1 if val < 0.55 else -1)
        second = _hsv_rgb(
            hue + float(rng.uniform(-0.08, 0.08)),
            float(np.clip(sat + rng.uniform(-0.1, 0.1), 0, 1)),
            val + dv,
        )
        pair = np.stack([first, second])
        dist = np.linalg.norm(object_rgb[:, None, :] - pair[None, :, :], axis=-1)
        if dist.size == 0 or dist.min() >= 70.0:
            colors = pair
            break
    if colors is None:
        colors = np.array([[70.0, 70.0, 70.0], [95.0, 95.0, 95.0]])
    s = scale_for(image_size)
    period = float(rng.uniform(8.0, 18.0)) * s if kind != "noise" else float(rng.uniform(8.0, 20.0)) * s
    rgb = tuple(tuple(int(c) for c in np.clip(np.round(col), 0, 255)) for col in colors)
    return Background(kind=kind, colors=rgb, angle=float(rng.uniform(0, 180)), period=period)


def sample_scene_and_layout(rng: np.random.Generator, image_size: int) -> tuple[Scene, Layout]:
    """Draw one scene, with the layout sampling already computed (equal to ``layout_scene(scene)``).

    Args:
        rng: the image's scene stream (:func:`image_rng` with :data:`STREAM_SCENE`).
        image_size: S in 32..512.

    Returns:
        The :class:`Scene` (1..5 objects, back to front, and a background) and its :class:`Layout`.
    """
    image_size = check_image_size(image_size)
    objects, layout = _sample_objects(rng, image_size)
    background = _sample_background(rng, objects, image_size)
    texture_seed = int(rng.integers(2**31))
    scene = Scene(
        image_size=image_size, background=background, objects=tuple(objects), texture_seed=texture_seed
    )
    return scene, layout


def sample_scene(rng: np.random.Generator, image_size: int) -> Scene:
    """Draw one scene (see :func:`sample_scene_and_layout`)."""
    return sample_scene_and_layout(rng, image_size)[0]


def scene_for(seed: int, split: str, index: int, image_size: int) -> Scene:
    """The scene of image ``index`` of ``split`` in the world generated with ``seed``."""
    return sample_scene(image_rng(seed, split, index, STREAM_SCENE), image_size)
