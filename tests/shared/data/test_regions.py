import copy
import json

import numpy as np
import pytest

from vlzoo.data import encode_mask_rle, read_region_json, resolve_region_image

H, W = 16, 20


def _rle(top, left, h, w):
    mask = np.zeros((H, W), dtype=bool)
    mask[top:top + h, left:left + w] = True
    return encode_mask_rle(mask), mask


def _records():
    rle, _ = _rle(2, 3, 4, 5)
    return [
        {"id": 11, "file_name": "COCO_train2014_000000000123.jpg", "height": H, "width": W,
         "annotation": [{"bbox": [3, 2, 5, 4], "segmentation": rle},
                        {"bbox": [10, 8, 6, 6], "segmentation": [[10, 8, 16, 8, 16, 14, 10, 14]],
                         "category": "ring", "part": "hole"}],
         "conversations": [{"from": "human", "value": "What is <region1> next to <region2>?"},
                           {"from": "gpt", "value": "<region1> is a cup."}]},
        {"id": "d1", "file_name": "000000000123.jpg", "height": H, "width": W,
         "annotation": [{"segmentation": rle}, {"bbox": [0, 0, 20, 16], "segmentation": [[0, 0, 19, 0, 19, 15]]}],
         "description": ["<region1>: A small cup.", "<region2>: A table; left of it is <region1>."]},
        {"file_name": "000000000124.jpg", "height": H, "width": W,  # LVIS pos/neg records carry no id
         "annotation": [{"bbox": [3, 2, 5, 4], "segmentation": rle}],
         "conversations": [{"from": "human", "value": "Is <region1> a cup?"}, {"from": "gpt", "value": "Yes"}]},
    ]


def _write(tmp_path, data):
    path = tmp_path / "regions.json"
    path.write_text(json.dumps(data))
    return path


def test_valid_records(tmp_path):
    records = read_region_json(_write(tmp_path, _records()))
    first, second, third = records
    assert first.id == 11 and third.id is None and first.num_regions == 2
    assert first.annotations[1]["part"] == "hole" and first.annotations[1]["category"] == "ring"
    assert first.conversations[1].role == "gpt" and first.descriptions is None
    assert second.descriptions[1].startswith("<region2>:") and second.conversations is None
    masks = first.masks()
    assert masks.shape == (2, H, W) and masks.dtype == bool
    np.testing.assert_array_equal(masks[0], _rle(2, 3, 4, 5)[1])
    assert masks[1][10, 12] and not masks[1][0, 0]
    np.testing.assert_array_equal(first.boxes(), [[3, 2, 8, 6], [10, 8, 16, 14]])
    np.testing.assert_array_equal(second.boxes("xywh")[0], [3, 2, 5, 4])  # no bbox key: the mask's box
    assert first.image_path is None


def test_image_resolution_falls_back_to_the_2017_name(tmp_path, expect_error):
    path = _write(tmp_path, _records())
    images = tmp_path / "coco_imgs"
    images.mkdir()
    (images / "000000000123.jpg").write_bytes(b"x")
    assert resolve_region_image(images, "COCO_train2014_000000000123.jpg") == images / "000000000123.jpg"
    with expect_error(path, "2", "image '000000000124.jpg' not found"):
        read_region_json(path, image_root=images)
    (images / "000000000124.jpg").write_bytes(b"x")
    (images / "with_underscore.jpg").write_bytes(b"x")
    assert resolve_region_image(images, "with_underscore.jpg") == images / "with_underscore.jpg"
    records = read_region_json(path, image_root=images)
    assert records[0].image_path == images / "000000000123.jpg"


def _ann(record, k, **fields):
    def mutate(data):
        data[record]["annotation"][k].update(fields)
    return mutate


