"""Osprey-style region records: an image, its region masks, and text that refers to the regions.

Two record shapes (Osprey's instruction data, spec "Record schemas")::

    {"id": ..., "file_name": "000000123.jpg", "height": H, "width": W,
     "annotation": [{"bbox": [x, y, w, h], "segmentation": <COCO segmentation>}, ...],
     "conversations": [{"from": "human", "value": "What is <region1> doing?"}, {"from": "gpt", ...}, ...]}

    {... same image and annotation keys ...,
     "description": ["<region1>: A man in a red shirt ...", "<region2>: ...", ...]}

Region ``<regionN>`` (1-based) is ``annotation[N - 1]``; in the description shape entry i describes
annotation i and starts with its own tag ``<region{i+1}>:``. ``id`` is absent in some files (LVIS
positive/negative); annotations may carry extra keys (``category``, ``part``) which are kept.

Image file names: RefCOCO-derived records use 2014 names (``COCO_train2014_000000123.jpg``) while the images
sit in one folder under their 2017 names; Osprey's loader keeps the part after the last ``_``. Here the exact
name is tried first and that suffix only as a fallback, so names with meaningful underscores keep working
(a deviation that finds every file Osprey's rule finds).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pycocotools.mask as mask_utils

from vlzoo.data._common import is_id, is_int, is_number_list, locator, read_json, short, type_name
from vlzoo.data._conversation import Turn, parse_conversations
from vlzoo.data.coco import BOX_TOLERANCE
from vlzoo.data.errors import DataError
from vlzoo.data.segmentation import check_segmentation, decode_segmentations, segmentation_to_rle

__all__ = ["RegionRecord", "read_region_json", "resolve_region_image", "REGION_PLACEHOLDER"]

REGION_PLACEHOLDER = re.compile(r"<region(\d+)>")
"""A numbered region reference in text; group 1 is the 1-based region number."""

_DESCRIPTION_TAG = re.compile(r"\s*<region(\d+)>\s*:")


@dataclass
class RegionRecord:
    """One validated region record."""

    id: str | int | None
    """The record id, or None when the file has none."""
    file_name: str
    """Image file name as written in the record."""
    height: int
    """Image height H."""
    width: int
    """Image width W."""
    annotations: list[dict]
    """Region annotations; ``<regionN>`` is ``annotations[N - 1]``. Extra keys (``category``, ``part``) kept."""
    conversations: list[Turn] | None = None
    """Turns alternating human/gpt, or None for a description record."""
    descriptions: list[str] | None = None
    """One ``"<regionN>: text"`` entry per annotation, or None for a conversation record."""
    image_path: Path | None = None
    """The resolved image file when ``read_region_json`` got an ``image_root``, else None."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Other keys of the record, untouched."""

    @property
    def num_regions(self) -> int:
        return len(self.annotations)

    def masks(self) -> np.ndarray:
        """Region masks, ``bool`` (R, H, W), in annotation order."""
        return decode_segmentations([a["segmentation"] for a in self.annotations], self.height, self.width)

    def boxes(self, fmt: Literal["xyxy", "xywh"] = "xyxy") -> np.ndarray:
        """Region boxes, ``float32`` (R, 4): the ``bbox`` key, or the mask's bounding box when it has none."""
        if fmt not in ("xyxy", "xywh"):
            raise ValueError(f"fmt must be 'xyxy' or 'xywh', got {fmt!r}")
        rows = []
        for ann in self.annotations:
            if "bbox" in ann:
                rows.append(ann["bbox"])
            else:
                rle = segmentation_to_rle(ann["segmentation"], self.height, self.width)
                rows.append(mask_utils.toBbox(rle).tolist())
        xywh = np.array(rows, dtype=np.float64).reshape(-1, 4)
        if fmt == "xyxy":
            xywh[:, 2:] += xywh[:, :2]
        return xywh.astype(np.float32)


def resolve_region_image(image_root: str | os.PathLike, file_name: str) -> Path | None:
    """``image_root / file_name`` if it exists, else ``image_root / <part after the last "_">``, else None."""
    root = Path(image_root)
    exact = root / file_name
    if exact.is_file():
        return exact
    suffix = root / file_name.rsplit("_", 1)[-1]
    return suffix if suffix.is_file() else None


def _check_annotations(path: Path, where: str, raw: Any, height: int, width: int, allow_empty: bool) -> list[dict]:
    if not isinstance(raw, list):
        raise DataError(path, f"annotation must be a list, got {type_name(raw)}", where)
    if not raw:
        raise DataError(path, "annotation is empty: a region record needs at least one region", where)
    for k, ann in enumerate(raw):
        region = f"annotation[{k}] (<region{k + 1}>)"
        if not isinstance(ann, dict):
            raise DataError(path, f"{region} must be an object, got {type_name(ann)}", where)
        if "segmentation" not in ann:
            raise DataError(path, f"{region} lacks 'segmentation'", where)
        if "bbox" in ann:
            bbox = ann["bbox"]
            if not is_number_list(bbox, 4):
                raise DataError(path, f"{region} bbox must be [x, y, w, h] of 4 finite numbers, got {short(bbox)}",
                                where)
            x, y, w, h = bbox
            tol = BOX_TOLERANCE
            if w <= 0 or h <= 0:
                raise DataError(path, f"{region} bbox has non-positive width or height (bbox {bbox})", where)
            if x < -tol or y < -tol or x + w > width + tol or y + h > height + tol:
                raise DataError(path, f"{region} bbox {bbox} (x, y, w, h) lies outside the {width}x{height} (WxH) "
                                      "image", where)
        try:
            area = check_segmentation(ann["segmentation"], height, width, file=path, record=where,
                                      compute_area=not allow_empty)
        except DataError as exc:
            raise DataError(path, f"{region}: {exc.problem}", where) from exc
        if area == 0 and not allow_empty:
            raise DataError(path, f"{region} segmentation decodes to an empty mask (pass allow_empty=True to keep "
                                  "it)", where)
    return raw


