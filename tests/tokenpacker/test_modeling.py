"""TokenPacker-LLaVA modeling: every projector in the real model, and TokenPacker-HD assembly per sample."""

import numpy as np
import pytest
import torch
from huggingface_hub.errors import StrictDataclassClassValidationError
from PIL import Image

from tokenpacker import hd
from tokenpacker.config import TokenPackerConfig
from tokenpacker.data import ImagePipeline, make_collator
from tokenpacker.engine import build_model, load_tokenizer
from tokenpacker.modeling import TokenPackerLlavaForConditionalGeneration
from vlzoo.config import load_config
from vlzoo.mllm import expand_image_tokens

TILE = 32  # the tiny CLIP's input side, also the HD tile side
M = 4  # (32 / 8 / 2)^2 visual tokens per crop with s=2


def _model(tiny_overrides, *extra):
    cfg = load_config(TokenPackerConfig, None, [*tiny_overrides, *extra])
    tokenizer = load_tokenizer(cfg.model.language_model)
    return build_model(cfg, tokenizer, cfg.model.language_model, cfg.model.vision_tower).eval(), tokenizer


def _image(height, width, seed):
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8))


@pytest.mark.parametrize(
    ("name", "layers", "tokens"),
    [("tokenpacker", "[1,2,3]", 4), ("mlp", "[3]", 16), ("avgpool", "[3]", 4), ("resampler", "[3]", 4),
     ("pixel_shuffle", "[3]", 4), ("c_abstractor", "[3]", 4), ("ldp_v2", "[3]", 4), ("mlp2x_gelu", "[3]", 16)],
)
def test_every_projector_runs_in_the_model_and_reloads(name, layers, tokens, tiny_overrides, tmp_path):
    model, tokenizer = _model(tiny_overrides, f"projector.name={name}", f"projector.feature_layers={layers}")
    assert model.num_image_tokens() == tokens
    image = model.config.image_token_id
    ids = torch.tensor([[1, 5] + [image] * tokens + [6, 7]])
    pixels = torch.randn(1, 3, TILE, TILE)
    with torch.no_grad():
        logits = model(input_ids=ids, pixel_values=pixels).logits
    assert logits.shape == (1, ids.shape[1], len(tokenizer))
    model.save_pretrained(tmp_path / name)
    again = TokenPackerLlavaForConditionalGeneration.from_pretrained(tmp_path / name, attn_implementation="eager")
    with torch.no_grad():
        torch.testing.assert_close(again.eval()(input_ids=ids, pixel_values=pixels).logits, logits)


def test_wrong_placeholder_count_is_a_clear_error(tiny_overrides):
    model, _ = _model(tiny_overrides)
    ids = torch.tensor([[1, 5] + [model.config.image_token_id] * (M + 1) + [6]])
    with pytest.raises(ValueError, match="sample 0: 5 <image> placeholder tokens found, 4 features given"):
        model(input_ids=ids, pixel_values=torch.randn(1, 3, TILE, TILE))


