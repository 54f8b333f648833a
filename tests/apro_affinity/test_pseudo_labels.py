"""APro's pseudo-label generators on top of vlzoo.ops: semantics, stop-gradient, and the loss terms built on them."""

import math

import pytest
import torch

from apro_affinity.apro_terms import apro_box_terms, apro_semantic_terms, tel_box_term
from apro_affinity.pseudo_labels import (
    GlobalAffinityPropagation,
    LocalAffinityPropagation,
    TreeFilterPseudoLabels,
    global_pseudo_labels_per_instance,
)


def _two_region_image():
    """A 4x6 image whose left 3 columns are colour 0 and right 3 columns colour 1 (one channel)."""
    img = torch.zeros(1, 1, 4, 6, dtype=torch.float64)
    img[..., 3:] = 1.0
    return img


def test_gp_hand_example_two_flat_regions():
    # Inside a flat region every tree edge costs 0, so phi = 1 between its pixels; across the boundary the
    # bottleneck edge costs (1 - 0)^2 = 1 and phi = exp(-1 / zeta^2). With zeta = 1 a left pixel gets
    # y = (sum_left p + e^-1 sum_right p) / (12 + 12 e^-1). Pass 1 only (zeta_high=None).
    img = _two_region_image()
    p = torch.zeros(1, 1, 4, 6, dtype=torch.float64)
    p[..., 3:] = 1.0
    y = GlobalAffinityPropagation(zeta_low=1.0, zeta_high=None)(p, img)
    e = math.exp(-1.0)
    left, right = (12 * e) / (12 + 12 * e), 12 / (12 + 12 * e)
    assert torch.allclose(y[..., :3].double(), torch.full((1, 1, 4, 3), left, dtype=torch.float64), atol=1e-6)
    assert torch.allclose(y[..., 3:].double(), torch.full((1, 1, 4, 3), right, dtype=torch.float64), atol=1e-6)


def test_gp_two_stage_recosts_the_same_tree():
    g = torch.Generator().manual_seed(0)
    img = torch.rand(2, 3, 6, 7, generator=g)
    p = torch.rand(2, 2, 6, 7, generator=g)
    from vlzoo import ops

    tree = ops.grid_mst(img)
    first = ops.global_propagate(p, img, 0.3, tree=tree)
    second = ops.global_propagate(first, first, 0.2, tree=tree)
    ours = GlobalAffinityPropagation(0.3, 0.2)(p, img)
    assert torch.allclose(ours, second, atol=1e-6)
    # a convex combination of the predictions: inside [min p, max p] of each channel
    assert (ours >= p.amin(dim=(2, 3), keepdim=True) - 1e-6).all()
    assert (ours <= p.amax(dim=(2, 3), keepdim=True) + 1e-6).all()


def test_pseudo_labels_are_stop_gradient():
    g = torch.Generator().manual_seed(1)
    img = torch.rand(1, 3, 5, 5, generator=g)
    logits = torch.randn(1, 1, 5, 5, generator=g, requires_grad=True)
    p = logits.sigmoid()
    for module in (GlobalAffinityPropagation(0.1, 0.1), LocalAffinityPropagation(3, 0.5, 2),
                   TreeFilterPseudoLabels(0.5)):
        y = module(p, img)
        assert not y.requires_grad and y.grad_fn is None
    # the differentiable tree filter (TEL) keeps the graph
    y = TreeFilterPseudoLabels(0.5, differentiable=True)(p, img)
    y.sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_lp_is_zero_outside_the_box_and_constant_inside_a_flat_box():
    img = torch.zeros(1, 3, 6, 6)
    p = torch.full((1, 1, 6, 6), 0.7)
    box = torch.zeros(1, 1, 6, 6)
    box[..., 1:5, 1:5] = 1
    y = LocalAffinityPropagation(5, 0.15, 20)(p, img, box)
    assert (y[box == 0] == 0).all()
    # flat colour: every in-box pixel averages box pixels (0.7) and masked-out ones (0): values drop towards the
    # box border but stay in (0, 0.7]
    inside = y[box == 1]
    assert (inside > 0).all() and (inside <= 0.7 + 1e-6).all()
    with pytest.raises(ValueError, match="odd"):
        LocalAffinityPropagation(4)


