"""Validating readers for the dataset formats the five papers use.

Every reader checks what it reads and raises :class:`DataError` (a ``ValueError``) naming the file, the
record and the problem; nothing is silently skipped or repaired. Modules:

- ``errors``        :class:`DataError`, :class:`ImageError`
- ``images``        :func:`load_image` (RGB), :func:`image_size` (header only)
- ``segmentation``  COCO polygons / RLE: :func:`decode_segmentation`, :func:`encode_mask_rle`
- ``coco``          COCO instances (:func:`read_coco_instances`) and captions (:func:`read_coco_captions`)
- ``voc``           label PNGs: :func:`read_label_png`, :func:`write_label_png`, :func:`voc_colormap`
- ``llava``         LLaVA conversation JSON and evaluation question JSONL
- ``jsonl``         :func:`read_jsonl`, :func:`write_jsonl` (atomic)
- ``regions``       Osprey-style region records (:func:`read_region_json`)
- ``multilabel``    QKS label lists and train/test CSVs
- ``texts``         labelled text for the text-only adapter
"""

from vlzoo.data.coco import BOX_TOLERANCE, CocoInstances, read_coco_captions, read_coco_instances
from vlzoo.data.errors import DataError, ImageError
from vlzoo.data.images import ImageSize, image_size, load_image
from vlzoo.data.jsonl import read_jsonl, write_jsonl
from vlzoo.data.llava import IMAGE_PLACEHOLDER, LlavaRecord, Turn, read_llava_json, read_llava_questions
from vlzoo.data.multilabel import (
    MultiLabelSet,
    QksDataset,
    read_label_list,
    read_multilabel_csv,
    read_qks_dataset,
)
from vlzoo.data.regions import REGION_PLACEHOLDER, RegionRecord, read_region_json, resolve_region_image
from vlzoo.data.segmentation import (
    check_segmentation,
    decode_segmentation,
    decode_segmentations,
    encode_mask_rle,
)
from vlzoo.data.texts import TextSample, multi_hot_targets, read_text_labels_json
from vlzoo.data.voc import read_label_png, voc_colormap, write_label_png

__all__ = [
    "BOX_TOLERANCE",
    "IMAGE_PLACEHOLDER",
    "REGION_PLACEHOLDER",
    "CocoInstances",
    "DataError",
    "ImageError",
    "ImageSize",
    "LlavaRecord",
    "MultiLabelSet",
    "QksDataset",
    "RegionRecord",
    "TextSample",
    "Turn",
    "check_segmentation",
    "decode_segmentation",
    "decode_segmentations",
    "encode_mask_rle",
    "image_size",
    "load_image",
    "multi_hot_targets",
    "read_coco_captions",
    "read_coco_instances",
    "read_jsonl",
    "read_label_list",
    "read_label_png",
    "read_llava_json",
    "read_llava_questions",
    "read_multilabel_csv",
    "read_qks_dataset",
    "read_region_json",
    "read_text_labels_json",
    "resolve_region_image",
    "voc_colormap",
    "write_jsonl",
    "write_label_png",
]
