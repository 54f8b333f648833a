"""Every file of a generated world read back through the ``vlzoo.data`` readers, agreeing with the files."""

import json

import numpy as np
import pytest

from vlzoo.data import (
    load_image,
    read_coco_captions,
    read_coco_instances,
    read_label_png,
    read_llava_json,
    read_llava_questions,
    read_qks_dataset,
    read_region_json,
    read_text_labels_json,
)
from vlzoo.toyworld import CATEGORIES, SEEN_CATEGORIES, UNSEEN_CATEGORIES

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
SPLITS = ("train", "val")


@pytest.mark.parametrize("split", SPLITS)
def test_round_trip(world, split, objects):
    d = world / split
    coco = read_coco_instances(d / "instances.json", image_root=d / "images", check_images=True)
    assert coco.category_names == list(CATEGORIES)
    assert len(coco.image_ids) == len(objects[split])
    for image_id in coco.image_ids:
        info = coco.image(image_id)
        objs = objects[split][info["file_name"]]
        masks = coco.masks(image_id)
        assert masks.shape == (len(objs), 96, 96)
        assert all(np.array_equal(m, o.mask) for m, o in zip(masks, objs))
        assert np.array_equal(
            coco.boxes(image_id, fmt="xywh"), [a["bbox"] for a in coco.annotations(image_id)]
        )
        image = np.asarray(load_image(coco.image_path(image_id)))
        assert image.shape == (96, 96, 3)
        for folder in ("semantic", "scribbles", "points"):
            labels = read_label_png(
                d / folder / info["file_name"], num_classes=len(CATEGORIES) + 1, expected_size=(96, 96)
            )
            assert labels.shape == (96, 96)

    captions = read_coco_captions(d / "captions.json")
    assert sorted(captions) == sorted(coco.image_ids) and all(len(c) == 5 for c in captions.values())

    for name in ("llava.json", "llava_pretrain.json"):
        records = read_llava_json(d / name, image_root=d / "images", check_images=True)
        assert len(records) == len(objects[split]) and all(len(r.images) == 1 for r in records)

    regions = read_region_json(d / "regions.json", image_root=d / "images")
    raw = json.loads((d / "regions.json").read_text())
    assert len(regions) == len(raw) == 2 * len(objects[split])
    for record, original in zip(regions, raw):
        assert record.masks().shape == (len(original["annotation"]), 96, 96)
        assert (record.conversations is None) == (original["task"] == "description")

    qks = read_qks_dataset(d / "multilabel")
    assert qks.seen_labels == list(SEEN_CATEGORIES) and qks.unseen_labels == list(UNSEEN_CATEGORIES)
    assert len(qks.train) == len(qks.test) == len(objects[split])
    assert qks.train.targets.shape == (len(objects[split]), len(SEEN_CATEGORIES))
    assert (qks.test.targets != 0).all(), "the toy world is fully annotated"
    for row, path in enumerate(qks.test.image_paths):
        present = {o.category for o in objects[split][path.split("/")[-1]]}
        positives = {qks.test.label_names[c] for c in np.flatnonzero(qks.test.targets[row].numpy() == 1)}
        assert positives == present

    texts = read_text_labels_json(d / "texts.json", CATEGORIES)
    assert len(texts) == 2 * len(objects[split])

    if split == "val":
        questions = read_llava_questions(d / "vqa_questions.jsonl")
        assert len(questions) == len((d / "vqa_answers.jsonl").read_text().splitlines())
