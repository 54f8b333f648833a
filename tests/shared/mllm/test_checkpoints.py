"""Checkpoints: stock LLaVA loads our MLP folders, custom projectors round-trip, projector-only files."""

import json

import pytest
import torch
from safetensors import safe_open
from torch import nn
from transformers import AutoConfig, AutoModelForImageTextToText, LlavaForConditionalGeneration

from vlzoo.mllm import (
    VlzooLlavaConfig,
    VlzooLlavaForConditionalGeneration,
    VlzooLlavaModel,
    build_llava,
    load_projector,
    register_llava_classes,
    save_projector,
    save_stock_llava,
)
from vlzoo.paths import MissingLocalFile

IMAGE = 63


def batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.tensor([[1, 5] + [IMAGE] * 16 + [6, 7], [1, 9] + [IMAGE] * 16 + [10, 11]])
    return ids, torch.randn(2, 3, 32, 32, generator=g)


def logits(model, ids, pixels):
    with torch.no_grad():
        return model(input_ids=ids, pixel_values=pixels, attention_mask=torch.ones_like(ids)).logits


def test_stock_llava_loads_our_mlp_folder_with_identical_logits(tiny_llava, tmp_path):
    model = tiny_llava(vision_feature_layer=[2, 4])
    model.save_pretrained(tmp_path)
    ids, pixels = batch()
    stock = LlavaForConditionalGeneration.from_pretrained(tmp_path, attn_implementation="eager").eval()
    assert type(stock) is LlavaForConditionalGeneration and type(stock.model.multi_modal_projector).__name__ == (
        "LlavaMultiModalProjector")
    assert torch.equal(logits(stock, ids, pixels), logits(model, ids, pixels))
    with safe_open(str(tmp_path / "model.safetensors"), "pt") as f:
        keys = set(f.keys())
    assert {"model.multi_modal_projector.linear_1.weight", "model.multi_modal_projector.linear_2.bias"} <= keys


def test_save_stock_llava_resolves_to_stock_auto_classes(tiny_llava, tmp_path):
    model = tiny_llava()
    save_stock_llava(model, tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == "llava" and "projector_type" not in config
    assert type(AutoConfig.from_pretrained(tmp_path)).__name__ == "LlavaConfig"
    loaded = AutoModelForImageTextToText.from_pretrained(tmp_path, attn_implementation="eager").eval()
    assert type(loaded) is LlavaForConditionalGeneration
    ids, pixels = batch(1)
    assert torch.equal(logits(loaded, ids, pixels), logits(model, ids, pixels))


def test_vlzoo_folder_round_trips_through_auto_classes(tiny_llava, tmp_path):
    model = tiny_llava()
    model.save_pretrained(tmp_path)
    assert type(AutoConfig.from_pretrained(tmp_path)) is VlzooLlavaConfig
    loaded = AutoModelForImageTextToText.from_pretrained(tmp_path, attn_implementation="eager").eval()
    assert type(loaded) is VlzooLlavaForConditionalGeneration
    ids, pixels = batch(2)
    assert torch.equal(logits(loaded, ids, pixels), logits(model, ids, pixels))


class GatedPoolProjector(nn.Module):
    """A tiny test projector: 2×1 average pool of the patch tokens, then a gated linear map (16 → 8 tokens)."""

    def __init__(self, in_dim: int, out_dim: int, pool: int):
        super().__init__()
        self.pool = pool
        self.proj = nn.Linear(in_dim, out_dim)
        self.gate = nn.Parameter(torch.randn(out_dim))

    def num_output_tokens(self, num_patches: int) -> int:
        return num_patches // self.pool

    def forward(self, x):  # (N, P, C) → (N, P / pool, D)
        x = x.unflatten(1, (-1, self.pool)).mean(2)
        return self.proj(x) * torch.sigmoid(self.gate)


class PoolConfig(VlzooLlavaConfig):
    model_type = "vlzoo_test_pool_llava"


class PoolModel(VlzooLlavaModel):
    config_class = PoolConfig

    @classmethod
    def build_projector(cls, config):
        if config.projector_type == "gated_pool":
            return GatedPoolProjector(**config.projector_kwargs)
        return super().build_projector(config)


class PoolForConditionalGeneration(VlzooLlavaForConditionalGeneration):
    config_class = PoolConfig
    llava_model_class = PoolModel


register_llava_classes(PoolConfig, PoolModel, PoolForConditionalGeneration)


def test_custom_projector_round_trip(tiny_configs, tmp_path):
    torch.manual_seed(0)
    kwargs = {"in_dim": 64, "out_dim": 64, "pool": 2}
    model = build_llava(tiny_configs.llama(64), tiny_configs.vision(), image_token_id=IMAGE,
                        model_class=PoolForConditionalGeneration, projector_type="gated_pool",
                        projector_kwargs=kwargs, attn_implementation="eager")
    assert model.num_image_tokens() == 8 and model.config.image_seq_length == 8
    model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["projector_type"] == "gated_pool" and saved["projector_kwargs"] == kwargs
    loaded = AutoModelForImageTextToText.from_pretrained(tmp_path, attn_implementation="eager").eval()
    assert type(loaded) is PoolForConditionalGeneration and isinstance(loaded.projector, GatedPoolProjector)
    ids = torch.tensor([[1, 5] + [IMAGE] * 8 + [6]])
    pixels = torch.randn(1, 3, 32, 32)
    assert torch.equal(logits(loaded, ids, pixels), logits(model, ids, pixels))
    # The base class refuses a projector type it does not know, naming it.
    with pytest.raises(ValueError, match="cannot build projector_type 'gated_pool'"):
        VlzooLlavaForConditionalGeneration.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match="only projector_type 'mlp2x_gelu' has a stock LLaVA layout"):
        save_stock_llava(model, tmp_path / "stock")


