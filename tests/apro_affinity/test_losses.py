"""APro losses and the BoxInst / TEL baselines on hand-worked examples (working in the comments)."""

import math

import numpy as np
import pytest
import torch

from apro_affinity.losses import (
    box_matching_cost,
    box_projection_loss,
    box_soft_label_l1,
    boxinst_pairwise_loss,
    dice_loss,
    lab_color_similarity,
    neighbour_unfold,
    partial_cross_entropy,
    rgb_to_lab,
    unlabeled_soft_label_l1,
)


def test_dice_loss_hand_example():
    # x = [1, 0, 1, 0], t = [1, 1, 0, 0]: sum(x t) = 1, sum(x^2) = 2, sum(t^2) = 2 -> 1 - 2 / (4 + 1e-5)
    x = torch.tensor([[1.0, 0, 1, 0]])
    t = torch.tensor([[1.0, 1, 0, 0]])
    assert dice_loss(x, t).item() == pytest.approx(1 - 2 / (4 + 1e-5), abs=1e-7)


def _single_pixel_case():
    # 4x4 grid, box = rows 1-2 x cols 1-2; the prediction is 1 at (1, 1) only.
    box = torch.zeros(1, 4, 4)
    box[0, 1:3, 1:3] = 1
    probs = torch.zeros(1, 4, 4)
    probs[0, 1, 1] = 1
    return probs, box


def test_box_projection_loss_hand_example():
    probs, box = _single_pixel_case()
    # onto x (max over rows): p = [0, 1, 0, 0], B = [0, 1, 1, 0] -> 1 - 2*1 / (1 + 2 + 1e-5) ~ 1/3; same onto y
    expected = 2 * (1 - 2 / (3 + 1e-5))
    assert box_projection_loss(probs, box).item() == pytest.approx(expected, abs=1e-6)
    # Any mask touching every row and column of the box has zero loss: the box itself and a "plus" inside it.
    assert box_projection_loss(box, box).item() == pytest.approx(0.0, abs=1e-5)
    plus = torch.zeros(1, 5, 5)
    plus[0, 2, 1:4] = 1
    plus[0, 1:4, 2] = 1
    big_box = torch.zeros(1, 5, 5)
    big_box[0, 1:4, 1:4] = 1
    assert box_projection_loss(plus, big_box).item() == pytest.approx(0.0, abs=1e-5)


def test_box_projection_loss_is_per_instance_and_checks_shapes():
    probs, box = _single_pixel_case()
    two = box_projection_loss(torch.cat([probs, box]), torch.cat([box, box]))
    assert two.shape == (2,) and two[1].item() == pytest.approx(0.0, abs=1e-5)
    with pytest.raises(ValueError, match="differ in shape"):
        box_projection_loss(probs, box[:, :3])


def test_box_matching_cost_hand_example_and_pairs():
    probs, box = _single_pixel_case()
    # eps = 1 on numerator and denominator: onto x 1 - (2*1 + 1) / (1 + 2 + 1) = 1/4, onto y the same.
    cost = box_matching_cost(probs, box, eps=1.0)
    assert cost.shape == (1, 1) and cost.item() == pytest.approx(0.5, abs=1e-6)
    g = torch.Generator().manual_seed(0)
    queries = torch.rand(5, 6, 7, generator=g)
    boxes = (torch.rand(3, 6, 7, generator=g) > 0.5).float()
    cost = box_matching_cost(queries, boxes, eps=1.0)
    for q in range(5):
        for b in range(3):
            total = 0.0
            for dim in (1, 2):  # max over rows (onto x) and over columns (onto y)
                x, t = queries[q].amax(dim=dim - 1), boxes[b].amax(dim=dim - 1)
                total += 1 - (2 * (x * t).sum() + 1) / ((x * x).sum() + (t * t).sum() + 1)
            assert cost[q, b].item() == pytest.approx(float(total), abs=1e-5)


def test_box_soft_label_l1_value_and_gradient():
    # p = [[0.2, 0.8], [0.5, 0.5]], y = [[0.4, 0.4], [0.5, 1.0]], B = [[1, 1], [0, 1]]
    # |y - p| B = [0.2, 0.4, 0, 0.5] -> 1.1, sum B = 3 -> L = 1.1 / 3
    probs = torch.tensor([[[0.2, 0.8], [0.5, 0.5]]], requires_grad=True)
    pseudo = torch.tensor([[[0.4, 0.4], [0.5, 1.0]]], requires_grad=True)
    box = torch.tensor([[[1.0, 1.0], [0.0, 1.0]]])
    loss = box_soft_label_l1(probs, pseudo, box).sum()
    assert loss.item() == pytest.approx(1.1 / 3, abs=1e-6)
    loss.backward()
    # dL/dp = -sign(y - p) B / sum B; the pseudo label gets no gradient (stop-gradient).
    expected = -torch.sign(pseudo.detach() - probs.detach()) * box / box.sum()
    assert torch.allclose(probs.grad, expected)
    assert pseudo.grad is None


