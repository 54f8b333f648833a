"""The fixed vocabulary of the toy world: categories, colours, sizes, parts, backgrounds and the label split.

Everything that defines *what* the world contains lives here as module-level constants, so a paper can
import the label space without generating anything, and :data:`WORLD_VERSION` (part of every cache key)
changes whenever one of these constants or the rendering rules change.

Pixel quantities are given for the reference image size of 96 px and scale linearly with the image size
(:func:`scale_for`).
"""

from __future__ import annotations

from types import MappingProxyType

__all__ = [
    "WORLD_VERSION",
    "REFERENCE_SIZE",
    "MIN_IMAGE_SIZE",
    "MAX_IMAGE_SIZE",
    "CATEGORIES",
    "CATEGORY_IDS",
    "SUPERCATEGORIES",
    "PLURALS",
    "CATEGORY_FREQUENCY",
    "SIMILAR_CATEGORIES",
    "COLORS",
    "SIZES",
    "PARTS",
    "BACKGROUNDS",
    "BACKGROUND_WORDS",
    "UNSEEN_CATEGORIES",
    "SEEN_CATEGORIES",
    "MAX_OBJECTS",
    "MIN_VISIBLE_FRACTION",
    "MIN_VISIBLE_PIXELS",
    "MIN_PART_FRACTION",
    "MIN_PART_PIXELS",
    "scale_for",
    "check_image_size",
]

WORLD_VERSION = "toyworld-v1"
"""Bumped whenever the vocabulary, the sampling or the rendering changes; part of every cache key."""

REFERENCE_SIZE = 96
"""Image size (px) at which the pixel constants below are given."""

MIN_IMAGE_SIZE = 32
MAX_IMAGE_SIZE = 512

CATEGORIES: tuple[str, ...] = (
    "circle",
    "square",
    "triangle",
    "star",
    "heart",
    "cross",
    "ring",
    "diamond",
    "hexagon",
    "pentagon",
    "crescent",
    "arrow",
    "ellipse",
    "trapezoid",
    "plus",
    "house",
)
"""The 16 shape categories. COCO category id = index + 1; semantic label value = the same id."""

CATEGORY_IDS = MappingProxyType({name: i + 1 for i, name in enumerate(CATEGORIES)})
"""Category name -> COCO category id (1..16), also the value in the semantic/scribble/point PNGs."""

SUPERCATEGORIES = MappingProxyType(
    {
        "circle": "round",
        "ellipse": "round",
        "ring": "round",
        "crescent": "round",
        "square": "polygon",
        "triangle": "polygon",
        "diamond": "polygon",
        "hexagon": "polygon",
        "pentagon": "polygon",
        "trapezoid": "polygon",
        "star": "symbol",
        "heart": "symbol",
        "cross": "symbol",
        "plus": "symbol",
        "arrow": "symbol",
        "house": "symbol",
    }
)
"""COCO ``supercategory`` of each category."""

PLURALS = MappingProxyType(
    {c: (c + "es" if c.endswith(("s", "x", "sh", "ch")) else c + "s") for c in CATEGORIES}
)
"""English plural of each category name ("cross" -> "crosses", "plus" -> "pluses")."""

CATEGORY_FREQUENCY = MappingProxyType(
    {
        "circle": 1.00,
        "square": 0.95,
        "triangle": 0.90,
        "star": 0.85,
        "ring": 0.80,
        "arrow": 0.75,
        "heart": 0.72,
        "diamond": 0.70,
        "cross": 0.66,
        "ellipse": 0.62,
        "hexagon": 0.60,
        "pentagon": 0.58,
        "house": 0.55,
        "crescent": 0.53,
        "plus": 0.50,
        "trapezoid": 0.50,
    }
)
"""Relative sampling weight of each category (a mild long tail, so POPE's "popular" negatives mean
something)."""