def _check_references(path: Path, where: str, texts: list[tuple[str, str]], num_regions: int) -> None:
    for name, text in texts:
        for match in REGION_PLACEHOLDER.finditer(text):
            number = int(match.group(1))
            if not 1 <= number <= num_regions:
                raise DataError(path, f"{name} refers to {match.group(0)} but the record has {num_regions} "
                                      f"region(s) (<region1>..<region{num_regions}>)", where)


def read_region_json(path: str | os.PathLike, image_root: str | os.PathLike | None = None, *,
                     allow_empty: bool = False) -> list[RegionRecord]:
    """Read and validate an Osprey-style region JSON file (a list of records).

    Checks: each record has ``file_name``, positive integer ``height``/``width`` and a non-empty
    ``annotation`` list; exactly one of ``conversations`` (roles alternating human/gpt) and ``description``
    (one string per annotation, entry i starting with ``<region{i+1}>:``); every ``<regionN>`` in the text has
    ``1 <= N <= len(annotation)``; each annotation's segmentation is well formed, its RLE size is
    (height, width) and its mask is not empty; boxes lie inside the image (1 px tolerance); with
    ``image_root``, the image exists (see :func:`resolve_region_image`).

    Args:
        path: the JSON file.
        image_root: folder holding the images; when given every record's image is resolved and checked.
        allow_empty: keep regions whose mask has no pixel instead of raising.

    Returns:
        The records in file order.

    Raises:
        DataError: naming the file, the record (index and id) and the problem.
    """
    path = Path(path)
    data = read_json(path)
    if not isinstance(data, list):
        raise DataError(path, f"the top level must be a list of records, got {type_name(data)}")
    records: list[RegionRecord] = []
    for index, raw in enumerate(data):
        where = locator(index, raw)
        if not isinstance(raw, dict):
            raise DataError(path, f"must be a JSON object, got {type_name(raw)}", where)
        missing = [k for k in ("file_name", "height", "width", "annotation") if k not in raw]
        if missing:
            raise DataError(path, f"missing required key(s) {missing}", where)
        if "id" in raw and not is_id(raw["id"]):
            raise DataError(path, f"id must be an integer or a non-empty string, got {short(raw['id'])}", where)
        if not (isinstance(raw["file_name"], str) and raw["file_name"]):
            raise DataError(path, f"file_name must be a non-empty string, got {short(raw['file_name'])}", where)
        for key in ("height", "width"):
            if not (is_int(raw[key]) and raw[key] > 0):
                raise DataError(path, f"{key} must be a positive integer, got {short(raw[key])}", where)
        height, width = raw["height"], raw["width"]
        annotations = _check_annotations(path, where, raw["annotation"], height, width, allow_empty)

        has_conv, has_desc = "conversations" in raw, "description" in raw
        if has_conv == has_desc:
            raise DataError(path, "a record needs exactly one of 'conversations' and 'description' (it has "
                                  f"{'both' if has_conv else 'neither'})", where)
        conversations = descriptions = None
        if has_conv:
            conversations = parse_conversations(path, where, raw["conversations"])
            texts = [(f"conversations[{k}]", t.value) for k, t in enumerate(conversations)]
        else:
            descriptions = raw["description"]
            if not (isinstance(descriptions, list) and all(isinstance(d, str) for d in descriptions)):
                raise DataError(path, f"description must be a list of strings, got {short(descriptions)}", where)
            if len(descriptions) != len(annotations):
                raise DataError(path, f"description has {len(descriptions)} entries but annotation has "
                                      f"{len(annotations)}; they must be index-aligned", where)
            for k, text in enumerate(descriptions):
                tag = _DESCRIPTION_TAG.match(text)
                if tag is None or int(tag.group(1)) != k + 1:
                    raise DataError(path, f"description[{k}] must start with '<region{k + 1}>:', got "
                                          f"{short(text, 40)}", where)
            texts = [(f"description[{k}]", text) for k, text in enumerate(descriptions)]
        _check_references(path, where, texts, len(annotations))

        image_path = None
        if image_root is not None:
            image_path = resolve_region_image(image_root, raw["file_name"])
            if image_path is None:
                raise DataError(path, f"image {raw['file_name']!r} not found under {image_root} (also tried the "
                                      "part after the last '_')", where)
        known = ("id", "file_name", "height", "width", "annotation", "conversations", "description")
        extra = {k: v for k, v in raw.items() if k not in known}
        records.append(RegionRecord(raw.get("id"), raw["file_name"], height, width, annotations, conversations,
                                    descriptions, image_path, extra))
    return records
