"""Baseline projectors (paper Tab. 3): shapes, token counts, registry/config, each design's defining op."""

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from tokenpacker import PROJECTORS, ProjectorConfig, TokenPacker, build_projector, build_projector_from_config
from tokenpacker.projectors import (
    CAbstractor,
    LDPv2Projector,
    PerceiverResampler,
    PixelShuffleProjector,
    sincos_2d_embedding,
)

C_V, LEVELS, H = 16, 2, 24
EXTRA = {
    "resampler": dict(num_heads=4, resampler_dim=32),
    "c_abstractor": dict(abstractor_depth=1, abstractor_dim=16),
    "tokenpacker": dict(num_heads=4, num_levels=LEVELS),
}


def make(name, grid_size, scale_factor):
    torch.manual_seed(0)
    kwargs = dict(
        vision_dim=C_V, llm_dim=H, grid_size=grid_size, scale_factor=scale_factor, **EXTRA.get(name, {})
    )
    return build_projector(name, **kwargs).eval()


def features(batch, grid_size, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x_multi = torch.randn(batch, grid_size * grid_size, LEVELS * C_V, generator=gen)
    return x_multi[..., -C_V:], x_multi


def test_registry_names():
    assert sorted(PROJECTORS) == sorted(
        ["mlp", "avgpool", "resampler", "pixel_shuffle", "c_abstractor", "ldp_v2", "tokenpacker"]
    )
    assert PROJECTORS["tokenpacker"] is TokenPacker
    with pytest.raises(ValueError, match="unknown projector 'qformer'"):
        build_projector("qformer")


CASES = [(name, g, s) for name in sorted(PROJECTORS) for g in (12, 24) for s in (2, 3, 4)]


@pytest.mark.parametrize("name,grid_size,scale_factor", CASES)
def test_output_shape_and_token_count(name, grid_size, scale_factor):
    projector = make(name, grid_size, scale_factor)
    x, x_multi = features(2, grid_size)
    with torch.no_grad():
        out = projector(x, x_multi)
    expected = grid_size**2 if name == "mlp" else (grid_size // scale_factor) ** 2
    assert out.shape == (2, expected, H)
    assert projector.num_tokens(grid_size) == expected
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", sorted(PROJECTORS))
def test_from_concatenated_and_every_parameter_trains(name):
    projector = make(name, 12, 2).train()
    x, x_multi = features(2, 12, seed=3)
    torch.testing.assert_close(projector.from_concatenated(x_multi), projector(x, x_multi))
    projector.from_concatenated(x_multi).square().mean().backward()
    for param_name, param in projector.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, f"{name}: {param_name} gets no gradient"


@pytest.mark.parametrize("name", sorted(set(PROJECTORS) - {"mlp"}))
def test_indivisible_grid_is_an_error(name):
    with pytest.raises(ValueError, match="not divisible by scale_factor"):
        make(name, 12, 5)


@pytest.mark.parametrize("name", sorted(PROJECTORS))
def test_wrong_grid_is_a_clear_error(name):
    projector = make(name, 12, 2)
    x, x_multi = features(1, 6)
    with pytest.raises(ValueError, match="must have shape"):
        projector(x, x_multi)


def test_mlp_keeps_all_tokens_and_avgpool_pools_then_projects():
    mlp = make("mlp", 12, 2)
    x, _ = features(2, 12)
    with torch.no_grad():
        torch.testing.assert_close(mlp(x), mlp.mlp(x))
        avgpool = make("avgpool", 12, 3)
        pooled = F.avg_pool2d(x.reshape(2, 12, 12, C_V).permute(0, 3, 1, 2), 3).flatten(2).transpose(1, 2)
        torch.testing.assert_close(avgpool(x), avgpool.mlp(pooled))


def test_pixel_shuffle_stacks_each_window_row_major():
    projector = make("pixel_shuffle", 6, 2)
    assert isinstance(projector, PixelShuffleProjector)
    captured = {}
    projector.mlp.register_forward_hook(lambda module, args, out: captured.setdefault("input", args[0]))
    patch_id = torch.arange(36, dtype=torch.float32).reshape(1, 36, 1).expand(1, 36, C_V)
    with torch.no_grad():
        projector(patch_id)
    stacked = captured["input"]  # (1, 9, 4*C_V): window i = patches [(2r)*6+2c, +1, +6, +7] in blocks of C_V
    assert stacked.shape == (1, 9, 4 * C_V)
    assert stacked[0, 0, ::C_V].tolist() == [0, 1, 6, 7]
    assert stacked[0, 5, ::C_V].tolist() == [16, 17, 22, 23]  # window (1, 2)


def test_ldp_v2_peg_is_a_residual_depthwise_conv():
    projector = make("ldp_v2", 12, 2)
    assert isinstance(projector, LDPv2Projector)
    assert projector.peg.groups == H and projector.peg.kernel_size == (3, 3)
    x, _ = features(2, 12)
    with torch.no_grad():
        hidden = projector.mlp(x).reshape(2, 12, 12, H).permute(0, 3, 1, 2)
        pooled = F.avg_pool2d(hidden, 2)
        expected = (pooled + projector.peg(pooled)).flatten(2).transpose(1, 2)
        torch.testing.assert_close(projector(x), expected)
        projector.peg.weight.zero_()
        projector.peg.bias.zero_()
        torch.testing.assert_close(
            projector(x), pooled.flatten(2).transpose(1, 2)
        )  # identity when PEG is zero


def test_resampler_queries_and_positions():
    projector = make("resampler", 12, 3)
    assert isinstance(projector, PerceiverResampler)
    assert projector.queries.shape == (16, 32)
    # Fixed 2D sin-cos positions, not parameters; key positions use the query-grid coordinates.
    assert "query_pos" not in dict(projector.named_parameters())
    assert projector.key_pos.shape == (144, 32)
    # key patch (1, 1) of a 3x3 window is the centre of query cell (0, 0), so both get the same embedding.
    torch.testing.assert_close(projector.key_pos[1 * 12 + 1], projector.query_pos[0], rtol=0, atol=1e-6)
    x, _ = features(1, 12)
    shuffled = x[:, torch.randperm(144, generator=torch.Generator().manual_seed(0))]
    with torch.no_grad():
        assert (projector(x) - projector(shuffled)).abs().max() > 1e-4  # positions make the order matter


def test_sincos_embedding_values():
    emb = sincos_2d_embedding(8, torch.tensor([0.0, 2.0]), torch.tensor([0.0, 1.0]))
    # dim 8: cols -> [sin(c), sin(c/100), cos(c), cos(c/100)], rows -> the same for r.
    torch.testing.assert_close(emb[0], torch.tensor([0, 0, 1, 1, 0, 0, 1, 1], dtype=torch.float32))
    c, r = torch.tensor(1.0), torch.tensor(2.0)
    expected = torch.stack(
        [
            c.sin(),
            (c / 100).sin(),
            c.cos(),
            (c / 100).cos(),
            r.sin(),
            (r / 100).sin(),
            r.cos(),
            (r / 100).cos(),
        ]
    )
    torch.testing.assert_close(emb[1], expected)
    with pytest.raises(ValueError, match="dim % 4"):
        sincos_2d_embedding(6, torch.zeros(1), torch.zeros(1))


def test_c_abstractor_structure():
    projector = build_projector(
        "c_abstractor",
        vision_dim=C_V,
        llm_dim=H,
        grid_size=12,
        scale_factor=2,
        abstractor_depth=2,
        abstractor_dim=8,
    )
    assert isinstance(projector, CAbstractor)
    assert len(projector.stage1) == len(projector.stage2) == 2
    assert projector.pool.output_size == (6, 6)
    first = projector.stage1[0]
    assert first.conv2[0].groups == 8  # RegNet group_size=1: depthwise 3x3
    assert first.se.reduce.out_channels == round(C_V * 0.25)
    assert not isinstance(first.shortcut, torch.nn.Identity)  # width changes 16 -> 8
    assert isinstance(projector.stage1[1].shortcut, torch.nn.Identity)


def test_config_builds_every_projector_with_its_fields():
    for name in PROJECTORS:
        config = ProjectorConfig(
            name=name,
            vision_dim=C_V,
            feature_layers=(3, 5),
            llm_dim=H,
            grid_size=12,
            scale_factor=3,
            num_heads=4,
            resampler_dim=32,
            abstractor_depth=1,
        )
        projector = build_projector_from_config(config)
        assert isinstance(projector, PROJECTORS[name])
        assert projector.num_tokens(12) == (144 if name == "mlp" else 16)
    packer = build_projector_from_config(
        ProjectorConfig(
            vision_dim=C_V,
            feature_layers=(3, 5, 7),
            llm_dim=H,
            grid_size=12,
            num_heads=4,
            attention="official",
        )
    )
    assert packer.num_levels == 3 and packer.attention == "official"
    used = set().union(*(ProjectorConfig(name=n).projector_kwargs() for n in PROJECTORS)) | {
        "name",
        "feature_layers",
    }
    assert {f.name for f in dataclasses.fields(ProjectorConfig)} <= used  # no dead config field


def test_default_config_is_the_official_7b_tokenpacker():
    config = ProjectorConfig()
    assert config.projector_kwargs() == dict(
        vision_dim=1024,
        num_levels=4,
        llm_dim=4096,
        grid_size=24,
        scale_factor=2,
        num_heads=8,
        embed_dim=None,
        norm_eps=1e-6,
        attention="sdpa",
    )
    assert config.feature_layers == (12, 16, 22, 23)


def test_config_errors():
    with pytest.raises(ValueError, match="name must be one of"):
        ProjectorConfig(name="linear")
    with pytest.raises(ValueError, match="not divisible"):
        ProjectorConfig(grid_size=24, scale_factor=5)
    with pytest.raises(ValueError, match="attention"):
        ProjectorConfig(attention="xformers")
