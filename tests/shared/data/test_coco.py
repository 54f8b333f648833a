import copy
import json
import time

import numpy as np
import pytest
from pycocotools.coco import COCO

from vlzoo.data import encode_mask_rle, read_coco_captions, read_coco_instances

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")


def _square_runs(h, w, top, left, size):
    mask = np.zeros((h, w), dtype=bool)
    mask[top:top + size, left:left + size] = True
    flat = mask.flatten(order="F").astype(int)
    edges = np.flatnonzero(np.diff(flat)) + 1
    runs = np.diff(np.concatenate(([0], edges, [flat.size]))).tolist()
    return mask, (runs if flat[0] == 0 else [0] + runs)


def _instances():
    _, uncompressed = _square_runs(20, 30, 2, 3, 5)
    compressed_mask = np.zeros((10, 10), dtype=bool)
    compressed_mask[4:9, 1:4] = True
    return {
        "info": {"description": "tiny"},
        "images": [
            {"id": 1, "file_name": "a.jpg", "height": 20, "width": 30},
            {"id": 2, "file_name": "b.jpg", "height": 10, "width": 10, "caption": "kept"},
            {"id": 3, "file_name": "c.jpg", "height": 8, "width": 8},
        ],
        "categories": [{"id": 18, "name": "dog", "supercategory": "animal"}, {"id": 1, "name": "person"}],
        "annotations": [
            {"id": 100, "image_id": 1, "category_id": 18, "bbox": [10.0, 4.0, 12.5, 9.0], "area": 80.0,
             "iscrowd": 0, "segmentation": [[10, 4, 22.5, 4, 22.5, 13, 10, 13]], "attributes": {"color": "brown"}},
            {"id": 101, "image_id": 1, "category_id": 1, "bbox": [3, 2, 5, 5], "area": 25, "iscrowd": 1,
             "segmentation": {"size": [20, 30], "counts": uncompressed}},
            {"id": 102, "image_id": 2, "category_id": 1, "bbox": [1, 4, 3, 5], "area": 15, "iscrowd": 0,
             "segmentation": encode_mask_rle(compressed_mask)},
            {"id": 103, "image_id": 1, "category_id": 1, "bbox": [0, 0, 30, 20], "area": 10, "iscrowd": 0,
             "segmentation": [[0, 0, 3, 0, 3, 3, 0, 3], [20, 10, 29, 10, 29, 19]]},
        ],
    }


