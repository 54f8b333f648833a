"""Visual questions with short answers, generated from the visible objects (true by construction).

Question forms are fixed English patterns (listed in ``WORLD.md``) so an independent parser can check every
answer against the masks. Categories:

- ``count``: "How many shapes / stars / red shapes are there in the image?" -> a digit (0 for an absent
  shape, offered in a quarter of the images);
- ``color``: "What color is the <ref>?" (the reference does not use the colour);
- ``shape``: "What shape is the <ref> object?" (the reference is colour and/or size only);
- ``position``: "Where is the <ref> in the image?" -> one of the 9 position words (clear cases only);
- ``size``: "What size is the <ref>?" -> small / medium / large;
- ``relation`` (training only): "Is the <ref> to the left of / above / ... the <ref>?" -> yes / no;
- ``existence`` (training) and POPE's ``existence_random`` / ``existence_popular`` /
  ``existence_adversarial`` (evaluation): "Is there a <shape> in the image?" -> yes / no, the negatives
  drawn uniformly from absent shapes, from the most frequent absent shapes, or from absent look-alikes of a
  present shape (:data:`~vlzoo.toyworld.world.SIMILAR_CATEGORIES`);
- ``description``: a detailed description (long answer, no single-word suffix).

Where an image supports several questions of a category, one is drawn *answer first* (each distinct answer
equally likely), which keeps the answer priors flat. A ``<ref>`` is the shortest of "shape", "colour shape",
"size shape", "size colour shape" that picks out exactly one object; objects without one get no question.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vlzoo.toyworld.language import detailed_description, reference_phrase, unique_reference, with_article
from vlzoo.toyworld.scene import Scene
from vlzoo.toyworld.spatial import RELATIONS, position_word, relation_holds
from vlzoo.toyworld.views import ObjectView
from vlzoo.toyworld.world import CATEGORIES, CATEGORY_FREQUENCY, PLURALS, SIMILAR_CATEGORIES

__all__ = [
    "QA",
    "SINGLE_WORD_SUFFIX",
    "SHORT_PHRASE_SUFFIX",
    "EVAL_CATEGORIES",
    "POPE_SCHEMES",
    "DESCRIPTION_PROMPTS",
    "pope_negative",
    "candidate_questions",
    "eval_questions",
    "conversation_questions",
]

SINGLE_WORD_SUFFIX = "Answer the question using a single word or phrase."
"""LLaVA-1.5's short-answer instruction (VQAv2/GQA/POPE prompts)."""
SHORT_PHRASE_SUFFIX = "Answer the question using a short phrase."
"""Osprey's short-phrase instruction (region captions)."""

POPE_SCHEMES = ("random", "popular", "adversarial")
EVAL_CATEGORIES = ("count", "color", "shape", "position", "size") + tuple(
    f"existence_{s}" for s in POPE_SCHEMES
)
"""Categories of ``vqa_questions.jsonl`` (val split)."""

DESCRIPTION_PROMPTS = (
    "Describe the image in detail.",
    "Give a detailed description of this image.",
    "Describe every shape you see in this picture.",
    "What does this image show? Describe it thoroughly.",
    "Explain in detail what is drawn in the image.",
    "Write a detailed description of the picture, including where each shape is.",
)
"""Instructions of the detailed-description turn."""

_SHAPE_REFERENCES = (("color",), ("size", "color"))
_POPULAR_TOP = 3
_ZERO_COUNT_RATE = 0.25
"""How often an image also offers "How many <absent shape>...?" (answer 0) among its count questions."""


@dataclass(frozen=True)
class QA:
    """One question with its answer."""

    question: str
    """The question without any instruction suffix."""
    answer: str
    category: str
    short: bool = True
    """Short answer: the prompt carries :data:`SINGLE_WORD_SUFFIX`."""

    def prompt(self, separator: str = "\n") -> str:
        """The question as shown to the model (with the single-word suffix when ``short``)."""
        return f"{self.question}{separator}{SINGLE_WORD_SUFFIX}" if self.short else self.question


def _present(views: Sequence[ObjectView]) -> set[str]:
    return {v.obj.category for v in views}


