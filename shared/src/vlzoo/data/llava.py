"""LLaVA instruction data (conversation JSON) and LLaVA evaluation questions (JSONL).

Conversation JSON (LLaVA's ``llava_v1_5_mix665k.json`` and the TokenPacker/Osprey files derived from it): a
list of records::

    {"id": "000000033471", "image": "coco/train2017/000000033471.jpg",      # optional; a list for multi-image
     "conversations": [{"from": "human", "value": "<image>\\nWhat are the colors of the bus?"},
                       {"from": "gpt", "value": "The bus is white and red."}, ...]}

Text-only records have no ``image`` key (about 41K of mix665k). ``<image>`` marks where the image features go;
the model needs as many placeholders as images, so the count is checked here rather than discovered as a
shape error during training.

Question JSONL (``llava_test_questions.jsonl``-style evaluation files): one object per line with
``question_id``, ``image``, ``text`` and an optional ``category``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vlzoo.data._common import is_id, locator, read_json, short, type_name
from vlzoo.data._conversation import Turn, parse_conversations
from vlzoo.data.errors import DataError
from vlzoo.data.jsonl import iter_jsonl_lines, read_jsonl, write_jsonl

__all__ = [
    "IMAGE_PLACEHOLDER",
    "LlavaRecord",
    "Turn",
    "read_llava_json",
    "read_llava_questions",
    "read_jsonl",
    "write_jsonl",
]

IMAGE_PLACEHOLDER = "<image>"


@dataclass
class LlavaRecord:
    """One validated conversation record."""

    id: str | int
    """The record id as in the file."""
    images: tuple[str, ...]
    """Image paths relative to the image root, in placeholder order; empty for a text-only record."""
    conversations: list[Turn]
    """Turns alternating human, gpt, ... starting with human."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Keys of the record other than ``id``, ``image`` and ``conversations``, untouched."""

    @property
    def is_text_only(self) -> bool:
        return not self.images

    def image_paths(self, image_root: str | os.PathLike) -> list[Path]:
        """The record's images joined to ``image_root``."""
        return [Path(image_root) / name for name in self.images]


def _images_of(path: Path, where: str, record: dict) -> tuple[str, ...]:
    value = record.get("image")
    if value is None:
        return ()
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise DataError(path, f"image must be a non-empty string or a list of them, got {short(value)}", where)
    return tuple(names)


def read_llava_json(path: str | os.PathLike, image_root: str | os.PathLike | None = None,
                    check_images: bool = False, *, unique_ids: bool = True) -> list[LlavaRecord]:
    """Read and validate a LLaVA conversation JSON file.

    Checks: the top level is a list of objects; each has an ``id`` (int or string; unique unless
    ``unique_ids=False``) and a non-empty ``conversations`` list whose roles alternate ``human``/``gpt`` starting
    with ``human`` and whose values are strings; ``image`` is absent, a string or a list of strings; the human
    turns hold exactly one ``<image>`` per image (none for a text-only record) and the gpt turns hold none;
    with ``check_images``, every image exists under ``image_root``.

    Args:
        path: the JSON file.
        image_root: the folder image paths are relative to.
        check_images: also check that each image file exists (one ``stat`` per image).
        unique_ids: reject duplicate ids (pass False for files known to repeat ids).

    Returns:
        The records in file order.

    Raises:
        DataError: naming the file, the record (index and id) and the problem.
    """
    path = Path(path)
    if check_images and image_root is None:
        raise ValueError("check_images=True needs an image_root")
    data = read_json(path)
    if not isinstance(data, list):
        raise DataError(path, f"the top level must be a list of records, got {type_name(data)}")
    records: list[LlavaRecord] = []
    first_index: dict[Any, int] = {}
    for index, raw in enumerate(data):
        where = locator(index, raw)
        if not isinstance(raw, dict):
            raise DataError(path, f"must be a JSON object, got {type_name(raw)}", where)
        if "id" not in raw:
            raise DataError(path, "missing required key 'id'", where)
        if not is_id(raw["id"]):
            raise DataError(path, f"id must be an integer or a non-empty string, got {short(raw['id'])}", where)
        if unique_ids:
            if raw["id"] in first_index:
                raise DataError(path, f"duplicate id {raw['id']!r} (first at record {first_index[raw['id']]})",
                                where)
            first_index[raw["id"]] = index
        if "conversations" not in raw:
            raise DataError(path, "missing required key 'conversations'", where)
        turns = parse_conversations(path, where, raw["conversations"])
        images = _images_of(path, where, raw)
        in_human = sum(t.value.count(IMAGE_PLACEHOLDER) for t in turns if t.role == "human")
        in_gpt = sum(t.value.count(IMAGE_PLACEHOLDER) for t in turns if t.role == "gpt")
        if in_gpt:
            raise DataError(path, f"gpt turns contain {in_gpt} {IMAGE_PLACEHOLDER} placeholder(s); only human "
                                  "turns may hold them", where)
        if in_human != len(images):
            raise DataError(path, f"human turns contain {in_human} {IMAGE_PLACEHOLDER} placeholder(s) but the "
                                  f"record has {len(images)} image(s)", where)
        if check_images:
            for name in images:
                if not (Path(image_root) / name).is_file():
                    raise DataError(path, f"image file not found: {Path(image_root) / name}", where)
        extra = {k: v for k, v in raw.items() if k not in ("id", "image", "conversations")}
        records.append(LlavaRecord(raw["id"], images, turns, extra))
    return records


def read_llava_questions(path: str | os.PathLike) -> list[dict]:
    """Read a LLaVA evaluation question file (JSONL).

    Checks: each non-blank line is a JSON object with ``question_id`` (int or string, unique), ``image``
    (non-empty string) and ``text`` (string), and ``category`` is a string when present.

    Returns:
        The question objects in file order (extra keys kept).

    Raises:
        DataError: naming the file, the line (and question id) and the problem.
    """
    path = Path(path)
    questions: list[dict] = []
    first_line: dict[Any, int] = {}
    for number, question in iter_jsonl_lines(path):
        where = f"line {number}"
        if not isinstance(question, dict):
            raise DataError(path, f"must be a JSON object, got {type_name(question)}", where)
        if "question_id" in question and is_id(question["question_id"]):
            where = f"line {number} (question_id {question['question_id']!r})"
        missing = [k for k in ("question_id", "image", "text") if k not in question]
        if missing:
            raise DataError(path, f"missing required key(s) {missing}", where)
        qid = question["question_id"]
        if not is_id(qid):
            raise DataError(path, f"question_id must be an integer or a non-empty string, got {short(qid)}", where)
        if qid in first_line:
            raise DataError(path, f"duplicate question_id {qid!r} (first on line {first_line[qid]})", where)
        first_line[qid] = number
        if not (isinstance(question["image"], str) and question["image"]):
            raise DataError(path, f"image must be a non-empty string, got {short(question['image'])}", where)
        if not isinstance(question["text"], str):
            raise DataError(path, f"text must be a string, got {type_name(question['text'])}", where)
        if "category" in question and not isinstance(question["category"], str):
            raise DataError(path, f"category must be a string, got {type_name(question['category'])}", where)
        questions.append(question)
    return questions
