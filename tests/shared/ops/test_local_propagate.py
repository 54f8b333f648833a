"""local_propagate: k x k Gaussian-kernel propagation with exact out-of-image exclusion (APro spec §2.3, §9.5.4)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vlzoo.ops import dense, local_propagate

IMPLS = ("reference", "cpu")


def inputs(rng, B=2, K=2, C=3, H=7, W=9, dtype=torch.float64):
    p = torch.rand(B, K, H, W, generator=rng, dtype=dtype)
    image = torch.randn(B, C, H, W, generator=rng, dtype=dtype) * 0.3
    box = torch.zeros(B, 1, H, W, dtype=dtype)
    box[:, :, 1:5, 2:7] = 1
    return p, image, box


def loop_oracle(p, image, kernel_size, zeta, iterations, mask):
    out = [
        dense.loop_local_propagate(
            p[b].numpy(), image[b].numpy(), kernel_size, zeta, iterations, None if mask is None else mask[b].numpy()
        )
        for b in range(p.shape[0])
    ]
    return torch.from_numpy(np.stack(out))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("kernel_size", [3, 5])
@pytest.mark.parametrize("iterations", [0, 1, 3])
@pytest.mark.parametrize("masked", [False, True])
def test_equals_explicit_double_loop_float64(impl, kernel_size, iterations, masked, rng, ops):
    p, image, box = inputs(rng)
    mask = box if masked else None
    y = ops.run_lp(impl, p, image, kernel_size, 0.5, iterations, mask)
    torch.testing.assert_close(y, loop_oracle(p, image, kernel_size, 0.5, iterations, mask), rtol=0, atol=1e-10)


@pytest.mark.parametrize("impl", IMPLS)
def test_equals_explicit_double_loop_float32(impl, rng, ops):
    p, image, box = inputs(rng, dtype=torch.float32)
    y = ops.run_lp(impl, p, image, 5, 0.4, 4, box)
    assert y.dtype == torch.float32
    torch.testing.assert_close(y.double(), loop_oracle(p.double(), image.double(), 5, 0.4, 4, box.double()), rtol=0, atol=1e-5)


def official_shifted_unfold(p, image, kernel_size, zeta, iterations, mask):
    """The official trick: shift the image by +10, zero-pad, and let the padded affinities underflow."""
    B, K, H, W = p.shape
    C = image.shape[1]
    k2 = kernel_size * kernel_size
    unfold = torch.nn.Unfold(kernel_size, padding=kernel_size // 2)
    shifted = image + 10
    patches = unfold(shifted).reshape(B, C, k2, H * W)
    affinity = torch.exp(-(((patches - shifted.reshape(B, C, 1, H * W)) ** 2) / zeta**2).sum(1))
    y = p * mask
    for _ in range(iterations):
        neighbours = F.unfold(y.reshape(B * K, 1, H, W), kernel_size, padding=kernel_size // 2).reshape(B, K, k2, H * W)
        y = ((neighbours * affinity[:, None]).sum(2) / (affinity.sum(1)[:, None] + 1e-10)).reshape(B, K, H, W) * mask
    return y


@pytest.mark.parametrize("impl", IMPLS)
def test_agrees_with_the_official_plus_ten_shift_at_the_released_zeta(impl, rng, ops):
    # mmdet-normalised colours lie in about [-2.1, 2.6]; with zeta_s = 0.15 the +10 shift sends padded
    # affinities to 0, so the official border handling and the exact exclusion agree.
    p, _, box = inputs(rng, H=12, W=11)
    image = torch.rand(2, 3, 12, 11, generator=rng, dtype=torch.float64) * 4.7 - 2.1
    y = ops.run_lp(impl, p, image, 5, 0.15, 20, box)
    assert float((y - official_shifted_unfold(p, image, 5, 0.15, 20, box)).abs().max()) < 1e-6


@pytest.mark.parametrize("impl", IMPLS)
def test_mask_and_iteration_semantics(impl, rng, ops):
    p, image, box = inputs(rng)
    y = ops.run_lp(impl, p, image, 5, 0.3, 4, box)
    assert bool((y[box.expand_as(y) == 0] == 0).all())  # exactly zero outside the box
    torch.testing.assert_close(ops.run_lp(impl, p, image, 5, 0.3, 0, box), p * box, rtol=0, atol=0)
    step = p
    for _ in range(4):  # T iterations == T single steps, each re-masked
        step = ops.run_lp(impl, step, image, 5, 0.3, 1, box)
    torch.testing.assert_close(step, y, rtol=0, atol=1e-12)
    per_channel = box.expand(-1, 2, -1, -1).clone()
    per_channel[:, 1] = 1  # a (B, K, H, W) mask: channel 1 unmasked
    y2 = ops.run_lp(impl, p, image, 5, 0.3, 4, per_channel)
    torch.testing.assert_close(y2[:, :1], y[:, :1], rtol=0, atol=1e-12)
    torch.testing.assert_close(y2[:, 1:], ops.run_lp(impl, p[:, 1:], image, 5, 0.3, 4), rtol=0, atol=1e-12)
    torch.testing.assert_close(ops.run_lp(impl, p, image, 5, 0.3, 4, box[:, 0].bool()), y, rtol=0, atol=0)


@pytest.mark.parametrize("impl", IMPLS)
def test_properties(impl, rng, ops):
    p, image, _ = inputs(rng, B=3, K=3)
    y = ops.run_lp(impl, p, image, 5, 0.3, 20)
    assert bool((y <= p.amax() + 1e-12).all() and (y >= p.amin() - 1e-8).all())
    const = torch.full_like(p, 0.6)
    torch.testing.assert_close(ops.run_lp(impl, const, image, 5, 0.3, 20), const, rtol=1e-8, atol=0)
    for b in range(3):
        for k in range(3):
            single = ops.run_lp(impl, p[b : b + 1, k : k + 1], image[b : b + 1], 5, 0.3, 20)
            torch.testing.assert_close(y[b : b + 1, k : k + 1], single, rtol=0, atol=1e-13)


def test_cpu_equals_reference_on_a_larger_image(rng, ops):
    ops.cpu_ops()
    p = torch.rand(2, 5, 40, 33, generator=rng)
    image = torch.randn(2, 3, 40, 33, generator=rng)
    box = (torch.rand(2, 5, 40, 33, generator=rng) > 0.2).float()
    for k in (3, 5):
        torch.testing.assert_close(
            local_propagate(p, image, k, 0.15, 20, box, impl="cpu"),
            local_propagate(p, image, k, 0.15, 20, box, impl="reference"),
            rtol=0,
            atol=1e-5,
        )


def test_no_gradient_and_clear_errors(rng):
    p, image, box = inputs(rng)
    p.requires_grad_(True)
    assert not local_propagate(p, image).requires_grad
    with pytest.raises(ValueError, match="kernel_size must be a positive odd integer, got 4"):
        local_propagate(p, image, kernel_size=4)
    with pytest.raises(ValueError, match="iterations must be a non-negative integer"):
        local_propagate(p, image, iterations=-1)
    with pytest.raises(ValueError, match="zeta must be positive"):
        local_propagate(p, image, zeta=0)
    with pytest.raises(ValueError, match="mask must be \\(B, 1 or K, H, W\\)"):
        local_propagate(p, image, mask=box[:, :, :3])
    with pytest.raises(ValueError, match="signal .* and image .* must share B, H and W"):
        local_propagate(p, image[:1])
