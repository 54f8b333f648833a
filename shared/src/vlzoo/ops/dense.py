"""Brute-force oracles for the APro kernels: the ground truth of the tests and the dense baseline of the bench.

Nothing here is fast. The BFS / Floyd-Warshall / loop functions are plain Python or NumPy written straight
from the definitions (APro spec §9.5) and are meant for tiny images (N up to a few hundred pixels).
:func:`dense_global_propagate` materialises the N x N affinity matrix (O(N^2) memory and time, the "naive
form" of spec §3.2) and is what the benchmark compares the O(N log N) kernel against.

Shapes: signal (B, K, H, W), features / image (B, C, H, W), N = H * W, tree (B, N - 1, 2) or (N - 1, 2).
"""

from __future__ import annotations

from collections import deque

import numpy as np
import torch

from vlzoo.ops import reference

__all__ = [
    "kruskal_tree",
    "tree_max_edge_matrix",
    "tree_path_sum_matrix",
    "grid_minimax_matrix",
    "propagate_with_affinity",
    "loop_local_propagate",
    "dense_global_propagate",
]


def kruskal_tree(costs: np.ndarray, edges: np.ndarray, n: int) -> np.ndarray:
    """Textbook Kruskal: edges by (cost, index), keep those joining two components.

    Args:
        costs: (E,) float64 edge costs. edges: (E, 2) pixel pairs. n: number of pixels.

    Returns:
        (n - 1, 2) int64 tree edges in the order they were accepted.
    """
    label = list(range(n))
    kept = []
    for e in sorted(range(len(costs)), key=lambda i: (costs[i], i)):
        u, v = int(edges[e][0]), int(edges[e][1])
        lu, lv = label[u], label[v]
        if lu != lv:
            label = [lu if x == lv else x for x in label]  # relabel the whole component: O(n), on purpose
            kept.append((u, v))
    return np.asarray(kept, dtype=np.int64).reshape(-1, 2)


def _tree_bfs_matrix(tree: np.ndarray, costs: np.ndarray, n: int, combine) -> np.ndarray:
    adjacency: list[list[tuple[int, float]]] = [[] for _ in range(n)]
    for (u, v), w in zip(tree.tolist(), costs.tolist()):
        adjacency[u].append((v, w))
        adjacency[v].append((u, w))
    out = np.full((n, n), np.nan)
    for source in range(n):
        out[source, source] = 0.0
        queue = deque([source])
        while queue:
            x = queue.popleft()
            for y, w in adjacency[x]:
                if np.isnan(out[source, y]):
                    out[source, y] = combine(out[source, x], w)
                    queue.append(y)
    if np.isnan(out).any():
        raise ValueError("tree does not span all pixels")
    return out


def tree_max_edge_matrix(tree: np.ndarray, costs: np.ndarray, n: int) -> np.ndarray:
    """M[i, j] = largest edge cost on the tree path i..j (0 on the diagonal), by a BFS from every pixel."""
    return _tree_bfs_matrix(tree, costs, n, max)


def tree_path_sum_matrix(tree: np.ndarray, costs: np.ndarray, n: int) -> np.ndarray:
    """D[i, j] = sum of the edge costs on the tree path i..j (0 on the diagonal), by a BFS from every pixel."""
    return _tree_bfs_matrix(tree, costs, n, lambda acc, w: acc + w)


def grid_minimax_matrix(height: int, width: int, grid_costs: np.ndarray) -> np.ndarray:
    """Minimax path distance between all pixel pairs of the full 4-grid, by Floyd-Warshall on (max, min).

    Independent of any spanning tree: the GP of the MST must match it (spec §2.2, §9.5 item 2).

    Args:
        grid_costs: (E,) costs in :func:`vlzoo.ops.reference.grid_edges` order.
    """
    n = height * width
    edges = reference.grid_edges(height, width).numpy()
    dist = np.full((n, n), np.inf)
    np.fill_diagonal(dist, 0.0)
    dist[edges[:, 0], edges[:, 1]] = grid_costs
    dist[edges[:, 1], edges[:, 0]] = grid_costs
    for k in range(n):
        dist = np.minimum(dist, np.maximum(dist[:, k : k + 1], dist[k : k + 1, :]))
    return dist


