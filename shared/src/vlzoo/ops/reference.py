"""Pure-PyTorch reference of the APro kernels: readable, device-agnostic, and the specification of
:mod:`vlzoo.ops` (the C++ and CUDA kernels are tested against it and against brute force).

Paper: *Label-efficient Segmentation via Affinity Propagation* (APro, Li et al., NeurIPS 2023); the section
numbers below are those of the project spec ``apro.md``.

Shape shorthand: B batch, K signal channels (classes / instances), C guidance channels (e.g. RGB),
H x W grid, N = H * W pixels in row-major order, E = H (W - 1) + (H - 1) W grid edges.

Grid and costs (§2.2). Pixels form the 4-connected grid. Edge indices: the H (W - 1) horizontal edges
(r, c)-(r, c + 1) first (index r (W - 1) + c), then the (H - 1) W vertical edges (r, c)-(r + 1, c) (index
H (W - 1) + r W + c). The cost of edge (k, l) is w_kl = sum_c (F_ck - F_cl)^2, accumulated in float64 one
channel after the other, so every implementation gets bit-identical costs and ties.

MST (§3.1, §9.2). The minimum spanning tree under the strict total order (cost, edge index). That order makes
the MST unique, so Boruvka (here), Kruskal (C++) and any other algorithm return the same tree. Tree edges
are returned as (B, N - 1, 2) int64 pixel pairs (u < v) in ascending (cost, index) order: the order global
propagation consumes. (The official op adds 1 to every cost before its MST, which cannot change the tree.)

Global propagation, GP (§2.2). For signal p (K channels) on a spanning tree T:

    y_i = (p_i + sum_{j != i} phi_ij p_j) / (1 + sum_{j != i} phi_ij),    phi_ij = exp(-w_ij / zeta^2),

with w_ij the largest edge cost on the tree path between i and j (a minimax / bottleneck distance; when the
costs are the MST's own, it equals the minimax distance in the full grid, so the result does not depend on
which MST is taken). Exact over all N pixels.

Reference algorithm (O(N log N), the same merge sequence as the union-find of §3.2, organised differently):
process the tree edges in ascending cost and record the *Kruskal reconstruction tree* (KRT): leaves are the
pixels, merge t creates internal node N + t whose children are the two components it joins. For j != i the
bottleneck cost w_ij is the cost of the lowest common ancestor of i and j in the KRT, and j lies in the
sibling subtree of the child of that ancestor on i's side. Hence, with S(c) the sum of p over the leaves of
KRT node c and e_a = exp(-w_a / zeta^2):

    sum_{j != i} phi_ij p_j = sum over KRT nodes c on the path from leaf i up to (not including) the root of
                              q(c),   q(c) = e_parent(c) * S(sibling of c).

Subtree sums come from prefix sums over the KRT's leaf order (each subtree is a contiguous range there) and
the path sums from pointer doubling over the KRT parents: everything but the merge bookkeeping is vectorised,
in float64, for all channels at once; the normaliser is the same computation on a signal of ones.

Two-stage GP (§2.2): pass 1 on the image tree with zeta_low; pass 2 keeps the tree topology, re-costs its
edges from an embedding (by default the pass-1 output: w = sum_k (y1_k - y1_l)^2), re-sorts them and
propagates the pass-1 output with zeta_high.

Local propagation, LP (§2.3). phi_s(i, j) = exp(-sum_c (I_ci - I_cj)^2 / zeta^2) over the k x k window of i
(i included); y^0 = B * p, y^t = B * sum_j phi_s(i, j) y^{t-1}_j / (sum_j phi_s(i, j) + 1e-10) for T
iterations (B the box mask, or 1). Deviation from the official code: out-of-image neighbours are excluded
exactly, for any zeta (the official code shifts the image by +10 before zero padding, which makes their
affinity underflow to 0 only while zeta is small; for the released zeta = 0.15 both agree).

Tree filter (LTF, §3.3). S_ij = prod_{e on the path} exp(-c_e) with c_e = w_e / sigma, y = S f / S 1, by the
two O(N) passes over a BFS order rooted at pixel 0 (done level by level here, so autograd can run through it:
this function is differentiable in the signal and the features, for the TEL baseline).

Gradients: ``global_propagate`` and ``local_propagate`` are pseudo-label generators; the public API
(:mod:`vlzoo.ops.dispatch`) runs them under ``no_grad`` and returns detached tensors, as the official
``_GP_Process.backward`` returns None and the official LP is ``@torch.no_grad``. The functions here do not
detach by themselves.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "grid_edges",
    "grid_edge_costs",
    "tree_edge_costs",
    "grid_mst",
    "global_propagate",
    "global_propagate_two_stage",
    "local_propagate",
    "tree_filter",
    "kruskal_reconstruction_tree",
    "NotSpanningTreeError",
]


class NotSpanningTreeError(ValueError):
    """The given edges are not a spanning tree of the N pixels (an edge closes a cycle / pixels unreached).

    Attributes:
        position: index (in the processing order) of the edge that closed a cycle, or None.
    """

    def __init__(self, message: str, position: int | None = None):
        super().__init__(message)
        self.position = position


# ----------------------------------------------------------------------------------------------- grid


def grid_edges(height: int, width: int, device: torch.device | str | None = None) -> torch.Tensor:
    """The 4-neighbour edges of an H x W grid in canonical index order.

    Returns:
        (E, 2) int64 pixel pairs (u < v): horizontal edges first, then vertical ones, each row-major.
    """
    idx = torch.arange(height * width, device=device).view(height, width)
    horizontal = torch.stack([idx[:, :-1].reshape(-1), idx[:, 1:].reshape(-1)], dim=1)
    vertical = torch.stack([idx[:-1, :].reshape(-1), idx[1:, :].reshape(-1)], dim=1)
    return torch.cat([horizontal, vertical])


def grid_edge_costs(features: torch.Tensor) -> torch.Tensor:
    """Squared-L2 costs of every grid edge, in :func:`grid_edges` order.

    Args:
        features: (B, C, H, W) guidance features.

    Returns:
        (B, E) float64, accumulated channel by channel (bit-identical to the C++ kernel).
    """
    B, C, H, W = features.shape
    f = features.double()
    cost_h = f.new_zeros(B, H, W - 1)
    cost_v = f.new_zeros(B, H - 1, W)
    for c in range(C):  # sequential over channels: the summation order defines the ties
        d_h = f[:, c, :, 1:] - f[:, c, :, :-1]
        d_v = f[:, c, 1:, :] - f[:, c, :-1, :]
        cost_h = cost_h + d_h * d_h
        cost_v = cost_v + d_v * d_v
    return torch.cat([cost_h.reshape(B, -1), cost_v.reshape(B, -1)], dim=1)


def tree_edge_costs(features: torch.Tensor, tree: torch.Tensor) -> torch.Tensor:
    """Squared-L2 costs of the edges of a tree (differentiable in ``features``).

    Args:
        features: (B, C, H, W) features (or an embedding).
        tree: (B, N - 1, 2) integer pixel pairs.

    Returns:
        (B, N - 1) float64.
    """
    B, C = features.shape[:2]
    f = features.reshape(B, C, -1)
    u, v = tree[..., 0].long(), tree[..., 1].long()
    cost = f.new_zeros(tree.shape[:2], dtype=torch.float64)
    for c in range(C):
        fc = f[:, c].double()
        d = fc.gather(1, v) - fc.gather(1, u)
        cost = cost + d * d
    return cost


# ------------------------------------------------------------------------------------------------ MST


def grid_mst(features: torch.Tensor) -> torch.Tensor:
    """Minimum spanning tree of the 4-grid under the (cost, edge index) order, by vectorised Boruvka.

    Every round, each component picks its lightest outgoing edge (scatter-min of the edge ranks), the picked
    edges join the tree, and components merge by pointer jumping; a component and the one it picked may pick
    each other (the same edge): the smaller label then stays the root. O(log N) rounds.

    Args:
        features: (B, C, H, W).

    Returns:
        (B, N - 1, 2) int64 tree edges in ascending (cost, edge index) order.
    """
    B, _, H, W = features.shape
    N = H * W
    device = features.device
    if N == 1:
        return torch.empty(B, 0, 2, dtype=torch.long, device=device)
    edges = grid_edges(H, W, device)
    E = edges.shape[0]
    cost = grid_edge_costs(features)
    if torch.isnan(cost).any():
        raise ValueError("grid_mst: features contain NaN")
    order = torch.sort(cost, dim=1, stable=True).indices  # rank -> edge
    rank = torch.empty_like(order).scatter_(1, order, torch.arange(E, device=device).expand(B, E))
    # All samples as one graph of B * N nodes; key = sample * E + rank is a strict global edge order.
    sample = torch.arange(B, device=device)[:, None]
    u = (edges[:, 0] + sample * N).reshape(-1)
    v = (edges[:, 1] + sample * N).reshape(-1)
    key = (rank + sample * E).reshape(-1)
    label = torch.arange(B * N, device=device)
    nodes = torch.arange(B * N, device=device)
    in_tree = torch.zeros(B * E, dtype=torch.bool, device=device)
    none = B * E
    while True:
        cu, cv = label[u], label[v]
        cross = cu != cv
        if not bool(cross.any()):
            break
        best = torch.full((B * N,), none, dtype=torch.long, device=device)
        best.scatter_reduce_(0, cu[cross], key[cross], reduce="amin")
        best.scatter_reduce_(0, cv[cross], key[cross], reduce="amin")
        src = torch.nonzero(best < none).squeeze(1)  # components that picked an edge
        picked = best[src]
        s = picked // E
        flat = s * E + order[s, picked % E]
        in_tree[flat] = True
        lu, lv = label[u[flat]], label[v[flat]]
        other = torch.where(lu == src, lv, lu)
        hook = nodes.clone()
        hook[src] = other
        mutual = (hook[other] == src) & (src < other)
        hook[src[mutual]] = src[mutual]
        while True:  # pointer jumping to the new roots
            jumped = hook[hook]
            if torch.equal(jumped, hook):
                break
            hook = jumped
        label = hook[label]
    selected = torch.where(in_tree.view(B, E), rank, E)
    tree_ranks = torch.sort(selected, dim=1).values[:, : N - 1]
    if bool((tree_ranks >= E).any()):  # cannot happen on a connected grid; guards the invariant
        raise RuntimeError("grid_mst: Boruvka did not produce N - 1 edges")
    return edges[order.gather(1, tree_ranks)]


# ----------------------------------------------------------------------------------- global propagation


def kruskal_reconstruction_tree(edges: list[tuple[int, int]] | list[list[int]], n: int) -> tuple[list[int], list[int]]:
    """Kruskal reconstruction tree of merging ``edges`` in the given order.

    Leaves are the pixels 0..n-1; merge t creates internal node n + t with children (left[t], right[t]), the
    KRT nodes of the two components it joins. The last merge (node 2n - 2) is the root.

    Raises:
        NotSpanningTreeError: an edge joins pixels already connected (its position is in the message).
    """
    uf = list(range(n))
    top = list(range(n))  # top[root] = KRT node of that component
    left = [0] * (n - 1)
    right = [0] * (n - 1)
    for t, (a, b) in enumerate(edges):
        while uf[a] != a:  # find with path halving
            uf[a] = uf[uf[a]]
            a = uf[a]
        while uf[b] != b:
            uf[b] = uf[uf[b]]
            b = uf[b]
        if a == b:
            raise NotSpanningTreeError(f"merge {t} joins pixels that are already connected", position=t)
        left[t], right[t] = top[a], top[b]
        uf[b] = a
        top[a] = n + t
    return left, right


def _leaf_ranges(left: list[int], right: list[int], n: int) -> tuple[list[int], list[int]]:
    """Subtree sizes and first leaf positions of every KRT node in its DFS leaf order (left child first)."""
    size = [1] * n + [0] * (n - 1)
    for t in range(n - 1):
        size[n + t] = size[left[t]] + size[right[t]]
    start = [0] * (2 * n - 1)
    for t in reversed(range(n - 1)):
        s = start[n + t]
        start[left[t]] = s
        start[right[t]] = s + size[left[t]]
    return size, start


def _sum_to_root(q: torch.Tensor, parent: torch.Tensor, root: int) -> torch.Tensor:
    """acc[:, c] = sum of q[:, a] over c and its ancestors (q[:, root] must be 0), by pointer doubling."""
    acc, jump = q, parent
    while not bool((jump == root).all()):  # acc[:, c] covers the path segment [c, jump[c])
        acc = acc + acc[:, jump]
        jump = jump[jump]
    return acc


def _propagate_sorted(p: torch.Tensor, edges: torch.Tensor, scaled_cost: torch.Tensor) -> torch.Tensor:
    """GP of one sample on tree edges in ascending cost order.

    Args:
        p: (K, N) float64 signal.
        edges: (N - 1, 2) tree edges, ascending cost.
        scaled_cost: (N - 1,) float64 w / zeta^2 in the same order.

    Returns:
        (K, N) float64.
    """
    n = p.shape[1]
    if n == 1:
        return p.clone()
    device = p.device
    left, right = kruskal_reconstruction_tree(edges.tolist(), n)
    size, start = _leaf_ranges(left, right, n)
    left_t = torch.tensor(left, device=device)
    right_t = torch.tensor(right, device=device)
    size_t = torch.tensor(size, device=device)
    start_t = torch.tensor(start, device=device)
    values = torch.cat([torch.ones(1, n, dtype=p.dtype, device=device), p])  # channel 0: the normaliser
    leaf_ordered = torch.zeros_like(values)
    leaf_ordered[:, start_t[:n]] = values
    prefix = torch.cat([values.new_zeros(values.shape[0], 1), leaf_ordered.cumsum(1)], dim=1)
    merged = torch.arange(n, 2 * n - 1, device=device)
    lo = start_t[merged]
    mid = lo + size_t[left_t]
    hi = mid + size_t[right_t]
    sum_left = prefix[:, mid] - prefix[:, lo]
    sum_right = prefix[:, hi] - prefix[:, mid]
    e = torch.exp(-scaled_cost)
    q = values.new_zeros(values.shape[0], 2 * n - 1)
    q[:, left_t] = e * sum_right
    q[:, right_t] = e * sum_left
    root = 2 * n - 2
    parent = torch.full((2 * n - 1,), root, device=device)
    parent[left_t] = merged
    parent[right_t] = merged
    acc = _sum_to_root(q, parent, root)
    total = values + acc[:, :n]
    return total[1:] / total[:1]


def global_propagate(
    signal: torch.Tensor, features: torch.Tensor, zeta: float, tree: torch.Tensor | None = None
) -> torch.Tensor:
    """Global affinity propagation (APro eq. of §2.2), exact, O(N log N).

    Args:
        signal: (B, K, H, W) predictions p.
        features: (B, C, H, W) guidance; the tree edge costs are squared L2 distances of these.
        zeta: the temperature zeta_g (phi = exp(-w / zeta^2)).
        tree: (B, N - 1, 2) spanning tree; None builds :func:`grid_mst` of ``features``.

    Returns:
        (B, K, H, W), the dtype of ``signal`` (computed in float64).
    """
    B, K, H, W = signal.shape
    N = H * W
    if tree is None:
        tree = grid_mst(features)
    cost = tree_edge_costs(features, tree)
    if torch.isnan(cost).any():
        raise ValueError("global_propagate: features contain NaN")
    p = signal.reshape(B, K, N).double()
    out = torch.empty_like(p)
    for b in range(B):
        order = torch.sort(cost[b], stable=True).indices
        try:
            out[b] = _propagate_sorted(p[b], tree[b][order], cost[b][order] / (zeta * zeta))
        except NotSpanningTreeError as err:
            t = err.position
            u, v = tree[b][order[t]].tolist()
            raise NotSpanningTreeError(
                f"global_propagate: tree of sample {b} is not a spanning tree: edge {int(order[t])} ({u}, {v}) "
                "joins pixels that earlier edges already connect"
            ) from None
    return out.to(signal.dtype).view(B, K, H, W)


def global_propagate_two_stage(
    signal: torch.Tensor,
    features: torch.Tensor,
    zeta_low: float,
    zeta_high: float,
    embedding: torch.Tensor | None = None,
    tree: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The two-stage GP: pass 1 on the image tree, pass 2 on the same tree re-costed from ``embedding``.

    Args:
        signal: (B, K, H, W).
        features: (B, C, H, W) low-level guidance (the image) for the tree and pass-1 costs.
        zeta_low, zeta_high: zeta_gl and zeta_gh.
        embedding: (B, D, H, W) pass-2 guidance; None uses the pass-1 output (the released box code).
        tree: (B, N - 1, 2); None builds the MST of ``features``.

    Returns:
        (pass-1 output, pass-2 output), both (B, K, H, W).
    """
    if tree is None:
        tree = grid_mst(features)
    first = global_propagate(signal, features, zeta_low, tree)
    second = global_propagate(first, first if embedding is None else embedding, zeta_high, tree)
    return first, second