def test_hd_mixed_batch_every_tile_lands_in_its_own_sequence(tiny_overrides):
    """A 1x1 sample, a 2x3 sample and a text-only sample in one batch, through the real forward pass."""
    model, tokenizer = _model(tiny_overrides, "model.image_aspect_ratio=slice", "model.hd_newline=byte")
    comma_id, newline_id = model.config.hd_separator_ids
    assert (comma_id, newline_id) == hd.separator_token_ids(tokenizer, "byte")
    pipeline = ImagePipeline(TILE, "slice", patch_num=9)
    small, wide = _image(32, 32, 0), _image(64, 96, 1)
    assert hd.select_grid(32, 32, 9, tile=TILE) == (1, 1) and hd.select_grid(64, 96, 9, tile=TILE) == (2, 3)
    image_token = model.config.image_token_id
    samples, crops = [], []
    for image, text in ((wide, [1, 40, 41]), (None, [1, 42, 43, 44]), (small, [1, 45])):
        ids = torch.tensor(text + ([image_token] if image is not None else []) + [46, 47])
        sample = {}
        if image is not None:
            tiles, grid = pipeline(image)
            count = hd.num_visual_tokens(*grid, M)
            ids, _ = expand_image_tokens(ids, None, image_token, [count])
            sample = {"pixel_values": tiles, "image_grids": grid}
            crops.append((tiles, grid))
        samples.append({"input_ids": ids, **sample})
    batch = make_collator(tokenizer, pipeline)(samples)
    assert batch["images_per_sample"].tolist() == [7, 0, 1]  # 2x3 tiles + thumbnail; none; one tile
    assert batch["image_grids"] == [(2, 3), None, (1, 1)]

    seen = {}
    hook = model.model.language_model.register_forward_pre_hook(
        lambda module, args, kwargs: seen.update(embeds=kwargs["inputs_embeds"].detach().clone()), with_kwargs=True
    )
    with torch.no_grad():
        model(**batch)
        per_crop = [model.model.get_image_features(pixel_values=t[None]).pooler_output[0]
                    for tiles, _ in crops for t in tiles]  # each crop projected on its own: (M, D)
        table = model.get_input_embeddings().weight
    hook.remove()
    comma, newline = table[comma_id], table[newline_id]
    # the expected visual block of each image sample, laid out by hand (spec §3.7)
    wide_tiles, small_tiles = per_crop[:7], per_crop[7:]
    rows = []
    for r in range(2):
        for c in range(3):
            rows += [wide_tiles[3 * r + c], (comma if c < 2 else newline)[None]]
    expected_wide = torch.cat(rows + [wide_tiles[6], newline[None]])
    expected_small = torch.cat([small_tiles[0], newline[None]])
    assert expected_wide.shape[0] == hd.num_visual_tokens(2, 3, M) == 6 * M + 2 * 2 + 2 + M + 1
    embeds = seen["embeds"]
    for b, expected in ((0, expected_wide), (2, expected_small)):
        mask = batch["input_ids"][b] == image_token
        torch.testing.assert_close(embeds[b][mask], expected, atol=1e-5, rtol=1e-5)
        text_ids = batch["input_ids"][b][~mask & batch["attention_mask"][b].bool()]
        torch.testing.assert_close(embeds[b][~mask & batch["attention_mask"][b].bool()], table[text_ids])
    text_only = batch["attention_mask"][1].bool()
    torch.testing.assert_close(embeds[1][text_only], table[batch["input_ids"][1][text_only]])


def test_hd_crop_count_mismatch_names_the_sample(tiny_overrides):
    model, _ = _model(tiny_overrides, "model.image_aspect_ratio=slice")
    features = torch.randn(3, M, model.config.text_config.hidden_size)
    with pytest.raises(ValueError, match="sample 0: a 2x3 HD grid needs 7 crops"):
        model.model.assemble_image_features(features, images_per_sample=[3], image_grids=[(2, 3)])
    with pytest.raises(ValueError, match="needs images_per_sample"):
        model.model.assemble_image_features(features, image_grids=[(1, 1)])


def test_slice_config_needs_separator_ids(tiny_overrides):
    model, _ = _model(tiny_overrides)
    config = model.config.to_dict()
    config.update(image_aspect_ratio="slice", hd_separator_ids=None)
    with pytest.raises(StrictDataclassClassValidationError, match="hd_separator_ids"):
        type(model.config).from_dict(config)


def test_hd_generation_passes_the_grids_to_the_prefill(tiny_overrides):
    """generate() carries image_grids to the pre-fill image encoding; decode steps run on the KV cache."""
    model, tokenizer = _model(tiny_overrides, "model.image_aspect_ratio=slice")
    pipeline = ImagePipeline(TILE, "slice")
    tiles, grid = pipeline(_image(64, 96, 2))
    image_token = model.config.image_token_id
    ids, _ = expand_image_tokens(torch.tensor([1, 40, image_token, 41]), None, image_token,
                                 [hd.num_visual_tokens(*grid, M)])
    batch = make_collator(tokenizer, pipeline, "left")([{"input_ids": ids, "pixel_values": tiles, "image_grids": grid}])
    with torch.no_grad():
        out = model.generate(**batch, max_new_tokens=3, min_new_tokens=3, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id)
        step = ids[None]
        for _ in range(3):  # reference: full forward without cache, argmax each step
            logits = model(input_ids=step, pixel_values=tiles, images_per_sample=[7], image_grids=[grid]).logits[:, -1]
            logits[:, image_token] = float("-inf")
            step = torch.cat([step, logits.argmax(-1, keepdim=True)], dim=1)
    assert out[0, ids.numel():].tolist() == step[0, ids.numel():].tolist()