def pope_negative(present: set[str], scheme: str, rng: np.random.Generator) -> str:
    """An absent category chosen by one of POPE's negative-sampling schemes.

    Args:
        present: categories in the image.
        scheme: "random" (uniform over absent), "popular" (one of the 3 most frequent absent categories
            under :data:`CATEGORY_FREQUENCY`), "adversarial" (the closest absent look-alike of a present
            category, else popular).
        rng: generator.
    """
    absent = [c for c in CATEGORIES if c not in present]
    if not absent:
        raise ValueError("every category is present: no negative exists")
    if scheme == "random":
        return absent[int(rng.integers(len(absent)))]
    popular = sorted(absent, key=lambda c: (-CATEGORY_FREQUENCY[c], CATEGORIES.index(c)))[:_POPULAR_TOP]
    if scheme == "popular":
        return popular[int(rng.integers(len(popular)))]
    if scheme == "adversarial":
        for category in rng.permutation(sorted(present)):
            for similar in SIMILAR_CATEGORIES[str(category)]:
                if similar not in present:
                    return similar
        return popular[0]
    raise ValueError(f"unknown POPE scheme {scheme!r}; expected one of {POPE_SCHEMES}")


def _count(views, rng) -> list[QA]:
    out = [QA("How many shapes are there in the image?", str(len(views)), "count")]
    present = _present(views)
    for category in sorted(present, key=CATEGORIES.index):
        n = sum(v.obj.category == category for v in views)
        out.append(QA(f"How many {PLURALS[category]} are there in the image?", str(n), "count"))
    absent = [c for c in CATEGORIES if c not in present]
    missing = absent[int(rng.integers(len(absent)))]
    if rng.random() < _ZERO_COUNT_RATE:
        out.append(QA(f"How many {PLURALS[missing]} are there in the image?", "0", "count"))
    for color in sorted({v.obj.color for v in views}):
        n = sum(v.obj.color == color for v in views)
        out.append(QA(f"How many {color} shapes are there in the image?", str(n), "count"))
    return out


def _color(views, rng) -> list[QA]:
    out = []
    for k, view in enumerate(views):
        attrs = unique_reference(views, k, exclude=("color",))
        if attrs:
            out.append(QA(f"What color is the {reference_phrase(view, attrs)}?", view.obj.color, "color"))
    return out


def _shape(views, rng) -> list[QA]:
    out = []
    for view in views:
        for attrs in _SHAPE_REFERENCES:
            key = tuple(getattr(view.obj, a) for a in attrs)
            if sum(tuple(getattr(v.obj, a) for a in attrs) == key for v in views) == 1:
                out.append(
                    QA(
                        f"What shape is the {reference_phrase(view, attrs)} object?",
                        view.obj.category,
                        "shape",
                    )
                )
                break
    return out


def _position(views, rng, size: int) -> list[QA]:
    out = []
    for k, view in enumerate(views):
        word = position_word(view.centroid, size)
        attrs = unique_reference(views, k)
        if word and attrs:
            out.append(QA(f"Where is the {reference_phrase(view, attrs)} in the image?", word, "position"))
    return out


def _size(views, rng) -> list[QA]:
    out = []
    for k, view in enumerate(views):
        attrs = unique_reference(views, k, exclude=("size",))
        if attrs:
            out.append(QA(f"What size is the {reference_phrase(view, attrs)}?", view.obj.size, "size"))
    return out


def _relation(views, rng, size: int) -> list[QA]:
    out = []
    refs = [unique_reference(views, k) for k in range(len(views))]
    for a in range(len(views)):
        for b in range(len(views)):
            if a == b or refs[a] is None or refs[b] is None:
                continue
            relation = RELATIONS[int(rng.integers(len(RELATIONS)))]
            holds = relation_holds(relation, views[a].centroid, views[b].centroid, size)
            if holds is None:
                continue
            first, second = reference_phrase(views[a], refs[a]), reference_phrase(views[b], refs[b])
            question = f"Is the {first} {relation} the {second}?"
            out.append(QA(question, "yes" if holds else "no", "relation"))
    return out


