"""Builders: LLaMA and Qwen2 LMs and an HF CLIP tower, from local folders or configs."""

import pytest
import torch
from transformers import CLIPConfig, CLIPModel, CLIPTextConfig, LlamaForCausalLM, Qwen2ForCausalLM

from vlzoo.mllm import build_llava, describe_parts
from vlzoo.paths import MissingLocalFile

IMAGE = 64  # one past the saved LMs' 64-row vocabulary: the builder resizes to 65


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory, tiny_configs):
    """A tiny full CLIPModel (text + vision) saved like a hub CLIP checkpoint."""
    torch.manual_seed(0)
    text = CLIPTextConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                          vocab_size=64, bos_token_id=0, eos_token_id=1, pad_token_id=1)
    vision = tiny_configs.vision()
    clip = CLIPModel(CLIPConfig(text_config=text.to_dict(), vision_config=vision.to_dict(), projection_dim=16))
    folder = tmp_path_factory.mktemp("clip")
    clip.save_pretrained(folder)
    return folder, {k: v.clone() for k, v in clip.vision_model.state_dict().items()}


def save_lm(kind, tiny_configs, folder):
    torch.manual_seed(1)
    lm = LlamaForCausalLM(tiny_configs.llama(64)) if kind == "llama" else Qwen2ForCausalLM(tiny_configs.qwen2(64))
    lm.save_pretrained(folder)
    return lm.eval()


@pytest.mark.parametrize("kind", ["llama", "qwen2"])
def test_lm_from_folder_and_clip_folder(kind, tiny_configs, clip_folder, tmp_path):
    lm = save_lm(kind, tiny_configs, tmp_path / kind)
    folder, clip_vision_state = clip_folder
    model = build_llava(tmp_path / kind, folder, image_token_id=IMAGE, vocab_size=65, attn_implementation="eager")
    assert type(model.model.language_model).__name__ == ("LlamaModel" if kind == "llama" else "Qwen2Model")
    assert model.get_input_embeddings().num_embeddings == 65 and model.config.text_config.vocab_size == 65
    # the CLIP tower carries the folder's vision weights, and is frozen
    for key, value in clip_vision_state.items():
        assert torch.equal(model.model.vision_tower.state_dict()[key], value), key
    assert not any(p.requires_grad for p in model.model.vision_tower.parameters())
    assert model.model.vision_tower.config._attn_implementation == "eager"
    assert model.model.language_model.config._attn_implementation == "eager"
    # Qwen2 here ties lm_head to the embeddings; LLaMA does not
    assert (model.lm_head.weight is model.get_input_embeddings().weight) == (kind == "qwen2")
    # text-only logits equal the stand-alone LM's on the original vocabulary rows
    ids = torch.tensor([[1, 5, 6, 7, 8]])
    with torch.no_grad():
        ours = model(input_ids=ids).logits[..., :64]
        ref = lm(input_ids=ids).logits
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-4)
    # and an image sample runs end to end with a loss
    ids = torch.tensor([[1, 5] + [IMAGE] * 16 + [6, 7]])
    out = model(input_ids=ids, pixel_values=torch.randn(1, 3, 32, 32), labels=ids.masked_fill(ids == IMAGE, -100))
    assert torch.isfinite(out.loss)


@pytest.mark.parametrize("kind", ["llama", "qwen2"])
def test_lm_from_config(kind, tiny_configs):
    text = tiny_configs.llama(80) if kind == "llama" else tiny_configs.qwen2(80)
    model = build_llava(text, tiny_configs.vision(image_size=48, patch_size=16), image_token_id=79)
    parts = describe_parts(model)
    assert parts["projector"] == (64 * 64 + 64) * 2  # Linear(64→64), GELU, Linear(64→64)
    assert model.num_image_tokens() == 9  # 48/16 = 3 → 3×3 patches
    assert model.config.model_type == "vlzoo_llava" and model.config.text_config.model_type == kind


def test_builder_errors(tiny_configs, tmp_path):
    with pytest.raises(MissingLocalFile, match="language model folder not found"):
        build_llava(tmp_path / "nope", tiny_configs.vision(), image_token_id=1)
    with pytest.raises(ValueError, match="image_token_id 64 is outside the LM vocabulary of 64 rows"):
        build_llava(tiny_configs.llama(64), tiny_configs.vision(), image_token_id=64)
    with pytest.raises(ValueError, match="needs a 'model_type' key"):
        build_llava({"hidden_size": 8}, tiny_configs.vision(), image_token_id=1)
