"""Official projector checkpoint <-> TokenPacker: key layout, round trips, identical outputs, clear errors."""

import pytest
import torch

from tokenpacker import TokenPacker, projector_from_official, projector_to_official
from tokenpacker.convert import OFFICIAL_PREFIX

# The official module's parameter names (CircleRadon/TokenPacker builder.py), written out independently.
OFFICIAL_KEYS = {
    "q_proj_1.weight",
    "k_proj_1.0.weight", "k_proj_1.0.bias", "k_proj_1.2.weight", "k_proj_1.2.bias",
    "v_proj_1.0.weight", "v_proj_1.0.bias", "v_proj_1.2.weight", "v_proj_1.2.bias",
    "ln_q_1.weight", "ln_q_1.bias", "ln_k_1.weight", "ln_k_1.bias", "ln_v_1.weight", "ln_v_1.bias",
    "clip_attn.in_proj_weight", "clip_attn.in_proj_bias",
    "clip_attn.out_proj.weight", "clip_attn.out_proj.bias",
    "mlp.0.weight", "mlp.0.bias", "mlp.2.weight", "mlp.2.bias",
}  # fmt: skip


def tiny(seed):
    torch.manual_seed(seed)
    packer = TokenPacker(
        vision_dim=16, num_levels=2, llm_dim=24, grid_size=6, scale_factor=2, num_heads=2
    ).eval()
    with torch.no_grad():  # make LayerNorm and bias tensors non-trivial so a mix-up would show
        for param in packer.parameters():
            param.add_(0.1 * torch.randn_like(param))
    return packer


def inputs():
    gen = torch.Generator().manual_seed(5)
    return torch.randn(2, 36, 16, generator=gen), torch.randn(2, 36, 32, generator=gen)


def test_official_key_layout():
    official = projector_to_official(tiny(0).state_dict())
    assert set(official) == {OFFICIAL_PREFIX + k for k in OFFICIAL_KEYS}
    assert set(projector_to_official(tiny(0).state_dict(), prefix="")) == OFFICIAL_KEYS


@pytest.mark.parametrize("prefix", ["model.mm_projector.", "", "base_model.model.model.mm_projector."])
def test_converted_weights_give_identical_outputs(prefix):
    source, target = tiny(0), tiny(1)
    checkpoint = projector_to_official(source.state_dict(), prefix=prefix)
    target.load_state_dict(projector_from_official(checkpoint), strict=True)
    x, x_multi = inputs()
    with torch.no_grad():
        assert torch.equal(target(x, x_multi), source(x, x_multi))


def test_full_model_checkpoint_keeps_only_the_projector():
    source = tiny(2)
    checkpoint = projector_to_official(source.state_dict())
    checkpoint["model.embed_tokens.weight"] = torch.zeros(10, 24)
    checkpoint["model.layers.0.self_attn.q_proj.weight"] = torch.zeros(24, 24)
    converted = projector_from_official(checkpoint)
    assert set(converted) == set(source.state_dict())
    for key, value in source.state_dict().items():
        assert torch.equal(converted[key], value)


def test_round_trip_is_lossless():
    state = tiny(3).state_dict()
    back = projector_from_official(projector_to_official(state))
    assert set(back) == set(state) and all(torch.equal(back[k], state[k]) for k in state)


def test_missing_and_unknown_keys_are_named():
    checkpoint = projector_to_official(tiny(0).state_dict())
    del checkpoint["model.mm_projector.ln_k_1.bias"]
    with pytest.raises(ValueError, match=r"missing keys \['ln_k_1.bias'\]"):
        projector_from_official(checkpoint)
    mlp_projector = {
        "model.mm_projector.0.weight": torch.zeros(4, 4),
        "model.mm_projector.2.weight": torch.zeros(4, 4),
    }
    with pytest.raises(ValueError, match=r"unknown keys \['0.weight', '2.weight'\]"):
        projector_from_official(mlp_projector)
    with pytest.raises(ValueError, match="not a TokenPacker parameter"):
        projector_to_official({"extra.weight": torch.zeros(1)})


def test_shape_mismatch_is_reported_by_load_state_dict():
    checkpoint = projector_to_official(tiny(0).state_dict())
    other = TokenPacker(vision_dim=16, num_levels=2, llm_dim=32, grid_size=6, scale_factor=2, num_heads=2)
    with pytest.raises(RuntimeError, match="out_mlp.0.weight"):
        other.load_state_dict(projector_from_official(checkpoint))
