"""The CUDA kernels against the C++ CPU kernel on random batches (run on the GPU machine: make test-gpu)."""

import pytest
import torch

import vlzoo.ops as O
from vlzoo.ops import NotSpanningTreeError, _ext, dispatch

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

SHAPES = [(1, 1, 3, 1, 1), (2, 1, 3, 7, 5), (3, 4, 3, 33, 17), (2, 21, 3, 64, 64), (1, 2, 3, 96, 96)]


@pytest.fixture(scope="module")
def device():
    assert _ext.cuda_ops() is not None, "the CUDA extension failed to build (see the RuntimeWarning)"
    assert _ext.cpu_ops() is not None
    return torch.device("cuda")


def batch(shape, dtype, device, seed=0):
    B, K, C, H, W = shape
    g = torch.Generator().manual_seed(seed)
    p = torch.rand(B, K, H, W, generator=g, dtype=dtype)
    f = torch.rand(B, C, H, W, generator=g, dtype=dtype)
    return p, f, p.to(device), f.to(device)


def test_auto_picks_the_cuda_kernels(device):
    assert O.HAS_CUDA_EXT
    assert dispatch.resolve_impl("auto", device, "op") == "cuda"
    p, f, pc, fc = batch((1, 1, 3, 8, 8), torch.float32, device)
    assert O.global_propagate(pc, fc, 0.1).device.type == "cuda"
    tree = O.grid_mst(fc, impl="cuda")  # no CUDA MST kernel: the host Kruskal, result on the device
    assert tree.device.type == "cuda" and torch.equal(tree.cpu(), O.grid_mst(f, impl="cpu"))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(("dtype", "atol"), [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_global_propagate(shape, dtype, atol, device):
    p, f, pc, fc = batch(shape, dtype, device)
    tree = O.grid_mst(f, impl="cpu")
    expected = O.global_propagate(p, f, 0.1, tree, impl="cpu")
    got = O.global_propagate(pc, fc, 0.1, tree.to(device), impl="cuda")
    assert got.device.type == "cuda" and got.dtype == dtype
    torch.testing.assert_close(got.cpu(), expected, rtol=0, atol=atol)
    torch.testing.assert_close(O.global_propagate(pc, fc, 0.1, impl="cuda").cpu(), expected, rtol=0, atol=atol)


def test_two_stage(device):
    p, f, pc, fc = batch((2, 3, 3, 40, 30), torch.float32, device)
    expected = O.global_propagate_two_stage(p, f, 0.03, 0.07, impl="cpu")
    got = O.global_propagate_two_stage(pc, fc, 0.03, 0.07, impl="cuda")
    torch.testing.assert_close(got.cpu(), expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("kernel_size", [3, 5])
@pytest.mark.parametrize("masked", [False, True])
def test_local_propagate(shape, kernel_size, masked, device):
    p, f, pc, fc = batch(shape, torch.float64, device)
    box = (torch.rand(p.shape[0], 1, *p.shape[2:], generator=torch.Generator().manual_seed(1)) > 0.3).double()
    mask, mask_c = (box, box.to(device)) if masked else (None, None)
    expected = O.local_propagate(p, f, kernel_size, 0.15, 20, mask, impl="cpu")
    got = O.local_propagate(pc, fc, kernel_size, 0.15, 20, mask_c, impl="cuda")
    torch.testing.assert_close(got.cpu(), expected, rtol=0, atol=1e-10)


@pytest.mark.parametrize("shape", SHAPES)
def test_tree_filter(shape, device):
    p, f, pc, fc = batch(shape, torch.float64, device)
    tree = O.grid_mst(f, impl="cpu")
    expected = O.tree_filter(p, f, tree, sigma=0.5, impl="cpu")
    got = O.tree_filter(pc, fc, tree.to(device), sigma=0.5, impl="cuda")
    torch.testing.assert_close(got.cpu(), expected, rtol=0, atol=1e-10)


def test_not_spanning_trees_raise(device):
    p, f, pc, fc = batch((2, 1, 3, 5, 5), torch.float32, device)
    tree = O.grid_mst(f, impl="cpu")
    tree[1, 3] = tree[1, 2]
    with pytest.raises(NotSpanningTreeError, match="sample 1"):
        O.global_propagate(pc, fc, 0.1, tree.to(device), impl="cuda")
    with pytest.raises(NotSpanningTreeError, match="sample 1"):
        O.tree_filter(pc, fc, tree.to(device), impl="cuda")
