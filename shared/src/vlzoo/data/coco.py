"""COCO instances and captions JSON: validated reading, per-image masks/boxes/labels, RLE encoding.

Format (cocodataset.org "data format"): a JSON object with lists ``images`` (``id``, ``file_name``,
``height``, ``width``), ``categories`` (``id``, ``name``) and ``annotations`` (``id``, ``image_id``,
``category_id``, ``bbox`` = [x, y, w, h] in pixels, ``segmentation``, ``area``, ``iscrowd``). Keys beyond these
(``attributes``, ``caption``, ``original_id``, LVIS's ``neg_category_ids``, ...) are kept untouched in the
records. Segmentations are polygons, uncompressed RLE or compressed RLE (see :mod:`vlzoo.data.segmentation`).

Annotations are indexed by image once at read time, so per-image access costs O(annotations of that image)
and iterating a 5,000-image file is linear, not quadratic.

Conventions: category ids are mapped to contiguous indices in ascending id order (detectron2's rule), so the
index does not depend on the order of the ``categories`` list. Boxes come back as ``float32`` (R, 4) and masks
as ``bool`` (R, H, W), both in the order the annotations appear in the file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np

from vlzoo.data._common import is_id, is_int, is_number, is_number_list, read_json, short, type_name
from vlzoo.data.errors import DataError
from vlzoo.data.segmentation import (
    check_segmentation,
    decode_segmentation,
    decode_segmentations,
    encode_mask_rle,
)

__all__ = [
    "CocoInstances",
    "read_coco_instances",
    "read_coco_captions",
    "decode_segmentation",
    "encode_mask_rle",
    "BOX_TOLERANCE",
]

BOX_TOLERANCE = 1.0
"""How far (pixels) a box may reach outside its image before it is an error (COCO boxes round outwards)."""


def _top_level(path: Path, data: Any, keys: tuple[str, ...], optional: tuple[str, ...] = ()) -> None:
    if not isinstance(data, dict):
        raise DataError(path, f"the top level must be a JSON object, got {type_name(data)}")
    for key in keys:
        if key not in data:
            raise DataError(path, f"missing top-level key {key!r} (found: {sorted(data)})")
    for key in keys + optional:
        if key in data and not isinstance(data[key], list):
            raise DataError(path, f"top-level {key!r} must be a list, got {type_name(data[key])}")


def _records(path: Path, items: list, field: str, required: tuple[str, ...]) -> Iterator[tuple[str, dict]]:
    """Yield ``(locator, record)`` for each entry of ``data[field]``, checking it is an object with ``required``."""
    for index, item in enumerate(items):
        where = f"{field}[{index}]"
        if not isinstance(item, dict):
            raise DataError(path, f"must be a JSON object, got {type_name(item)}", where)
        if "id" in item and is_id(item["id"]):
            where = f"{where} (id {item['id']!r})"
        missing = [k for k in required if k not in item]
        if missing:
            raise DataError(path, f"missing required key(s) {missing}", where)
        yield where, item


def _check_unique_id(path: Path, where: str, record: dict, seen: dict, kind: str, int_only: bool = False) -> None:
    value = record["id"]
    if not (is_int(value) if int_only else is_id(value)):
        allowed = "an integer" if int_only else "an integer or a non-empty string"
        raise DataError(path, f"{kind} id must be {allowed}, got {short(value)}", where)
    if value in seen:
        raise DataError(path, f"duplicate {kind} id {value!r} (first at {seen[value]})", where)
    seen[value] = where


def _check_bbox(path: Path, where: str, bbox: Any, height: int, width: int) -> None:
    if not is_number_list(bbox, 4):
        raise DataError(path, f"bbox must be [x, y, w, h] of 4 finite numbers, got {short(bbox)}", where)
    x, y, w, h = bbox
    if w <= 0 or h <= 0:
        raise DataError(path, f"bbox has non-positive width or height (bbox {bbox})", where)
    tol = BOX_TOLERANCE
    if x < -tol or y < -tol or x + w > width + tol or y + h > height + tol:
        raise DataError(path, f"bbox {bbox} (x, y, w, h) lies outside the {width}x{height} (WxH) image", where)


class CocoInstances:
    """A validated COCO instances file with annotations indexed by image.

    Build it with :func:`read_coco_instances`. Ids are used exactly as in the file (int or str).

    Attributes:
        path: the JSON file.
        image_root: folder that ``file_name`` is relative to, or None.
        categories: category records sorted by id (contiguous index i is ``categories[i]``).
        category_index: COCO category id -> contiguous index in ``[0, len(categories))``.
        extra: top-level keys other than images/annotations/categories (``info``, ``licenses``, ...).
    """

    def __init__(self, path: Path, images: list[dict], categories: list[dict], annotations: list[dict],
                 extra: dict, image_root: Path | None = None):
        self.path = path
        self.image_root = image_root
        self.extra = extra
        self._images = {img["id"]: img for img in images}
        self.categories = sorted(categories, key=lambda c: c["id"])
        # COCO category id -> contiguous index in [0, num_categories), ascending id order.
        self.category_index: dict[int, int] = {c["id"]: i for i, c in enumerate(self.categories)}
        self._annotations = annotations
        self._by_image: dict[Any, list[int]] = {image_id: [] for image_id in self._images}
        for position, ann in enumerate(annotations):
            self._by_image[ann["image_id"]].append(position)

    def __len__(self) -> int:
        return len(self._images)

    def __repr__(self) -> str:
        return (f"CocoInstances({str(self.path)!r}, images={len(self)}, annotations={self.num_annotations}, "
                f"categories={len(self.categories)})")

    @property
    def image_ids(self) -> list:
        """Image ids in file order."""
        return list(self._images)

    @property
    def num_annotations(self) -> int:
        return len(self._annotations)

    @property
    def category_names(self) -> list[str]:
        """Category names in contiguous-index order."""
        return [c["name"] for c in self.categories]

    def _positions(self, image_id: Any) -> list[int]:
        try:
            return self._by_image[image_id]
        except KeyError:
            raise KeyError(f"{self.path}: no image with id {image_id!r}") from None

    def image(self, image_id: Any) -> dict:
        """The image record (``id``, ``file_name``, ``height``, ``width`` and any extra keys)."""
        self._positions(image_id)
        return self._images[image_id]

    def image_path(self, image_id: Any) -> Path:
        """``image_root / file_name`` of an image."""
        if self.image_root is None:
            raise ValueError(f"{self.path}: no image_root was given to read_coco_instances")
        return self.image_root / self.image(image_id)["file_name"]

    def annotations(self, image_id: Any) -> list[dict]:
        """The annotation records of an image, in file order (extra keys kept)."""
        return [self._annotations[p] for p in self._positions(image_id)]

    def masks(self, image_id: Any) -> np.ndarray:
        """Instance masks of an image as ``bool`` (R, H, W), one per annotation in file order.

        Raises:
            DataError: an annotation has no ``segmentation`` (possible with ``require_segmentation=False``).
        """
        info = self.image(image_id)
        anns = self.annotations(image_id)
        for position, ann in zip(self._positions(image_id), anns):
            if "segmentation" not in ann:
                raise DataError(self.path, "annotation has no segmentation to decode",
                                f"annotations[{position}] (id {ann['id']!r})")
        return decode_segmentations([a["segmentation"] for a in anns], info["height"], info["width"])

    def boxes(self, image_id: Any, fmt: Literal["xyxy", "xywh"] = "xyxy") -> np.ndarray:
        """Boxes of an image as ``float32`` (R, 4), ``[x1, y1, x2, y2]`` or COCO's ``[x, y, w, h]``."""
        if fmt not in ("xyxy", "xywh"):
            raise ValueError(f"fmt must be 'xyxy' or 'xywh', got {fmt!r}")
        xywh = np.array([a["bbox"] for a in self.annotations(image_id)], dtype=np.float64).reshape(-1, 4)
        if fmt == "xyxy":
            xywh[:, 2:] += xywh[:, :2]
        return xywh.astype(np.float32)

    def labels(self, image_id: Any) -> np.ndarray:
        """Contiguous category indices of an image's annotations, ``int64`` (R,)."""
        return np.array([self.category_index[a["category_id"]] for a in self.annotations(image_id)], dtype=np.int64)

    def iscrowd(self, image_id: Any) -> np.ndarray:
        """``bool`` (R,): which annotations are crowd regions (``iscrowd`` absent counts as 0)."""
        return np.array([bool(a.get("iscrowd", 0)) for a in self.annotations(image_id)], dtype=bool)


