"""Feature taps: HF indexing convention, CLS on/off, early exit, both backends, ConvNeXt stages, freezing."""

import pytest
import torch

import vlzoo.clip as vc


def _count_calls(modules) -> list[int]:
    counts = [0] * len(modules)
    for i, module in enumerate(modules):
        module.register_forward_hook(lambda *_, i=i: counts.__setitem__(i, counts[i] + 1))
    return counts


# --- ViT, open_clip backend ----------------------------------------------------------------------------


def test_vit_tap_shapes_with_and_without_cls(tiny_vit, vit_images):
    with_cls = tiny_vit.vision_hidden_states(vit_images, [0, 3, -1], include_cls=True)
    without = tiny_vit.vision_hidden_states(vit_images, [0, 3, -1], include_cls=False)
    assert [t.shape for t in with_cls] == [(2, 145, 128)] * 3
    assert [t.shape for t in without] == [(2, 144, 128)] * 3
    for a, b in zip(with_cls, without):
        assert torch.equal(a[:, 1:], b)
    single = tiny_vit.vision_hidden_states(vit_images, -2)
    assert isinstance(single, torch.Tensor) and single.shape == (2, 144, 128)


def test_index_0_is_ln_pre_of_the_embeddings(tiny_vit, vit_images):
    visual = tiny_vit.visual
    with torch.no_grad():
        reference = visual._embeds(vit_images)  # open_clip's own: conv1, CLS, pos-embed, ln_pre
        manual = torch.cat(
            [visual.class_embedding.expand(2, 1, -1), visual.conv1(vit_images).flatten(2).transpose(1, 2)],
            dim=1,
        )
        manual = visual.ln_pre(manual + visual.positional_embedding)
    tap = tiny_vit.vision_hidden_states(vit_images, 0, include_cls=True)
    torch.testing.assert_close(tap, reference, rtol=0, atol=1e-6)
    torch.testing.assert_close(tap, manual, rtol=0, atol=1e-6)


@pytest.mark.parametrize("k", [1, 2, 5, 6])
def test_index_k_is_a_manual_run_of_k_blocks(tiny_vit, vit_images, k):
    visual = tiny_vit.visual
    with torch.no_grad():
        x = visual._embeds(vit_images)
        for block in visual.transformer.resblocks[:k]:
            x = block(x)
    torch.testing.assert_close(
        tiny_vit.vision_hidden_states(vit_images, k, include_cls=True), x, rtol=0, atol=1e-6
    )


def test_taps_agree_with_open_clip_forward_intermediates(tiny_vit, vit_images):
    with torch.no_grad():
        out = tiny_vit.visual.forward_intermediates(
            vit_images, indices=[0, 2, 5], output_fmt="NLC", intermediates_only=True
        )
    # open_clip counts blocks from 0 (resblock i), the HF convention from 1 (output of block i+1)
    for mine, theirs in zip(tiny_vit.vision_hidden_states(vit_images, [1, 3, 6]), out["image_intermediates"]):
        torch.testing.assert_close(mine, theirs, rtol=0, atol=1e-6)


def test_negative_indices_and_range_errors(tiny_vit, vit_images):
    a = tiny_vit.vision_hidden_states(vit_images, [-1, -2, -7])
    b = tiny_vit.vision_hidden_states(vit_images, [6, 5, 0])
    for x, y in zip(a, b):
        assert torch.equal(x, y)
    for bad in (7, -8):
        with pytest.raises(IndexError, match="out of range for a tower with 6 blocks"):
            tiny_vit.vision_hidden_states(vit_images, bad)
    with pytest.raises(ValueError, match="empty"):
        tiny_vit.vision_hidden_states(vit_images, [])
    with pytest.raises(TypeError, match="must be integers"):
        tiny_vit.vision_hidden_states(vit_images, [1.0])


def test_only_the_blocks_up_to_the_deepest_tap_run(vit_images):
    model = vc.create_clip("vlzoo-tiny-vit")
    counts = _count_calls(list(model.visual.transformer.resblocks))
    model.vision_hidden_states(vit_images, [1, 2])
    assert counts == [1, 1, 0, 0, 0, 0]
    model.vision_hidden_states(vit_images, 0)
    assert counts == [1, 1, 0, 0, 0, 0]
    model.vision_hidden_states(vit_images, -2)
    assert counts == [2, 2, 1, 1, 1, 0]