def test_projector_only_checkpoint_round_trip(tiny_llava, tmp_path):
    trained = tiny_llava(seed=1)
    fresh = tiny_llava(seed=2)
    path = save_projector(trained, tmp_path / "projector.safetensors")
    with safe_open(str(path), "pt") as f:
        assert sorted(f.keys()) == ["linear_1.bias", "linear_1.weight", "linear_2.bias", "linear_2.weight"]
        assert f.metadata()["projector_type"] == "mlp2x_gelu"
    assert not torch.equal(fresh.projector.linear_1.weight, trained.projector.linear_1.weight)
    lm_before = fresh.lm_head.weight.clone()
    load_projector(fresh, path)
    for key, value in trained.projector.state_dict().items():
        assert torch.equal(fresh.projector.state_dict()[key], value)
    assert torch.equal(fresh.lm_head.weight, lm_before)  # nothing but the projector changed


def test_projector_checkpoint_errors(tiny_llava, tiny_configs, tmp_path):
    model = tiny_llava()
    with pytest.raises(MissingLocalFile, match="projector checkpoint not found"):
        load_projector(model, tmp_path / "missing.safetensors")
    wider = tiny_llava(vision_feature_layer=[1, 2])  # linear_1 takes 2·64 inputs
    path = save_projector(wider, tmp_path / "wide.safetensors")
    with pytest.raises(ValueError, match=r"wide.safetensors: does not match.*linear_1.weight: file \(64, 128\)"):
        load_projector(model, path)
    pool = build_llava(tiny_configs.llama(64), tiny_configs.vision(), image_token_id=IMAGE,
                       model_class=PoolForConditionalGeneration, projector_type="gated_pool",
                       projector_kwargs={"in_dim": 64, "out_dim": 64, "pool": 2})
    pool_path = save_projector(pool, tmp_path / "pool.safetensors")
    with pytest.raises(ValueError, match="saved from projector_type 'gated_pool'"):
        load_projector(model, pool_path)