def read_coco_instances(path: str | os.PathLike, image_root: str | os.PathLike | None = None, *,
                        allow_empty: bool = False, require_segmentation: bool = True,
                        check_images: bool = False) -> CocoInstances:
    """Read and validate a COCO instances JSON file.

    Checks: the top level is an object with list-valued ``images``, ``categories`` and ``annotations``; each
    record has its required keys; ids are unique; image sizes are positive integers; annotations point to a
    known image and category; boxes are [x, y, w, h] with w, h > 0 inside the image up to
    :data:`BOX_TOLERANCE`; segmentations are well formed, their RLE size equals the image size, and their mask
    is not empty; ``iscrowd`` is 0 or 1 and ``area`` non-negative when present.

    Args:
        path: the JSON file.
        image_root: folder that the images' ``file_name`` is relative to (for :meth:`CocoInstances.image_path`).
        allow_empty: keep annotations whose mask has no pixel instead of raising. Finding empty masks means
            rasterising every polygon (pycocotools, about 70 us per annotation), so this also roughly halves
            the time to read a polygon file.
        require_segmentation: when False, box-only annotations (no ``segmentation`` key) are accepted.
        check_images: also check that every image file exists under ``image_root``.

    Returns:
        A :class:`CocoInstances`.

    Raises:
        DataError: naming the file, the record (``"annotations[12] (id 345)"``) and the problem.
    """
    path = Path(path)
    root = Path(image_root) if image_root is not None else None
    if check_images and root is None:
        raise ValueError("check_images=True needs an image_root")
    data = read_json(path)
    _top_level(path, data, ("images", "categories", "annotations"))

    images: list[dict] = []
    image_where: dict[Any, str] = {}
    for where, img in _records(path, data["images"], "images", ("id", "file_name", "height", "width")):
        _check_unique_id(path, where, img, image_where, "image")
        for key in ("height", "width"):
            if not (is_int(img[key]) and img[key] > 0):
                raise DataError(path, f"image {key} must be a positive integer, got {short(img[key])}", where)
        if not (isinstance(img["file_name"], str) and img["file_name"]):
            raise DataError(path, f"file_name must be a non-empty string, got {short(img['file_name'])}", where)
        if check_images and not (root / img["file_name"]).is_file():
            raise DataError(path, f"image file not found: {root / img['file_name']}", where)
        images.append(img)

    categories: list[dict] = []
    category_where: dict[Any, str] = {}
    for where, cat in _records(path, data["categories"], "categories", ("id", "name")):
        _check_unique_id(path, where, cat, category_where, "category", int_only=True)
        if not (isinstance(cat["name"], str) and cat["name"].strip()):
            raise DataError(path, f"category name must be a non-empty string, got {short(cat['name'])}", where)
        categories.append(cat)

    by_id = {img["id"]: img for img in images}
    annotations: list[dict] = []
    annotation_where: dict[Any, str] = {}
    required = ("id", "image_id", "category_id", "bbox") + (("segmentation",) if require_segmentation else ())
    for where, ann in _records(path, data["annotations"], "annotations", required):
        _check_unique_id(path, where, ann, annotation_where, "annotation")
        img = by_id.get(ann["image_id"]) if is_id(ann["image_id"]) else None
        if img is None:
            raise DataError(path, f"image_id {short(ann['image_id'])} is not the id of any image", where)
        if not is_int(ann["category_id"]) or ann["category_id"] not in category_where:
            raise DataError(path, f"category_id {short(ann['category_id'])} is not the id of any category", where)
        _check_bbox(path, where, ann["bbox"], img["height"], img["width"])
        if "iscrowd" in ann and ann["iscrowd"] not in (0, 1):
            raise DataError(path, f"iscrowd must be 0 or 1, got {short(ann['iscrowd'])}", where)
        if "area" in ann and not (is_number(ann["area"]) and ann["area"] >= 0):
            raise DataError(path, f"area must be a non-negative number, got {short(ann['area'])}", where)
        if "segmentation" in ann:
            area = check_segmentation(ann["segmentation"], img["height"], img["width"], file=path, record=where,
                                      compute_area=not allow_empty)
            if area == 0 and not allow_empty:
                raise DataError(path, "segmentation decodes to an empty mask (pass allow_empty=True to keep it)",
                                where)
        annotations.append(ann)

    extra = {k: v for k, v in data.items() if k not in ("images", "categories", "annotations")}
    return CocoInstances(path, images, categories, annotations, extra, root)


