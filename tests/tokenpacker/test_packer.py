"""TokenPacker: shapes, parameter counts, interpolation semantics, windowing, locality, attention paths."""

import math

import pytest
import torch
import torch.nn.functional as F

from tokenpacker import TokenPacker
from tokenpacker.packer import split_concatenated, window_partition

TINY = dict(vision_dim=32, num_levels=3, llm_dim=48, num_heads=4)


def tiny_packer(grid_size=12, scale_factor=2, **overrides):
    torch.manual_seed(0)
    return TokenPacker(grid_size=grid_size, scale_factor=scale_factor, **{**TINY, **overrides}).eval()


def tiny_inputs(packer, batch=2, seed=1):
    gen = torch.Generator().manual_seed(seed)
    n = packer.grid_size**2
    x = torch.randn(batch, n, packer.vision_dim, generator=gen)
    x_multi = torch.randn(batch, n, packer.num_levels * packer.vision_dim, generator=gen)
    return x, x_multi


def window_indices(grid, s, r, c):
    """Patch indices of window (r, c), written out from the spec formula (s*r + a) * g + (s*c + b)."""
    return [(s * r + a) * grid + (s * c + b) for a in range(s) for b in range(s)]


@pytest.mark.parametrize("grid_size,scale_factor", [(12, 2), (12, 3), (12, 4), (24, 2), (24, 3), (24, 4)])
def test_output_shape_and_token_count(grid_size, scale_factor):
    packer = tiny_packer(grid_size, scale_factor)
    x, x_multi = tiny_inputs(packer, batch=3)
    with torch.no_grad():
        out = packer(x, x_multi)
    expected_tokens = (grid_size // scale_factor) ** 2
    assert out.shape == (3, expected_tokens, TINY["llm_dim"])
    assert packer.num_tokens() == expected_tokens == packer.num_queries
    assert packer.num_tokens(24) == (24 // scale_factor) ** 2


@pytest.mark.parametrize("llm_dim,expected", [(4096, 36_722_688), (5120, 47_210_496)])
def test_parameter_counts_at_7b_and_13b_on_meta(llm_dim, expected):
    with torch.device("meta"):
        packer = TokenPacker(
            vision_dim=1024, num_levels=4, llm_dim=llm_dim, grid_size=24, scale_factor=2, num_heads=8
        )
    count = lambda module: sum(p.numel() for p in module.parameters())  # noqa: E731
    assert count(packer) == expected
    assert count(packer.query_proj) == 1_048_576
    assert count(packer.key_mlp) == count(packer.value_mlp) == 5_244_928
    assert count(packer.query_norm) + count(packer.key_norm) + count(packer.value_norm) == 6_144
    assert count(packer.attn) == 4_198_400
    assert count(packer.out_mlp) == {4096: 20_979_712, 5120: 31_467_520}[llm_dim]


@pytest.mark.parametrize("scale_factor", [2, 3, 4])
def test_parameter_count_formula_and_independence_of_s(scale_factor):
    c_v, levels, c, h = 32, 3, 40, 48
    packer = TokenPacker(
        vision_dim=c_v,
        num_levels=levels,
        llm_dim=h,
        grid_size=12,
        scale_factor=scale_factor,
        num_heads=4,
        embed_dim=c,
    )
    formula = (
        c_v * c  # query projection, no bias
        + 2 * (levels * c_v * c + c + c * c + c)  # key and value fusion MLPs
        + 3 * 2 * c  # three LayerNorms
        + 4 * c * c
        + 4 * c  # attention in_proj (3C x C + 3C) and out_proj
        + c * h
        + h
        + h * h
        + h  # output MLP
    )
    assert sum(p.numel() for p in packer.parameters()) == formula


@pytest.mark.parametrize("grid_size", [12, 24])
def test_interpolation_semantics(grid_size):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, grid_size * grid_size, 8, generator=gen)
    grid = x.reshape(2, grid_size, grid_size, 8)

    s2 = tiny_packer(grid_size, 2, vision_dim=8).point_queries(x)
    avg = F.avg_pool2d(grid.permute(0, 3, 1, 2), 2).permute(0, 2, 3, 1).reshape(2, -1, 8)
    torch.testing.assert_close(s2, avg, rtol=0, atol=1e-6)

    s3 = tiny_packer(grid_size, 3, vision_dim=8).point_queries(x)
    centre = grid[:, 1::3, 1::3].reshape(2, -1, 8)
    torch.testing.assert_close(s3, centre, rtol=0, atol=1e-6)
    avg3 = F.avg_pool2d(grid.permute(0, 3, 1, 2), 3).permute(0, 2, 3, 1).reshape(2, -1, 8)
    assert (s3 - avg3).abs().max() > 0.1  # s=3 is NOT average pooling

    s4 = tiny_packer(grid_size, 4, vision_dim=8).point_queries(x)
    central = (grid[:, 1::4, 1::4] + grid[:, 1::4, 2::4] + grid[:, 2::4, 1::4] + grid[:, 2::4, 2::4]) / 4
    torch.testing.assert_close(s4, central.reshape(2, -1, 8), rtol=0, atol=1e-6)


def test_interpolation_runs_in_float32_under_bfloat16(monkeypatch):
    packer = tiny_packer(12, 3)
    x = torch.randn(2, 144, TINY["vision_dim"]).to(torch.bfloat16)
    seen = []
    real_interpolate = F.interpolate

    def spy(tensor, *args, **kwargs):
        seen.append(tensor.dtype)
        return real_interpolate(tensor, *args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "interpolate", spy)
    queries = packer.point_queries(x)
    assert seen == [torch.float32]
    assert queries.dtype == torch.bfloat16
    expected = x.float().reshape(2, 12, 12, -1)[:, 1::3, 1::3].reshape(2, 16, -1).to(torch.bfloat16)
    assert torch.equal(queries, expected)


def test_bfloat16_forward_matches_float32():
    packer = tiny_packer(12, 2)
    x, x_multi = tiny_inputs(packer)
    with torch.no_grad():
        reference = packer(x, x_multi)
        out = packer.to(torch.bfloat16)(x.bfloat16(), x_multi.bfloat16())
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), reference, rtol=0.05, atol=0.05)