REGION_ERRORS = [
    (lambda d: d[0]["conversations"][0].update(value="Compare <region1> and <region3>."), "0 (id 11)",
     "conversations[0] refers to <region3> but the record has 2 region(s)"),
    (lambda d: d[0]["conversations"][1].update(value="<region0> is a cup"), "0 (id 11)", "refers to <region0>"),
    (lambda d: d[1]["description"].__setitem__(1, "<region2>: next to <region5>"), "1 (id 'd1')",
     "description[1] refers to <region5>"),
    (lambda d: d[1]["description"].__setitem__(1, "<region1>: a table"), "1 (id 'd1')",
     "description[1] must start with '<region2>:'"),
    (lambda d: d[1]["description"].__setitem__(0, "A small cup."), "1 (id 'd1')", "description[0] must start"),
    (lambda d: d[1]["description"].pop(), "1 (id 'd1')", "description has 1 entries but annotation has 2"),
    (lambda d: d[1].update(description="<region1>: x"), "1 (id 'd1')", "description must be a list of strings"),
    (lambda d: d[1].update(conversations=d[0]["conversations"]), "1 (id 'd1')", "exactly one of 'conversations' "
     "and 'description' (it has both)"),
    (lambda d: d[2].pop("conversations"), "2", "(it has neither)"),
    (_ann(0, 0, segmentation={"size": [W, H], "counts": [H * W]}), "0 (id 11)",
     "annotation[0] (<region1>): RLE size [20, 16] does not match the image size [16, 20]"),
    (_ann(0, 1, segmentation=[[1, 2, 3]]), "0 (id 11)", "annotation[1] (<region2>): malformed segmentation"),
    (_ann(0, 0, segmentation={"size": [H, W], "counts": [H * W]}), "0 (id 11)",
     "annotation[0] (<region1>) segmentation decodes to an empty mask"),
    (_ann(0, 1, bbox=[10, 8, 12, 6]), "0 (id 11)", "annotation[1] (<region2>) bbox [10, 8, 12, 6] (x, y, w, h) lies "
     "outside the 20x16"),
    (_ann(0, 1, bbox=[10, 8, 0, 6]), "0 (id 11)", "non-positive width or height"),
    (_ann(0, 1, bbox="10 8 6 6"), "0 (id 11)", "bbox must be [x, y, w, h]"),
    (lambda d: d[0]["annotation"][1].pop("segmentation"), "0 (id 11)", "annotation[1] (<region2>) lacks"),
    (lambda d: d[0].update(annotation=[]), "0 (id 11)", "annotation is empty"),
    (lambda d: d[0].pop("height"), "0 (id 11)", "missing required key(s) ['height']"),
    (lambda d: d[0].update(width=20.5), "0 (id 11)", "width must be a positive integer"),
    (lambda d: d[0]["conversations"][0].update({"from": "gpt"}), "0 (id 11)", "conversations[0] has role 'gpt'"),
    (lambda d: d.__setitem__(2, []), "2", "must be a JSON object"),
]


@pytest.mark.parametrize(("mutate", "record", "problem"), REGION_ERRORS)
def test_malformed_regions(tmp_path, expect_error, mutate, record, problem):
    data = copy.deepcopy(_records())
    mutate(data)
    path = _write(tmp_path, data)
    with expect_error(path, record, problem):
        read_region_json(path)


def test_boxes_may_reach_one_pixel_outside(tmp_path):
    data = _records()
    data[0]["annotation"][1]["bbox"] = [10, 8, 10.9, 8.9]  # right edge 20.9 <= 20 + 1, bottom 16.9 <= 16 + 1
    assert read_region_json(_write(tmp_path, data))[0].boxes()[1].tolist() == pytest.approx([10, 8, 20.9, 16.9])


def test_allow_empty_and_top_level(tmp_path, expect_error):
    data = _records()
    data[0]["annotation"][0]["segmentation"] = {"size": [H, W], "counts": [H * W]}
    records = read_region_json(_write(tmp_path, data), allow_empty=True)
    assert not records[0].masks()[0].any()
    with expect_error(_write(tmp_path, {"records": data}), None, "top level must be a list"):
        read_region_json(tmp_path / "regions.json")
