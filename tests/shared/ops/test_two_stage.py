"""global_propagate_two_stage: pass 2 keeps the pass-1 tree, re-costs it from an embedding (APro spec §2.2)."""

import pytest
import torch

from vlzoo.ops import global_propagate, global_propagate_two_stage, grid_mst, reference

IMPLS = ("reference", "cpu")


@pytest.mark.parametrize("impl", IMPLS)
def test_second_pass_reuses_the_image_tree_recosted_by_the_first_output(impl, rng, ops):
    if impl == "cpu":
        ops.cpu_ops()
    p = torch.rand(2, 2, 7, 8, generator=rng, dtype=torch.float64)
    f = torch.rand(2, 3, 7, 8, generator=rng, dtype=torch.float64)
    first, second = global_propagate_two_stage(p, f, 0.2, 0.1, return_first=True, impl=impl)
    tree = reference.grid_mst(f)
    expected_first = ops.bfs_global_propagate(p, f, 0.2, tree)
    torch.testing.assert_close(first, expected_first, rtol=0, atol=1e-10)
    # pass 2: the same topology, costs (y1_k - y1_l)^2 summed over channels, signal y1, zeta_high
    torch.testing.assert_close(second, ops.bfs_global_propagate(first, first, 0.1, tree), rtol=0, atol=1e-10)
    # ... which is not the MST of the first output's own costs in general: the tree really is reused
    own_tree = reference.grid_mst(first)
    assert not torch.equal(torch.sort(own_tree, 1).values, torch.sort(tree, 1).values)


@pytest.mark.parametrize("impl", IMPLS)
def test_embedding_and_explicit_tree(impl, rng, ops):
    if impl == "cpu":
        ops.cpu_ops()
    p = torch.rand(1, 3, 6, 9, generator=rng)
    f = torch.rand(1, 3, 6, 9, generator=rng)
    embedding = torch.randn(1, 5, 6, 9, generator=rng)
    tree = grid_mst(f)
    second = global_propagate_two_stage(p, f, 0.3, 0.5, embedding=embedding, tree=tree, impl=impl)
    first = global_propagate(p, f, 0.3, tree, impl=impl)
    torch.testing.assert_close(second, global_propagate(first, embedding, 0.5, tree, impl=impl), rtol=0, atol=0)


def test_cpu_equals_reference_and_outputs_are_detached(rng, ops):
    ops.cpu_ops()
    p = torch.rand(2, 4, 9, 10, generator=rng, requires_grad=True)
    f = torch.rand(2, 3, 9, 10, generator=rng)
    cpu = global_propagate_two_stage(p, f, 0.05, 0.07, impl="cpu")
    ref = global_propagate_two_stage(p, f, 0.05, 0.07, impl="reference")
    torch.testing.assert_close(cpu, ref, rtol=0, atol=1e-6)
    assert not cpu.requires_grad and not ref.requires_grad


def test_bad_input_raises_clear_errors(rng):
    p = torch.rand(1, 1, 4, 4, generator=rng)
    f = torch.rand(1, 3, 4, 4, generator=rng)
    with pytest.raises(ValueError, match="zeta_high must be positive"):
        global_propagate_two_stage(p, f, 0.1, 0.0)
    with pytest.raises(ValueError, match="signal .* and embedding .* must share B, H and W"):
        global_propagate_two_stage(p, f, 0.1, 0.1, embedding=torch.rand(1, 2, 4, 5))
