"""Hard-edged rasterisation of the 16 shape categories and their parts.

Each shape is an inside-test on shape-frame coordinates ``(u, v)``: unit radius (the shape fits in the unit
circle), ``u`` to the right, ``v`` downwards (image convention), rotation 0 = upright (arrows point right).
A pixel belongs to a shape when its *centre* passes the test, so the mask is exactly the set of pixels the
renderer paints: no anti-aliasing, nothing fuzzy at the boundary.

Shape shorthand: ``h, w`` = the object's window (its bounding square clipped to the image).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from vlzoo.toyworld.world import CATEGORIES, PARTS

__all__ = ["ShapeRaster", "rasterize", "shape_masks", "SHAPE_FUNCTIONS"]

Masks = tuple[np.ndarray, dict[str, np.ndarray]]


class _ConvexPolygon:
    """Inside-test of a convex polygon, boundary included, as K half-planes ``n . p <= c``."""

    def __init__(self, vertices: np.ndarray):
        a = np.asarray(vertices, dtype=np.float64)
        b = np.roll(a, -1, axis=0)
        # The signed area fixes the orientation, so every edge normal points outwards.
        sign = 1.0 if float(np.sum(a[:, 0] * b[:, 1] - b[:, 0] * a[:, 1])) > 0 else -1.0
        edge = b - a
        self.normals = sign * np.stack([edge[:, 1], -edge[:, 0]], axis=1)
        self.offsets = np.sum(self.normals * a, axis=1) + 1e-12

    def __call__(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        inside = np.ones(np.broadcast_shapes(u.shape, v.shape), dtype=bool)
        for (nu, nv), c in zip(self.normals.tolist(), self.offsets.tolist()):
            inside &= nu * u + nv * v <= c
        return inside


def _regular(n: int, radius: float = 1.0, phase: float = 0.0) -> np.ndarray:
    """Vertices of a regular n-gon with one vertex straight up (v = -radius) when ``phase`` is 0."""
    angles = phase + 2.0 * math.pi * np.arange(n) / n
    return np.stack([radius * np.sin(angles), -radius * np.cos(angles)], axis=1)


_STAR_OUTER = _regular(5)
_STAR_INNER_VERTICES = _regular(5, radius=0.45, phase=math.pi / 5)
_TRIANGLE = _ConvexPolygon(_regular(3))
_PENTAGON = _ConvexPolygon(_regular(5))
_HEXAGON = _ConvexPolygon(_regular(6))
_STAR_INNER = _ConvexPolygon(_STAR_INNER_VERTICES)
_STAR_TIPS = [
    _ConvexPolygon(np.stack([_STAR_OUTER[k], _STAR_INNER_VERTICES[k], _STAR_INNER_VERTICES[k - 1]]))
    for k in range(5)
]
_ARROW_HEAD = _ConvexPolygon(np.array([[0.97, 0.0], [0.1, -0.62], [0.1, 0.62]]))
_TRAPEZOID = _ConvexPolygon(np.array([[-0.88, 0.45], [0.88, 0.45], [0.44, -0.45], [-0.44, -0.45]]))
_ROOF = _ConvexPolygon(np.array([[-0.78, -0.05], [0.78, -0.05], [0.0, -0.95]]))
_RING_INNER = 0.55
_WINDOW_MARGIN = 3


def _circle(u, v) -> Masks:
    return u * u + v * v <= 1.0, {}


def _ellipse(u, v) -> Masks:
    return u * u + (v / 0.55) ** 2 <= 1.0, {}


def _square(u, v) -> Masks:
    return (np.abs(u) <= 0.7) & (np.abs(v) <= 0.7), {}


def _diamond(u, v) -> Masks:
    return np.abs(u) / 0.62 + np.abs(v) <= 1.0, {}


def _triangle(u, v) -> Masks:
    return _TRIANGLE(u, v), {}


def _pentagon(u, v) -> Masks:
    return _PENTAGON(u, v), {}


def _hexagon(u, v) -> Masks:
    return _HEXAGON(u, v), {}


def _trapezoid(u, v) -> Masks:
    return _TRAPEZOID(u, v), {}


def _star(u, v) -> Masks:
    center = _STAR_INNER(u, v)
    tips = np.zeros_like(center)
    for tip in _STAR_TIPS:
        tips |= tip(u, v)
    return center | tips, {"center": center, "points": tips & ~center}


def _heart(u, v) -> Masks:
    # The classic heart curve (x^2 + y^2 - 1)^3 - x^2 y^3 <= 0 (y up), whose smallest enclosing circle has
    # centre (0, 0.25) and radius 1.25: map it onto the unit circle.
    x = 1.25 * u
    y = 0.25 - 1.25 * v
    return (x * x + y * y - 1.0) ** 3 - x * x * y**3 <= 0.0, {}


def _cross(u, v) -> Masks:
    upright = (np.abs(u) <= 0.2) & (np.abs(v) <= 0.97)
    crossbar = (np.abs(u) <= 0.62) & (v >= -0.55) & (v <= -0.15)
    return upright | crossbar, {}


def _plus(u, v) -> Masks:
    au, av = np.abs(u), np.abs(v)
    return ((au <= 0.28) & (av <= 0.92)) | ((av <= 0.28) & (au <= 0.92)), {}


def _ring(u, v) -> Masks:
    r2 = u * u + v * v
    hole = r2 < _RING_INNER**2
    return (r2 <= 1.0) & ~hole, {"hole": hole}


def _crescent(u, v) -> Masks:
    return (u * u + v * v <= 1.0) & ((u - 0.5) ** 2 + v * v > 0.64), {}


def _arrow(u, v) -> Masks:
    head = _ARROW_HEAD(u, v)
    shaft = (u >= -0.95) & (u <= 0.15) & (np.abs(v) <= 0.2)
    return head | shaft, {"head": head, "shaft": shaft & ~head}


def _house(u, v) -> Masks:
    roof = _ROOF(u, v)
    wall = (np.abs(u) <= 0.58) & (v >= -0.05) & (v <= 0.8)
    return roof | wall, {"roof": roof, "wall": wall & ~roof}


SHAPE_FUNCTIONS: dict[str, Callable[[np.ndarray, np.ndarray], Masks]] = {
    "circle": _circle,
    "square": _square,
    "triangle": _triangle,
    "star": _star,
    "heart": _heart,
    "cross": _cross,
    "ring": _ring,
    "diamond": _diamond,
    "hexagon": _hexagon,
    "pentagon": _pentagon,
    "crescent": _crescent,
    "arrow": _arrow,
    "ellipse": _ellipse,
    "trapezoid": _trapezoid,
    "plus": _plus,
    "house": _house,
}
assert tuple(SHAPE_FUNCTIONS) == CATEGORIES
assert all(set(SHAPE_FUNCTIONS[c](np.zeros((1, 1)), np.zeros((1, 1)))[1]) == set(p) for c, p in PARTS.items())


def shape_masks(category: str, u: np.ndarray, v: np.ndarray) -> Masks:
    """The object mask and part masks of ``category`` at shape-frame coordinates.

    Args:
        category: one of :data:`~vlzoo.toyworld.world.CATEGORIES`.
        u, v: (h, w) float shape-frame coordinates (unit radius, v down).

    Returns:
        ``(mask, parts)``: (h, w) bool, and part name -> (h, w) bool (empty for categories without parts).
    """
    try:
        fn = SHAPE_FUNCTIONS[category]
    except KeyError:
        raise ValueError(f"unknown shape category {category!r}; expected one of {CATEGORIES}") from None
    return fn(u, v)


@dataclass(frozen=True)
class ShapeRaster:
    """One object rasterised into its window ``[y0:y0+h, x0:x0+w]`` of the image."""

    y0: int
    x0: int
    mask: np.ndarray
    """(h, w) bool: pixels whose centre lies inside the shape."""
    parts: dict[str, np.ndarray] = field(default_factory=dict)
    """part name -> (h, w) bool."""

    @property
    def slices(self) -> tuple[slice, slice]:
        h, w = self.mask.shape
        return slice(self.y0, self.y0 + h), slice(self.x0, self.x0 + w)

    def paste(self, window_mask: np.ndarray, image_size: int) -> np.ndarray:
        """A window-shaped bool array placed into an all-False (S, S) array."""
        out = np.zeros((image_size, image_size), dtype=bool)
        out[self.slices] = window_mask
        return out


def rasterize(
    category: str, center: tuple[float, float], radius: float, rotation: float, image_size: int
) -> ShapeRaster:
    """Rasterise one shape in image pixels.

    Args:
        category: shape category.
        center: (x, y) of the shape-frame origin in pixels (pixel (i, j) spans [j, j+1) x [i, i+1)).
        radius: circumscribed radius in pixels.
        rotation: counter-clockwise rotation in degrees, as seen on screen.
        image_size: S; the window is clipped to the (S, S) image.

    Returns:
        The :class:`ShapeRaster` (window origin, (h, w) mask and parts).
    """
    cx, cy = center
    # A margin of _WINDOW_MARGIN px around the shape, so a few pixels of dilation stay inside the window.
    x0 = max(0, math.floor(cx - radius) - _WINDOW_MARGIN)
    y0 = max(0, math.floor(cy - radius) - _WINDOW_MARGIN)
    x1 = min(image_size, math.ceil(cx + radius) + _WINDOW_MARGIN + 1)
    y1 = min(image_size, math.ceil(cy + radius) + _WINDOW_MARGIN + 1)
    dx = (np.arange(x0, x1, dtype=np.float64) + 0.5 - cx)[None, :]
    dy = (np.arange(y0, y1, dtype=np.float64) + 0.5 - cy)[:, None]
    theta = math.radians(rotation)
    c, s = math.cos(theta), math.sin(theta)
    # Screen CCW rotation with y down: shape point (u, v) lands at (u c + v s, -u s + v c); invert it.
    u = (dx * c - dy * s) / radius
    v = (dx * s + dy * c) / radius
    mask, parts = shape_masks(category, u, v)
    return ShapeRaster(y0=y0, x0=x0, mask=mask, parts=parts)
