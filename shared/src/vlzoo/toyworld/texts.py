"""Training sentences for the text-only adapter (``texts.json``), from a template grammar with synonyms.

Each sample picks 1-4 shape labels, realises each as a noun phrase (a count or article, an optional size
and colour word, and one of the label's synonyms, singular or plural to agree with the count), joins them,
and drops them into one of :data:`TEMPLATES` (346 sentence frames). The label set of a sentence is exactly
the labels whose synonyms it contains: synonym lists are disjoint, no frame or filler word is a synonym,
and a multi-word synonym only ever contains synonyms of its own label (as TaI-DPT's extraction assumes:
match multi-word synonyms first).

All 16 categories are used (text is free; the seen/unseen split only concerns ``multilabel/train.txt``).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence

import numpy as np

from vlzoo.toyworld.world import CATEGORIES

__all__ = ["SYNONYMS", "COLOR_WORDS", "SIZE_WORDS", "TEMPLATES", "sample_text", "find_labels"]

SYNONYMS: dict[str, tuple[tuple[str, str], ...]] = {
    "circle": (
        ("circle", "circles"),
        ("disc", "discs"),
        ("disk", "disks"),
        ("dot", "dots"),
        ("round blob", "round blobs"),
    ),
    "square": (("square", "squares"), ("block", "blocks"), ("tile", "tiles"), ("box", "boxes")),
    "triangle": (("triangle", "triangles"), ("three-sided shape", "three-sided shapes"), ("wedge", "wedges")),
    "star": (("star", "stars"), ("five-pointed star", "five-pointed stars"), ("starburst", "starbursts")),
    "heart": (("heart", "hearts"), ("love heart", "love hearts"), ("valentine", "valentines")),
    "cross": (("cross", "crosses"), ("latin cross", "latin crosses"), ("crucifix", "crucifixes")),
    "ring": (
        ("ring", "rings"),
        ("hoop", "hoops"),
        ("donut", "donuts"),
        ("doughnut", "doughnuts"),
        ("annulus", "annuli"),
    ),
    "diamond": (("diamond", "diamonds"), ("rhombus", "rhombi"), ("lozenge", "lozenges")),
    "hexagon": (
        ("hexagon", "hexagons"),
        ("six-sided shape", "six-sided shapes"),
        ("honeycomb cell", "honeycomb cells"),
    ),
    "pentagon": (("pentagon", "pentagons"), ("five-sided shape", "five-sided shapes")),
    "crescent": (
        ("crescent", "crescents"),
        ("crescent moon", "crescent moons"),
        ("moon", "moons"),
        ("sickle", "sickles"),
    ),
    "arrow": (("arrow", "arrows"), ("pointer", "pointers"), ("arrow sign", "arrow signs")),
    "ellipse": (("ellipse", "ellipses"), ("oval", "ovals"), ("egg shape", "egg shapes")),
    "trapezoid": (("trapezoid", "trapezoids"), ("trapezium", "trapeziums")),
    "plus": (("plus sign", "plus signs"), ("plus", "pluses"), ("plus symbol", "plus symbols")),
    "house": (("house", "houses"), ("hut", "huts"), ("cottage", "cottages")),
}
"""Label -> (singular, plural) synonyms; the first is the label name itself."""

COLOR_WORDS: dict[str, tuple[str, ...]] = {
    "red": ("red", "crimson", "scarlet"),
    "orange": ("orange", "amber", "tangerine"),
    "yellow": ("yellow", "golden", "lemon"),
    "green": ("green", "emerald", "lime"),
    "cyan": ("cyan", "turquoise", "aqua"),
    "blue": ("blue", "navy", "azure"),
    "purple": ("purple", "violet", "lilac"),
    "pink": ("pink", "rose", "magenta"),
    "brown": ("brown", "chocolate", "tan"),
    "white": ("white", "ivory", "snowy"),
}
"""Colour -> words used for it."""

SIZE_WORDS = ("tiny", "small", "little", "medium-sized", "mid-sized", "big", "large", "huge", "giant")

_SUBJECTS = (
    "This picture",
    "The picture",
    "This photo",
    "A photo",
    "The image",
    "This image",
    "The drawing",
    "This illustration",
    "The scene",
    "A rendering",
    "This sketch",
    "The painting",
    "The frame",
    "This snapshot",
)
_VERBS = (
    "shows",
    "contains",
    "depicts",
    "features",
    "displays",
    "includes",
    "presents",
    "has",
    "holds",
    "portrays",
)
_WHERE = (
    "in the picture",
    "in this image",
    "in the photo",
    "on the canvas",
    "in the drawing",
    "in the scene",
    "on the screen",
    "in view",
    "in this illustration",
    "in the frame",
)
_LEADS = (
    "In this picture we can see",
    "In the image you can see",
    "Here we see",
    "We can see",
    "One can spot",
    "You will find",
    "Look closely and you will see",
    "The viewer sees",
    "At a glance you notice",
    "Pictured here:",
    "On display:",
    "This is a picture of",
    "This is an image of",
    "It is a drawing of",
)
_PARTICIPLES = (
    "drawn",
    "shown",
    "painted",
    "placed",
    "scattered",
    "arranged",
    "rendered",
    "visible",
    "depicted",
    "printed",
    "sketched",
    "laid out",
)
_ADJECTIVES = (
    "simple",
    "colorful",
    "small",
    "synthetic",
    "plain",
    "tiny",
    "toy",
    "cartoon",
    "flat",
    "digital",
)
_NOUNS = ("picture", "image", "drawing", "illustration", "photo", "render", "sketch", "graphic")
_APPEAR = (
    ("can be seen", "can be seen"),
    ("appears", "appear"),
    ("shows up", "show up"),
    ("stands out", "stand out"),
    ("is visible", "are visible"),
    ("is present", "are present"),
)
_RELATIONS = (
    "next to",
    "beside",
    "above",
    "below",
    "to the left of",
    "to the right of",
    "near",
    "behind",
    "in front of",
    "overlapping",
    "touching",
    "far from",
)
_BACKGROUNDS = (
    " on a striped background",
    " against a noisy backdrop",
    " over a smooth gradient",
    " on a checkered pattern",
    " on a plain background",
    " against a gray wall",
    " on a colorful canvas",
    " on white paper",
)


def _templates() -> list[tuple[str, int]]:
    """(frame, minimum number of labels).

    Slots: {objects}/{Objects} the joined noun phrases, {bg} an optional background phrase, {be} is/are for
    the first phrase ("There is a star and two rings"), {are} is/are for the whole list, {First}/{rest} the
    first phrase and the others, {appearN} the N-th "appears"/"appear" verb agreeing with the list.
    """
    out = [(f"{s} {v} {{objects}}{{bg}}.", 1) for s, v in itertools.product(_SUBJECTS, _VERBS)]
    out += [(f"There {{be}} {{objects}} {w}.", 1) for w in _WHERE]
    out += [(f"{lead} {{objects}}{{bg}}.", 1) for lead in _LEADS]
    out += [(f"{{Objects}} {{are}} {p}{{bg}}.", 1) for p in _PARTICIPLES]
    out += [(f"A {a} {n} of {{objects}}{{bg}}.", 1) for a, n in itertools.product(_ADJECTIVES, _NOUNS)]
    out += [(f"{{Objects}} {{appear{i}}} {w}.", 1) for i, w in itertools.product(range(len(_APPEAR)), _WHERE)]
    out += [(f"{s} with {{objects}}{{bg}}.", 1) for s in _SUBJECTS]
    out += [
        ("{Objects}{bg}.", 1),
        ("Just {objects}{bg}.", 1),
        ("Only {objects}, nothing else.", 1),
        ("Nothing but {objects}.", 1),
    ]
    out += [(f"{{First}} {r} {{rest}}{{bg}}.", 2) for r in _RELATIONS]
    return out


TEMPLATES: tuple[tuple[str, int], ...] = tuple(_templates())
"""Sentence frames with the minimum number of labels they need."""


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _noun_phrase(label: str, rng: np.random.Generator) -> tuple[str, bool]:
    """A noun phrase for one label and whether it is plural."""
    singular, plural_form = SYNONYMS[label][int(rng.integers(len(SYNONYMS[label])))]
    modifiers = []
    if rng.random() < 0.4:
        modifiers.append(SIZE_WORDS[int(rng.integers(len(SIZE_WORDS)))])
    if rng.random() < 0.5:
        words = list(COLOR_WORDS.values())[int(rng.integers(len(COLOR_WORDS)))]
        modifiers.append(words[int(rng.integers(len(words)))])
    r = rng.random()
    if r < 0.65:
        head = " ".join(modifiers + [singular])
        det = ("one", "a single")[int(rng.integers(2))] if rng.random() < 0.15 else _article(head)
        return f"{det} {head}", False
    head = " ".join(modifiers + [plural_form])
    counts = ("two", "three", "four", "a pair of", "several", "some", "a few", "many")
    return f"{counts[int(rng.integers(len(counts)))]} {head}", True


def _join(phrases: Sequence[str], rng: np.random.Generator) -> str:
    if len(phrases) == 1:
        return phrases[0]
    if len(phrases) == 2:
        conj = (" and ", " and ", " together with ", " as well as ")[int(rng.integers(4))]
        return phrases[0] + conj + phrases[1]
    oxford = "," if rng.random() < 0.5 else ""
    return ", ".join(phrases[:-1]) + f"{oxford} and " + phrases[-1]


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def sample_text(rng: np.random.Generator) -> tuple[str, list[str]]:
    """One sentence and its label set.

    Returns:
        ``(text, labels)`` with ``labels`` in CATEGORIES order.
    """
    k = int(rng.choice(4, p=[0.3, 0.35, 0.25, 0.1])) + 1
    labels = [CATEGORIES[int(i)] for i in rng.choice(len(CATEGORIES), size=k, replace=False)]
    phrases = [_noun_phrase(label, rng) for label in labels]
    usable = [t for t in TEMPLATES if t[1] <= k]
    frame = usable[int(rng.integers(len(usable)))][0]
    objects = _join([p for p, _ in phrases], rng)
    many = k > 1 or phrases[0][1]
    bg = _BACKGROUNDS[int(rng.integers(len(_BACKGROUNDS)))] if rng.random() < 0.35 else ""
    appear = {f"appear{i}": forms[1 if many else 0] for i, forms in enumerate(_APPEAR)}
    text = frame.format(
        objects=objects,
        Objects=_capitalise(objects),
        bg=bg,
        be="are" if phrases[0][1] else "is",
        are="are" if many else "is",
        First=_capitalise(phrases[0][0]),
        rest=_join([p for p, _ in phrases[1:]], rng) if k > 1 else "",
        **appear,
    )
    return text, sorted(labels, key=CATEGORIES.index)


_PATTERNS = [
    (
        label,
        re.compile(r"\b(" + "|".join(re.escape(w) for pair in syns for w in pair) + r")\b", re.IGNORECASE),
    )
    for label, syns in SYNONYMS.items()
]


def find_labels(text: str) -> list[str]:
    """The labels whose synonyms occur in ``text`` as whole words (CATEGORIES order)."""
    return [label for label, pattern in _PATTERNS if pattern.search(text)]