def test_wrong_image_size_is_a_clear_error(tiny_vit):
    with pytest.raises(ValueError, match="images are 64x64 but .* 96x96"):
        tiny_vit.vision_hidden_states(torch.zeros(1, 3, 64, 64), -1)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        tiny_vit.vision_hidden_states(torch.zeros(3, 96, 96), -1)


# --- ViT, HF backend -----------------------------------------------------------------------------------


def test_hf_backend_same_interface_and_same_values(tiny_vit, hf_clip, vit_images):
    layers = list(range(7))
    ours_hf = hf_clip.vision_hidden_states(vit_images, layers, include_cls=True)
    ours_oc = tiny_vit.vision_hidden_states(vit_images, layers, include_cls=True)
    with torch.no_grad():
        theirs = hf_clip.vision_model(pixel_values=vit_images, output_hidden_states=True).hidden_states
    assert len(theirs) == 7
    for k in layers:
        assert ours_hf[k].shape == (2, 145, 128)
        torch.testing.assert_close(ours_hf[k], theirs[k], rtol=0, atol=1e-6)  # HF indexing, HF backend
        torch.testing.assert_close(ours_oc[k], theirs[k], rtol=0, atol=1e-5)  # same indexing across backends
    patch_only = hf_clip.vision_hidden_states(vit_images, -2)
    assert torch.equal(patch_only, ours_hf[5][:, 1:])


def test_hf_backend_runs_only_the_needed_layers(hf_folder, vit_images):
    model = vc.load_hf_clip(hf_folder, vision_only=True)
    counts = _count_calls(list(model.model.encoder.layers))
    taps = vc.VisionTaps(model)
    taps.hidden_states(vit_images, [0, 2])
    assert counts == [1, 1, 0, 0, 0, 0]
    assert (
        taps.num_layers == 6
        and taps.width == 128
        and taps.grid_size == (12, 12)
        and taps.image_size == (96, 96)
    )


# --- ConvNeXt ------------------------------------------------------------------------------------------


def test_convnext_stage_shapes(tiny_convnext, convnext_images):
    maps = tiny_convnext.convnext_stages(convnext_images)
    assert list(maps) == ["stem", "res2", "res3", "res4", "res5"]
    shapes = {k: tuple(v.shape) for k, v in maps.items()}
    assert shapes == {
        "stem": (2, 32, 32, 32),
        "res2": (2, 32, 32, 32),
        "res3": (2, 64, 16, 16),
        "res4": (2, 96, 8, 8),
        "res5": (2, 128, 4, 4),
    }
    bigger = tiny_convnext.convnext_stages(
        torch.zeros(1, 3, 160, 224), stages=["res4"]
    )  # Osprey runs above train size
    assert tuple(bigger["res4"].shape) == (1, 96, 10, 14)


def test_convnext_stages_match_timm(tiny_convnext, convnext_images):
    trunk = tiny_convnext.visual.trunk
    with torch.no_grad():
        theirs = trunk.forward_intermediates(convnext_images, indices=4, intermediates_only=True)
        stem = trunk.stem(convnext_images)
        dense = trunk.forward_features(convnext_images)
    mine = tiny_convnext.convnext_stages(convnext_images, stages=vc.CONVNEXT_STAGES)
    for name, ref in zip(["res2", "res3", "res4", "res5"], theirs):
        torch.testing.assert_close(mine[name], ref, rtol=0, atol=1e-6)
    torch.testing.assert_close(mine["stem"], stem, rtol=0, atol=1e-6)
    torch.testing.assert_close(mine["clip_vis_dense"], dense, rtol=0, atol=1e-6)


def test_convnext_runs_only_the_needed_stages(convnext_images):
    model = vc.create_clip("vlzoo-tiny-convnext")
    counts = _count_calls(list(model.visual.trunk.stages))
    out = model.convnext_stages(convnext_images, stages=["stem", "res3"])
    assert list(out) == ["stem", "res3"] and counts == [1, 1, 0, 0]
    with pytest.raises(ValueError, match="unknown ConvNeXt stage names"):
        model.convnext_stages(convnext_images, stages=["res6"])