def _write(tmp_path, data, name="instances.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_valid_file_matches_the_pycocotools_api(tmp_path):
    path = _write(tmp_path, _instances())
    coco = read_coco_instances(path)
    reference = COCO(str(path))
    assert len(coco) == 3 and coco.num_annotations == 4
    assert coco.image_ids == [1, 2, 3]
    for image_id in coco.image_ids:
        ann_ids = reference.getAnnIds(imgIds=[image_id])
        masks = coco.masks(image_id)
        info = coco.image(image_id)
        assert masks.shape == (len(ann_ids), info["height"], info["width"]) and masks.dtype == bool
        for k, ann in enumerate(reference.loadAnns(ann_ids)):
            np.testing.assert_array_equal(masks[k], reference.annToMask(ann).astype(bool))
            assert coco.annotations(image_id)[k]["id"] == ann["id"]


def test_records_boxes_labels_and_categories(tmp_path):
    coco = read_coco_instances(_write(tmp_path, _instances()))
    first = coco.annotations(1)
    assert [a["id"] for a in first] == [100, 101, 103]
    assert first[0]["attributes"] == {"color": "brown"}  # extra keys are kept
    assert coco.image(2)["caption"] == "kept"
    assert coco.extra == {"info": {"description": "tiny"}}
    np.testing.assert_array_equal(coco.boxes(1, "xywh")[0], [10.0, 4.0, 12.5, 9.0])
    np.testing.assert_array_equal(coco.boxes(1)[0], [10.0, 4.0, 22.5, 13.0])
    assert coco.boxes(1).dtype == np.float32
    assert coco.category_names == ["person", "dog"]  # contiguous index follows ascending category id
    assert coco.category_index == {1: 0, 18: 1}
    assert coco.labels(1).tolist() == [1, 0, 0]
    assert coco.iscrowd(1).tolist() == [False, True, False]
    assert coco.masks(3).shape == (0, 8, 8) and coco.boxes(3).shape == (0, 4) and coco.annotations(3) == []
    assert coco.masks(1)[1].sum() == 25
    with pytest.raises(KeyError, match="no image with id 99"):
        coco.masks(99)
    with pytest.raises(ValueError, match="fmt"):
        coco.boxes(1, "cxcywh")


def test_image_root(tmp_path, expect_error):
    path = _write(tmp_path, _instances())
    (tmp_path / "a.jpg").write_bytes(b"x")
    coco = read_coco_instances(path, image_root=tmp_path)
    assert coco.image_path(1) == tmp_path / "a.jpg"
    with pytest.raises(ValueError, match="no image_root"):
        read_coco_instances(path).image_path(1)
    with expect_error(path, "images[1] (id 2)", "image file not found"):
        read_coco_instances(path, image_root=tmp_path, check_images=True)


def _set(path, value):
    def mutate(data):
        target = data
        for key in path[:-1]:
            target = target[key]
        if value is _DELETE:
            del target[path[-1]]
        else:
            target[path[-1]] = value
    return mutate


_DELETE = object()

MALFORMED = [
    ("missing-top-key", _set(["categories"], _DELETE), None, "missing top-level key 'categories'"),
    ("top-not-list", _set(["images"], {"id": 1}), None, "top-level 'images' must be a list"),
    ("image-not-object", _set(["images", 1], [2]), "images[1]", "must be a JSON object"),
    ("image-missing-height", _set(["images", 0, "height"], _DELETE), "images[0] (id 1)", "missing required key"),
    ("image-bad-width", _set(["images", 0, "width"], 0), "images[0] (id 1)", "width must be a positive integer"),
    ("image-bool-height", _set(["images", 0, "height"], True), "images[0] (id 1)", "height must be a positive"),
    ("duplicate-image-id", _set(["images", 2, "id"], 1), "images[2] (id 1)", "duplicate image id 1"),
    ("duplicate-category", _set(["categories", 1, "id"], 18), "categories[1] (id 18)", "duplicate category id"),
    ("category-no-name", _set(["categories", 0, "name"], ""), "categories[0] (id 18)", "non-empty string"),
    ("duplicate-annotation", _set(["annotations", 2, "id"], 100), "annotations[2] (id 100)", "duplicate annotation id"),
    ("annotation-no-bbox", _set(["annotations", 1, "bbox"], _DELETE), "annotations[1] (id 101)", "['bbox']"),
    ("unknown-image", _set(["annotations", 1, "image_id"], 7), "annotations[1] (id 101)",
     "image_id 7 is not the id of any image"),
    ("image-id-as-string", _set(["annotations", 1, "image_id"], "1"), "annotations[1]", "image_id '1' is not"),
    ("unknown-category", _set(["annotations", 0, "category_id"], 5), "annotations[0] (id 100)",
     "category_id 5 is not the id of any category"),
    ("zero-width-box", _set(["annotations", 0, "bbox"], [10, 4, 0, 9]), "annotations[0] (id 100)", "non-positive"),
    ("negative-box", _set(["annotations", 0, "bbox"], [10, 4, 5, -2]), "annotations[0] (id 100)", "non-positive"),
    ("box-outside", _set(["annotations", 0, "bbox"], [10, 4, 21.5, 9]), "annotations[0] (id 100)",
     "lies outside the 30x20"),
    ("box-left-of-image", _set(["annotations", 0, "bbox"], [-1.5, 4, 5, 5]), "annotations[0]", "lies outside"),
    ("box-three-numbers", _set(["annotations", 0, "bbox"], [1, 2, 3]), "annotations[0]", "4 finite numbers"),
    ("odd-polygon", _set(["annotations", 0, "segmentation"], [[1, 2, 3, 4, 5, 6, 7]]), "annotations[0] (id 100)",
     "malformed segmentation: polygon 0 has 7 coordinates"),
    ("rle-size", _set(["annotations", 1, "segmentation", "size"], [30, 20]), "annotations[1] (id 101)",
     "RLE size [30, 20] does not match the image size [20, 30]"),
    ("rle-sum", _set(["annotations", 1, "segmentation", "counts"], [5, 5]), "annotations[1] (id 101)",
     "add up to 10 pixels"),
    ("compressed-garbage", _set(["annotations", 2, "segmentation", "counts"], "\x7fabc"), "annotations[2] (id 102)",
     "not a valid RLE code"),
    ("empty-mask", _set(["annotations", 1, "segmentation", "counts"], [600]), "annotations[1] (id 101)",
     "empty mask"),
    ("missing-segmentation", _set(["annotations", 0, "segmentation"], _DELETE), "annotations[0]", "segmentation"),
    ("bad-iscrowd", _set(["annotations", 0, "iscrowd"], 2), "annotations[0]", "iscrowd must be 0 or 1"),
    ("negative-area", _set(["annotations", 0, "area"], -3), "annotations[0]", "area must be a non-negative"),
]


@pytest.mark.parametrize(("mutate", "record", "problem"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_instances(tmp_path, expect_error, mutate, record, problem):
    data = copy.deepcopy(_instances())
    mutate(data)
    path = _write(tmp_path, data)
    with expect_error(path, record, problem):
        read_coco_instances(path)


def test_file_level_errors(tmp_path, expect_error):
    with expect_error(tmp_path / "none.json", None, "file not found"):
        read_coco_instances(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text('{"images": [\n  {"id": 1,}\n]}')
    with expect_error(tmp_path / "bad.json", None, "invalid JSON at line 2"):
        read_coco_instances(tmp_path / "bad.json")
    with expect_error(_write(tmp_path, [1, 2]), None, "top level must be a JSON object"):
        read_coco_instances(tmp_path / "instances.json")


def test_allow_empty_keeps_empty_masks(tmp_path):
    data = _instances()
    data["annotations"][1]["segmentation"]["counts"] = [600]
    data["annotations"][0]["segmentation"] = []
    coco = read_coco_instances(_write(tmp_path, data), allow_empty=True)
    masks = coco.masks(1)
    assert masks.shape == (3, 20, 30) and not masks[0].any() and not masks[1].any() and masks[2].any()


def test_box_only_files(tmp_path, expect_error):
    data = _instances()
    del data["annotations"][0]["segmentation"]
    path = _write(tmp_path, data)
    coco = read_coco_instances(path, require_segmentation=False)
    assert coco.boxes(1).shape == (3, 4)
    assert coco.masks(2).shape == (1, 10, 10)
    with expect_error(path, "annotations[0] (id 100)", "no segmentation"):
        coco.masks(1)


def _many_images(n):
    polygon = [[1, 1, 6, 1, 6, 6, 1, 6]]
    return {
        "images": [{"id": i, "file_name": f"{i}.jpg", "height": 8, "width": 8} for i in range(n)],
        "categories": [{"id": 1, "name": "thing"}],
        "annotations": [{"id": k, "image_id": k // 2, "category_id": 1, "bbox": [1, 1, 5, 5], "iscrowd": 0,
                         "segmentation": polygon} for k in range(2 * n)],
    }


def test_per_image_access_scales_linearly(tmp_path):
    """Indexing by image happens once: 10x the images costs about 10x the time, not 100x."""
    def seconds(n):
        path = _write(tmp_path, _many_images(n), f"{n}.json")
        best = float("inf")
        for _ in range(2):
            start = time.perf_counter()
            coco = read_coco_instances(path, allow_empty=True)  # skip rasterising: time the indexing
            total = sum(len(coco.annotations(i)) + coco.boxes(i).shape[0] for i in coco.image_ids)
            best = min(best, time.perf_counter() - start)
        assert total == 4 * n
        return best

    small, large = seconds(500), seconds(5000)
    assert large / small < 30, (small, large)


def test_captions(tmp_path, expect_error):
    data = {"images": [{"id": 5}, {"id": 6}, {"id": 7}],
            "annotations": [{"id": 1, "image_id": 6, "caption": "A dog. "}, {"id": 2, "image_id": 5, "caption": "x"},
                            {"id": 3, "image_id": 6, "caption": "Another dog.\n"}]}
    path = _write(tmp_path, data, "captions.json")
    assert read_coco_captions(path) == {5: ["x"], 6: ["A dog. ", "Another dog.\n"], 7: []}
    del data["images"]
    assert list(read_coco_captions(_write(tmp_path, data, "no_images.json"))) == [6, 5]


CAPTION_ERRORS = [
    (lambda d: d.pop("annotations"), None, "missing top-level key 'annotations'"),
    (lambda d: d["annotations"][1].update(image_id=99), "annotations[1] (id 2)", "image_id 99 is not the id"),
    (lambda d: d["annotations"][0].update(caption="  "), "annotations[0] (id 1)", "caption is empty"),
    (lambda d: d["annotations"][0].update(caption=["a"]), "annotations[0] (id 1)", "caption must be a string"),
    (lambda d: d["annotations"][1].update(id=1), "annotations[1] (id 1)", "duplicate annotation id 1"),
    (lambda d: d["annotations"][1].pop("caption"), "annotations[1] (id 2)", "missing required key(s) ['caption']"),
    (lambda d: d["images"].append({"id": 5}), "images[1] (id 5)", "duplicate image id 5"),
]


@pytest.mark.parametrize(("mutate", "record", "problem"), CAPTION_ERRORS)
def test_malformed_captions(tmp_path, expect_error, mutate, record, problem):
    data = {"images": [{"id": 5}], "annotations": [{"id": 1, "image_id": 5, "caption": "a"},
                                                   {"id": 2, "image_id": 5, "caption": "b"}]}
    mutate(data)
    path = _write(tmp_path, data, "captions.json")
    with expect_error(path, record, problem):
        read_coco_captions(path)