def _exists(thing: str, answer: bool, category: str) -> QA:
    return QA(f"Is there {with_article(thing)} in the image?", "yes" if answer else "no", category)


def _existence(views, rng) -> list[QA]:
    present = _present(views)
    out = [_exists(c, True, "existence") for c in sorted(present, key=CATEGORIES.index)]
    out += [_exists(pope_negative(present, s, rng), False, "existence") for s in POPE_SCHEMES]
    combos = {(v.obj.color, v.obj.category) for v in views}
    for color, category in sorted(combos):
        out.append(_exists(f"{color} {category}", True, "existence"))
    # Attribute negatives: a present shape in a colour no object of that shape has.
    colors = sorted({v.obj.color for v in views} | {"red", "blue", "green", "yellow"})
    for category in sorted(present):
        wrong = [c for c in colors if (c, category) not in combos]
        out.append(_exists(f"{wrong[int(rng.integers(len(wrong)))]} {category}", False, "existence"))
    return out


def candidate_questions(
    views: Sequence[ObjectView], scene: Scene, rng: np.random.Generator
) -> dict[str, list[QA]]:
    """Every short question the image supports, by category (training categories)."""
    size = scene.image_size
    return {
        "count": _count(views, rng),
        "color": _color(views, rng),
        "shape": _shape(views, rng),
        "position": _position(views, rng, size),
        "size": _size(views, rng),
        "relation": _relation(views, rng, size),
        "existence": _existence(views, rng),
    }


def _pick(items: list[QA], rng: np.random.Generator) -> QA:
    """A random question, drawn answer first: every distinct answer is equally likely, so answer priors
    stay flat (most per-shape counts are "1"; without this, "1" would be two thirds of the count answers)."""
    answers = sorted({qa.answer for qa in items})
    answer = answers[int(rng.integers(len(answers)))]
    matching = [qa for qa in items if qa.answer == answer]
    return matching[int(rng.integers(len(matching)))]


def eval_questions(
    views: Sequence[ObjectView],
    scene: Scene,
    rng: np.random.Generator,
    candidates: dict[str, list[QA]] | None = None,
) -> list[QA]:
    """The evaluation questions of one image: one per answerable category of count / color / shape /
    position / size, and for each POPE scheme one "yes" (a present shape, shared by the three schemes as in
    POPE) and one "no" question. ``candidates``: a :func:`candidate_questions` result to draw from."""
    candidates = candidates if candidates is not None else candidate_questions(views, scene, rng)
    out = [_pick(candidates[c], rng) for c in EVAL_CATEGORIES[:5] if candidates[c]]
    present = _present(views)
    positive = sorted(present, key=CATEGORIES.index)[int(rng.integers(len(present)))]
    for scheme in POPE_SCHEMES:
        category = f"existence_{scheme}"
        pair = [
            _exists(positive, True, category),
            _exists(pope_negative(present, scheme, rng), False, category),
        ]
        out += [pair[int(i)] for i in rng.permutation(2)]
    return out


def conversation_questions(
    views: Sequence[ObjectView],
    scene: Scene,
    rng: np.random.Generator,
    max_turns: int = 6,
    candidates: dict[str, list[QA]] | None = None,
) -> list[QA]:
    """The turns of one stage-2 LLaVA record: 3..``max_turns`` short questions from different categories
    (random order), plus, with probability 0.3, a detailed-description turn. ``candidates``: a
    :func:`candidate_questions` result to draw from."""
    candidates = candidates if candidates is not None else candidate_questions(views, scene, rng)
    categories = [c for c in candidates if candidates[c]]
    order = [categories[int(i)] for i in rng.permutation(len(categories))]
    n_turns = int(rng.integers(3, max_turns + 1))
    turns = [_pick(candidates[c], rng) for c in order[:n_turns]]
    if rng.random() < 0.3:
        prompt = DESCRIPTION_PROMPTS[int(rng.integers(len(DESCRIPTION_PROMPTS)))]
        description = QA(prompt, detailed_description(views, scene), "description", short=False)
        turns.insert(int(rng.integers(len(turns) + 1)), description)
    return turns
