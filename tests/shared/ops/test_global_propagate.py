"""global_propagate: exact bottleneck-affinity propagation (APro spec §2.2, §3.2, §9.5 items 1-3, 5, 7)."""

import json
import subprocess
import sys

import pytest
import torch

from vlzoo.ops import NotSpanningTreeError, global_propagate, grid_mst, reference

IMPLS = ("reference", "cpu", "cuda-bodies")
SHAPES = [(2, 1, 3, 6, 8), (1, 3, 2, 10, 10), (2, 2, 3, 12, 16), (1, 2, 1, 1, 9), (1, 1, 2, 7, 1)]


def random_inputs(shape, rng, dtype=torch.float64, kind="random"):
    B, K, C, H, W = shape
    p = torch.rand(B, K, H, W, generator=rng, dtype=dtype)
    if kind == "random":
        f = torch.rand(B, C, H, W, generator=rng, dtype=dtype)
    elif kind == "ties":
        f = torch.randint(0, 3, (B, C, H, W), generator=rng).to(dtype) / 4
    else:
        f = torch.full((B, C, H, W), 0.7, dtype=dtype)
    return p, f


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("shape", SHAPES)
def test_equals_dense_bfs_oracle_float64(impl, shape, rng, ops):
    p, f = random_inputs(shape, rng)
    tree = reference.grid_mst(f)
    zetas = [0.05, 0.3, 2.0]
    for zeta, expected in zip(zetas, ops.bfs_global_propagate(p, f, zetas, tree)):
        y = ops.run_gp(impl, p, f, zeta, tree)
        assert y.dtype == torch.float64 and y.shape == p.shape
        torch.testing.assert_close(y, expected, rtol=0, atol=1e-10)


@pytest.mark.parametrize("impl", IMPLS)
def test_equals_dense_bfs_oracle_float32(impl, rng, ops):
    p, f = random_inputs((2, 3, 3, 9, 11), rng, dtype=torch.float32)
    tree = reference.grid_mst(f)
    y = ops.run_gp(impl, p, f, 0.2, tree)
    assert y.dtype == torch.float32
    torch.testing.assert_close(y.double(), ops.bfs_global_propagate(p, f, 0.2, tree), rtol=0, atol=1e-5)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("kind", ["random", "ties", "constant"])
def test_mst_result_is_the_full_grid_minimax_propagation(impl, kind, rng, ops):
    # Tree-independent check: with the MST of the same costs, the tree bottleneck equals the minimax
    # distance in the full 4-grid, so ties (any MST) cannot change the result.
    p, f = random_inputs((2, 2, 3, 7, 9), rng, kind=kind)
    for zeta in (0.1, 0.5):
        y = ops.run_gp(impl, p, f, zeta)  # tree built internally
        torch.testing.assert_close(y, ops.minimax_global_propagate(p, f, zeta), rtol=0, atol=1e-10)


def test_constant_image_gives_the_global_mean(rng, ops):
    ops.cpu_ops()
    p, f = random_inputs((2, 3, 3, 6, 7), rng, kind="constant")
    for impl in ("reference", "cpu"):
        y = global_propagate(p, f, 0.01, impl=impl)
        torch.testing.assert_close(y, p.mean((2, 3), keepdim=True).expand_as(p), rtol=0, atol=1e-12)


@pytest.mark.parametrize("impl", IMPLS)
def test_properties(impl, rng, ops):
    p, f = random_inputs((2, 3, 3, 8, 9), rng)
    tree = reference.grid_mst(f)
    y = ops.run_gp(impl, p, f, 0.3, tree)
    # a convex combination of the predictions, channel by channel
    lo, hi = p.amin((2, 3), keepdim=True), p.amax((2, 3), keepdim=True)
    assert bool((y >= lo - 1e-12).all() and (y <= hi + 1e-12).all())
    # a constant signal is a fixed point
    const = torch.full_like(p, 0.37)
    torch.testing.assert_close(ops.run_gp(impl, const, f, 0.3, tree), const, rtol=0, atol=1e-13)
    # zeta -> infinity: every affinity -> 1, the output is the image mean
    torch.testing.assert_close(
        ops.run_gp(impl, p, f, 1e6, tree), p.mean((2, 3), keepdim=True).expand_as(p), rtol=0, atol=1e-9
    )
    # zeta -> 0 with distinct (non-zero) costs: every affinity -> 0, the output is the input
    torch.testing.assert_close(ops.run_gp(impl, p, f, 1e-7, tree), p, rtol=0, atol=1e-12)