def propagate_with_affinity(signal: np.ndarray, affinity: np.ndarray) -> np.ndarray:
    """y = A p / A 1 for one sample: signal (K, N), affinity (N, N) -> (K, N)."""
    return (signal @ affinity.T) / affinity.sum(1)


def loop_local_propagate(
    signal: np.ndarray,
    image: np.ndarray,
    kernel_size: int,
    zeta: float,
    iterations: int,
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """Local propagation of one sample by explicit loops over pixels and window offsets.

    Out-of-image neighbours are skipped (never padded). signal (K, H, W), image (C, H, W), mask (1|K, H, W).
    """
    K, H, W = signal.shape
    r = kernel_size // 2
    box = np.ones_like(signal) if mask is None else np.broadcast_to(mask, signal.shape).astype(np.float64)
    weights = {}
    for i in range(H):
        for j in range(W):
            row = {}
            for di in range(-r, r + 1):
                for dj in range(-r, r + 1):
                    a, b = i + di, j + dj
                    if 0 <= a < H and 0 <= b < W:
                        row[(a, b)] = np.exp(-np.sum((image[:, i, j] - image[:, a, b]) ** 2) / zeta**2)
            weights[(i, j)] = row
    y = signal.astype(np.float64) * box
    for _ in range(iterations):
        new = np.zeros_like(y)
        for i in range(H):
            for j in range(W):
                row = weights[(i, j)]
                total = sum(row.values())
                new[:, i, j] = sum(w * y[:, a, b] for (a, b), w in row.items()) / (total + 1e-10)
        y = new * box
    return y


def dense_global_propagate(
    signal: torch.Tensor,
    features: torch.Tensor,
    zeta: float,
    tree: torch.Tensor | None = None,
    max_bytes: float = 2**31,
) -> torch.Tensor:
    """Global propagation through the full N x N affinity matrix (O(N^2) memory and time).

    The matrix of bottleneck costs M[i, j] is filled block by block: merging components X and Y at cost w
    sets M[X, Y] = M[Y, X] = w; pixels are laid out in the Kruskal-reconstruction-tree leaf order so every
    block is a contiguous slice. Then A = exp(-M / zeta^2) (A_ii = 1) and y = A p / A 1.

    Args:
        signal: (B, K, H, W). features: (B, C, H, W). tree: (B, N - 1, 2) or None (the grid MST).
        max_bytes: refuse (MemoryError) when the float64 N x N matrix would be larger.

    Returns:
        (B, K, H, W) in the dtype of ``signal``.
    """
    B, K, H, W = signal.shape
    n = H * W
    if n * n * 8 > max_bytes:
        raise MemoryError(f"dense_global_propagate: an {n} x {n} float64 matrix needs {n * n * 8 / 2**30:.1f} GiB")
    if tree is None:
        tree = reference.grid_mst(features)
    cost = reference.tree_edge_costs(features, tree)
    p = signal.reshape(B, K, n).double()
    out = torch.empty_like(p)
    for b in range(B):
        order = torch.sort(cost[b], stable=True).indices
        edges, w = tree[b][order].tolist(), cost[b][order].tolist()
        left, right = reference.kruskal_reconstruction_tree(edges, n)
        size, start = reference._leaf_ranges(left, right, n)  # noqa: SLF001 - same package
        bottleneck = torch.zeros(n, n, dtype=torch.float64)
        for t in range(n - 1):
            lo = start[n + t]
            mid = lo + size[left[t]]
            hi = mid + size[right[t]]
            bottleneck[lo:mid, mid:hi] = w[t]
            bottleneck[mid:hi, lo:mid] = w[t]
        affinity = bottleneck.div_(-(zeta * zeta)).exp_()  # in place: one N x N buffer
        position = torch.tensor(start[:n])
        p_leaf = torch.empty(K, n, dtype=torch.float64)
        p_leaf[:, position] = p[b].cpu()
        y_leaf = (p_leaf @ affinity) / affinity.sum(0)
        out[b] = y_leaf[:, position].to(out.device)
        del affinity, bottleneck
    return out.to(signal.dtype).view(B, K, H, W)
