"""Helpers for the vlzoo.ops tests (the ``ops`` fixture): run each implementation the same way, and the
brute-force oracles.

"cuda-bodies" runs the CUDA path on the CPU: the device-side preparation of dispatch (torch.sort of the
tree edges, scaled costs) followed by the very loop bodies the CUDA threads execute (csrc/*_bodies.h), with
one channel per call as on the GPU. It keeps the device code covered on machines without a GPU.
"""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from vlzoo.ops import _ext, dense, dispatch, reference


def cpu_ops():
    """The C++ CPU operators; the tests fail if they cannot be built (unless explicitly disabled)."""
    if _ext.disabled():
        pytest.skip("VLZOO_OPS_DISABLE_EXT is set")
    ops = _ext.cpu_ops()
    assert ops is not None, "the C++ CPU extension failed to build (see the RuntimeWarning)"
    return ops


def run_gp(impl, signal, features, zeta, tree=None):
    if impl == "cuda-bodies":
        ops = cpu_ops()
        t = reference.grid_mst(features) if tree is None else tree
        edges, scaled = dispatch.sorted_tree(features, t, zeta * zeta)
        return ops.gp_presorted(edges, scaled, signal, 1)
    if impl == "cpu":
        cpu_ops()
    return dispatch.global_propagate(signal, features, zeta, tree, impl=impl)


def run_tf(impl, signal, features, tree, sigma):
    if impl == "cuda-bodies":
        ops = cpu_ops()
        return ops.tree_filter_weighted(signal, tree, reference.tree_edge_costs(features, tree) / sigma, 1)
    if impl == "cpu":
        cpu_ops()
    return dispatch.tree_filter(signal, features, tree, sigma=sigma, impl=impl)


def run_lp(impl, signal, image, kernel_size, zeta, iterations, mask=None):
    if impl == "cpu":
        cpu_ops()
    return dispatch.local_propagate(signal, image, kernel_size, zeta, iterations, mask, impl=impl)


def bfs_global_propagate(signal, features, zeta, tree):
    """Dense oracle: A_ij = exp(-max edge on the tree path / zeta^2) by a BFS from every pixel; y = A p / A 1.

    ``zeta`` may be a list: the (slow) BFS then runs once and a list of outputs is returned.
    """
    zetas = zeta if isinstance(zeta, list | tuple) else [zeta]
    B, K, H, W = signal.shape
    costs = reference.tree_edge_costs(features, tree).numpy()
    out = np.empty((len(zetas), B, K, H * W))
    for b in range(B):
        bottleneck = dense.tree_max_edge_matrix(tree[b].numpy(), costs[b], H * W)
        for z, value in enumerate(zetas):
            affinity = np.exp(-bottleneck / value**2)
            out[z, b] = dense.propagate_with_affinity(signal[b].reshape(K, -1).double().numpy(), affinity)
    results = [torch.from_numpy(o).view(B, K, H, W) for o in out]
    return results if isinstance(zeta, list | tuple) else results[0]


def minimax_global_propagate(signal, features, zeta):
    """Tree-independent oracle: minimax distances on the full 4-grid by Floyd-Warshall (max, min)."""
    B, K, H, W = signal.shape
    grid_costs = reference.grid_edge_costs(features).numpy()
    out = np.empty((B, K, H * W))
    for b in range(B):
        minimax = dense.grid_minimax_matrix(H, W, grid_costs[b])
        out[b] = dense.propagate_with_affinity(signal[b].reshape(K, -1).double().numpy(), np.exp(-minimax / zeta**2))
    return torch.from_numpy(out).view(B, K, H, W)


def path_product_filter(signal, features, tree, sigma):
    """Dense LTF oracle: S_ij = exp(-sum of the path costs / sigma) by a BFS from every pixel; y = S f / S 1."""
    B, K, H, W = signal.shape
    costs = reference.tree_edge_costs(features, tree).numpy()
    out = np.empty((B, K, H * W))
    for b in range(B):
        path = dense.tree_path_sum_matrix(tree[b].numpy(), costs[b], H * W)
        out[b] = dense.propagate_with_affinity(signal[b].reshape(K, -1).double().numpy(), np.exp(-path / sigma))
    return torch.from_numpy(out).view(B, K, H, W)


@pytest.fixture
def ops():
    """The helpers above, as one namespace (conftest modules are not importable under importlib mode)."""
    return SimpleNamespace(
        cpu_ops=cpu_ops,
        run_gp=run_gp,
        run_tf=run_tf,
        run_lp=run_lp,
        bfs_global_propagate=bfs_global_propagate,
        minimax_global_propagate=minimax_global_propagate,
        path_product_filter=path_product_filter,
    )