def test_box_soft_label_l1_total_normaliser():
    # instance 0: |y - p| B sums to 1 over a box of 2 px; instance 1: 3 over 4 px.
    probs = torch.zeros(2, 2, 2)
    pseudo = torch.tensor([[[0.5, 0.5], [0.0, 0.0]], [[0.75, 0.75], [0.75, 0.75]]])
    box = torch.tensor([[[1.0, 1.0], [0.0, 0.0]], [[1.0, 1.0], [1.0, 1.0]]])
    per = box_soft_label_l1(probs, pseudo, box, "instance")
    assert per.tolist() == pytest.approx([0.5, 0.75])
    assert box_soft_label_l1(probs, pseudo, box, "total").item() == pytest.approx(4 / 6)
    with pytest.raises(ValueError, match="normalize"):
        box_soft_label_l1(probs, pseudo, box, "pixel")


def test_partial_cross_entropy_uses_labelled_pixels_only():
    # Two classes, equal logits: CE = log 2 on every labelled pixel, whatever the unlabelled ones do.
    logits = torch.zeros(1, 2, 2, 2, requires_grad=True)
    labels = torch.tensor([[[0, 255], [255, 1]]])
    loss = partial_cross_entropy(logits, labels)
    assert loss.item() == pytest.approx(math.log(2))
    loss.backward()
    assert logits.grad[0, :, 0, 1].abs().sum() == 0 and logits.grad[0, :, 1, 0].abs().sum() == 0
    empty = partial_cross_entropy(logits, torch.full((1, 2, 2), 255))
    assert empty.item() == 0.0 and empty.requires_grad


def test_unlabeled_soft_label_l1_tel_normaliser_and_detach():
    # pixel 0 unlabelled: |0.5 - 0.7| + |0.5 - 0.3| = 0.4; pixel 1 labelled (ignored); |U| = 1 -> 0.4
    probs = torch.tensor([[[[0.7, 0.4]], [[0.3, 0.6]]]], requires_grad=True)  # (1, 2, 1, 2)
    pseudo = torch.tensor([[[[0.5, 0.0]], [[0.5, 1.0]]]], requires_grad=True)
    unlabeled = torch.tensor([[[True, False]]])
    loss = unlabeled_soft_label_l1(probs, pseudo, unlabeled)
    assert loss.item() == pytest.approx(0.4)
    loss.backward()
    assert pseudo.grad is None and probs.grad[0, :, 0, 1].abs().sum() == 0
    kept = unlabeled_soft_label_l1(probs, pseudo, unlabeled, detach_target=False)
    kept.backward()
    assert pseudo.grad is not None  # TEL's form keeps the graph through its target


def test_rgb_to_lab_matches_skimage():
    skcolor = pytest.importorskip("skimage.color")
    g = torch.Generator().manual_seed(0)
    rgb = torch.randint(0, 256, (1, 3, 4, 5), generator=g).float()
    ours = rgb_to_lab(rgb)[0].permute(1, 2, 0).numpy()
    ref = skcolor.rgb2lab(rgb[0].permute(1, 2, 0).numpy().astype(np.uint8))
    np.testing.assert_allclose(ours, ref, atol=1e-3)


def test_neighbour_unfold_and_color_similarity_borders():
    img = torch.arange(25.0).view(1, 1, 5, 5)
    nb = neighbour_unfold(img, 3, 2)  # 8 neighbours at distance 2, centre excluded
    assert nb.shape == (1, 1, 8, 5, 5)
    # pixel (2, 2) = 12: neighbours (0,0)=0, (0,2)=2, (0,4)=4, (2,0)=10, (2,4)=14, (4,0)=20, (4,2)=22, (4,4)=24
    assert nb[0, 0, :, 2, 2].tolist() == [0, 2, 4, 10, 14, 20, 22, 24]
    sim = lab_color_similarity(torch.full((1, 3, 5, 5), 120.0))
    # constant colour: similarity 1 to every neighbour inside the image, 0 to off-image ones.
    assert sim[0, :, 2, 2].tolist() == [1.0] * 8
    assert sim[0, :, 0, 0].tolist() == [0, 0, 0, 0, 1, 0, 1, 1]


def test_boxinst_pairwise_loss_against_a_loop():
    # Equal logits: P(same) = 0.5 * 0.5 + 0.5 * 0.5 = 0.5 on every edge, so the loss is log 2 (off-image
    # edges are excluded even where the similarity says 1).
    box = torch.zeros(1, 6, 6)
    box[0, 1:5, 1:5] = 1
    sim = torch.ones(1, 8, 6, 6)
    assert boxinst_pairwise_loss(torch.zeros(1, 6, 6), sim, box).item() == pytest.approx(math.log(2), abs=1e-6)
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 6, 7, generator=g)
    sim = torch.rand(2, 8, 6, 7, generator=g)
    box = (torch.rand(2, 6, 7, generator=g) > 0.3).float()
    offsets = [(dy, dx) for dy in (-2, 0, 2) for dx in (-2, 0, 2) if (dy, dx) != (0, 0)]
    num, den = 0.0, 0.0
    p = logits.sigmoid()
    for r in range(2):
        for y in range(6):
            for x in range(7):
                for e, (dy, dx) in enumerate(offsets):
                    yy, xx = y + dy, x + dx
                    if not (0 <= yy < 6 and 0 <= xx < 7) or sim[r, e, y, x] < 0.3 or box[r, y, x] == 0:
                        continue
                    same = p[r, y, x] * p[r, yy, xx] + (1 - p[r, y, x]) * (1 - p[r, yy, xx])
                    num += -math.log(float(same))
                    den += 1
    assert boxinst_pairwise_loss(logits, sim, box).item() == pytest.approx(num / den, rel=1e-5)
