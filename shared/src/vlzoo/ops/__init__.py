"""Kernels of vlzoo: APro's exact global (tree) and local affinity propagation, the grid MST and the
Learnable-Tree-Filter, each with a PyTorch reference, a C++ CPU extension and CUDA sources.

Public API (signals (B, K, H, W), guidance features (B, C, H, W), N = H * W):

- :func:`grid_mst` -- MST of the 4-grid, squared-L2 costs, (cost, edge index) ties -> (B, N - 1, 2) int64.
- :func:`global_propagate` -- exact tree (bottleneck-affinity) propagation, O(N log N), float64 sums.
- :func:`global_propagate_two_stage` -- pass 1 on the image tree, pass 2 on the same tree re-costed.
- :func:`local_propagate` -- k x k Gaussian-kernel propagation, T iterations, optional box mask.
- :func:`tree_filter` -- the LTF path-product filter in O(N) (optionally differentiable).
- :func:`grid_edges`, :func:`tree_edge_costs` -- the edge conventions, exposed for callers and tests.

Every function takes ``impl="auto" | "reference" | "cpu" | "cuda"`` (see :mod:`vlzoo.ops.dispatch`). The
pseudo-label functions are stop-gradient. ``HAS_CPU_EXT`` / ``HAS_CUDA_EXT`` say whether the compiled
kernels are usable; reading them builds / loads the extensions on first access (``python -m
vlzoo.ops.build`` builds them ahead of time). Modules: ``reference`` (the specification), ``dispatch``,
``dense`` (brute-force oracles), ``_ext`` (build/load), ``build`` (the build command), ``csrc/``.
"""

from __future__ import annotations

from vlzoo.ops.dispatch import (
    IMPLS,
    global_propagate,
    global_propagate_two_stage,
    grid_mst,
    local_propagate,
    tree_filter,
)
from vlzoo.ops.reference import NotSpanningTreeError, grid_edges, tree_edge_costs

__all__ = [
    "IMPLS",
    "HAS_CPU_EXT",
    "HAS_CUDA_EXT",
    "NotSpanningTreeError",
    "grid_edges",
    "tree_edge_costs",
    "grid_mst",
    "global_propagate",
    "global_propagate_two_stage",
    "local_propagate",
    "tree_filter",
]


def __getattr__(name: str) -> bool:
    # Lazy: importing vlzoo.ops never compiles anything; the first read of a flag does.
    from vlzoo.ops import _ext

    if name == "HAS_CPU_EXT":
        return _ext.cpu_ops() is not None
    if name == "HAS_CUDA_EXT":
        return _ext.cuda_ops() is not None
    raise AttributeError(f"module 'vlzoo.ops' has no attribute {name!r}")
