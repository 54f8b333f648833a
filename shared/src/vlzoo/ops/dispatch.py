"""The public APro kernels with ``impl=`` dispatch, input checks and stop-gradient semantics.

``impl`` selects the implementation:

- ``"reference"``: the pure-PyTorch specification (:mod:`vlzoo.ops.reference`), on the tensors' device.
- ``"cpu"``: the C++ CPU extension (``torch.ops.vlzoo_cpu``); CUDA inputs are copied to the host and the
  result copied back (as the official op does).
- ``"cuda"``: the CUDA extension (``torch.ops.vlzoo_cuda``); needs CUDA tensors. The edges are sorted by
  cost on the device with ``torch.sort`` before the kernel. There is no CUDA MST kernel: the tree of a CUDA
  input is built by the C++ Kruskal on a host copy (or the reference Boruvka on the device when the CPU
  extension is unavailable); ``grid_mst(impl="cuda")`` does the same.
- ``"auto"`` (default): the CUDA kernel for CUDA tensors when it is built, else the C++ CPU kernel when it
  builds, else the reference. An explicit ``"cpu"``/``"cuda"`` that is unavailable raises ``RuntimeError``.

Gradients (APro spec §3.4): GP, LP and the non-differentiable tree filter are pseudo-label generators.
They run under ``torch.no_grad`` and return tensors that require no grad, whatever their inputs, exactly as
the official ``_GP_Process.backward`` returns None and the official LP is ``@torch.no_grad``. A loss
``|y - p|`` therefore sends gradient to ``p`` only through its second term. ``tree_filter(...,
differentiable=True)`` instead runs the reference with autograd (for the TEL baseline, whose pseudo labels
are not detached).

Dtypes: outputs have the signal's dtype; float16/bfloat16 signals are computed in float32. All
accumulation is float64 in every implementation. Errors in the inputs raise ``ValueError`` (a tree that is
not spanning: :class:`~vlzoo.ops.reference.NotSpanningTreeError`) naming the function, argument and problem.
"""

from __future__ import annotations

import torch

from vlzoo.ops import _ext, reference
from vlzoo.ops.reference import NotSpanningTreeError

__all__ = [
    "IMPLS",
    "resolve_impl",
    "grid_mst",
    "global_propagate",
    "global_propagate_two_stage",
    "local_propagate",
    "tree_filter",
    "sorted_tree",
]

IMPLS = ("auto", "reference", "cpu", "cuda")


# ------------------------------------------------------------------------------------------ resolution


def resolve_impl(impl: str, device: torch.device, op: str, *, has_cuda_kernel: bool = True) -> str:
    """The implementation ``impl`` stands for on ``device`` ("reference", "cpu" or "cuda").

    For an op without a CUDA kernel (``has_cuda_kernel=False``: the grid MST), ``"cuda"`` still requires CUDA
    tensors but resolves like ``"auto"`` (the C++ kernel on a host copy, else the reference), so that one
    ``impl`` can be passed to every op of a pipeline.

    Raises:
        ValueError: unknown ``impl``, or ``"cuda"`` for CPU tensors.
        RuntimeError: an explicit ``"cpu"`` / ``"cuda"`` whose extension is not available.
    """
    if impl not in IMPLS:
        raise ValueError(f"{op}: impl must be one of {IMPLS}, got {impl!r}")
    if impl == "auto":
        if device.type == "cuda" and has_cuda_kernel and _ext.cuda_ops() is not None:
            return "cuda"
        return "cpu" if _ext.cpu_ops() is not None else "reference"
    if impl == "cpu" and _ext.cpu_ops() is None:
        raise RuntimeError(
            f"{op}: impl='cpu' but the C++ CPU extension is not available (build failed or VLZOO_OPS_DISABLE_EXT "
            "is set); run `python -m vlzoo.ops.build` to see why, or use impl='reference'"
        )
    if impl == "cuda":
        if device.type != "cuda":
            raise ValueError(f"{op}: impl='cuda' needs CUDA tensors, got tensors on {device}")
        if not has_cuda_kernel:
            return "cpu" if _ext.cpu_ops() is not None else "reference"
        if _ext.cuda_ops() is None:
            raise RuntimeError(
                f"{op}: impl='cuda' but the CUDA extension is not available (no usable GPU, no nvcc, or the build "
                "failed); run `python -m vlzoo.ops.build`"
            )
    return impl


