"""Shape rasterisation: areas against closed forms, exact agreement with shapely, parts, rotation."""

import math

import numpy as np
import pytest
import shapely

from vlzoo.toyworld.shapes import rasterize
from vlzoo.toyworld.world import CATEGORIES, PARTS

RADIUS = 120.0
SIZE = 256
CENTER = (128.3, 127.6)


def _regular_area(n: int) -> float:
    return 0.5 * n * math.sin(2 * math.pi / n)


# Areas of the unit-radius shapes, worked out by hand from the definitions in shapes.py.
EXPECTED_AREA = {
    "circle": math.pi,
    "ellipse": math.pi * 0.55,
    "square": 1.4**2,
    "diamond": 2 * 0.62,
    "triangle": _regular_area(3),
    "pentagon": _regular_area(5),
    "hexagon": _regular_area(6),
    # Star polygon with alternating radii R=1, r=0.45: 2n triangles of area R r sin(pi/n) / 2.
    "star": 5 * 1.0 * 0.45 * math.sin(math.pi / 5),
    "ring": math.pi * (1 - 0.55**2),
    "plus": 2 * (0.56 * 1.84) - 0.56**2,
    # Upright 0.4 x 1.94 plus crossbar 1.24 x 0.4, minus their 0.4 x 0.4 overlap.
    "cross": 0.4 * 1.94 + 1.24 * 0.4 - 0.4 * 0.4,
    # Shaft 1.1 x 0.4 + head triangle (base 1.24, height 0.87) - their overlap (u in [0.1, 0.15]).
    "arrow": 1.1 * 0.4 + 0.5 * 1.24 * 0.87 - 0.05 * 0.4,
    "trapezoid": 0.5 * (1.76 + 0.88) * 0.9,
    # Wall 1.16 x 0.85 plus roof triangle (base 1.56, height 0.9).
    "house": 1.16 * 0.85 + 0.5 * 1.56 * 0.9,
}


def _pixel_centres(size):
    c = np.arange(size) + 0.5
    return np.meshgrid(c, c)


@pytest.mark.parametrize("category", CATEGORIES)
def test_area_and_extent(category):
    raster = rasterize(category, CENTER, RADIUS, 0.0, SIZE)
    area = raster.mask.sum() / RADIUS**2
    if category in EXPECTED_AREA:
        assert area == pytest.approx(EXPECTED_AREA[category], rel=0.01)
    # Every shape fits in its circumscribed circle.
    x, y = _pixel_centres(SIZE)
    full = raster.paste(raster.mask, SIZE)
    assert np.hypot(x[full] - CENTER[0], y[full] - CENTER[1]).max() <= RADIUS + 1e-9


def test_heart_and_crescent_areas_against_a_fine_grid():
    # Reference by midpoint integration on a 1600^2 grid of the same implicit definitions.
    t = (np.arange(1600) + 0.5) / 800 - 1
    u, v = np.meshgrid(t, t)
    cell = (2 / 1600) ** 2
    x, y = 1.25 * u, 0.25 - 1.25 * v
    heart = ((x * x + y * y - 1) ** 3 - x * x * y**3 <= 0).sum() * cell
    crescent = ((u * u + v * v <= 1) & ((u - 0.5) ** 2 + v * v > 0.64)).sum() * cell
    for category, expected in (("heart", heart), ("crescent", crescent)):
        raster = rasterize(category, CENTER, RADIUS, 0.0, SIZE)
        assert raster.mask.sum() / RADIUS**2 == pytest.approx(expected, rel=0.01)


def _polygon(category):
    if category in ("triangle", "pentagon", "hexagon"):
        n = {"triangle": 3, "pentagon": 5, "hexagon": 6}[category]
        a = 2 * np.pi * np.arange(n) / n
        return np.stack([np.sin(a), -np.cos(a)], 1)
    if category == "trapezoid":
        return np.array([[-0.88, 0.45], [0.88, 0.45], [0.44, -0.45], [-0.44, -0.45]])
    if category == "diamond":
        return np.array([[0.62, 0], [0, 1], [-0.62, 0], [0, -1]])
    if category == "square":
        return np.array([[0.7, 0.7], [-0.7, 0.7], [-0.7, -0.7], [0.7, -0.7]])
    raise KeyError(category)


@pytest.mark.parametrize("category", ["triangle", "pentagon", "hexagon", "trapezoid", "diamond", "square"])
def test_polygons_match_shapely_pixel_for_pixel(category):
    """A brute-force reference: shapely's point-in-polygon at every pixel centre, rotated and scaled."""
    center, radius, rotation = (31.7, 28.2), 19.3, 17.0
    raster = rasterize(category, center, radius, rotation, 64)
    theta = math.radians(rotation)
    u, v = _polygon(category).T
    # Screen CCW rotation with y down.
    xs = center[0] + radius * (u * math.cos(theta) + v * math.sin(theta))
    ys = center[1] + radius * (-u * math.sin(theta) + v * math.cos(theta))
    polygon = shapely.Polygon(np.stack([xs, ys], 1))
    x, y = _pixel_centres(64)
    expected = shapely.contains_xy(polygon, x, y)
    assert np.array_equal(raster.paste(raster.mask, 64), expected)


@pytest.mark.parametrize("category", sorted(PARTS))
def test_parts(category):
    raster = rasterize(category, CENTER, RADIUS, 10.0, SIZE)
    assert set(raster.parts) == set(PARTS[category])
    if category == "ring":
        hole = raster.parts["hole"]
        assert not (hole & raster.mask).any()
        assert hole.sum() / RADIUS**2 == pytest.approx(math.pi * 0.55**2, rel=0.01)
        return
    union = np.zeros_like(raster.mask)
    for part in raster.parts.values():
        assert part.any() and not (part & ~raster.mask).any()
        assert not (part & union).any(), "parts overlap"
        union |= part
    assert np.array_equal(union, raster.mask), "parts do not cover the object"


@pytest.mark.parametrize(
    ("rotation", "expected"), [(0, (1, 0)), (90, (0, -1)), (180, (-1, 0)), (270, (0, 1))]
)
def test_rotation_is_counter_clockwise_on_screen(rotation, expected):
    """An arrow at rotation 0 points right; 90 degrees turns it to point up (towards smaller y)."""
    raster = rasterize("arrow", CENTER, RADIUS, rotation, SIZE)
    head_rows, head_cols = np.nonzero(raster.paste(raster.parts["head"], SIZE))
    shaft_rows, shaft_cols = np.nonzero(raster.paste(raster.parts["shaft"], SIZE))
    direction = np.array([head_cols.mean() - shaft_cols.mean(), head_rows.mean() - shaft_rows.mean()])
    direction /= np.linalg.norm(direction)
    assert direction == pytest.approx(np.array(expected, dtype=float), abs=0.02)


def test_window_is_clipped_to_the_image():
    raster = rasterize("circle", (2.0, 60.0), 10.0, 0.0, 64)
    full = raster.paste(raster.mask, 64)
    assert full.shape == (64, 64) and full[:, :12].any() and raster.x0 == 0


def test_unknown_category():
    with pytest.raises(ValueError, match="unknown shape category 'blob'"):
        rasterize("blob", CENTER, RADIUS, 0.0, SIZE)
