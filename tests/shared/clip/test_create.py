"""create_clip: tiny configs, meta-device counts, local-only weights, checked loading, clear errors."""

import fractions
import json

import open_clip
import pytest
import torch
from safetensors.torch import save_file

import vlzoo.clip as vc
from vlzoo.paths import MissingLocalFile


def _tiny(**overrides) -> vc.ClipModel:
    """A 2-block tiny ViT CLIP (fast to build; each test that mutates weights builds its own)."""
    cfg = {"vision_cfg": {"layers": 2}, "text_cfg": {"layers": 2}}
    for key, value in overrides.items():
        cfg.setdefault(key, {}).update(value)
    return vc.create_clip("vlzoo-tiny-vit", config_overrides=cfg)


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# --- tiny configs --------------------------------------------------------------------------------------


def test_tiny_configs_are_registered_with_open_clip():
    assert set(vc.TINY_CONFIGS) == {"vlzoo-tiny-vit", "vlzoo-tiny-convnext"}
    for name, path in vc.TINY_CONFIGS.items():
        assert path.is_file()
        assert name in open_clip.list_models()
        assert open_clip.get_model_config(name) == json.loads(path.read_text())


def test_tiny_vit_matches_the_brief(tiny_vit):
    visual = tiny_vit.visual
    assert tiny_vit.kind == "vit"
    assert tiny_vit.image_size == (96, 96) and tuple(visual.grid_size) == (12, 12)
    assert visual.conv1.out_channels == 128 and len(visual.transformer.resblocks) == 6
    assert visual.transformer.resblocks[0].attn.num_heads == 4
    assert tiny_vit.embed_dim == 128 and visual.proj.shape == (128, 128)
    act = visual.transformer.resblocks[0].mlp.gelu
    assert type(act) is torch.nn.GELU and act.approximate == "none"  # exact GELU, not QuickGELU
    assert tiny_vit.context_length == 32 and tiny_vit.model.vocab_size == 49408
    assert len(tiny_vit.model.transformer.resblocks) == 4
    assert tiny_vit.model.transformer.resblocks[0].attn.num_heads == 4
    assert tiny_vit.tokenizer.vocab_size == 49408


def test_tiny_convnext_is_a_four_stage_timm_tower(tiny_convnext, convnext_images):
    assert tiny_convnext.kind == "convnext" and tiny_convnext.image_size == (128, 128)
    assert len(tiny_convnext.visual.trunk.stages) == 4
    assert hasattr(tiny_convnext.visual.head, "mlp")  # timm_proj "mlp", as convnext_large_d_320
    with torch.no_grad():
        assert tiny_convnext.encode_image(convnext_images).shape == (2, 128)
        assert tiny_convnext.encode_text(["a red circle"]).shape == (1, 128)


def test_config_overrides_change_the_architecture():
    model = _tiny(vision_cfg={"width": 64, "head_width": 16})
    assert len(model.visual.transformer.resblocks) == 2 and model.visual.conv1.out_channels == 64
    assert model.config["vision_cfg"]["width"] == 64
    assert open_clip.get_model_config("vlzoo-tiny-vit")["vision_cfg"]["width"] == 128  # registry untouched


def test_meta_device_parameter_counts_without_memory():
    vit_l = vc.create_clip("ViT-L-14-336", device="meta")
    assert all(p.is_meta for p in vit_l.parameters())
    assert sum(p.numel() for p in vit_l.visual.parameters()) == 304_293_888
    assert vit_l.visual.grid_size == (24, 24)
    with pytest.raises(ValueError, match="meta"):
        vc.create_clip("vlzoo-tiny-vit", weights="/nonexistent.bin", device="meta")


def test_quick_gelu_switch():
    model = vc.create_clip("vlzoo-tiny-vit", quick_gelu=True, config_overrides={"vision_cfg": {"layers": 1}})
    assert isinstance(model.visual.transformer.resblocks[0].mlp.gelu, open_clip.transformer.QuickGELU)


# --- never a hub download ------------------------------------------------------------------------------


def test_a_pretrained_tag_is_refused_and_names_the_file_to_get():
    with pytest.raises(vc.HubDownloadRefused) as err:
        vc.create_clip("convnext_large_d_320", weights="laion2b_s29b_b131k_ft_soup")
    msg = str(err.value)
    assert "weights=/path/to/open_clip_pytorch_model.bin" in msg
    assert "laion/CLIP-convnext_large_d_320.laion2B-s29B-b131K-ft-soup" in msg
    with pytest.raises(vc.HubDownloadRefused, match="quick_gelu=True"):
        vc.create_clip("ViT-L-14-336", weights="openai")


def test_hub_names_are_refused():
    with pytest.raises(vc.HubDownloadRefused, match="laion/CLIP-ViT-B-16"):
        vc.create_clip("ViT-B-16", weights="hf-hub:laion/CLIP-ViT-B-16-laion2B-s34B-b88K")
    with pytest.raises(vc.HubDownloadRefused, match="registered architecture names"):
        vc.create_clip("hf-hub:laion/CLIP-ViT-B-16-laion2B-s34B-b88K")


