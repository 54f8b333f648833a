"""tree_filter: the LTF path-product filter in O(N), two passes (APro spec §3.3, §9.5.6)."""

import pytest
import torch

from vlzoo.ops import NotSpanningTreeError, grid_mst, tree_filter

IMPLS = ("reference", "cpu", "cuda-bodies")


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("shape", [(2, 2, 3, 6, 8), (1, 1, 1, 1, 7), (1, 3, 2, 9, 5), (1, 1, 3, 1, 1)])
def test_equals_dense_path_product_float64(impl, shape, rng, ops):
    B, K, C, H, W = shape
    p = torch.rand(B, K, H, W, generator=rng, dtype=torch.float64)
    f = torch.rand(B, C, H, W, generator=rng, dtype=torch.float64)
    tree = grid_mst(f)
    for sigma in (0.05, 1.0):
        y = ops.run_tf(impl, p, f, tree, sigma)
        torch.testing.assert_close(y, ops.path_product_filter(p, f, tree, sigma), rtol=0, atol=1e-10)


@pytest.mark.parametrize("impl", IMPLS)
def test_equals_dense_path_product_float32(impl, rng, ops):
    p = torch.rand(2, 3, 8, 7, generator=rng)
    f = torch.rand(2, 3, 8, 7, generator=rng)
    tree = grid_mst(f)
    y = ops.run_tf(impl, p, f, tree, 0.1)
    assert y.dtype == torch.float32
    torch.testing.assert_close(y.double(), ops.path_product_filter(p, f, tree, 0.1), rtol=0, atol=1e-5)


@pytest.mark.parametrize("impl", IMPLS)
def test_properties(impl, rng, ops):
    p = torch.rand(2, 2, 7, 6, generator=rng, dtype=torch.float64)
    f = torch.rand(2, 3, 7, 6, generator=rng, dtype=torch.float64)
    tree = grid_mst(f)
    y = ops.run_tf(impl, p, f, tree, 0.3)
    assert bool((y >= p.amin((2, 3), keepdim=True) - 1e-12).all() and (y <= p.amax((2, 3), keepdim=True) + 1e-12).all())
    const = torch.full_like(p, 0.2)
    torch.testing.assert_close(ops.run_tf(impl, const, f, tree, 0.3), const, rtol=0, atol=1e-13)
    shuffled = tree[:, torch.randperm(tree.shape[1], generator=rng)].flip(-1)
    torch.testing.assert_close(ops.run_tf(impl, p, f, shuffled, 0.3), y, rtol=0, atol=1e-12)


def test_differentiable_reference_passes_gradcheck(rng):
    p = torch.rand(1, 2, 3, 4, generator=rng, dtype=torch.float64, requires_grad=True)
    f = torch.rand(1, 2, 3, 4, generator=rng, dtype=torch.float64, requires_grad=True)
    tree = grid_mst(f)

    def fn(signal, features):
        return tree_filter(signal, features, tree, sigma=0.5, differentiable=True)

    assert torch.autograd.gradcheck(fn, (p, f), eps=1e-6, atol=1e-7)
    assert fn(p, f).requires_grad


def test_non_differentiable_form_is_detached_and_equals_the_differentiable_one(rng, ops):
    ops.cpu_ops()
    p = torch.rand(1, 2, 5, 6, generator=rng, requires_grad=True)
    f = torch.rand(1, 3, 5, 6, generator=rng, requires_grad=True)
    tree = grid_mst(f)
    y = tree_filter(p, f, tree, sigma=0.2)
    assert not y.requires_grad
    torch.testing.assert_close(y, tree_filter(p, f, tree, sigma=0.2, differentiable=True).detach(), rtol=0, atol=1e-6)


@pytest.mark.parametrize("impl", ["reference", "cpu"])
def test_bad_input_raises_clear_errors(impl, rng, ops):
    if impl == "cpu":
        ops.cpu_ops()
    p = torch.rand(1, 1, 4, 4, generator=rng)
    f = torch.rand(1, 3, 4, 4, generator=rng)
    tree = grid_mst(f)
    broken = tree.clone()
    broken[0, 3] = broken[0, 2]
    with pytest.raises(NotSpanningTreeError, match="tree of sample 0 is not a spanning tree"):
        tree_filter(p, f, broken, impl=impl)
    with pytest.raises(ValueError, match="sigma must be positive"):
        tree_filter(p, f, tree, sigma=-1.0, impl=impl)
    with pytest.raises(ValueError, match="impl must be 'auto' or 'reference'"):
        tree_filter(p, f, tree, differentiable=True, impl="cpu")
