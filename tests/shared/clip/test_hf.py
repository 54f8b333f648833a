"""open_clip -> HF conversion (numerical equality), the HF folder, the derived tokenizer, load_hf_clip errors."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

import vlzoo.clip as vc
from vlzoo.paths import MissingLocalFile

SAMPLES = [
    "a photo of a cat.",
    "There is a Traffic-Light in the scene!",
    "itap of a  dog's   toy, 123 times",
    "naïve café in 東京",
    "a red circle left of a blue square",
]


def test_config_of_the_converted_model(tiny_vit):
    config = vc.hf_clip_config(tiny_vit)
    v, t = config.vision_config, config.text_config
    assert v.hidden_act == "gelu" and t.hidden_act == "gelu"
    assert (v.hidden_size, v.intermediate_size, v.num_hidden_layers, v.num_attention_heads) == (
        128,
        512,
        6,
        4,
    )
    assert (v.image_size, v.patch_size, v.layer_norm_eps) == (96, 8, 1e-5)
    assert (t.vocab_size, t.max_position_embeddings, t.num_hidden_layers, t.eos_token_id) == (
        49408,
        32,
        4,
        49407,
    )
    assert config.projection_dim == 128 and v.projection_dim == 128 and t.projection_dim == 128
    assert config.logit_scale_init_value == pytest.approx(tiny_vit.model.logit_scale.item())


def test_hf_model_computes_the_same_function(tiny_vit, vit_images):
    hf = vc.open_clip_to_hf(tiny_vit)
    ids = tiny_vit.tokenize(SAMPLES)
    with torch.no_grad():
        out = hf.vision_model(pixel_values=vit_images, output_hidden_states=True)
        torch.testing.assert_close(
            hf.get_image_features(pixel_values=vit_images).pooler_output,
            tiny_vit.encode_image(vit_images),
            rtol=0,
            atol=1e-5,
        )
        torch.testing.assert_close(
            hf.get_text_features(input_ids=ids).pooler_output, tiny_vit.encode_text(ids), rtol=0, atol=1e-5
        )
        ours = tiny_vit.vision_hidden_states(vit_images, list(range(7)), include_cls=True)
        for k, (mine, theirs) in enumerate(zip(ours, out.hidden_states)):
            torch.testing.assert_close(theirs, mine, rtol=0, atol=1e-5, msg=f"hidden state {k}")
        assert float(hf.logit_scale) == pytest.approx(tiny_vit.model.logit_scale.item())
    assert not hf.training


def test_quick_gelu_models_convert_with_quick_gelu(vit_images):
    model = vc.create_clip("vlzoo-tiny-vit", quick_gelu=True, config_overrides={"vision_cfg": {"layers": 2}})
    hf = vc.open_clip_to_hf(model)
    assert (
        hf.config.vision_config.hidden_act == "quick_gelu"
        and hf.config.text_config.hidden_act == "quick_gelu"
    )
    with torch.no_grad():
        torch.testing.assert_close(
            hf.get_image_features(pixel_values=vit_images).pooler_output,
            model.encode_image(vit_images),
            rtol=0,
            atol=1e-5,
        )


def test_non_vit_towers_are_refused(tiny_convnext):
    with pytest.raises(TypeError, match="needs a ViT vision tower"):
        vc.open_clip_to_hf(tiny_convnext)


def test_saved_folder_is_complete_and_loads_both_ways(tiny_vit, hf_folder, vit_images):
    names = {p.name for p in hf_folder.iterdir()}
    expected = {"config.json", "model.safetensors", "vocab.json", "merges.txt", "tokenizer.json"}
    assert expected | {"tokenizer_config.json", "preprocessor_config.json"} <= names
    full = vc.load_hf_clip(hf_folder)
    assert type(full.model).__name__ == "CLIPModel" and full.tokenizer is not None
    assert not full.load_report.missing_keys and full.load_report.loaded > 0
    vision = vc.load_hf_clip(hf_folder, vision_only=True)  # a CLIPModel folder as a CLIPVisionModel (LLaVA)
    assert type(vision.model).__name__ == "CLIPVisionModel" and not vision.load_report.missing_keys
    with torch.no_grad():
        torch.testing.assert_close(
            vision.vision_hidden_states(vit_images, -2),
            tiny_vit.vision_hidden_states(vit_images, -2),
            rtol=0,
            atol=1e-5,
        )
        torch.testing.assert_close(
            full.encode_text(SAMPLES), tiny_vit.encode_text(SAMPLES), rtol=0, atol=1e-5
        )
        torch.testing.assert_close(
            full.encode_image(vit_images), tiny_vit.encode_image(vit_images), rtol=0, atol=1e-5
        )
        pooled = vision.encode_image(vit_images)  # vision-only: post_layernorm(CLS), no projection
        cls = tiny_vit.vision_hidden_states(vit_images, -1, include_cls=True)[:, 0]
        torch.testing.assert_close(pooled, tiny_vit.visual.ln_post(cls), rtol=0, atol=1e-5)
    with pytest.raises(RuntimeError, match="vision_only=True"):
        vision.encode_text(SAMPLES)
    processor = json.loads((hf_folder / "preprocessor_config.json").read_text())
    assert processor["crop_size"] == {"height": 96, "width": 96} and processor["image_mean"] == list(
        vc.CLIP_MEAN
    )


def test_derived_tokenizer_gives_open_clip_ids(tiny_vit, hf_clip):
    reference = tiny_vit.tokenize(SAMPLES + ["word " * 40])  # the last one is truncated
    ours = hf_clip.tokenize(SAMPLES + ["word " * 40])
    assert ours.shape == reference.shape == (6, 32)
    for row_ref, row_hf in zip(reference, ours):
        n = int((row_ref != 0).sum())
        assert row_hf[:n].tolist() == row_ref[:n].tolist()
        assert row_ref[n - 1] == 49407  # EOT kept last after truncation, in both
        assert (row_hf[n:] == 49407).all()  # HF pads with EOT, open_clip with 0
    tok = vc.hf_tokenizer_from_open_clip()
    assert len(tok) == 49408 and tok.bos_token_id == 49406 and tok.eos_token_id == 49407


def test_load_errors_name_the_missing_file(tmp_path, hf_folder):
    with pytest.raises(MissingLocalFile, match="HF CLIP folder not found"):
        vc.load_hf_clip(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MissingLocalFile, match="has no config.json"):
        vc.load_hf_clip(tmp_path / "empty")
    (tmp_path / "empty" / "config.json").write_text((hf_folder / "config.json").read_text())
    with pytest.raises(MissingLocalFile, match="expected model.safetensors"):
        vc.load_hf_clip(tmp_path / "empty")


def test_a_checkpoint_missing_vision_keys_is_an_error(tmp_path, hf_folder):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text((hf_folder / "config.json").read_text())
    state = load_file(hf_folder / "model.safetensors")
    del state["vision_model.encoder.layers.3.mlp.fc1.weight"]
    save_file(state, broken / "model.safetensors")
    for vision_only in (True, False):
        with pytest.raises(vc.IncompleteCheckpoint, match=r"layers\.3\.mlp\.fc1\.weight"):
            vc.load_hf_clip(broken, vision_only=vision_only)


def test_a_vision_only_folder_needs_vision_only(tmp_path, hf_folder):
    vision = vc.load_hf_clip(hf_folder, vision_only=True)
    vision.model.save_pretrained(tmp_path / "vision")
    with pytest.raises(ValueError, match="pass vision_only=True"):
        vc.load_hf_clip(tmp_path / "vision")
    again = vc.load_hf_clip(tmp_path / "vision", vision_only=True)
    assert not again.load_report.missing_keys