def test_open_clip_is_never_given_a_pretrained_tag(monkeypatch, tmp_path):
    calls = []
    real = open_clip.create_model

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    def no_download(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(open_clip, "create_model", spy)
    monkeypatch.setattr(open_clip.factory, "download_pretrained", no_download)
    monkeypatch.setattr(open_clip.factory, "download_pretrained_from_hf", no_download)
    source = _tiny()
    torch.save(source.model.state_dict(), tmp_path / "w.bin")
    vc.create_clip("vlzoo-tiny-vit", weights=tmp_path / "w.bin", config_overrides=source.config)
    assert calls and all(c["pretrained"] is None for c in calls)
    assert all(c["pretrained_image"] is False and c["pretrained_text"] is False for c in calls)


def test_unknown_architecture_suggests_close_names():
    with pytest.raises(ValueError, match="ViT-B-16"):
        vc.create_clip("ViT-B-61")


# --- local files ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "relpath",
    ["w.bin", "w.pt", "w.safetensors", "dir/open_clip_pytorch_model.bin", "dir/open_clip_model.safetensors"],
)
def test_weights_round_trip_through_every_accepted_format(tmp_path, relpath):
    torch.manual_seed(5)
    source = _tiny()
    path = tmp_path / relpath
    path.parent.mkdir(exist_ok=True)
    state = {k: v.contiguous() for k, v in source.model.state_dict().items()}
    if path.suffix == ".safetensors":
        save_file(state, path)
    else:
        torch.save(state, path)
    target = path.parent if relpath.startswith("dir/") else path
    loaded = vc.create_clip("vlzoo-tiny-vit", weights=target, config_overrides=source.config)
    assert _same_weights(loaded.model, source.model)
    assert loaded.load_report.source == path and not loaded.load_report.missing_keys
    assert loaded.load_report.loaded == len(state)


def test_state_dict_wrapper_and_ddp_prefix_are_accepted(tmp_path):
    source = _tiny()
    torch.save(
        {"state_dict": {f"module.{k}": v for k, v in source.model.state_dict().items()}}, tmp_path / "w.pt"
    )
    loaded = vc.create_clip("vlzoo-tiny-vit", weights=tmp_path / "w.pt", config_overrides=source.config)
    assert _same_weights(loaded.model, source.model)


def test_missing_weight_file_names_the_path(tmp_path):
    with pytest.raises(MissingLocalFile, match="nothing_here.bin"):
        vc.create_clip("vlzoo-tiny-vit", weights=tmp_path / "nothing_here.bin")


def test_folder_without_weights_names_the_expected_files(tmp_path):
    with pytest.raises(MissingLocalFile, match="open_clip_model.safetensors nor open_clip_pytorch_model.bin"):
        vc.create_clip("vlzoo-tiny-vit", weights=tmp_path)


def test_unsupported_suffix_and_unreadable_files(tmp_path):
    (tmp_path / "w.ckpt").write_bytes(b"x")
    with pytest.raises(ValueError, match="unsupported weights file type"):
        vc.create_clip("vlzoo-tiny-vit", weights=tmp_path / "w.ckpt")
    (tmp_path / "garbage.bin").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="garbage.bin: cannot read as a state dict"):
        vc.create_clip("vlzoo-tiny-vit", weights=tmp_path / "garbage.bin")
    torch.save({"x": fractions.Fraction(1, 3)}, tmp_path / "pickle.bin")  # refused by weights_only=True
    with pytest.raises(ValueError, match="pickle.bin: cannot read as a state dict"):
        vc.create_clip("vlzoo-tiny-vit", weights=tmp_path / "pickle.bin")


def test_a_checkpoint_missing_vision_keys_is_an_error_even_for_vision_only(tmp_path):
    source = _tiny()
    state = {k: v for k, v in source.model.state_dict().items() if "visual.transformer.resblocks.1." not in k}
    torch.save(state, tmp_path / "w.bin")
    for vision_only in (False, True):
        with pytest.raises(vc.IncompleteCheckpoint, match=r"w.bin.*visual\.transformer\.resblocks\.1\."):
            vc.create_clip(
                "vlzoo-tiny-vit",
                weights=tmp_path / "w.bin",
                vision_only=vision_only,
                config_overrides=source.config,
            )


def test_vision_only_tolerates_missing_text_keys_and_then_refuses_text(tmp_path):
    source = _tiny()
    state = {k: v for k, v in source.model.state_dict().items() if k.startswith("visual.")}
    torch.save(state, tmp_path / "visual_only.bin")
    with pytest.raises(vc.IncompleteCheckpoint, match="token_embedding"):
        vc.create_clip("vlzoo-tiny-vit", weights=tmp_path / "visual_only.bin", config_overrides=source.config)
    model = vc.create_clip(
        "vlzoo-tiny-vit",
        weights=tmp_path / "visual_only.bin",
        vision_only=True,
        config_overrides=source.config,
    )
    assert "token_embedding.weight" in model.load_report.missing_keys
    assert torch.equal(model.visual.proj, source.visual.proj)
    with pytest.raises(RuntimeError, match="vision_only=True"):
        model.encode_text(["a cat"])


def test_shape_mismatch_names_key_and_shapes(tmp_path):
    torch.save(_tiny(vision_cfg={"width": 64, "head_width": 16}).model.state_dict(), tmp_path / "w.bin")
    with pytest.raises(
        ValueError, match=r"visual\.conv1\.weight \(file \(64, 3, 8, 8\), model \(128, 3, 8, 8\)\)"
    ):
        vc.create_clip(
            "vlzoo-tiny-vit",
            weights=tmp_path / "w.bin",
            config_overrides={"vision_cfg": {"layers": 2}, "text_cfg": {"layers": 2}},
        )


def test_unexpected_keys_are_reported(tmp_path):
    source = _tiny()
    state = dict(source.model.state_dict())
    state["extra.head.weight"] = torch.zeros(3)
    torch.save(state, tmp_path / "w.bin")
    model = vc.create_clip("vlzoo-tiny-vit", weights=tmp_path / "w.bin", config_overrides=source.config)
    assert model.load_report.unexpected_keys == ["extra.head.weight"]
    assert "1 unexpected" in str(model.load_report)