SIMILAR_CATEGORIES = MappingProxyType(
    {
        "circle": ("ellipse", "ring", "hexagon", "crescent"),
        "square": ("diamond", "trapezoid", "house", "pentagon"),
        "triangle": ("trapezoid", "arrow", "diamond", "pentagon"),
        "star": ("plus", "cross", "pentagon", "heart"),
        "heart": ("crescent", "star", "circle", "diamond"),
        "cross": ("plus", "star", "arrow", "house"),
        "ring": ("circle", "ellipse", "crescent", "hexagon"),
        "diamond": ("square", "triangle", "trapezoid", "hexagon"),
        "hexagon": ("pentagon", "circle", "diamond", "ring"),
        "pentagon": ("hexagon", "house", "square", "star"),
        "crescent": ("ring", "circle", "heart", "ellipse"),
        "arrow": ("triangle", "cross", "plus", "house"),
        "ellipse": ("circle", "ring", "crescent", "diamond"),
        "trapezoid": ("triangle", "square", "house", "pentagon"),
        "plus": ("cross", "star", "square", "arrow"),
        "house": ("pentagon", "square", "trapezoid", "arrow"),
    }
)
"""Look-alike categories, most similar first: the adversarial negatives of POPE and of region yes/no."""

COLORS = MappingProxyType(
    {
        "red": (215, 40, 40),
        "orange": (245, 135, 25),
        "yellow": (240, 215, 40),
        "green": (45, 165, 65),
        "cyan": (40, 200, 215),
        "blue": (45, 75, 215),
        "purple": (135, 55, 190),
        "pink": (245, 125, 190),
        "brown": (125, 80, 40),
        "white": (240, 240, 240),
    }
)
"""The 10 named object colours (sRGB). Objects get a per-object jitter and shading around these."""

SIZES = MappingProxyType({"small": (14.0, 18.0), "medium": (24.0, 30.0), "large": (36.0, 44.0)})
"""Size name -> range of the object's diameter (px at 96 px; the shape fits in a circle of that diameter)."""

PARTS = MappingProxyType(
    {
        "arrow": ("head", "shaft"),
        "house": ("roof", "wall"),
        "star": ("center", "points"),
        "ring": ("hole",),
    }
)
"""Categories with parts. Parts are subsets of the object's mask, except a ring's hole (the enclosed area)."""

BACKGROUNDS: tuple[str, ...] = ("noise", "stripes", "gradient", "checker")
"""Background texture kinds."""

BACKGROUND_WORDS = MappingProxyType(
    {"noise": "noisy", "stripes": "striped", "gradient": "gradient", "checker": "checkered"}
)
"""The adjective used for each background kind in captions ("on a striped background")."""

UNSEEN_CATEGORIES: tuple[str, ...] = ("heart", "hexagon", "crescent", "trapezoid")
"""Categories never used as a positive or negative label in ``multilabel/train.txt`` (the open-vocabulary
test)."""

SEEN_CATEGORIES: tuple[str, ...] = tuple(c for c in CATEGORIES if c not in UNSEEN_CATEGORIES)
"""The 12 categories labelled in ``multilabel/train.txt`` (CATEGORIES order)."""

MAX_OBJECTS = 5
"""Objects per image are drawn uniformly from 1..MAX_OBJECTS."""

MIN_VISIBLE_FRACTION = 0.6
"""An occluded object keeps at least this fraction of its own pixels visible (else it is placed again)."""

MIN_VISIBLE_PIXELS = 20.0
"""...and at least this many visible pixels (at 96 px; scaled by area, never below 4)."""

MIN_PART_FRACTION = 0.5
"""A part is annotated only if at least this fraction of it is visible..."""

MIN_PART_PIXELS = 6.0
"""...and at least this many of its pixels (at 96 px; scaled by area, never below 3)."""


def check_image_size(image_size: int) -> int:
    """Return ``image_size`` as an int, or raise ``ValueError`` if it is outside 32..512."""
    if isinstance(image_size, bool) or int(image_size) != image_size:
        raise ValueError(f"image size must be an integer, got {image_size!r}")
    image_size = int(image_size)
    if not MIN_IMAGE_SIZE <= image_size <= MAX_IMAGE_SIZE:
        raise ValueError(f"image size must be in {MIN_IMAGE_SIZE}..{MAX_IMAGE_SIZE} px, got {image_size}")
    return image_size


def scale_for(image_size: int) -> float:
    """Linear scale of pixel constants: ``image_size / REFERENCE_SIZE``."""
    return image_size / REFERENCE_SIZE
