"""tokenpacker-train end to end on tiny models: both stages with HF Trainer, checkpoints that reload."""

import json
from pathlib import Path

import pytest
import torch
import yaml
from safetensors import safe_open

from tokenpacker import train
from tokenpacker.config import TokenPackerConfig
from tokenpacker.engine import build_model, load_tokenizer, load_trained
from tokenpacker.modeling import TokenPackerLlavaForConditionalGeneration
from vlzoo.config import load_config
from vlzoo.mllm import load_projector

# The whole tiny set in one batch, constant lr: both steps see the same samples, so the loss must drop.
SAME_BATCH = [
    "stage1.max_steps=2", "stage1.per_device_batch_size=8", "stage1.max_samples=8", "stage1.warmup_ratio=0",
    "stage1.lr_scheduler=constant", "stage1.learning_rate=5e-3",
    "stage2.max_steps=2", "stage2.per_device_batch_size=8", "stage2.max_samples=8", "stage2.warmup_ratio=0",
    "stage2.lr_scheduler=constant", "stage2.learning_rate=5e-3",
]


def test_two_step_toy_training_lowers_the_loss_and_saves_loadable_checkpoints(tiny_overrides, tmp_path):
    assert train.main([*tiny_overrides, *SAME_BATCH]) == 0
    run = tmp_path / "run"
    summary = json.loads((run / "summary.json").read_text())
    for stage in ("stage1", "stage2"):
        losses = summary[stage]["losses"]
        assert summary[stage]["steps"] == 2 and len(losses) == 2
        assert losses[1] < losses[0], (stage, losses)
    # the resolved config is saved into the run folder and loads back to the same config
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["stage2"]["max_steps"] == 2 and saved["projector"]["name"] == "tokenpacker"
    # stage 1: a projector-only checkpoint
    with safe_open(str(run / "stage1" / "projector.safetensors"), "pt") as handle:
        keys = set(handle.keys())
    assert keys and all(k.startswith("projector.") for k in keys)
    # stage 2: a full model folder that from_pretrained reloads, with the <image> token in its tokenizer
    model, tokenizer = load_trained(run / "stage2")
    assert isinstance(model, TokenPackerLlavaForConditionalGeneration)
    assert model.config.projector_type == "tokenpacker" and model.num_image_tokens() == 4
    assert tokenizer.convert_tokens_to_ids("<image>") == model.config.image_token_id


def test_stage2_only_run_starts_from_the_stage1_projector(tiny_overrides, tmp_path):
    """The official two-call flow: stage 1 writes projector.safetensors, a later stage-2 call loads it."""
    assert train.main([*tiny_overrides, *SAME_BATCH, "stages=[1]"]) == 0
    checkpoint = tmp_path / "run" / "stage1" / "projector.safetensors"
    cfg = load_config(TokenPackerConfig, None, [*tiny_overrides, "stages=[2]"])
    tokenizer = load_tokenizer(cfg.model.language_model)
    fresh = build_model(cfg, tokenizer, cfg.model.language_model, cfg.model.vision_tower)
    before = {k: v.clone() for k, v in fresh.projector.state_dict().items()}
    load_projector(fresh, checkpoint)
    changed = [k for k, v in fresh.projector.state_dict().items() if not torch.equal(v, before[k])]
    assert changed, "stage-1 training must have changed the projector"


def test_stage1_trains_only_the_projector(tiny_overrides):
    from tokenpacker.engine import train_stage

    cfg = load_config(TokenPackerConfig, None, [*tiny_overrides, *SAME_BATCH, "stage1.max_steps=1"])
    tokenizer = load_tokenizer(cfg.model.language_model)
    model = build_model(cfg, tokenizer, cfg.model.language_model, cfg.model.vision_tower)
    frozen = {k: v.clone() for k, v in model.state_dict().items() if "multi_modal_projector" not in k}
    train_stage(cfg, 1, model, tokenizer, Path(cfg.output_dir) / "stage1")
    assert all(p.requires_grad == ("multi_modal_projector" in n) for n, p in model.named_parameters())
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in frozen.items())


def test_config_errors_are_clear():
    with pytest.raises(ValueError, match="stages"):
        TokenPackerConfig(stages=(3,))
    with pytest.raises(Exception, match="unknown key"):
        load_config(TokenPackerConfig, None, ["stage1.learning_rat=1"])


