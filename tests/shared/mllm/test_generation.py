"""generate(): batch > 1 with left padding and the KV cache equals step-by-step greedy decoding without cache."""

import pytest
import torch

from vlzoo.mllm import MultimodalCollator

IMAGE = 63
PAD = 0


def greedy_without_cache(model, ids, pixels, steps):
    """Reference: re-run the full forward on the growing sequence, no cache, no padding, argmax each step."""
    ids = ids.clone()
    for _ in range(steps):
        with torch.no_grad():
            logits = model(input_ids=ids, pixel_values=pixels, use_cache=False).logits[:, -1]
        logits[:, IMAGE] = float("-inf")  # the placeholder is never generated (build_llava's suppress_tokens)
        ids = torch.cat([ids, logits.argmax(-1, keepdim=True)], dim=1)
    return ids


def test_batched_generate_equals_sequential_greedy(tiny_llava):
    model = tiny_llava(seed=3)
    model.generation_config.pad_token_id = PAD
    assert model.generation_config.suppress_tokens == [IMAGE]
    prompts = [
        torch.tensor([1, 5] + [IMAGE] * 16 + [6, 7, 8, 9]),
        torch.tensor([1, 10, 11, 12]),  # text only: images_per_sample must reach the pre-fill image encoding
        torch.tensor([1, 11, 12] + [IMAGE] * 16 + [13, 14]),
    ]
    generator = torch.Generator().manual_seed(0)
    pixels = [torch.randn(1, 3, 32, 32, generator=generator), None, torch.randn(1, 3, 32, 32, generator=generator)]
    batch = MultimodalCollator(pad_token_id=PAD, padding_side="left")(
        [{"input_ids": p, "pixel_values": px} for p, px in zip(prompts, pixels)]
    )
    assert batch["images_per_sample"].tolist() == [1, 0, 1]
    steps = 4
    with torch.no_grad():
        out = model.generate(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
            pixel_values=batch["pixel_values"], images_per_sample=batch["images_per_sample"],
            max_new_tokens=steps, min_new_tokens=steps, do_sample=False, use_cache=True,
        )
    width = batch["input_ids"].shape[1]
    for index, (prompt, image) in enumerate(zip(prompts, pixels)):
        expected = greedy_without_cache(model, prompt[None], image, steps)[0, len(prompt):]
        assert out[index, width:].tolist() == expected.tolist(), f"sample {index}"


def test_generate_is_not_degenerate(tiny_llava):
    """Guard for the test above: different images give different continuations for the same text."""
    model = tiny_llava(seed=3)
    model.generation_config.pad_token_id = PAD
    prompt = torch.tensor([[1, 5] + [IMAGE] * 16 + [6]]).repeat(2, 1)
    pixels = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 3
    with torch.no_grad():
        out = model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), pixel_values=pixels,
                             max_new_tokens=8, min_new_tokens=8, do_sample=False)
    assert out.shape == (2, prompt.shape[1] + 8)
    assert out[0, -8:].tolist() != out[1, -8:].tolist()


def test_attn_implementation_passes_through(tiny_llava):
    eager = tiny_llava(seed=4, attn_implementation="eager")
    sdpa = tiny_llava(seed=4, attn_implementation="sdpa")
    assert eager.model.language_model.config._attn_implementation == "eager"
    assert sdpa.model.language_model.config._attn_implementation == "sdpa"
    assert sdpa.model.vision_tower.config._attn_implementation == "sdpa"
    ids = torch.tensor([[1, 5] + [IMAGE] * 16 + [6, 7]])
    pixels = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        a = eager(input_ids=ids, pixel_values=pixels).logits
        b = sdpa(input_ids=ids, pixel_values=pixels).logits
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_cache_step_matches_full_forward(tiny_llava):
    """One decode step on the KV cache (new name ``cache`` and the deprecated ``past_key_values``)."""
    model = tiny_llava(seed=6)
    ids = torch.tensor([[1, 5] + [IMAGE] * 16 + [6, 7]])
    pixels = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        full = model(input_ids=ids, pixel_values=pixels).logits[:, -1]
        prefill = model(input_ids=ids[:, :-1], pixel_values=pixels, use_cache=True)
        step = model(input_ids=ids[:, -1:], cache=prefill.cache).logits[:, -1]
        prefill = model(input_ids=ids[:, :-1], pixel_values=pixels, use_cache=True)
        with pytest.warns(FutureWarning, match="past_key_values"):
            old_name = model(input_ids=ids[:, -1:], past_key_values=prefill.cache).logits[:, -1]
    torch.testing.assert_close(step, full, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(old_name, full, atol=1e-5, rtol=1e-4)