def test_grid_not_divisible_by_scale_factor_is_an_error():
    with pytest.raises(ValueError, match="not divisible by scale_factor"):
        TokenPacker(grid_size=24, scale_factor=5)
    with pytest.raises(ValueError, match="not divisible by scale_factor"):
        TokenPacker(**TINY, grid_size=12, scale_factor=5)
    with pytest.raises(ValueError, match="num_heads"):
        TokenPacker(vision_dim=30, num_levels=1, llm_dim=8, grid_size=4, num_heads=4)
    with pytest.raises(ValueError, match="attention"):
        TokenPacker(**TINY, grid_size=4, attention="flash")


def test_wrong_input_shapes_are_clear_errors():
    packer = tiny_packer(12, 2)
    x, x_multi = tiny_inputs(packer)
    with pytest.raises(ValueError, match=r"x must have shape \(B, 144, 32\)"):
        packer(x[:, :100], x_multi)
    with pytest.raises(ValueError, match=r"x_multi must have shape \(2, 144, 96\)"):
        packer(x, x_multi[..., :64])


def test_window_partition_key_order():
    grid = 6
    tokens = torch.arange(grid * grid, dtype=torch.float32).reshape(1, -1, 1)
    windows = window_partition(tokens, grid, 2)[0, :, :, 0].long()
    assert windows.shape == (9, 4)
    assert windows[0].tolist() == [0, 1, grid, grid + 1]
    for s in (2, 3):
        windows = window_partition(tokens, grid, s)[0, :, :, 0].long()
        out_grid = grid // s
        for i in range(out_grid * out_grid):
            assert windows[i].tolist() == window_indices(grid, s, i // out_grid, i % out_grid)


@pytest.mark.parametrize("scale_factor", [2, 3, 4])
def test_locality_changing_window_i_changes_only_token_i(scale_factor):
    packer = tiny_packer(12, scale_factor)
    x, x_multi = tiny_inputs(packer, batch=2)
    out_grid = 12 // scale_factor
    window = (1, out_grid - 1)  # an interior-row, last-column window
    token = window[0] * out_grid + window[1]
    idx = window_indices(12, scale_factor, *window)
    x2, x_multi2 = x.clone(), x_multi.clone()
    x2[1, idx] += torch.randn(len(idx), x.shape[-1])
    x_multi2[1, idx] += torch.randn(len(idx), x_multi.shape[-1])
    with torch.no_grad():
        base, changed = packer(x, x_multi), packer(x2, x_multi2)
    diff = (changed - base).abs().amax(dim=-1)  # (B, M)
    scale = base.abs().max()  # outputs are small under the std-0.02 init
    assert diff[1, token] > 0.1 * scale
    others = torch.ones_like(diff, dtype=torch.bool)
    others[1, token] = False
    assert diff[others].max() <= 1e-6 * scale


def brute_force_reference(packer, x, x_multi):
    """Independent of the module's reshapes and attention code: window indices come from the spec formula,
    point queries from explicit patch means, attention from the textbook softmax(q k^T / sqrt(d)) v."""
    g, s = packer.grid_size, packer.scale_factor
    out_grid, heads = g // s, packer.num_heads
    d = packer.embed_dim // heads
    windows = torch.tensor(
        [window_indices(g, s, r, c) for r in range(out_grid) for c in range(out_grid)]
    )  # (M, S)
    # bilinear with align_corners=False at scale s samples source coordinate s*i + (s-1)/2 on each axis
    src = (s - 1) / 2
    offsets = sorted({math.floor(src), math.ceil(src)})
    query_patches = torch.tensor(
        [
            [(s * r + a) * g + (s * c + b) for a in offsets for b in offsets]
            for r in range(out_grid)
            for c in range(out_grid)
        ]
    )  # (M, 1 or 4): the patches whose mean is the point query
    w_q, w_k, w_v = packer.attn.in_proj_weight.chunk(3)
    b_q, b_k, b_v = packer.attn.in_proj_bias.chunk(3)
    key = packer.key_norm(packer.key_mlp(x_multi))[:, windows]  # (B, M, S, C)
    value = packer.value_norm(packer.value_mlp(x_multi))[:, windows]
    query = packer.query_norm(packer.query_proj(x[:, query_patches].mean(dim=2)))  # (B, M, C)
    batch, num_queries = query.shape[:2]
    qh = (query @ w_q.T + b_q).reshape(batch, num_queries, heads, d)
    kh = (key @ w_k.T + b_k).reshape(batch, num_queries, -1, heads, d)
    vh = (value @ w_v.T + b_v).reshape(batch, num_queries, -1, heads, d)
    weights = torch.softmax(torch.einsum("bmhd,bmkhd->bmhk", qh, kh) / math.sqrt(d), dim=-1)
    attended = torch.einsum("bmhk,bmkhd->bmhd", weights, vh).reshape(batch, num_queries, -1)
    return packer.out_mlp(packer.attn.out_proj(attended))


@pytest.mark.parametrize("scale_factor", [2, 3, 4])
@pytest.mark.parametrize("attention", ["sdpa", "official"])
def test_matches_brute_force_reference(scale_factor, attention):
    packer = tiny_packer(12, scale_factor, attention=attention)
    x, x_multi = tiny_inputs(packer)
    with torch.no_grad():
        torch.testing.assert_close(
            packer(x, x_multi), brute_force_reference(packer, x, x_multi), rtol=1e-5, atol=1e-5
        )


def test_sdpa_and_official_attention_agree_forward_and_backward():
    packer = tiny_packer(12, 2).train()
    x, x_multi = tiny_inputs(packer)
    results = {}
    for attention in ("sdpa", "official"):
        packer.attention = attention
        packer.zero_grad()
        xs = x.clone().requires_grad_(True)
        out = packer(xs, x_multi)
        out.square().mean().backward()
        grads = {n: p.grad.clone() for n, p in packer.named_parameters()}
        results[attention] = (out.detach(), xs.grad.clone(), grads)
    torch.testing.assert_close(results["sdpa"][0], results["official"][0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(results["sdpa"][1], results["official"][1], rtol=1e-4, atol=1e-7)
    for name, grad in results["official"][2].items():
        assert grad.abs().sum() > 0, f"{name} got no gradient"
        torch.testing.assert_close(results["sdpa"][2][name], grad, rtol=1e-4, atol=1e-7, msg=name)


def test_from_concatenated_splits_last_channels_as_query():
    packer = tiny_packer(12, 2)
    _, x_multi = tiny_inputs(packer)
    x, same = split_concatenated(x_multi, packer.vision_dim)
    assert same is x_multi and torch.equal(x, x_multi[..., -packer.vision_dim :])
    with torch.no_grad():
        torch.testing.assert_close(packer.from_concatenated(x_multi), packer(x_multi[..., -32:], x_multi))
    with pytest.raises(ValueError, match="concatenated features"):
        split_concatenated(x_multi[..., :-1], packer.vision_dim)


def test_official_initialisation():
    torch.manual_seed(0)
    packer = TokenPacker(vision_dim=64, num_levels=2, llm_dim=96, grid_size=4, num_heads=4)
    linears = [
        packer.query_proj,
        packer.key_mlp[0],
        packer.key_mlp[2],
        packer.value_mlp[0],
        packer.value_mlp[2],
        packer.attn.out_proj,
        packer.out_mlp[0],
        packer.out_mlp[2],
    ]
    for linear in linears:
        assert 0.017 < linear.weight.std().item() < 0.023
        assert linear.weight.abs().max() <= 2.0
        assert linear.bias is None or torch.count_nonzero(linear.bias) == 0
    for norm in (packer.query_norm, packer.key_norm, packer.value_norm):
        assert torch.equal(norm.weight, torch.ones(64)) and torch.count_nonzero(norm.bias) == 0
        assert norm.eps == 1e-6
    # in_proj_weight is not an nn.Linear: it keeps xavier-uniform, bound sqrt(6 / (C + 3C)).
    bound = math.sqrt(6 / (64 + 3 * 64))
    in_proj = packer.attn.in_proj_weight
    assert in_proj.abs().max() <= bound and in_proj.std() > 0.8 * bound / math.sqrt(3)
    assert packer.query_proj.bias is None
