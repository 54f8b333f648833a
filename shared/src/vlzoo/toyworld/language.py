"""English from the scene graph: noun phrases, referring expressions, captions and descriptions.

Every sentence is produced from :class:`~vlzoo.toyworld.views.ObjectView` facts, so it is true of the
image by construction: positions and relations come from visible-mask centroids (:mod:`.spatial`) and are
left out where ambiguous, occlusion comes from the paint order. Every caption names every object with its
full "size colour shape" phrase.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vlzoo.toyworld.scene import Scene
from vlzoo.toyworld.spatial import dominant_relation, position_word
from vlzoo.toyworld.views import ObjectView
from vlzoo.toyworld.world import BACKGROUND_WORDS

__all__ = [
    "NUMBER_WORDS",
    "POSITION_PHRASES",
    "REFERENCE_ATTRIBUTES",
    "with_article",
    "join_list",
    "unique_reference",
    "reference_phrase",
    "part_phrase",
    "captions",
    "detailed_description",
    "object_description",
    "part_description",
]

NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

POSITION_PHRASES = {
    "top left": "in the top left corner",
    "top": "at the top",
    "top right": "in the top right corner",
    "left": "on the left",
    "center": "in the center",
    "right": "on the right",
    "bottom left": "in the bottom left corner",
    "bottom": "at the bottom",
    "bottom right": "in the bottom right corner",
}
"""Position word -> the phrase used in sentences ("a red star in the top left corner")."""

REFERENCE_ATTRIBUTES = (
    ("category",),
    ("color", "category"),
    ("size", "category"),
    ("size", "color", "category"),
)
"""Referring expressions tried in this order; the first that picks out exactly one object is used."""

_PART_WORDS = {
    "head": "the head of",
    "shaft": "the shaft of",
    "roof": "the roof of",
    "wall": "the wall of",
    "center": "the center of",
    "points": "the points of",
    "hole": "the hole in",
}


def with_article(phrase: str) -> str:
    """'a small star', 'an orange ring'."""
    return ("an " if phrase[:1] in "aeiou" else "a ") + phrase


def join_list(items: Sequence[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    if not items:
        raise ValueError("join_list of nothing")
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " and " + items[-1]


def _attr(view: ObjectView, name: str) -> str:
    return getattr(view.obj, name)


def unique_reference(
    views: Sequence[ObjectView], k: int, exclude: tuple[str, ...] = ()
) -> tuple[str, ...] | None:
    """The shortest attribute set that picks out ``views[k]`` alone, or None.

    Args:
        views: all objects of the image.
        k: the object to refer to.
        exclude: attributes the expression may not use (e.g. "color" when asking for the colour).
    """
    for attrs in REFERENCE_ATTRIBUTES:
        if any(a in exclude for a in attrs):
            continue
        key = tuple(_attr(views[k], a) for a in attrs)
        if sum(tuple(_attr(v, a) for a in attrs) == key for v in views) == 1:
            return attrs
    return None


def reference_phrase(view: ObjectView, attrs: tuple[str, ...]) -> str:
    """The words of a referring expression in English order: 'small red star', 'red star', 'star'."""
    return " ".join(_attr(view, a) for a in ("size", "color", "category") if a in attrs)


def part_phrase(view: ObjectView, part: str, parent_attrs: tuple[str, ...] = ("color", "category")) -> str:
    """'the head of the red arrow'."""
    return f"{_PART_WORDS[part]} the {reference_phrase(view, parent_attrs)}"


def _background_phrase(scene: Scene) -> str:
    return f"a {BACKGROUND_WORDS[scene.background.kind]} background"


def _count_phrase(n: int) -> str:
    return f"{NUMBER_WORDS[n]} shape" + ("" if n == 1 else "s")


def captions(views: Sequence[ObjectView], scene: Scene, rng: np.random.Generator, n: int = 5) -> list[str]:
    """``n`` different captions, each naming every object ("a large red star above a small blue ring ...").

    Args:
        views: the image's objects.
        scene: the scene (background, image size).
        rng: the image's language stream.
        n: captions to produce (the five styles, in a random order, cycled if n > 5).
    """
    size = scene.image_size
    bg = _background_phrase(scene)
    styles = [_chain_caption, _count_caption, _background_caption, _picture_caption, _position_caption]
    order = rng.permutation(len(styles))
    out = []
    for i in range(n):
        perm = [views[j] for j in rng.permutation(len(views))]
        out.append(styles[int(order[i % len(styles)])](perm, bg, size))
    return out


def _chain_caption(views: Sequence[ObjectView], bg: str, size: int) -> str:
    words = with_article(views[0].obj.phrase)
    for prev, nxt in zip(views[:-1], views[1:]):
        rel = dominant_relation(prev.centroid, nxt.centroid, size)
        words += f" {rel if rel else 'and'} {with_article(nxt.obj.phrase)}"
    return f"{words} on {bg}"


def _count_caption(views: Sequence[ObjectView], bg: str, size: int) -> str:
    things = join_list([with_article(v.obj.phrase) for v in views])
    return f"{_count_phrase(len(views))} on {bg}: {things}"


def _background_caption(views: Sequence[ObjectView], bg: str, size: int) -> str:
    things = join_list([with_article(v.obj.phrase) for v in views])
    return f"{bg} with {things}"


def _picture_caption(views: Sequence[ObjectView], bg: str, size: int) -> str:
    things = join_list([with_article(v.obj.phrase) for v in views])
    return f"a picture of {things}"


def _position_caption(views: Sequence[ObjectView], bg: str, size: int) -> str:
    items = []
    for v in views:
        word = position_word(v.centroid, size)
        phrase = with_article(v.obj.phrase)
        items.append(f"{phrase} {POSITION_PHRASES[word]}" if word else phrase)
    return join_list(items) + f" on {bg}"


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + "."


def _unique_full_phrase(views: Sequence[ObjectView], k: int) -> bool:
    return sum(v.obj.phrase == views[k].obj.phrase for v in views) == 1


def _where(view: ObjectView, size: int) -> str:
    word = position_word(view.centroid, size)
    return f" {POSITION_PHRASES[word]}" if word else ""


def object_description(views: Sequence[ObjectView], k: int, size: int, rng: np.random.Generator) -> str:
    """A few sentences about one object: what it is, where, what covers it, one relation.

    Args:
        views: the image's objects.
        k: the object described.
        size: image size S.
        rng: the image's language stream (picks the related object).
    """
    view = views[k]
    where = _where(view, size)
    text = [_sentence(with_article(view.obj.phrase) + (f"{where} of the image" if where else ""))]
    if view.obj.direction:
        text.append(f"It points {view.obj.direction}.")
    if view.covered_by:
        cover = views[max(view.covered_by)]
        text.append(f"It is partly covered by {with_article(cover.obj.phrase)}.")
    others = [j for j in rng.permutation(len(views)) if j != k and _unique_full_phrase(views, int(j))]
    for j in others:
        rel = dominant_relation(view.centroid, views[int(j)].centroid, size)
        if rel:
            text.append(f"It is {rel} the {views[int(j)].obj.phrase}.")
            break
    if view.parts:
        names = join_list([p.name for p in view.parts])
        text.append(f"Its {names} {'are' if len(view.parts) > 1 or names == 'points' else 'is'} visible.")
    return " ".join(text)


def part_description(view: ObjectView, part: str) -> str:
    """One sentence about a part: 'The head of the small red arrow, which points left.'"""
    base = f"{_PART_WORDS[part]} the {view.obj.phrase}"
    if part == "head" and view.obj.direction:
        return _sentence(f"{base}, which points {view.obj.direction}")
    if part == "hole":
        return _sentence(f"{base}, where the background shows through")
    return _sentence(base)


def detailed_description(views: Sequence[ObjectView], scene: Scene) -> str:
    """A paragraph describing the whole image (the LLaVA "detailed description" answer).

    Objects are described in reading order (top to bottom, then left to right), each with its position,
    direction (arrows), and which object partly covers it.
    """
    size = scene.image_size
    n = len(views)
    text = [f"The image shows {_count_phrase(n)} on {_background_phrase(scene)}."]
    order = sorted(range(n), key=lambda j: (round(views[j].centroid[1] / (size / 3)), views[j].centroid[0]))
    for rank, j in enumerate(order):
        view = views[j]
        where = _where(view, size)
        lead = "There is" if rank == 0 else "There is also"
        sentence = f"{lead} {with_article(view.obj.phrase)}{where}"
        if view.obj.direction:
            sentence += f", pointing {view.obj.direction}"
        text.append(sentence + ".")
        if view.covered_by:
            text.append(f"It is partly covered by {with_article(views[max(view.covered_by)].obj.phrase)}.")
    pairs = [(a, b) for a in order for b in order if a < b]
    for a, b in pairs[:3]:
        if not (_unique_full_phrase(views, a) and _unique_full_phrase(views, b)):
            continue
        rel = dominant_relation(views[a].centroid, views[b].centroid, size)
        if rel:
            text.append(_sentence(f"the {views[a].obj.phrase} is {rel} the {views[b].obj.phrase}"))
    return " ".join(text)
