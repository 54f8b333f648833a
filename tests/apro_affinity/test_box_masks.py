"""Box-mask generation: the official GenerateBoxMask rule, the exact form, resizing and the mmdet transform."""

import numpy as np
import pytest
import torch

from apro_affinity.box_masks import box_projections, boxes_to_masks, resize_box_masks


def test_official_rule_rounds_and_includes_the_end():
    # [1.4, 0.6, 2.5, 2.0] rounds (half to even, like numpy) to [1, 1, 2, 2]; the official step fills
    # mask[y1:y2 + 1, x1:x2 + 1] -> rows 1..2, cols 1..2.
    mask = boxes_to_masks(torch.tensor([[1.4, 0.6, 2.5, 2.0]]), 4, 5)
    expected = np.zeros((4, 5), dtype=bool)
    expected[1:3, 1:3] = True
    assert mask.shape == (1, 4, 5) and mask.dtype == torch.bool
    np.testing.assert_array_equal(mask[0].numpy(), expected)


def test_exact_form_is_the_tight_coco_extent():
    # A tight COCO box [x, y, w, h] = [2, 1, 3, 2] covers columns 2..4 and rows 1..2: x2 = x + w is exclusive.
    mask = boxes_to_masks(torch.tensor([[2.0, 1.0, 5.0, 3.0]]), 5, 6, inclusive_end=False)
    assert mask.sum().item() == 3 * 2
    assert mask[0, 1:3, 2:5].all()
    inclusive = boxes_to_masks(torch.tensor([[2.0, 1.0, 5.0, 3.0]]), 5, 6)
    assert inclusive.sum().item() == 4 * 3  # one more row and column


def test_boxes_are_clipped_and_outside_boxes_are_empty():
    masks = boxes_to_masks(torch.tensor([[-3.0, -2.0, 1.0, 1.0], [10.0, 10.0, 12.0, 12.0]]), 4, 4)
    assert masks[0].sum().item() == 4 and masks[0, :2, :2].all()
    assert masks[1].sum().item() == 0
    assert boxes_to_masks(torch.zeros(0, 4), 3, 3).shape == (0, 3, 3)


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match=r"\(R, 4\)"):
        boxes_to_masks(torch.zeros(3), 4, 4)
    with pytest.raises(ValueError, match="positive"):
        boxes_to_masks(torch.zeros(1, 4), 0, 4)


def test_resize_and_projections():
    mask = boxes_to_masks(torch.tensor([[0.0, 0.0, 4.0, 2.0]]), 8, 8, inclusive_end=False)
    small = resize_box_masks(mask, (4, 4))
    assert small.shape == (1, 4, 4) and small.dtype == torch.float32
    assert small[0, 0, :2].tolist() == [1.0, 1.0] and small[0, 2:].sum() == 0
    onto_x, onto_y = box_projections(mask.float())
    assert onto_x[0].tolist() == [1, 1, 1, 1, 0, 0, 0, 0] and onto_y[0].tolist() == [1, 1, 0, 0, 0, 0, 0, 0]


def test_mmdet_generate_box_mask_transform():
    pytest.importorskip("mmdet")
    from mmdet.structures.bbox import HorizontalBoxes

    from apro_affinity.mmdet import GenerateBoxMask

    boxes = np.array([[1.4, 0.6, 2.5, 2.0], [0.0, 0.0, 5.0, 4.0]], dtype=np.float32)
    results = {"img": np.zeros((4, 5, 3), np.uint8), "gt_bboxes": HorizontalBoxes(boxes), "img_path": "x.png"}
    out = GenerateBoxMask()(results)
    masks = out["gt_masks"]
    assert (masks.height, masks.width, len(masks)) == (4, 5, 2)
    np.testing.assert_array_equal(masks.masks, boxes_to_masks(torch.from_numpy(boxes), 4, 5).numpy())
    with pytest.raises(KeyError, match="LoadAnnotations"):
        GenerateBoxMask()({"img": np.zeros((4, 5, 3), np.uint8), "img_path": "y.png"})