def test_gp_per_instance_uses_the_tree_of_its_own_image():
    g = torch.Generator().manual_seed(2)
    images = torch.rand(2, 3, 5, 6, generator=g)
    probs = torch.rand(3, 5, 6, generator=g)
    index = torch.tensor([1, 0, 1])
    ours = global_pseudo_labels_per_instance(probs, images, index, 0.2, 0.1)
    for r in range(3):
        ref = GlobalAffinityPropagation(0.2, 0.1)(probs[r][None, None], images[index[r]][None])
        assert torch.allclose(ours[r], ref[0, 0], atol=1e-6)
    assert global_pseudo_labels_per_instance(probs[:0], images, index[:0], 0.2, 0.1).shape == (0, 5, 6)


def test_apro_box_terms_gradient_is_the_l1_subgradient():
    # dL/dp = -sign(y - p) B / sum B per instance (spec §9.5 item 5), averaged over the R instances.
    g = torch.Generator().manual_seed(3)
    images = torch.rand(2, 3, 8, 8, generator=g)
    logits = torch.randn(2, 8, 8, generator=g, requires_grad=True)
    box = torch.zeros(2, 8, 8)
    box[0, 2:6, 1:7] = 1
    box[1, 0:5, 3:8] = 1
    probs = logits.sigmoid()
    probs.retain_grad()
    terms = apro_box_terms(probs, box, images, torch.tensor([0, 1]), zeta_gl=0.1, zeta_gh=0.1, kernel_size=3,
                           zeta_s=0.5, iterations=3, use_local=False)
    terms["global"].backward()
    y = GlobalAffinityPropagation(0.1, 0.1)(probs.detach()[:, None], images)[:, 0]
    expected = -torch.sign(y - probs.detach()) * box / box.flatten(1).sum(1)[:, None, None] / 2
    assert torch.allclose(probs.grad, expected, atol=1e-6)


def test_apro_box_terms_mask2former_form_runs_gp_on_a_smaller_grid():
    g = torch.Generator().manual_seed(4)
    images = torch.rand(1, 3, 16, 16, generator=g)
    logits = torch.randn(2, 16, 16, generator=g, requires_grad=True)
    box = torch.zeros(2, 16, 16)
    box[:, 4:12, 4:12] = 1
    terms = apro_box_terms(logits.sigmoid(), box, images, torch.tensor([0, 0]), zeta_gl=0.03, zeta_gh=0.03,
                           kernel_size=5, zeta_s=0.15, normalize="total", global_size=(8, 8))
    assert set(terms) == {"global", "local"} and all(t.ndim == 0 and torch.isfinite(t) for t in terms.values())
    (terms["global"] + terms["local"]).backward()  # the gradient flows through the down/up resampling
    assert logits.grad.abs().sum() > 0
    empty = apro_box_terms(logits[:0].sigmoid(), box[:0], images, torch.zeros(0, dtype=torch.long), zeta_gl=0.03,
                           zeta_gh=0.03, kernel_size=5, zeta_s=0.15)
    assert empty["global"].item() == 0.0 and empty["local"].item() == 0.0


def test_semantic_terms_only_cover_unlabelled_pixels_and_tel_box_term_runs():
    g = torch.Generator().manual_seed(5)
    images = torch.rand(1, 3, 6, 6, generator=g)
    logits = torch.randn(1, 3, 6, 6, generator=g, requires_grad=True)
    unlabeled = torch.ones(1, 6, 6, dtype=torch.bool)
    unlabeled[0, 2, 2] = False
    terms = apro_semantic_terms(logits.softmax(1), images, unlabeled, zeta_gl=0.1, zeta_gh=0.1, kernel_size=3,
                                zeta_s=0.5, iterations=2)
    (terms["global"] + terms["local"]).backward()
    assert logits.grad[0, :, 2, 2].abs().sum() == 0  # the labelled pixel gets no pairwise gradient
    box = torch.ones(1, 6, 6)
    value = tel_box_term(logits[:, 0].sigmoid(), box, images, torch.tensor([0]), sigma=0.02)
    assert value.ndim == 0 and torch.isfinite(value)