def test_convnext_taps_metadata(tiny_convnext):
    taps = tiny_convnext.vision_taps(trainable=True)  # trainable: leaves the shared fixture unfrozen
    assert taps.kind == "convnext" and taps.image_size == (128, 128)
    assert taps.stage_channels == {
        "stem": 32,
        "res2": 32,
        "res3": 64,
        "res4": 96,
        "res5": 128,
        "clip_vis_dense": 128,
    }
    assert taps.stage_strides["res5"] == 32
    with pytest.raises(TypeError, match="convnext tower; that needs a vit tower"):
        _ = taps.num_layers


def test_vit_methods_refuse_a_convnext_and_vice_versa(tiny_convnext, tiny_vit, vit_images):
    with pytest.raises(TypeError, match="VisionTransformer"):
        tiny_convnext.vision_hidden_states(torch.zeros(1, 3, 128, 128), -1)
    with pytest.raises(TypeError, match="ConvNeXt"):
        tiny_vit.convnext_stages(vit_images)
    with pytest.raises(TypeError, match="no ViT"):
        vc.VisionTaps(torch.nn.Linear(2, 2))


# --- frozen by default ---------------------------------------------------------------------------------


def test_taps_are_frozen_no_grad_and_stay_in_eval(vit_images):
    model = vc.create_clip("vlzoo-tiny-vit")
    parent = torch.nn.ModuleDict({"taps": model.vision_taps(), "head": torch.nn.Linear(128, 2)})
    taps = parent["taps"]
    assert not any(p.requires_grad for p in taps.parameters())
    parent.train()
    assert parent["head"].training and taps.training and not taps.tower.training
    assert not any(m.training for m in taps.tower.modules())
    out = taps(vit_images)  # default: penultimate block, patch tokens
    assert out.shape == (2, 144, 128) and not out.requires_grad


def test_trainable_taps_get_gradients_and_follow_train_mode(convnext_images):
    model = vc.create_clip("vlzoo-tiny-convnext")
    taps = vc.VisionTaps(model, trainable=True)
    taps.train()
    assert taps.tower.training
    maps = taps(convnext_images, ["res5"])
    maps["res5"].sum().backward()
    assert model.visual.trunk.stem[0].weight.grad is not None
    assert model.visual.trunk.stages[3].blocks[0].conv_dw.weight.grad is not None


def test_clip_methods_are_no_grad_without_side_effects(vit_images):
    model = vc.create_clip("vlzoo-tiny-vit")
    model.train()
    out = model.vision_hidden_states(vit_images, -1)
    assert not out.requires_grad
    assert model.visual.training and all(p.requires_grad for p in model.visual.parameters())
    grad_out = model.vision_hidden_states(vit_images, -1, trainable=True)
    assert grad_out.requires_grad


# --- the papers' real towers, on the meta device (shapes only, no memory) --------------------------------


def test_osprey_convnext_large_taps_at_512_match_the_spec_table():
    taps = vc.create_clip("convnext_large_d_320", device="meta").vision_taps()
    maps = taps.stages(torch.empty(1, 3, 512, 512, device="meta"), vc.CONVNEXT_STAGES)
    assert {k: tuple(v.shape[1:]) for k, v in maps.items()} == {  # Osprey spec §2: channels, 512 / stride
        "stem": (192, 128, 128),
        "res2": (192, 128, 128),
        "res3": (384, 64, 64),
        "res4": (768, 32, 32),
        "res5": (1536, 16, 16),
        "clip_vis_dense": (1536, 16, 16),
    }


def test_tokenpacker_vit_l_336_taps_match_the_spec():
    model = vc.create_clip("ViT-L-14-336", device="meta")
    taps = model.vision_taps()
    assert (taps.num_layers, taps.width, taps.grid_size) == (24, 1024, (24, 24))
    states = taps.hidden_states(torch.empty(1, 3, 336, 336, device="meta"), [12, 16, 22, 23])  # §2.1 taps
    assert [tuple(s.shape) for s in states] == [(1, 576, 1024)] * 4
