"""grid_mst: the unique MST under (cost, edge index), identical in every implementation (APro spec §3.1, §9.2)."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from scipy.sparse.csgraph import minimum_spanning_tree

from vlzoo.ops import dense, grid_edges, grid_mst, reference

IMPLS = ("reference", "cpu")


def features_of(kind, shape, rng, dtype=torch.float64):
    B, C, H, W = shape
    if kind == "random":
        return torch.rand(shape, generator=rng, dtype=dtype)
    if kind == "ties":  # 3 grey levels: many exactly equal costs
        return torch.randint(0, 3, shape, generator=rng).to(dtype) / 2
    if kind == "constant":
        return torch.full(shape, 0.25, dtype=dtype)
    raise ValueError(kind)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("kind", ["random", "ties", "constant"])
@pytest.mark.parametrize("shape", [(2, 3, 6, 8), (1, 1, 5, 7), (1, 2, 1, 9), (1, 2, 9, 1), (1, 3, 1, 1)])
def test_equals_textbook_kruskal_exactly(impl, kind, shape, rng, ops):
    if impl == "cpu":
        ops.cpu_ops()
    f = features_of(kind, shape, rng)
    tree = grid_mst(f, impl=impl)
    B, _, H, W = shape
    assert tree.shape == (B, H * W - 1, 2) and tree.dtype == torch.int64
    costs = reference.grid_edge_costs(f).numpy()
    edges = grid_edges(H, W).numpy()
    for b in range(B):
        expected = dense.kruskal_tree(costs[b], edges, H * W)
        np.testing.assert_array_equal(tree[b].numpy(), expected)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cpu_equals_reference_on_larger_grids(dtype, rng, ops):
    ops.cpu_ops()
    f = torch.randn(3, 3, 23, 31, generator=rng, dtype=dtype)
    f[1] = torch.round(f[1] * 2) / 2  # sample 1 full of ties
    assert torch.equal(grid_mst(f, impl="cpu"), grid_mst(f, impl="reference"))


@pytest.mark.parametrize("impl", IMPLS)
def test_is_a_minimum_spanning_tree(impl, rng, ops):
    if impl == "cpu":
        ops.cpu_ops()
    H, W = 11, 13
    f = torch.rand(1, 3, H, W, generator=rng, dtype=torch.float64)
    tree = grid_mst(f, impl=impl)[0]
    u, v = tree[:, 0], tree[:, 1]
    # grid neighbours, u < v, in ascending cost order
    assert bool((u < v).all())
    assert bool((((v - u) == 1) & (u // W == v // W) | ((v - u) == W)).all())
    cost = reference.tree_edge_costs(f, tree[None])[0]
    assert bool((cost[1:] >= cost[:-1]).all())
    # spanning: N - 1 edges joining all pixels
    label = list(range(H * W))

    def find(x):
        while label[x] != x:
            x = label[x]
        return x

    for a, b in tree.tolist():
        ra, rb = find(a), find(b)
        assert ra != rb
        label[rb] = ra
    # minimum: the same total weight as SciPy's MST (costs + 1 so that zero costs are kept as edges)
    edges = grid_edges(H, W).numpy()
    grid_costs = reference.grid_edge_costs(f)[0].numpy() + 1.0
    graph = sp.csr_matrix((grid_costs, (edges[:, 0], edges[:, 1])), shape=(H * W, H * W))
    assert float((cost + 1.0).sum()) == pytest.approx(minimum_spanning_tree(graph).sum(), rel=1e-12)


@pytest.mark.parametrize("impl", IMPLS)
def test_batch_samples_are_independent(impl, rng, ops):
    if impl == "cpu":
        ops.cpu_ops()
    f = torch.rand(3, 2, 7, 6, generator=rng)
    batched = grid_mst(f, impl=impl)
    for b in range(3):
        assert torch.equal(batched[b], grid_mst(f[b : b + 1], impl=impl)[0])


@pytest.mark.parametrize("impl", IMPLS)
def test_bad_input_raises_clear_errors(impl, ops):
    if impl == "cpu":
        ops.cpu_ops()
    with pytest.raises(ValueError, match="grid_mst: features must be a \\(B, C, H, W\\)"):
        grid_mst(torch.rand(3, 4, 5), impl=impl)
    with pytest.raises(ValueError, match="floating-point"):
        grid_mst(torch.ones(1, 1, 3, 3, dtype=torch.long), impl=impl)
    nan = torch.rand(1, 1, 4, 4)
    nan[0, 0, 1, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        grid_mst(nan, impl=impl)
    with pytest.raises(ValueError, match="impl='cuda' needs CUDA tensors"):
        grid_mst(torch.rand(1, 1, 3, 3), impl="cuda")


def test_output_carries_no_gradient(rng):
    f = torch.rand(1, 3, 4, 5, generator=rng, requires_grad=True)
    assert not grid_mst(f).requires_grad
