"""Everything written for one image, built from its scene: PNG bytes and the records of every format.

:func:`build_image` is a pure function of ``(seed, split, index, image_size)``: each image has its own RNG
streams (:func:`~vlzoo.toyworld.scene.image_rng`), so any image can be rebuilt alone, in any order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vlzoo.toyworld.language import captions
from vlzoo.toyworld.multilabel import test_row, train_row
from vlzoo.toyworld.png import VOC_PALETTE, encode_png
from vlzoo.toyworld.regions import region_records
from vlzoo.toyworld.render import render_scene
from vlzoo.toyworld.rle import encode_rle
from vlzoo.toyworld.scene import (
    STREAM_LABELS,
    STREAM_LANGUAGE,
    STREAM_SCENE,
    STREAM_TEXT,
    Scene,
    image_rng,
    sample_scene_and_layout,
)
from vlzoo.toyworld.sparse_labels import semantic_labels, sparse_labels
from vlzoo.toyworld.texts import sample_text
from vlzoo.toyworld.views import ObjectView, visible_objects
from vlzoo.toyworld.vqa import candidate_questions, conversation_questions, eval_questions

__all__ = [
    "ImageRecords",
    "build_image",
    "image_id_for",
    "file_name_for",
    "PRETRAIN_PROMPTS",
    "CAPTIONS_PER_IMAGE",
]

CAPTIONS_PER_IMAGE = 5
"""Captions per image in ``captions.json`` (as COCO)."""
TEXTS_PER_IMAGE = 2
"""``texts.json`` holds this many sentences per image of the split."""

PRETRAIN_PROMPTS = (
    "Describe the image briefly.",
    "Give a short caption for this picture.",
    "Write a brief description of the image.",
    "Summarize the picture in a few words.",
    "Provide a concise caption of the image.",
    "Briefly describe what you see.",
    "What is in this image? Answer briefly.",
    "Caption this image.",
)
"""Stage-1 (``plain``) captioning instructions of ``llava_pretrain.json``."""

_IMAGE_TOKEN = "<image>"


def image_id_for(index: int) -> int:
    """COCO image id of image ``index`` (0-based): ``index + 1``."""
    return index + 1


def file_name_for(index: int) -> str:
    """Image file name under ``images/`` (no underscore, so LLaVA's POPE loader keeps it whole)."""
    return f"{image_id_for(index):06d}.png"


@dataclass
class ImageRecords:
    """One image's files and records (ids are derived from the image id, so they never collide)."""

    scene: Scene | None
    """The scene (None once the writer has dropped it)."""
    views: list[ObjectView]
    image_png: bytes
    semantic_png: bytes
    scribbles_png: bytes
    points_png: bytes
    coco_image: dict
    coco_annotations: list[dict]
    captions: list[dict]
    llava_pretrain: dict
    llava: dict
    regions: list[dict]
    train_row: tuple[str, ...]
    test_row: tuple[str, ...]
    llava_categories: list[str]
    """Question category of each turn of ``llava`` (for the statistics)."""
    texts: list[dict]
    """The image's ``texts.json`` sentences (:data:`TEXTS_PER_IMAGE`, from its own text stream)."""
    summary: dict | None = None
    """Counts for the manifest statistics, filled by the writer."""
    vqa_questions: list[dict] = field(default_factory=list)
    vqa_answers: list[dict] = field(default_factory=list)


def _conversation(turns: list[tuple[str, str]]) -> list[dict]:
    out = []
    for i, (question, answer) in enumerate(turns):
        value = f"{_IMAGE_TOKEN}\n{question}" if i == 0 else question
        out += [{"from": "human", "value": value}, {"from": "gpt", "value": answer}]
    return out


def image_texts(seed: int, split: str, index: int) -> list[dict]:
    """The :data:`TEXTS_PER_IMAGE` ``texts.json`` records that belong to image ``index`` (ids follow it)."""
    rng = image_rng(seed, split, index, STREAM_TEXT)
    out = []
    for j in range(TEXTS_PER_IMAGE):
        text, labels = sample_text(rng)
        number = TEXTS_PER_IMAGE * index + j + 1
        out.append({"id": f"toyworld-{split}-text-{number:06d}", "text": text, "labels": labels})
    return out


def build_image(seed: int, split: str, index: int, image_size: int, with_eval: bool) -> ImageRecords:
    """Sample, render and annotate image ``index`` of ``split``.

    Args:
        seed: world seed (>= 0).
        split: split name ("train", "val").
        index: 0-based image index in the split.
        image_size: S.
        with_eval: also build the LLaVA evaluation questions (val split).
    """
    scene, layout = sample_scene_and_layout(image_rng(seed, split, index, STREAM_SCENE), image_size)
    views = visible_objects(scene, layout)
    image = render_scene(scene, layout)
    semantic = semantic_labels(views, image_size)
    scribbles, points = sparse_labels(views, image_size, image_rng(seed, split, index, STREAM_LABELS))
    lang = image_rng(seed, split, index, STREAM_LANGUAGE)

    image_id = image_id_for(index)
    file_name = file_name_for(index)
    record_id = f"toyworld-{split}-{image_id:06d}"
    coco_image = {"id": image_id, "file_name": file_name, "height": image_size, "width": image_size}
    annotations = [
        {
            "id": image_id * 10 + k + 1,
            "image_id": image_id,
            "category_id": view.category_id,
            "bbox": list(view.bbox),
            "segmentation": encode_rle(view.mask),
            "area": view.area,
            "iscrowd": 0,
            "attributes": {"color": view.obj.color, "size": view.obj.size, "rgb": list(view.obj.rgb)},
            "depth": view.index,
            "visible_fraction": round(view.visible_fraction, 4),
        }
        for k, view in enumerate(views)
    ]
    texts = captions(views, scene, lang, n=CAPTIONS_PER_IMAGE)
    caption_records = [
        {"id": image_id * 10 + j, "image_id": image_id, "caption": c} for j, c in enumerate(texts)
    ]
    prompt = PRETRAIN_PROMPTS[int(lang.integers(len(PRETRAIN_PROMPTS)))]
    pretrain = {
        "id": record_id,
        "image": file_name,
        "conversations": _conversation([(prompt, texts[int(lang.integers(len(texts)))])]),
    }
    candidates = candidate_questions(views, scene, lang)
    qas = conversation_questions(views, scene, lang, candidates=candidates)
    turns = [(qa.prompt("\n"), qa.answer) for qa in qas]
    llava = {"id": record_id, "image": file_name, "conversations": _conversation(turns)}
    regions = region_records(views, scene, lang, file_name, record_id)
    present = {v.obj.category for v in views}
    image_path = f"images/{file_name}"
    records = ImageRecords(
        scene=scene,
        views=views,
        image_png=encode_png(image, level=1),  # noisy pixels: higher levels gain ~2 %
        semantic_png=encode_png(semantic, palette=VOC_PALETTE),
        scribbles_png=encode_png(scribbles, palette=VOC_PALETTE),
        points_png=encode_png(points, palette=VOC_PALETTE),
        coco_image=coco_image,
        coco_annotations=annotations,
        captions=caption_records,
        llava_pretrain=pretrain,
        llava=llava,
        regions=regions,
        train_row=train_row(image_path, present),
        test_row=test_row(image_path, present),
        llava_categories=[qa.category for qa in qas],
        texts=image_texts(seed, split, index),
    )
    if with_eval:
        for q, qa in enumerate(eval_questions(views, scene, lang, candidates=candidates)):
            question_id = image_id * 100 + q
            records.vqa_questions.append(
                {
                    "question_id": question_id,
                    "image": file_name,
                    "text": qa.prompt("\n"),
                    "category": qa.category,
                }
            )
            records.vqa_answers.append(
                {"question_id": question_id, "answer": qa.answer, "category": qa.category}
            )
    return records