def test_the_stack_learns_an_image_dependent_answer():
    """Guard against a silently ignored image: a tiny TokenPacker-LLaVA learns to name the colour of the image."""
    from transformers import CLIPVisionConfig, LlamaConfig

    from vlzoo.mllm import MultimodalCollator, build_llava, expand_image_tokens, set_trainable

    torch.manual_seed(0)
    image = 15
    model = build_llava(
        LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4,
                    num_key_value_heads=4, vocab_size=16),
        CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=4, num_attention_heads=4,
                         image_size=32, patch_size=8),
        image_token_id=image, model_class=TokenPackerLlavaForConditionalGeneration, projector_type="tokenpacker",
        projector_kwargs={"num_heads": 4}, vision_feature_layer=[1, 2, 3],
    )
    set_trainable(model, projector=True, language_model=True)
    model.train()
    colours = torch.tensor([[1.5, -1.0, -1.0], [-1.0, -1.0, 1.5], [-1.0, 1.5, -1.0]])  # normalised red/blue/green
    generator = torch.Generator().manual_seed(0)

    def batch(n):
        which = torch.randint(0, 3, (n,), generator=generator)
        pixels = colours[which][:, :, None, None] + 0.3 * torch.randn(n, 3, 32, 32, generator=generator)
        samples = []
        for b in range(n):  # "<s> <image> what colour ? -> <colour word> </s>", only the answer supervised
            ids = torch.tensor([1, image, 5, 6, 7 + int(which[b]), 2])
            ids, labels = expand_image_tokens(ids, torch.tensor([-100, -100, -100, -100, 7 + int(which[b]), 2]),
                                              image, 4)
            samples.append({"input_ids": ids, "labels": labels, "pixel_values": pixels[b]})
        return MultimodalCollator(pad_token_id=0)(samples), which

    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], 3e-3)
    for _ in range(50):
        loss = model(**batch(16)[0]).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    test, which = batch(48)
    with torch.no_grad():
        logits = model(**{k: v for k, v in test.items() if k != "labels"}).logits
    answer = (test["labels"] >= 7) & (test["labels"] <= 9)
    predicted = logits[:, :-1][answer[:, 1:]].argmax(-1) - 7
    assert (predicted == which).float().mean() > 0.9


def test_hd_training_runs_through_the_trainer(tiny_overrides, tmp_path):
    """TokenPacker-HD ('slice'): the per-sample grid goes through the Trainer's batches into the model."""
    assert train.main([*tiny_overrides, *SAME_BATCH, "stage1.max_steps=1", "stage2.max_steps=1",
                       "model.image_aspect_ratio=slice", "model.hd_newline=byte"]) == 0
    model, tokenizer = load_trained(tmp_path / "run" / "stage2")
    assert model.config.image_aspect_ratio == "slice"
    assert model.config.hd_separator_ids == [tokenizer.convert_tokens_to_ids(","), tokenizer.convert_tokens_to_ids("<0x0A>")]


def test_lora_stage2_saves_a_merged_plain_model(tiny_overrides, tmp_path):
    assert train.main([*tiny_overrides, *SAME_BATCH, "stage1.max_steps=1", "stage2.lora=true",
                       "stage2.lora_r=4", "stage2.lora_alpha=8"]) == 0
    folder = tmp_path / "run" / "stage2"
    with safe_open(str(folder / "model.safetensors"), "pt") as handle:
        keys = list(handle.keys())
    assert not any("lora" in k for k in keys) and any(k.startswith("model.multi_modal_projector.") for k in keys)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["stage2"]["losses"][1] < summary["stage2"]["losses"][0]
    model, _ = load_trained(folder)
    assert type(model).__name__ == "TokenPackerLlavaForConditionalGeneration"


def test_toy_vision_tower_switch(tmp_path, monkeypatch):
    """model.toy_vision_tower: "pretrained" asks vlzoo.toyworld.pretrain (imported on use), "random" builds a
    seeded random tiny ViT; a missing pretrained module is a clear error naming the switch."""
    import sys
    import types

    from tokenpacker.engine import toy_vision_tower

    fake = types.ModuleType("vlzoo.toyworld.pretrain")
    fake.toy_hf_clip_path = lambda: tmp_path / "toy-clip"
    monkeypatch.setitem(sys.modules, "vlzoo.toyworld.pretrain", fake)
    assert toy_vision_tower("pretrained") == tmp_path / "toy-clip"
    monkeypatch.setitem(sys.modules, "vlzoo.toyworld.pretrain", None)  # import fails
    with pytest.raises(ImportError, match="toy_vision_tower=random"):
        toy_vision_tower("pretrained")
    with pytest.raises(ValueError, match="pretrained' or 'random"):
        toy_vision_tower("imagenet")
    monkeypatch.setenv("VLZOO_CACHE", str(tmp_path / "cache"))
    folder = toy_vision_tower("random", seed=3)
    vision = json.loads((folder / "config.json").read_text())["vision_config"]
    assert (vision["image_size"], vision["patch_size"]) == (96, 8)  # the toy 12x12 grid
    assert toy_vision_tower("random", seed=3) == folder
