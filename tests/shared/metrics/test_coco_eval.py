"""vlzoo.metrics.coco_eval on a tiny synthetic COCO file: perfect = 100, garbage ~ 0, clear errors."""

import copy
import json
import math

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from vlzoo.metrics import coco_box_ap, coco_mask_ap, load_coco_gt

H, W = 96, 128
KEYS = {"AP", "AP50", "AP75", "APs", "APm", "APl"}


def rectangle(y0, x0, h, w):
    m = np.zeros((H, W), dtype=bool)
    m[y0 : y0 + h, x0 : x0 + w] = True
    return m


@pytest.fixture
def tiny_coco():
    """3 images x 2 categories; small (< 32^2 px) and medium (32^2..96^2 px) objects, RLE or polygon GT."""
    boxes = {  # image -> [(category, y0, x0, h, w)]
        1: [(1, 5, 5, 20, 20), (2, 40, 50, 40, 50)],
        2: [(1, 10, 60, 45, 40)],
        3: [(2, 60, 10, 12, 15), (1, 20, 80, 30, 40)],
    }
    images = [{"id": i, "height": H, "width": W, "file_name": f"{i:03d}.jpg"} for i in boxes]
    annotations, masks = [], {}
    for img, objs in boxes.items():
        for cat, y0, x0, h, w in objs:
            ann_id = len(annotations) + 1
            m = rectangle(y0, x0, h, w)
            if ann_id % 2:  # half the GT as compressed RLE, half as polygons
                rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
                segmentation = {"size": rle["size"], "counts": rle["counts"].decode("ascii")}
            else:
                segmentation = [[x0, y0, x0 + w, y0, x0 + w, y0 + h, x0, y0 + h]]
            annotations.append(
                {
                    "id": ann_id,
                    "image_id": img,
                    "category_id": cat,
                    "segmentation": segmentation,
                    "area": float(h * w),
                    "bbox": [x0, y0, w, h],
                    "iscrowd": 0,
                }
            )
            masks[ann_id] = m
    dataset = {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": 1, "name": "cube"}, {"id": 2, "name": "ball"}],
    }
    return dataset, masks


def perfect_predictions(dataset, masks):
    return [
        {
            "image_id": a["image_id"],
            "category_id": a["category_id"],
            "score": 0.5 + 0.01 * a["id"],
            "mask": masks[a["id"]],
            "bbox": list(a["bbox"]),
        }
        for a in dataset["annotations"]
    ]


def test_perfect_prediction_scores_100(tiny_coco, tmp_path):
    dataset, masks = tiny_coco
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(dataset))
    preds = perfect_predictions(dataset, masks)
    mask_ap = coco_mask_ap(path, preds)
    box_ap = coco_box_ap(str(path), preds)
    assert set(mask_ap) == KEYS and set(box_ap) == KEYS
    for result in (mask_ap, box_ap):
        for key in ("AP", "AP50", "AP75", "APs", "APm"):
            assert result[key] == pytest.approx(100.0), key
        assert math.isnan(result["APl"])  # no object above 96^2 px: COCOeval's -1 becomes NaN


def test_garbage_prediction_scores_about_zero(tiny_coco):
    dataset, masks = tiny_coco
    garbage = []
    for a in dataset["annotations"]:  # right image, wrong place; plus the right place with the wrong class
        garbage.append(
            {
                "image_id": a["image_id"],
                "category_id": a["category_id"],
                "score": 0.9,
                "mask": rectangle(H - 8, W - 8, 8, 8),
                "bbox": [W - 8, H - 8, 8, 8],
            }
        )
        garbage.append(
            {
                "image_id": a["image_id"],
                "category_id": 3 - a["category_id"],
                "score": 0.8,
                "mask": masks[a["id"]],
                "bbox": list(a["bbox"]),
            }
        )
    for fn in (coco_mask_ap, coco_box_ap):
        result = fn(dataset, garbage)
        assert result["AP"] < 1.0 and result["AP50"] < 1.0


def test_one_category_right_one_missed_averages_to_50(tiny_coco):
    # Annotations 1, 3, 5 are exactly the "cube" objects: cube AP 100, ball AP 0 -> mean over categories 50.
    dataset, masks = tiny_coco
    preds = perfect_predictions(dataset, masks)[::2]
    assert {p["category_id"] for p in preds} == {1}
    assert coco_mask_ap(dataset, preds)["AP"] == pytest.approx(50.0)


