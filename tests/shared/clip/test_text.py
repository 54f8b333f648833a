"""encode_labels: exact reductions, batching, the disk cache (hits, and misses on any change), templates."""

import copy

import open_clip
import pytest
import torch
import torch.nn.functional as F

import vlzoo.clip as vc
from vlzoo.paths import cache_dir

LABELS = ["cat", "red circle", "traffic light"]
TEMPLATES = ["a photo of a {}.", "there is a {} in the scene.", "itap of the {}."]


def _small_clip() -> vc.ClipModel:
    torch.manual_seed(11)
    return vc.create_clip(
        "vlzoo-tiny-vit", config_overrides={"vision_cfg": {"layers": 1}, "text_cfg": {"layers": 2}}
    )


def _count_encodes(model) -> list[int]:
    """Wrap ``model.encode_text`` so the test can see whether the text tower ran."""
    calls = [0]
    real = model.encode_text

    def counting(*args, **kwargs):
        calls[0] += 1
        return real(*args, **kwargs)

    model.encode_text = counting
    return calls


def test_template_sets():
    sets = vc.TEMPLATE_SETS
    assert len(sets["openai_imagenet"]) == 80 and len(sets["qks85"]) == 85 and len(sets["simple"]) == 7
    assert sets["qks85"][:80] == tuple(open_clip.OPENAI_IMAGENET_TEMPLATES)  # imported, not copied
    assert sets["qks85"][80:] == vc.QKS_SCENE_TEMPLATES
    prompts = vc.render_prompts(["zebra"], "qks85")
    assert len(prompts) == 85 and len(set(prompts)) == 85 and all("zebra" in p for p in prompts)
    assert all("in the scene" in p for p in prompts[80:])


def test_prompts_are_label_major():
    assert vc.render_prompts(["a", "b"], ["x {}", lambda c: f"y {c}"]) == ["x a", "y a", "x b", "y b"]


@pytest.mark.parametrize("reduce", ["mean_raw", "mean_normalized"])
def test_reductions_equal_a_prompt_by_prompt_reference(tiny_vit, reduce):
    got = vc.encode_labels(tiny_vit, LABELS, TEMPLATES, reduce=reduce, cache=False)
    with torch.no_grad():
        rows = []
        for label in LABELS:
            emb = torch.cat([tiny_vit.encode_text([t.format(label)]) for t in TEMPLATES])
            rows.append((F.normalize(emb, dim=-1) if reduce == "mean_normalized" else emb).mean(0))
    expected = torch.stack(rows)
    assert got.shape == (3, 128) and got.dtype == torch.float32
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    unit = vc.encode_labels(tiny_vit, LABELS, TEMPLATES, reduce=reduce, normalize_output=True, cache=False)
    torch.testing.assert_close(unit, F.normalize(expected, dim=-1), rtol=0, atol=1e-5)


def test_mean_raw_keeps_magnitudes(tiny_vit):
    raw = vc.encode_labels(tiny_vit, LABELS, TEMPLATES, cache=False)
    assert not torch.allclose(raw.norm(dim=-1), torch.ones(3), atol=1e-3)


def test_batch_size_does_not_change_the_result(tiny_vit):
    a = vc.encode_labels(tiny_vit, LABELS, TEMPLATES, batch_size=2, cache=False)
    b = vc.encode_labels(tiny_vit, LABELS, TEMPLATES, batch_size=256, cache=False)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-5)


def test_cache_hits_on_a_second_call():
    model = _small_clip()
    twin = copy.deepcopy(model)  # equal weights, another object: same key
    calls = _count_encodes(model)
    first = vc.encode_labels(model, LABELS, TEMPLATES, batch_size=4)
    assert calls[0] == 3  # 9 prompts in batches of 4
    assert len(list(cache_dir("label_embeddings").glob("*.safetensors"))) == 1
    second = vc.encode_labels(model, LABELS, TEMPLATES, batch_size=4)
    assert calls[0] == 3 and torch.equal(first, second)
    twin_calls = _count_encodes(twin)
    assert torch.equal(vc.encode_labels(twin, LABELS, TEMPLATES), first) and twin_calls[0] == 0


