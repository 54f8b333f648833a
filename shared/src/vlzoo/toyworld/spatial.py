"""Positions in words, defined on visible-mask centroids with margins so every stated position is clear.

The image is cut into thirds. A coordinate within ``POSITION_MARGIN * S`` of a cut is *ambiguous* and no
position is stated for it. A relation between two objects ("A is left of B") holds when the centroids differ
by more than ``RELATION_MARGIN * S`` along that axis; the *dominant* relation (used in captions) also needs
that axis to beat the other one by a factor ``DOMINANCE``. Ambiguous pairs get no relation.
"""

from __future__ import annotations

__all__ = [
    "POSITION_MARGIN",
    "RELATION_MARGIN",
    "DOMINANCE",
    "POSITION_WORDS",
    "RELATIONS",
    "column_word",
    "row_word",
    "position_word",
    "relation_holds",
    "dominant_relation",
]

POSITION_MARGIN = 0.04
"""Dead zone around the 1/3 and 2/3 cuts, as a fraction of the image size."""
RELATION_MARGIN = 0.10
"""Minimum centroid difference for a left/right/above/below relation, as a fraction of the image size."""
DOMINANCE = 1.5
"""For the dominant relation, the main-axis difference must be this many times the other-axis one."""

POSITION_WORDS = {
    ("top", "left"): "top left",
    ("top", "center"): "top",
    ("top", "right"): "top right",
    ("middle", "left"): "left",
    ("middle", "center"): "center",
    ("middle", "right"): "right",
    ("bottom", "left"): "bottom left",
    ("bottom", "center"): "bottom",
    ("bottom", "right"): "bottom right",
}
"""(row, column) -> the answer word for "Where is ...?"."""

RELATIONS = ("to the left of", "to the right of", "above", "below")
"""The relation phrases, as they appear in questions and captions."""


def _third(value: float, image_size: int, words: tuple[str, str, str]) -> str | None:
    t = value / image_size
    m = POSITION_MARGIN
    if t < 1 / 3 - m:
        return words[0]
    if 1 / 3 + m < t < 2 / 3 - m:
        return words[1]
    if t > 2 / 3 + m:
        return words[2]
    return None


def column_word(x: float, image_size: int) -> str | None:
    """'left' / 'center' / 'right' for a centroid x, or None near a cut."""
    return _third(x, image_size, ("left", "center", "right"))


def row_word(y: float, image_size: int) -> str | None:
    """'top' / 'middle' / 'bottom' for a centroid y, or None near a cut."""
    return _third(y, image_size, ("top", "middle", "bottom"))


def position_word(centroid: tuple[float, float], image_size: int) -> str | None:
    """One of the 9 :data:`POSITION_WORDS` values, or None if either axis is ambiguous."""
    col = column_word(centroid[0], image_size)
    row = row_word(centroid[1], image_size)
    if col is None or row is None:
        return None
    return POSITION_WORDS[(row, col)]


def relation_holds(
    relation: str, a: tuple[float, float], b: tuple[float, float], image_size: int
) -> bool | None:
    """Whether "A <relation> B" is clearly true (True), clearly false (False) or ambiguous (None).

    Args:
        relation: one of :data:`RELATIONS`.
        a, b: (x, y) centroids of A and B in pixels (y grows downwards).
        image_size: S.
    """
    margin = RELATION_MARGIN * image_size
    if relation == "to the left of":
        d = b[0] - a[0]
    elif relation == "to the right of":
        d = a[0] - b[0]
    elif relation == "above":
        d = b[1] - a[1]
    elif relation == "below":
        d = a[1] - b[1]
    else:
        raise ValueError(f"unknown relation {relation!r}; expected one of {RELATIONS}")
    if d > margin:
        return True
    if d < -margin:
        return False
    return None


def dominant_relation(a: tuple[float, float], b: tuple[float, float], image_size: int) -> str | None:
    """The one relation that best describes A relative to B, or None when no axis clearly dominates."""
    dx = b[0] - a[0]
    dy = b[1] - a[1]
    margin = RELATION_MARGIN * image_size
    if abs(dx) > margin and abs(dx) >= DOMINANCE * abs(dy):
        return "to the left of" if dx > 0 else "to the right of"
    if abs(dy) > margin and abs(dy) >= DOMINANCE * abs(dx):
        return "above" if dy > 0 else "below"
    return None