def test_empty_predictions_give_zero_not_an_error(tiny_coco):
    dataset, _ = tiny_coco
    for fn in (coco_mask_ap, coco_box_ap):
        result = fn(dataset, [])
        assert result["AP"] == 0.0 and result["AP50"] == 0.0 and result["APs"] == 0.0 and result["APm"] == 0.0
        assert math.isnan(result["APl"])


def test_rle_and_mask_inputs_agree_and_box_comes_from_mask(tiny_coco):
    dataset, masks = tiny_coco
    preds = perfect_predictions(dataset, masks)
    preds[0]["mask"] = rectangle(5, 5, 18, 20)  # a slightly wrong mask: AP below 100
    as_rle = []
    for p in preds:
        rle = mask_utils.encode(np.asfortranarray(p["mask"].astype(np.uint8)))
        as_rle.append({k: v for k, v in p.items() if k not in ("mask", "bbox")} | {"segmentation": rle})
    assert coco_mask_ap(dataset, as_rle) == coco_mask_ap(dataset, preds)
    without_box = [{k: v for k, v in p.items() if k != "bbox"} for p in preds]
    with_box = [
        p
        | {
            "bbox": mask_utils.toBbox(
                mask_utils.encode(np.asfortranarray(p["mask"].astype(np.uint8)))
            ).tolist()
        }
        for p in preds
    ]
    assert coco_box_ap(dataset, without_box) == coco_box_ap(dataset, with_box)


def test_ground_truth_forms_and_no_mutation(tiny_coco):
    dataset, masks = tiny_coco
    preds = perfect_predictions(dataset, masks)
    before = copy.deepcopy(dataset)
    from_dict = coco_mask_ap(dataset, preds)
    assert dataset == before  # COCOeval rewrites annotations in place; we evaluate a copy
    coco = load_coco_gt(dataset)
    assert isinstance(coco, COCO) and len(coco.getImgIds()) == 3
    assert coco_mask_ap(coco, preds) == from_dict


def test_pycocotools_is_silent_unless_verbose(tiny_coco, capsys):
    dataset, masks = tiny_coco
    preds = perfect_predictions(dataset, masks)
    coco_mask_ap(dataset, preds)
    assert capsys.readouterr().out == ""
    coco_box_ap(dataset, preds, verbose=True)
    assert "Average Precision" in capsys.readouterr().out


def test_clear_errors(tiny_coco, tmp_path):
    dataset, masks = tiny_coco
    good = perfect_predictions(dataset, masks)
    with pytest.raises(ValueError, match=r"predictions\[1\]: image_id 99 is not in the ground truth"):
        coco_mask_ap(dataset, [good[0], good[1] | {"image_id": 99}])
    with pytest.raises(ValueError, match=r"predictions\[0\]: category_id 7"):
        coco_box_ap(dataset, [good[0] | {"category_id": 7}])
    with pytest.raises(
        ValueError, match=r"predictions\[0\]: mask shape \(10, 10\) != image 1 size \(96, 128\)"
    ):
        coco_mask_ap(dataset, [good[0] | {"mask": np.zeros((10, 10), bool)}])
    with pytest.raises(ValueError, match=r"predictions\[0\] lacks 'score'"):
        coco_mask_ap(dataset, [{k: v for k, v in good[0].items() if k != "score"}])
    with pytest.raises(ValueError, match=r"predictions\[0\]: score 'high' is not a finite number"):
        coco_mask_ap(dataset, [good[0] | {"score": "high"}])
    with pytest.raises(ValueError, match=r"needs a 'mask'"):
        coco_mask_ap(dataset, [{k: v for k, v in good[0].items() if k != "mask"}])
    with pytest.raises(ValueError, match=r"bbox must be \[x, y, w, h\]"):
        coco_box_ap(dataset, [good[0] | {"bbox": [0, 0, -1, 3]}])
    with pytest.raises(FileNotFoundError, match="not found"):
        coco_box_ap(tmp_path / "missing.json", good)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ValueError, match="broken.json: not valid JSON"):
        coco_box_ap(broken, good)
    no_area = copy.deepcopy(dataset)
    del no_area["annotations"][2]["area"]
    with pytest.raises(ValueError, match=r"annotations\[2\] lacks \['area'\]"):
        coco_box_ap(no_area, good)