def test_cache_misses_after_a_template_change():
    model = _small_clip()
    calls = _count_encodes(model)
    before = vc.encode_labels(model, LABELS, TEMPLATES)
    changed = vc.encode_labels(model, LABELS, TEMPLATES[:2] + ["itap of a {}."])
    assert calls[0] == 2 and not torch.allclose(before, changed)
    vc.encode_labels(model, LABELS, TEMPLATES, reduce="mean_normalized")  # the reduction is part of the key
    vc.encode_labels(model, LABELS[::-1], TEMPLATES)  # so are the labels and their order
    assert calls[0] == 4


def test_cache_misses_after_a_text_weight_change_but_not_a_vision_one():
    model = _small_clip()
    calls = _count_encodes(model)
    before = vc.encode_labels(model, LABELS, TEMPLATES)
    with torch.no_grad():
        model.visual.proj.mul_(2.0)  # vision-only change: text embeddings cannot change
    assert torch.equal(vc.encode_labels(model, LABELS, TEMPLATES), before) and calls[0] == 1
    with torch.no_grad():
        model.model.text_projection.mul_(2.0)
    after = vc.encode_labels(model, LABELS, TEMPLATES)
    assert calls[0] == 2
    torch.testing.assert_close(after, 2.0 * before, rtol=1e-5, atol=1e-5)


def test_cache_off_writes_nothing_and_a_damaged_file_is_recomputed():
    model = _small_clip()
    vc.encode_labels(model, LABELS, TEMPLATES, cache=False)
    assert not list(cache_dir("label_embeddings").glob("*"))
    good = vc.encode_labels(model, LABELS, TEMPLATES)
    (path,) = cache_dir("label_embeddings").glob("*.safetensors")
    path.write_bytes(b"damaged")
    torch.testing.assert_close(vc.encode_labels(model, LABELS, TEMPLATES), good, rtol=0, atol=0)
    assert path.stat().st_size > 100


def test_weights_hash_tracks_changes_and_is_cached():
    model = _small_clip()
    h1 = vc.weights_hash(model.model)
    assert h1 == vc.weights_hash(copy.deepcopy(model).model)
    assert vc.weights_hash(model.model, ("visual.",)) != h1
    with torch.no_grad():
        model.model.ln_final.bias.add_(1.0)
    h2 = vc.weights_hash(model.model)
    assert h2 != h1
    model.model.ln_final.bias.data.sub_(1.0)  # .data edits bypass the version counter: documented blind spot
    assert vc.weights_hash(model.model) == h2
    assert vc.weights_hash(model.model, refresh=True) == h1
    with pytest.raises(ValueError, match="meta device"):
        vc.weights_hash(vc.create_clip("vlzoo-tiny-vit", device="meta").model)


def test_same_label_embeddings_through_the_hf_backend(tiny_vit, hf_clip):
    ours = vc.encode_labels(tiny_vit, LABELS, "qks85", cache=False)
    theirs = vc.encode_labels(hf_clip, LABELS, "qks85", cache=False)
    torch.testing.assert_close(theirs, ours, rtol=0, atol=1e-5)


def test_clear_errors(tiny_vit):
    with pytest.raises(ValueError, match="unknown template set 'imagenet'"):
        vc.encode_labels(tiny_vit, LABELS, "imagenet")
    with pytest.raises(ValueError, match="exactly one"):
        vc.encode_labels(tiny_vit, LABELS, ["a photo of a cat"])
    with pytest.raises(ValueError, match="labels is empty"):
        vc.encode_labels(tiny_vit, [], TEMPLATES)
    with pytest.raises(TypeError, match="not one string"):
        vc.encode_labels(tiny_vit, "cat", TEMPLATES)
    with pytest.raises(ValueError, match=r"bad entries.*\(1, ''\)"):
        vc.encode_labels(tiny_vit, ["cat", ""], TEMPLATES)
    with pytest.raises(ValueError, match="reduce must be one of"):
        vc.encode_labels(tiny_vit, LABELS, TEMPLATES, reduce="max")