def _cpu():
    return _ext.cpu_ops()


def _cuda():
    return _ext.cuda_ops()


def _call(fn, *args):
    """Call a compiled op, turning its spanning-tree errors into :class:`NotSpanningTreeError`."""
    try:
        return fn(*args)
    except (RuntimeError, ValueError) as err:
        message = str(err).strip().splitlines()[0] if str(err).strip() else repr(err)
        if "not a spanning tree" in message:
            raise NotSpanningTreeError(message) from None
        if isinstance(err, ValueError):
            raise ValueError(message) from None
        raise


# ------------------------------------------------------------------------------------------- checks


def _check_grid_tensor(x: torch.Tensor, name: str, op: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{op}: {name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(f"{op}: {name} must be a (B, C, H, W) tensor, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{op}: {name} must be a floating-point tensor, got {x.dtype}")
    if x.shape[2] * x.shape[3] == 0:
        raise ValueError(f"{op}: {name} has an empty grid {tuple(x.shape[2:])}")


def _check_same_grid(a: torch.Tensor, b: torch.Tensor, name_a: str, name_b: str, op: str) -> None:
    if a.shape[0] != b.shape[0] or a.shape[2:] != b.shape[2:]:
        raise ValueError(
            f"{op}: {name_a} {tuple(a.shape)} and {name_b} {tuple(b.shape)} must share B, H and W"
        )
    if a.device != b.device:
        raise ValueError(f"{op}: {name_a} is on {a.device} but {name_b} is on {b.device}")


def _check_positive(value: float, name: str, op: str) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{op}: {name} must be a number, got {value!r}") from None
    if not (value > 0.0 and value < float("inf")):
        raise ValueError(f"{op}: {name} must be positive and finite, got {value}")
    return value


def _check_tree(tree: torch.Tensor, batch: int, n: int, device: torch.device, op: str) -> torch.Tensor:
    if not isinstance(tree, torch.Tensor):
        raise ValueError(f"{op}: tree must be a torch.Tensor, got {type(tree).__name__}")
    if tree.dim() != 3 or tuple(tree.shape) != (batch, n - 1, 2):
        raise ValueError(f"{op}: tree must have shape (B, N - 1, 2) = ({batch}, {n - 1}, 2), got {tuple(tree.shape)}")
    if tree.is_floating_point() or tree.is_complex() or tree.dtype == torch.bool:
        raise ValueError(f"{op}: tree must hold integer pixel indices, got {tree.dtype}")
    if tree.device != device:
        raise ValueError(f"{op}: tree is on {tree.device} but the signal is on {device}")
    tree = tree.long()
    if tree.numel() and (int(tree.min()) < 0 or int(tree.max()) >= n):
        bad = int(tree.min()) if int(tree.min()) < 0 else int(tree.max())
        raise ValueError(f"{op}: tree holds pixel index {bad}, outside [0, {n})")
    return tree


def _compute_dtype(x: torch.Tensor) -> torch.Tensor:
    """float32/float64 unchanged; half precision is computed in float32."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def sorted_tree(features: torch.Tensor, tree: torch.Tensor, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Tree edges sorted by their cost (stable) and the scaled costs, with torch on the tensors' device.

    This is the preparation of the CUDA path (also used by the tests with the CPU emulation of the kernel).

    Args:
        features: (B, C, H, W). tree: (B, N - 1, 2) int64. scale: the costs are divided by it (zeta^2 or sigma).

    Returns:
        (sorted edges (B, N - 1, 2) int64, scaled costs (B, N - 1) float64).
    """
    cost = reference.tree_edge_costs(features, tree)
    if torch.isnan(cost).any():
        raise ValueError("features contain NaN")
    order = torch.sort(cost, dim=1, stable=True).indices
    edges = tree.gather(1, order[..., None].expand(-1, -1, 2))
    return edges.contiguous(), (cost.gather(1, order) / scale).contiguous()


# ---------------------------------------------------------------------------------------------- MST


def grid_mst(features: torch.Tensor, *, impl: str = "auto") -> torch.Tensor:
    """Minimum spanning tree of the 4-connected grid with squared-L2 edge costs (APro spec §3.1).

    Ties are broken by (cost, edge index), so the tree is deterministic and identical across impls.

    Args:
        features: (B, C, H, W) guidance features (e.g. the normalised image).
        impl: "auto" | "reference" | "cpu" | "cuda". There is no CUDA MST kernel: for CUDA tensors "auto" and
            "cuda" run the C++ Kruskal on a host copy (the reference Boruvka on the device without the CPU
            extension), as the official op does.

    Returns:
        (B, N - 1, 2) int64 edges in row-major pixel indices (u < v), in ascending (cost, index) order.
    """
    op = "grid_mst"
    _check_grid_tensor(features, "features", op)
    mode = resolve_impl(impl, features.device, op, has_cuda_kernel=False)
    with torch.no_grad():
        f = _compute_dtype(features.detach())
        if mode == "reference":
            return reference.grid_mst(f)
        tree, _ = _call(_cpu().grid_mst, f.cpu())
        return tree.to(features.device)


# --------------------------------------------------------------------------------- global propagation


def _global(
    signal: torch.Tensor, features: torch.Tensor, zeta: float, tree: torch.Tensor | None, impl: str, op: str
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """GP without checks or grad handling; returns (output, the tree it used or built, if known)."""
    mode = resolve_impl(impl, signal.device, op)
    p = _compute_dtype(signal)
    f = _compute_dtype(features)
    if mode == "reference":
        t = reference.grid_mst(f) if tree is None else tree
        try:
            return reference.global_propagate(p, f, zeta, t).to(signal.dtype), t
        except NotSpanningTreeError as err:
            raise NotSpanningTreeError(f"{op}: {str(err).removeprefix('global_propagate: ')}") from None
    if mode == "cpu":
        ops = _cpu()
        if tree is None:
            out, t = _call(ops.mst_propagate, p.cpu(), f.cpu(), zeta)
            t = t.to(signal.device)
        else:
            out, t = _call(ops.tree_propagate, p.cpu(), f.cpu(), tree.cpu(), zeta), tree
        return out.to(device=signal.device, dtype=signal.dtype), t
    t = grid_mst(f) if tree is None else tree
    edges, scaled = _call(sorted_tree, f, t, zeta * zeta)
    return _call(_cuda().gp_presorted, edges, scaled, p).to(signal.dtype), t


def global_propagate(
    signal: torch.Tensor,
    features: torch.Tensor,
    zeta: float,
    tree: torch.Tensor | None = None,
    *,
    impl: str = "auto",
) -> torch.Tensor:
    """Global affinity propagation (APro §2.2), exact, O(N log N), stop-gradient.

    y_i = (p_i + sum_{j != i} exp(-w_ij / zeta^2) p_j) / (1 + sum_{j != i} exp(-w_ij / zeta^2)), with w_ij the
    largest edge cost on the tree path between pixels i and j.

    Args:
        signal: (B, K, H, W) predictions p (all K channels share one sort and one union pass).
        features: (B, C, H, W) guidance; edge costs are squared L2 distances of these.
        zeta: zeta_g (> 0).
        tree: (B, N - 1, 2) spanning tree (any spanning tree of the N pixels, e.g. from :func:`grid_mst`);
            None builds the grid MST of ``features`` (fused with the propagation on the CPU: one sort).
        impl: "auto" | "reference" | "cpu" | "cuda".

    Returns:
        (B, K, H, W) detached pseudo labels, dtype of ``signal``.
    """
    op = "global_propagate"
    _check_grid_tensor(signal, "signal", op)
    _check_grid_tensor(features, "features", op)
    _check_same_grid(signal, features, "signal", "features", op)
    zeta = _check_positive(zeta, "zeta", op)
    if tree is not None:
        tree = _check_tree(tree, signal.shape[0], signal.shape[2] * signal.shape[3], signal.device, op)
    with torch.no_grad():
        out, _ = _global(signal.detach(), features.detach(), zeta, tree, impl, op)
    return out


def global_propagate_two_stage(
    signal: torch.Tensor,
    features: torch.Tensor,
    zeta_low: float,
    zeta_high: float,
    embedding: torch.Tensor | None = None,
    tree: torch.Tensor | None = None,
    *,
    return_first: bool = False,
    impl: str = "auto",
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """The two-stage GP of the released APro code (spec §2.2), stop-gradient.

    Pass 1 propagates ``signal`` on the image tree (costs from ``features``, zeta_low). Pass 2 keeps the same
    tree topology, re-costs its edges from ``embedding`` (None: the pass-1 output itself, cost
    sum_k (y1_k - y1_l)^2), re-sorts them and propagates the pass-1 output with zeta_high.

    Args:
        signal: (B, K, H, W). features: (B, C, H, W) image guidance.
        zeta_low, zeta_high: zeta_gl, zeta_gh.
        embedding: (B, D, H, W) pass-2 guidance (e.g. deep features), or None.
        tree: (B, N - 1, 2), or None for the grid MST of ``features``.
        return_first: also return the pass-1 output.
        impl: as in :func:`global_propagate`.

    Returns:
        The pass-2 output (B, K, H, W), or (pass 1, pass 2) when ``return_first``.
    """
    op = "global_propagate_two_stage"
    _check_grid_tensor(signal, "signal", op)
    _check_grid_tensor(features, "features", op)
    _check_same_grid(signal, features, "signal", "features", op)
    if embedding is not None:
        _check_grid_tensor(embedding, "embedding", op)
        _check_same_grid(signal, embedding, "signal", "embedding", op)
    zeta_low = _check_positive(zeta_low, "zeta_low", op)
    zeta_high = _check_positive(zeta_high, "zeta_high", op)
    if tree is not None:
        tree = _check_tree(tree, signal.shape[0], signal.shape[2] * signal.shape[3], signal.device, op)
    with torch.no_grad():
        first, tree = _global(signal.detach(), features.detach(), zeta_low, tree, impl, op)
        guide = first if embedding is None else embedding.detach()
        second, _ = _global(first, guide, zeta_high, tree, impl, op)
    return (first, second) if return_first else second


# ---------------------------------------------------------------------------------- local propagation


def local_propagate(
    signal: torch.Tensor,
    image: torch.Tensor,
    kernel_size: int = 5,
    zeta: float = 0.15,
    iterations: int = 20,
    mask: torch.Tensor | None = None,
    *,
    impl: str = "auto",
) -> torch.Tensor:
    """Local affinity propagation (APro §2.3), out-of-image neighbours excluded, stop-gradient.

    Args:
        signal: (B, K, H, W) predictions p.
        image: (B, C, H, W) colours guiding the k x k Gaussian kernel exp(-||dI||^2 / zeta^2).
        kernel_size: odd window size k (5; 3 for SOLOv2 COCO).
        zeta: zeta_s (0.15).
        iterations: T (20).
        mask: box mask B, (B, 1 or K, H, W) or (B, H, W), any dtype (0 / 1); the start is p * B and every step
            is multiplied by B again. None: no mask.
        impl: "auto" | "reference" | "cpu" | "cuda".

    Returns:
        (B, K, H, W) detached, dtype of ``signal``.
    """
    op = "local_propagate"
    _check_grid_tensor(signal, "signal", op)
    _check_grid_tensor(image, "image", op)
    _check_same_grid(signal, image, "signal", "image", op)
    if not isinstance(kernel_size, int) or isinstance(kernel_size, bool) or kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"{op}: kernel_size must be a positive odd integer, got {kernel_size!r}")
    if not isinstance(iterations, int) or isinstance(iterations, bool) or iterations < 0:
        raise ValueError(f"{op}: iterations must be a non-negative integer, got {iterations!r}")
    zeta = _check_positive(zeta, "zeta", op)
    B, K, H, W = signal.shape
    if mask is not None:
        if not isinstance(mask, torch.Tensor):
            raise ValueError(f"{op}: mask must be a torch.Tensor, got {type(mask).__name__}")
        if mask.dim() == 3:
            mask = mask[:, None]
        if mask.dim() != 4 or mask.shape[0] != B or mask.shape[1] not in (1, K) or tuple(mask.shape[2:]) != (H, W):
            raise ValueError(f"{op}: mask must be (B, 1 or K, H, W) = ({B}, 1|{K}, {H}, {W}), got {tuple(mask.shape)}")
        if mask.device != signal.device:
            raise ValueError(f"{op}: mask is on {mask.device} but the signal is on {signal.device}")
    mode = resolve_impl(impl, signal.device, op)
    with torch.no_grad():
        p = _compute_dtype(signal.detach())
        img = _compute_dtype(image.detach())
        m = None if mask is None else mask.detach().to(p.dtype)
        if mode == "reference":
            out = reference.local_propagate(p, img, kernel_size, zeta, iterations, m)
        elif mode == "cpu":
            out = _call(
                _cpu().local_propagate, p.cpu(), img.cpu(), None if m is None else m.cpu(), kernel_size, zeta, iterations
            ).to(signal.device)
        else:
            out = _call(_cuda().local_propagate, p, img, m, kernel_size, zeta, iterations)
    return out.to(signal.dtype)


# ---------------------------------------------------------------------------------------- tree filter


def tree_filter(
    signal: torch.Tensor,
    features: torch.Tensor,
    tree: torch.Tensor,
    *,
    sigma: float = 1.0,
    differentiable: bool = False,
    impl: str = "auto",
) -> torch.Tensor:
    """Learnable-Tree-Filter path-product filter in O(N) (APro spec §3.3; the TEL baseline).

    y_i = sum_j S_ij f_j / sum_j S_ij,  S_ij = prod over the tree path of exp(-||F_k - F_l||^2 / sigma).

    Args:
        signal: (B, K, H, W) f. features: (B, C, H, W). tree: (B, N - 1, 2) spanning tree.
        sigma: cost scale (TEL: 0.02 on the [0, 1] image for VOC, 1 for a learned embedding).
        differentiable: run the autograd reference (gradients reach ``signal`` and ``features``); otherwise
            the output is detached like the other pseudo labels.
        impl: "auto" | "reference" | "cpu" | "cuda" (only "auto"/"reference" with ``differentiable``).

    Returns:
        (B, K, H, W), dtype of ``signal``.
    """
    op = "tree_filter"
    _check_grid_tensor(signal, "signal", op)
    _check_grid_tensor(features, "features", op)
    _check_same_grid(signal, features, "signal", "features", op)
    sigma = _check_positive(sigma, "sigma", op)
    tree = _check_tree(tree, signal.shape[0], signal.shape[2] * signal.shape[3], signal.device, op)
    if differentiable:
        if impl not in ("auto", "reference"):
            raise ValueError(f"{op}: differentiable=True runs the autograd reference; impl must be 'auto' or 'reference'")
        return reference.tree_filter(signal, features, tree, sigma)
    mode = resolve_impl(impl, signal.device, op)
    with torch.no_grad():
        p = _compute_dtype(signal.detach())
        f = _compute_dtype(features.detach())
        if mode == "reference":
            out = reference.tree_filter(p, f, tree, sigma)
        elif mode == "cpu":
            out = _call(_cpu().tree_filter, p.cpu(), f.cpu(), tree.cpu(), sigma).to(signal.device)
        else:
            scaled = reference.tree_edge_costs(f, tree) / sigma  # the filter needs no edge order
            if torch.isnan(scaled).any():
                raise ValueError(f"{op}: features contain NaN")
            out = _call(_cuda().tree_filter_weighted, p, tree, scaled)
    return out.to(signal.dtype)
