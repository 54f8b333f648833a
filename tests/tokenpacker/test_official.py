"""tokenpacker-convert: whole checkpoints to the official TokenPacker/LLaVA key layout and back, identical logits."""

import json

import pytest
import torch

from tokenpacker import convert
from tokenpacker.config import TokenPackerConfig
from tokenpacker.engine import build_model, load_tokenizer
from tokenpacker.modeling import TokenPackerLlavaForConditionalGeneration
from tokenpacker.official import convert_from_official, convert_to_official, read_state_dict
from vlzoo.config import load_config


def _saved_model(tiny_overrides, folder, *extra):
    cfg = load_config(TokenPackerConfig, None, [*tiny_overrides, *extra])
    tokenizer = load_tokenizer(cfg.model.language_model)
    torch.manual_seed(0)
    model = build_model(cfg, tokenizer, cfg.model.language_model, cfg.model.vision_tower).eval()
    with torch.no_grad():  # a trained-looking projector, not the zero-bias init
        for p in model.projector.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return model, tokenizer


def _logits(model, tokens):
    image = model.config.image_token_id
    ids = torch.tensor([[1, 5, 6] + [image] * tokens + [7, 8, 9]])
    pixels = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        return model(input_ids=ids, pixel_values=pixels).logits


@pytest.mark.parametrize(("name", "layers"), [("tokenpacker", "[1,2,3]"), ("mlp2x_gelu", "[-2]")])
def test_round_trip_through_the_official_layout_gives_identical_logits(name, layers, tiny_overrides, tmp_path):
    model, tokenizer = _saved_model(tiny_overrides, tmp_path / "ours", f"projector.name={name}",
                                    f"projector.feature_layers={layers}")
    convert.main(["to-official", str(tmp_path / "ours"), str(tmp_path / "official")])
    official = read_state_dict(tmp_path / "official")
    config = json.loads((tmp_path / "official" / "config.json").read_text())
    vocab = len(tokenizer) - 1  # the official vocabulary has no <image>
    # the official key layout (LlavaLlamaForCausalLM of LLaVA 1.1.3 / TokenPacker)
    assert official["model.embed_tokens.weight"].shape[0] == vocab == official["lm_head.weight"].shape[0]
    assert "model.layers.0.self_attn.q_proj.weight" in official and "model.norm.weight" in official
    assert "model.vision_tower.vision_tower.vision_model.embeddings.patch_embedding.weight" in official
    projector_keys = {k for k in official if k.startswith("model.mm_projector.")}
    if name == "tokenpacker":
        assert {"model.mm_projector.q_proj_1.weight", "model.mm_projector.clip_attn.in_proj_weight",
                "model.mm_projector.mlp.2.weight"} <= projector_keys
        assert config["scale_factor"] == 2 and config["mm_vision_multi_layers"] == [1, 2, 3]
    else:
        assert projector_keys == {f"model.mm_projector.{i}.{p}" for i in (0, 2) for p in ("weight", "bias")}
    assert config["model_type"] == "llava" and config["mm_vision_select_layer"] == -2 and config["vocab_size"] == vocab
    assert config["mm_vision_select_feature"] == "patch" and config["mm_hidden_size"] == 32
    assert not (set(official) - {k for k in official if k.startswith(("model.", "lm_head."))})

    convert.main(["from-official", str(tmp_path / "official"), str(tmp_path / "back")])
    back = TokenPackerLlavaForConditionalGeneration.from_pretrained(tmp_path / "back", attn_implementation="eager")
    before, after = model.state_dict(), back.state_dict()
    assert before.keys() == after.keys()
    for key in before:
        if key.endswith("embed_tokens.weight") or key == "lm_head.weight":
            assert torch.equal(before[key][:vocab], after[key][:vocab])  # only the <image> row is new (the mean)
            torch.testing.assert_close(after[key][vocab], before[key][:vocab].mean(0))
        else:
            assert torch.equal(before[key], after[key]), key
    tokens = model.num_image_tokens()
    assert torch.equal(_logits(model, tokens)[..., :vocab], _logits(back.eval(), tokens)[..., :vocab])
    assert back.config.image_token_id == model.config.image_token_id == vocab


def test_official_checkpoint_without_vision_weights_reads_the_clip_folder(tiny_overrides, tiny_clip_dir, tmp_path):
    model, _ = _saved_model(tiny_overrides, tmp_path / "ours")
    convert_to_official(tmp_path / "ours", tmp_path / "official", vision_tower_path=str(tiny_clip_dir))
    state = read_state_dict(tmp_path / "official")
    from safetensors.torch import save_file

    save_file({k: v for k, v in state.items() if not k.startswith("model.vision_tower.")},
              str(tmp_path / "official" / "model.safetensors"))
    convert_from_official(tmp_path / "official", tmp_path / "back")
    back = TokenPackerLlavaForConditionalGeneration.from_pretrained(tmp_path / "back", attn_implementation="eager")
    vocab = back.config.image_token_id
    assert torch.equal(_logits(model, 4)[..., :vocab], _logits(back.eval(), 4)[..., :vocab])


def test_bad_official_folders_are_clear_errors(tmp_path):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ValueError, match="not an official LLaVA"):
        convert_from_official(tmp_path / "bad", tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="official checkpoint"):
        convert_from_official(tmp_path / "missing", tmp_path / "out")