@pytest.mark.parametrize("impl", IMPLS)
def test_affinity_is_symmetric(impl, rng, ops):
    # One-hot signals as channels: y_i(delta_j) = phi_ij / z_i, so y_j(delta_j) = 1 / z_j and
    # phi_ij = z_i y_i(delta_j) must equal phi_ji = z_j y_j(delta_i); hence sum_i z_i y_i = sum_j z_j p_j.
    H, W = 5, 7
    n = H * W
    f = torch.rand(1, 3, H, W, generator=rng, dtype=torch.float64)
    one_hot = torch.eye(n, dtype=torch.float64).view(1, n, H, W)
    y = ops.run_gp(impl, one_hot, f, 0.4).view(n, n)  # y[j, i] = phi_ij / z_i
    z = 1.0 / torch.diagonal(y)
    phi = y * z[None, :]  # phi[j, i]
    torch.testing.assert_close(phi, phi.T, rtol=0, atol=1e-12)
    p = torch.rand(1, 1, H, W, generator=rng, dtype=torch.float64)
    out = ops.run_gp(impl, p, f, 0.4).flatten()
    torch.testing.assert_close((z * out).sum(), (z * p.flatten()).sum(), rtol=1e-12, atol=0)


@pytest.mark.parametrize("impl", IMPLS)
def test_invariant_to_edge_list_order_and_orientation(impl, rng, ops):
    p, f = random_inputs((2, 2, 3, 9, 8), rng)
    tree = reference.grid_mst(f)
    shuffled = tree[:, torch.randperm(tree.shape[1], generator=rng)]
    shuffled[:, ::2] = shuffled[:, ::2].flip(-1)  # swap (u, v) on every other edge
    torch.testing.assert_close(
        ops.run_gp(impl, p, f, 0.2, shuffled), ops.run_gp(impl, p, f, 0.2, tree), rtol=0, atol=1e-12
    )


@pytest.mark.parametrize("impl", IMPLS)
def test_batch_and_channels_are_independent(impl, rng, ops):
    p, f = random_inputs((3, 4, 3, 7, 8), rng)
    y = ops.run_gp(impl, p, f, 0.25)
    for b in range(3):
        for k in range(4):
            single = ops.run_gp(impl, p[b : b + 1, k : k + 1], f[b : b + 1], 0.25)
            torch.testing.assert_close(y[b : b + 1, k : k + 1], single, rtol=0, atol=1e-13)


@pytest.mark.parametrize("channels", [7, 8, 15, 21])
def test_wide_signals_replayed_in_channel_chunks_equal_the_oracle(channels, rng, ops):
    # The CPU replays wide signals in cache-sized channel chunks, the normaliser in the first: every chunk
    # width, including uneven chunks, must give the dense answer, in one call and with the tree given.
    p, f = random_inputs((2, channels, 3, 7, 9), rng)
    tree = reference.grid_mst(f)
    expected = ops.bfs_global_propagate(p, f, 0.3, tree)
    torch.testing.assert_close(ops.run_gp("cpu", p, f, 0.3), expected, rtol=0, atol=1e-10)
    torch.testing.assert_close(ops.run_gp("cpu", p, f, 0.3, tree), expected, rtol=0, atol=1e-10)


def test_large_image_wide_chunks_equal_the_reference(rng, ops):
    # Above about 362^2 pixels the CPU switches to wider chunks (8 slots): 15 channels at 370^2 replay in two
    # chunks (one thread) or three with their own ones channel (two threads, one sample); against the
    # PyTorch reference (about 2 s).
    ops.cpu_ops()
    p, f = random_inputs((1, 15, 3, 370, 370), rng)
    expected = global_propagate(p, f, 0.3, impl="reference")
    torch.testing.assert_close(global_propagate(p, f, 0.3, impl="cpu"), expected, rtol=0, atol=1e-10)


def test_given_tree_equals_fused_mst_path(rng, ops):
    ops.cpu_ops()
    p, f = random_inputs((2, 3, 3, 15, 17), rng, dtype=torch.float32)
    tree = grid_mst(f, impl="cpu")
    fused = global_propagate(p, f, 0.1, impl="cpu")
    torch.testing.assert_close(global_propagate(p, f, 0.1, tree, impl="cpu"), fused, rtol=0, atol=0)
    torch.testing.assert_close(global_propagate(p, f, 0.1, impl="reference"), fused, rtol=0, atol=1e-6)


def test_any_spanning_tree_is_accepted(rng, ops):
    # GP is defined on any spanning tree of the pixels, not only grid MSTs: a random tree (each pixel
    # attached to a random earlier one) against the BFS oracle.
    N = 30
    parents = [int(torch.randint(0, i, (1,), generator=rng)) for i in range(1, N)]
    tree = torch.tensor([[parents[i - 1], i] for i in range(1, N)])[None]
    p, f = random_inputs((1, 2, 3, 5, 6), rng)
    for impl in IMPLS:
        torch.testing.assert_close(
            ops.run_gp(impl, p, f, 0.4, tree), ops.bfs_global_propagate(p, f, 0.4, tree), rtol=0, atol=1e-10
        )


