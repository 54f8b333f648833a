"""Osprey-style region records: masks of objects and parts, and conversations about ``<regionN>``.

Per image two records are written (``task`` tells them apart):

- ``"conversation"``: ``annotation`` = the objects (shuffled) then their visible parts; ``conversations``
  ask "What is <regionN>?" once for every region (answer "a small red star" / "the head of the red arrow"),
  plus colour, shape, size, relation and positive/negative yes-no questions, in a random order. As in
  Osprey's data, the text has no ``<image>`` token (the loader adds the image prefix) and region ``N`` is
  annotation ``N`` (1-based). Single-word questions end with " Answer the question using a single word or
  phrase.", region-caption questions with " Answer the question using a short phrase.".
- ``"description"``: the same regions with ``description: ["<region1>: ...", ...]`` (index-aligned).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vlzoo.toyworld.language import object_description, part_description, part_phrase, with_article
from vlzoo.toyworld.rle import encode_rle
from vlzoo.toyworld.scene import Scene
from vlzoo.toyworld.spatial import RELATIONS, relation_holds
from vlzoo.toyworld.views import ObjectView
from vlzoo.toyworld.vqa import SHORT_PHRASE_SUFFIX, SINGLE_WORD_SUFFIX
from vlzoo.toyworld.world import SIMILAR_CATEGORIES

__all__ = ["Region", "scene_regions", "region_records", "MAX_EXTRA_TURNS"]

MAX_EXTRA_TURNS = 5
"""Attribute/relation/yes-no turns added after the one "What is" turn per region."""


@dataclass(frozen=True)
class Region:
    """One region of a region record: an object or one of its parts."""

    view: ObjectView
    part: str | None = None

    @property
    def mask(self) -> np.ndarray:
        return (
            self.view.mask
            if self.part is None
            else next(p.mask for p in self.view.parts if p.name == self.part)
        )

    @property
    def bbox(self) -> tuple[int, int, int, int]:
        return (
            self.view.bbox
            if self.part is None
            else next(p.bbox for p in self.view.parts if p.name == self.part)
        )


def scene_regions(views: Sequence[ObjectView], rng: np.random.Generator) -> list[Region]:
    """Objects in a random order, then every visible part (grouped by object, in that order)."""
    order = [views[int(i)] for i in rng.permutation(len(views))]
    return [Region(v) for v in order] + [Region(v, p.name) for v in order for p in v.parts]


def _annotation(regions: Sequence[Region]) -> list[dict]:
    parent_number = {r.view.index: n + 1 for n, r in enumerate(regions) if r.part is None}
    out = []
    for region in regions:
        mask = region.mask
        entry = {
            "bbox": list(region.bbox),
            "segmentation": encode_rle(mask),
            "area": int(mask.sum()),
            "category": region.view.obj.category,
            "attributes": {"color": region.view.obj.color, "size": region.view.obj.size},
        }
        if region.part is not None:
            entry["part"] = region.part
            entry["parent"] = parent_number[region.view.index]
        out.append(entry)
    return out


def _turn(question: str, answer: str, suffix: str) -> tuple[str, str]:
    return f"{question} {suffix}", answer


def _what_is(region: Region, n: int) -> tuple[str, str]:
    if region.part is None:
        answer = with_article(region.view.obj.phrase)
    else:
        answer = part_phrase(region.view, region.part)
    return _turn(f"What is <region{n}>?", answer, SHORT_PHRASE_SUFFIX)


def _extra_turns(regions: Sequence[Region], size: int, rng: np.random.Generator) -> list[tuple[str, str]]:
    objects = [(n + 1, r.view) for n, r in enumerate(regions) if r.part is None]
    out = []
    for n, view in objects:
        obj = view.obj
        out.append(_turn(f"What color is <region{n}>?", obj.color, SINGLE_WORD_SUFFIX))
        out.append(_turn(f"What shape is <region{n}>?", obj.category, SINGLE_WORD_SUFFIX))
        out.append(_turn(f"What size is <region{n}>?", obj.size, SINGLE_WORD_SUFFIX))
        out.append(_turn(f"Is <region{n}> {with_article(obj.category)}?", "yes", SINGLE_WORD_SUFFIX))
        similar = SIMILAR_CATEGORIES[obj.category]
        wrong = similar[int(rng.integers(len(similar)))]
        out.append(_turn(f"Is <region{n}> {with_article(wrong)}?", "no", SINGLE_WORD_SUFFIX))
    for na, a in objects:
        for nb, b in objects:
            if na == nb:
                continue
            relation = RELATIONS[int(rng.integers(len(RELATIONS)))]
            holds = relation_holds(relation, a.centroid, b.centroid, size)
            if holds is not None:
                out.append(
                    _turn(
                        f"Is <region{na}> {relation} <region{nb}>?",
                        "yes" if holds else "no",
                        SINGLE_WORD_SUFFIX,
                    )
                )
    for n, region in enumerate(regions, start=1):
        if region.part is not None:
            question = f"Which part of the {region.view.obj.category} is <region{n}>?"
            out.append(_turn(question, region.part, SINGLE_WORD_SUFFIX))
    return out


def region_records(
    views: Sequence[ObjectView], scene: Scene, rng: np.random.Generator, file_name: str, record_id: str
) -> list[dict]:
    """The conversation record and the description record of one image.

    Args:
        views: the image's objects.
        scene: its scene (image size).
        rng: the image's language stream.
        file_name: image path relative to ``images/``.
        record_id: prefix of the two record ids (``<record_id>-conv``, ``<record_id>-desc``).
    """
    size = scene.image_size
    regions = scene_regions(views, rng)
    annotation = _annotation(regions)
    turns = [_what_is(r, n) for n, r in enumerate(regions, start=1)]
    extra = _extra_turns(regions, size, rng)
    chosen = rng.permutation(len(extra))[:MAX_EXTRA_TURNS]
    turns += [extra[int(i)] for i in chosen]
    turns = [turns[int(i)] for i in rng.permutation(len(turns))]
    conversations = []
    for question, answer in turns:
        conversations += [{"from": "human", "value": question}, {"from": "gpt", "value": answer}]
    header = {"file_name": file_name, "height": size, "width": size}
    by_index = {v.index: k for k, v in enumerate(views)}
    description = []
    for n, region in enumerate(regions, start=1):
        if region.part is None:
            text = object_description(views, by_index[region.view.index], size, rng)
        else:
            text = part_description(region.view, region.part)
        description.append(f"<region{n}>: {text}")
    return [
        {
            "id": f"{record_id}-conv",
            "task": "conversation",
            **header,
            "annotation": annotation,
            "conversations": conversations,
        },
        {
            "id": f"{record_id}-desc",
            "task": "description",
            **header,
            "annotation": annotation,
            "description": description,
        },
    ]
