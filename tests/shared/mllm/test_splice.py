"""Placeholder splicing: per-sample counts, the clear mismatch error, variable-length per-sample features."""

import pytest
import torch

from vlzoo.mllm import VlzooLlavaModel, splice_at_placeholders

IMAGE = 63
N_TOK = 16  # 32 px / patch 8 → 4×4 patches, 'default' drops CLS


def ids_with_images(n_images, prefix=(1, 5), suffix=(6, 7)):
    return list(prefix) + [IMAGE] * (N_TOK * n_images) + list(suffix)


def test_splice_writes_rows_in_order_per_sample():
    embeds = torch.zeros(2, 5, 3)
    mask = torch.tensor([[0, 1, 1, 0, 0], [1, 0, 0, 0, 1]], dtype=torch.bool)
    feats = [torch.tensor([[1.0, 1, 1], [2, 2, 2]]), torch.tensor([[3.0, 3, 3], [4, 4, 4]])]
    out = splice_at_placeholders(embeds, mask, feats)
    assert out[0, 1, 0] == 1 and out[0, 2, 0] == 2 and out[1, 0, 0] == 3 and out[1, 4, 0] == 4
    assert out[0, 0].abs().sum() == 0 and out[1, 1:4].abs().sum() == 0


def test_splice_error_names_sample_and_counts():
    embeds = torch.zeros(2, 4, 3)
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 0]], dtype=torch.bool)
    feats = [torch.ones(2, 3), torch.ones(2, 3)]
    with pytest.raises(ValueError, match=r"sample 1: 3 <image> placeholder tokens found, 2 features given"):
        splice_at_placeholders(embeds, mask, feats)
    with pytest.raises(ValueError, match="1 <image> feature sequences were given for a batch of 2"):
        splice_at_placeholders(embeds, mask, feats[:1])
    with pytest.raises(ValueError, match=r"must be \(n_b, 3\)"):
        splice_at_placeholders(embeds, mask, [torch.ones(2, 3), torch.ones(3, 4)])


def test_model_rejects_missing_placeholders(tiny_llava):
    model = tiny_llava()
    ids = torch.tensor([ids_with_images(1), ids_with_images(1)])
    ids[1, 3] = 5  # sample 1 loses one placeholder
    with pytest.raises(ValueError, match=f"sample 1: {N_TOK - 1} <image> placeholder tokens found, {N_TOK}"):
        model(input_ids=ids, pixel_values=torch.randn(2, 3, 32, 32))


def test_images_per_sample_zero_one_two(tiny_llava):
    """A batch with 2, 0 and 1 images: each sample gets its own images, and equals running it alone."""
    model = tiny_llava()
    pixels = torch.randn(3, 3, 32, 32)
    rows = [ids_with_images(2), ids_with_images(0) + [8] * (2 * N_TOK), ids_with_images(1) + [9] * N_TOK]
    ids = torch.tensor(rows)
    with torch.no_grad():
        batch = model(input_ids=ids, pixel_values=pixels, images_per_sample=[2, 0, 1]).logits
        alone_0 = model(input_ids=ids[:1], pixel_values=pixels[:2], images_per_sample=[2]).logits
        alone_1 = model(input_ids=ids[1:2]).logits
        alone_2 = model(input_ids=ids[2:], pixel_values=pixels[2:]).logits
    torch.testing.assert_close(batch[0], alone_0[0], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(batch[1], alone_1[0], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(batch[2], alone_2[0], atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="images_per_sample"):
        model(input_ids=ids, pixel_values=pixels, images_per_sample=[2, 1, 1])


def test_keep_alive_dummy_image_reaches_projector(tiny_llava):
    """Text-only batch + one dummy row (counted by no sample): the projector still gets a (zero) gradient."""
    model = tiny_llava()
    ids = torch.tensor([[1, 5, 6, 7]])
    out = model(input_ids=ids, labels=ids, pixel_values=torch.zeros(1, 3, 32, 32), images_per_sample=[0])
    out.loss.backward()
    grads = [p.grad for p in model.projector.parameters()]
    assert all(g is not None for g in grads) and all(g.abs().sum() == 0 for g in grads)


class VariableLengthModel(VlzooLlavaModel):
    """Per-sample variable length (like TokenPacker-HD): keep the first ``image_grids[b]`` tokens of each image
    and append one learned separator row."""

    def __init__(self, config):
        super().__init__(config)
        self.separator = torch.nn.Parameter(torch.randn(config.text_config.hidden_size))

    def assemble_image_features(self, image_features, images_per_sample=None, image_grids=None, region_masks=None):
        return [torch.cat([image_features[b, :keep], self.separator[None]]) for b, keep in enumerate(image_grids)]


def test_subclass_variable_length_sequences(tiny_configs):
    from vlzoo.mllm import VlzooLlavaConfig

    config = VlzooLlavaConfig(text_config=tiny_configs.llama(64), vision_config=tiny_configs.vision(),
                              image_token_id=IMAGE)
    torch.manual_seed(0)
    model = VariableLengthModel(config).eval()
    ids = torch.tensor([[1] + [IMAGE] * 4 + [5, 6, 7, 8], [1] + [IMAGE] * 7 + [6]])  # 3+1 and 6+1 visual tokens
    out = model(input_ids=ids, pixel_values=torch.randn(2, 3, 32, 32), image_grids=[3, 6])
    assert out.last_hidden_state.shape == (2, 9, 64)
    with pytest.raises(ValueError, match="sample 0: 4 <image> placeholder tokens found, 5 features given"):
        model(input_ids=ids, pixel_values=torch.randn(2, 3, 32, 32), image_grids=[4, 6])


def test_default_model_refuses_extras_it_cannot_use(tiny_llava):
    model = tiny_llava()
    ids = torch.tensor([ids_with_images(1)])
    with pytest.raises(ValueError, match="does not use image_grids"):
        model(input_ids=ids, pixel_values=torch.randn(1, 3, 32, 32), image_grids=[(2, 3)])


def test_inputs_embeds_path_matches_ids(tiny_llava):
    model = tiny_llava()
    ids = torch.tensor([ids_with_images(1)])
    pixels = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        from_ids = model(input_ids=ids, pixel_values=pixels).logits
        embeds = model.get_input_embeddings()(ids)
        from_embeds = model(inputs_embeds=embeds, pixel_values=pixels).logits
    torch.testing.assert_close(from_ids, from_embeds)


def test_multi_layer_taps_concatenate(tiny_llava):
    """vision_feature_layer as a list: the projector sees (N, P, L·C) = (N, 16, 3·64)."""
    model = tiny_llava(vision_feature_layer=[1, 2, 4])
    assert model.projector.linear_1.in_features == 3 * 64
    seen = {}
    model.projector.register_forward_hook(lambda m, args, out: seen.update(x=args[0]))
    pixels = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        model(input_ids=torch.tensor([ids_with_images(1)]), pixel_values=pixels)
        hidden = model.model.vision_tower(pixels, output_hidden_states=True).hidden_states
    expected = torch.cat([hidden[i][:, 1:] for i in (1, 2, 4)], dim=-1)  # CLS dropped, list order
    torch.testing.assert_close(seen["x"], expected)
    assert model.num_image_tokens() == N_TOK