def read_coco_captions(path: str | os.PathLike) -> dict[Any, list[str]]:
    """Read a COCO captions JSON (``captions_train2017.json``) into image id -> captions.

    Checks: ``annotations`` is a list of objects with ``image_id`` and a non-empty string ``caption``;
    annotation ids (when present) are unique; when the file has ``images``, their ids are unique and every
    caption points to one of them.

    Returns:
        ``{image_id: [caption, ...]}`` with captions in file order. With ``images`` present every image is a
        key, in file order (an image without captions maps to ``[]``); without it, keys appear in the order of
        their first caption. Captions are returned exactly as written (COCO's carry stray spaces/newlines).

    Raises:
        DataError: naming the file, the record and the problem.
    """
    path = Path(path)
    data = read_json(path)
    _top_level(path, data, ("annotations",), optional=("images",))
    captions: dict[Any, list[str]] = {}
    has_images = "images" in data
    if has_images:
        image_where: dict[Any, str] = {}
        for where, img in _records(path, data["images"], "images", ("id",)):
            _check_unique_id(path, where, img, image_where, "image")
            captions[img["id"]] = []
    annotation_where: dict[Any, str] = {}
    for where, ann in _records(path, data["annotations"], "annotations", ("image_id", "caption")):
        if "id" in ann:
            _check_unique_id(path, where, ann, annotation_where, "annotation")
        image_id = ann["image_id"]
        if not is_id(image_id):
            raise DataError(path, f"image_id must be an integer or a string, got {short(image_id)}", where)
        if has_images and image_id not in captions:
            raise DataError(path, f"image_id {image_id!r} is not the id of any image", where)
        caption = ann["caption"]
        if not isinstance(caption, str):
            raise DataError(path, f"caption must be a string, got {type_name(caption)}", where)
        if not caption.strip():
            raise DataError(path, "caption is empty", where)
        captions.setdefault(image_id, []).append(caption)
    return captions