# ------------------------------------------------------------------------------------ local propagation


def local_propagate(
    signal: torch.Tensor,
    image: torch.Tensor,
    kernel_size: int = 5,
    zeta: float = 0.15,
    iterations: int = 20,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Local affinity propagation (§2.3), with exact exclusion of out-of-image neighbours.

    Args:
        signal: (B, K, H, W) predictions p.
        image: (B, C, H, W) colours (mmdet-normalised RGB in APro).
        kernel_size: odd window size k.
        zeta: zeta_s.
        iterations: T.
        mask: (B, 1 or K, H, W) box mask B (multiplied in before and after every step), or None.

    Returns:
        (B, K, H, W), the dtype of ``signal``.
    """
    B, K, H, W = signal.shape
    C = image.shape[1]
    N = H * W
    k2 = kernel_size * kernel_size
    pad = kernel_size // 2
    dtype = torch.promote_types(torch.promote_types(signal.dtype, image.dtype), torch.float32)
    img = image.to(dtype)
    patches = F.unfold(img, kernel_size, padding=pad).view(B, C, k2, N)
    inside = F.unfold(img.new_ones(1, 1, H, W), kernel_size, padding=pad).view(1, k2, N)
    dist2 = ((patches - img.view(B, C, 1, N)) ** 2).sum(1)  # (B, k2, N)
    affinity = torch.exp(-dist2 / (zeta * zeta)) * inside  # 0 for out-of-image neighbours
    norm = affinity.sum(1, keepdim=True) + 1e-10  # (B, 1, N)
    y = signal.to(dtype)
    box = None if mask is None else mask.to(dtype).expand(B, K, H, W)
    if box is not None:
        y = y * box
    for _ in range(iterations):
        neighbours = F.unfold(y.reshape(B * K, 1, H, W), kernel_size, padding=pad).view(B, K, k2, N)
        y = ((neighbours * affinity[:, None]).sum(2) / norm).view(B, K, H, W)
        if box is not None:
            y = y * box
    return y.to(signal.dtype)


# ------------------------------------------------------------------------------------------ tree filter


def _bfs_levels(edges: list[list[int]], n: int) -> tuple[list[list[int]], list[list[int]], list[list[int]]]:
    """BFS of a tree from pixel 0, level by level.

    Returns:
        levels[d]: the pixels at depth d; slots[d][i]: position of levels[d][i]'s parent in levels[d - 1];
        parent_edge[d][i]: index of the edge to that parent (empty lists at d = 0).
    """
    adjacency: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    for t, (u, v) in enumerate(edges):
        adjacency[u].append((v, t))
        adjacency[v].append((u, t))
    seen = [False] * n
    seen[0] = True
    levels, slots, parent_edge = [[0]], [[]], [[]]
    reached = 1
    while True:
        nxt, slot, pe = [], [], []
        for i, v in enumerate(levels[-1]):
            for w, t in adjacency[v]:
                if not seen[w]:
                    seen[w] = True
                    nxt.append(w)
                    slot.append(i)
                    pe.append(t)
        if not nxt:
            break
        reached += len(nxt)
        levels.append(nxt)
        slots.append(slot)
        parent_edge.append(pe)
    if reached != n:
        raise NotSpanningTreeError(f"a BFS from pixel 0 reaches {reached} of {n} pixels")
    return levels, slots, parent_edge


def _tree_filter_one(p: torch.Tensor, edges: torch.Tensor, scaled_cost: torch.Tensor) -> torch.Tensor:
    """LTF of one sample: p (K, N), edges (N - 1, 2), scaled_cost (N - 1,) -> (K, N) float64."""
    n = p.shape[1]
    device = p.device
    levels, slots, parent_edge = _bfs_levels(edges.tolist(), n)
    level_nodes = [torch.tensor(lv, device=device) for lv in levels]
    level_slots = [torch.tensor(s, device=device, dtype=torch.long) for s in slots]
    level_edges = [torch.tensor(e, device=device, dtype=torch.long) for e in parent_edge]
    f = torch.cat([p.new_ones(1, n), p])  # channel 0: the normaliser
    depth = len(levels)
    # leaf -> root: A_v = f_v + sum_children s_c A_c, one level at a time (out of place: autograd-safe)
    agg: list[torch.Tensor] = [f[:, nodes] for nodes in level_nodes]
    for d in range(depth - 1, 0, -1):
        s = torch.exp(-scaled_cost[level_edges[d]])
        agg[d - 1] = agg[d - 1].index_add(1, level_slots[d], s * agg[d])
    # root -> leaf: O_v = s_v O_parent + (1 - s_v^2) A_v
    out = [agg[0]]
    for d in range(1, depth):
        c = scaled_cost[level_edges[d]]
        out.append(torch.exp(-c) * out[d - 1][:, level_slots[d]] + (-torch.expm1(-2.0 * c)) * agg[d])
    order = torch.cat(level_nodes)
    position = torch.empty_like(order)
    position[order] = torch.arange(n, device=device)
    filtered = torch.cat(out, dim=1)[:, position]
    return filtered[1:] / filtered[:1]


def tree_filter(
    signal: torch.Tensor, features: torch.Tensor, tree: torch.Tensor, sigma: float = 1.0
) -> torch.Tensor:
    """Learnable-Tree-Filter path-product filter on a spanning tree (§3.3), differentiable.

    Args:
        signal: (B, K, H, W) f.
        features: (B, C, H, W); edge weight s_e = exp(-||F_k - F_l||^2 / sigma).
        tree: (B, N - 1, 2) spanning tree (e.g. :func:`grid_mst` of the image).
        sigma: cost scale (TEL: 0.02 on the [0, 1] image for VOC; 1 for learned embeddings).

    Returns:
        (B, K, H, W) y = S f / S 1, the dtype of ``signal`` (computed in float64).
    """
    B, K, H, W = signal.shape
    N = H * W
    cost = tree_edge_costs(features, tree) / sigma
    if torch.isnan(cost).any():
        raise ValueError("tree_filter: features contain NaN")
    p = signal.reshape(B, K, N).double()
    outs = []
    for b in range(B):
        try:
            outs.append(_tree_filter_one(p[b], tree[b], cost[b]))
        except NotSpanningTreeError as err:
            raise NotSpanningTreeError(f"tree_filter: tree of sample {b} is not a spanning tree: {err}") from None
    return torch.stack(outs).to(signal.dtype).view(B, K, H, W)