@pytest.mark.parametrize("impl", ["reference", "cpu"])
def test_pseudo_labels_are_stop_gradient(impl, rng, ops):
    if impl == "cpu":
        ops.cpu_ops()
    p = torch.rand(1, 2, 6, 7, generator=rng, dtype=torch.float64, requires_grad=True)
    f = torch.rand(1, 3, 6, 7, generator=rng, dtype=torch.float64, requires_grad=True)
    y = global_propagate(p, f, 0.3, impl=impl)
    assert not y.requires_grad and y.grad_fn is None
    # L1 pseudo-label loss: the gradient reaches p only through its own term, d|y - p|/dp = sign(p - y)
    loss = (y - p).abs().sum()
    loss.backward()
    torch.testing.assert_close(p.grad, torch.sign(p - y).detach())
    assert f.grad is None


def test_half_precision_signal_keeps_its_dtype(rng):
    p = torch.rand(1, 2, 5, 6, generator=rng).half()
    f = torch.rand(1, 3, 5, 6, generator=rng)
    y = global_propagate(p, f, 0.3)
    assert y.dtype == torch.float16
    torch.testing.assert_close(y.float(), global_propagate(p.float(), f, 0.3), rtol=0, atol=1e-3)


@pytest.mark.parametrize("impl", ["reference", "cpu"])
def test_bad_input_raises_clear_errors(impl, rng, ops):
    if impl == "cpu":
        ops.cpu_ops()
    p = torch.rand(2, 1, 4, 5, generator=rng)
    f = torch.rand(2, 3, 4, 5, generator=rng)
    tree = grid_mst(f)
    cycle = tree.clone()
    cycle[1, 5] = cycle[1, 4]  # a duplicated edge: a cycle, and one pixel left out
    with pytest.raises(NotSpanningTreeError, match="tree of sample 1 is not a spanning tree"):
        global_propagate(p, f, 0.3, cycle, impl=impl)
    outside = tree.clone()
    outside[0, 0, 1] = 20
    with pytest.raises(ValueError, match="pixel index 20, outside \\[0, 20\\)"):
        global_propagate(p, f, 0.3, outside, impl=impl)
    with pytest.raises(ValueError, match="tree must have shape \\(B, N - 1, 2\\) = \\(2, 19, 2\\)"):
        global_propagate(p, f, 0.3, tree[:, :-1], impl=impl)
    with pytest.raises(ValueError, match="integer pixel indices"):
        global_propagate(p, f, 0.3, tree.float(), impl=impl)
    with pytest.raises(ValueError, match="signal .* and features .* must share B, H and W"):
        global_propagate(p, f[:, :, :3], 0.3, impl=impl)
    with pytest.raises(ValueError, match="signal must be a \\(B, C, H, W\\)"):
        global_propagate(p[0], f, 0.3, impl=impl)
    for zeta in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="zeta must be positive and finite"):
            global_propagate(p, f, zeta, impl=impl)
    nan = f.clone()
    nan[0, 1, 2, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        global_propagate(p, nan, 0.3, impl=impl)


_MEMORY_PROBE = """
import json, resource, sys, time, torch
import vlzoo.ops as O
torch.set_num_threads(1)
sizes = [("reference", 96), ("cpu", 96), ("cpu", 256)]
for impl, _ in sizes:  # load everything and let the allocators settle before capping memory
    O.global_propagate(torch.rand(1, 1, 32, 32), torch.rand(1, 3, 32, 32), 0.1, impl=impl)
inputs = {size: (torch.rand(1, 1, size, size), torch.rand(1, 3, size, size)) for _, size in sizes}
vm_kib = int([l for l in open("/proc/self/status") if l.startswith("VmSize")][0].split()[1])
headroom = 64 * 2**20  # any N x N matrix (0.34 GB at 96^2, 17 GB at 256^2) would fail with MemoryError
resource.setrlimit(resource.RLIMIT_AS, (vm_kib * 1024 + headroom, resource.RLIM_INFINITY))
results = []
for impl, size in sizes:
    p, f = inputs[size]
    start = time.perf_counter()
    y = O.global_propagate(p, f, 0.1, impl=impl)
    results.append(dict(impl=impl, size=size, ms=1e3 * (time.perf_counter() - start), finite=bool(torch.isfinite(y).all())))
print(json.dumps(results))
"""


def test_scaling_never_builds_the_dense_matrix(ops):
    # 96^2 and 256^2 run with only 64 MiB of address space to spare: the O(N) state fits, the dense N x N
    # form (spec §3.2: 0.34 GB at 96^2, 17 GB at 256^2) could not. A fresh process, so the cap is local.
    ops.cpu_ops()
    result = subprocess.run([sys.executable, "-c", _MEMORY_PROBE], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    for probe in json.loads(result.stdout.strip().splitlines()[-1]):
        print(f"{probe['impl']} {probe['size']}^2 under a 64 MiB cap: {probe['ms']:.1f} ms")
        assert probe["finite"]
