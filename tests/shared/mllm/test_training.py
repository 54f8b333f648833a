"""Training: stage-1 freezing, LoRA targets and merge, DeepSpeed configs, a short HF Trainer run on CPU."""

import json

import pytest
import torch
from safetensors import safe_open
from transformers import AutoModelForImageTextToText, TrainingArguments

from vlzoo.mllm import (
    DEEPSPEED_CONFIGS,
    PROJECTOR_FILE,
    MultimodalCollator,
    apply_lora,
    build_llava,
    build_trainer,
    deepspeed_config,
    deepspeed_config_path,
    encode_record,
    expand_image_tokens,
    freeze_for_stage1,
    lora_target_modules,
    make_training_args,
    merge_lora,
    set_trainable,
    trainable_parameter_names,
)

IMAGE = 63
# peft 0.21 still calls transformers' deprecated ``is_gradient_checkpointing``; not ours to fix
PEFT_DEPRECATION = pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")


def image_batch():
    ids = torch.tensor([[1, 5] + [IMAGE] * 16 + [6, 7, 8]])
    labels = ids.masked_fill(ids == IMAGE, -100)
    return ids, labels, torch.randn(1, 3, 32, 32)


def test_stage1_only_projector_gets_gradients(tiny_llava):
    model = tiny_llava().train()
    freeze_for_stage1(model)
    names = trainable_parameter_names(model)
    assert names and all(n.startswith("model.multi_modal_projector.") for n in names)
    ids, labels, pixels = image_batch()
    model(input_ids=ids, labels=labels, pixel_values=pixels).loss.backward()
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None}
    assert with_grad == set(names)
    assert all(model.get_parameter(n).grad.abs().sum() > 0 for n in names)
    set_trainable(model, projector=True, language_model=True)
    assert "lm_head.weight" in trainable_parameter_names(model)
    assert not any(p.requires_grad for p in model.model.vision_tower.parameters())


@PEFT_DEPRECATION
def test_lora_targets_lm_linears_only(tiny_llava):
    model = tiny_llava()
    targets = lora_target_modules(model)
    assert len(targets) == 2 * 7  # 2 LLaMA layers × (q, k, v, o, gate, up, down)
    assert all(t.startswith("model.language_model.layers.") for t in targets)
    peft_model = apply_lora(model, r=4, alpha=8, dropout=0.0)
    adapted = {n.rsplit(".lora_A", 1)[0] for n, _ in peft_model.named_parameters() if ".lora_A" in n}
    assert adapted and all(".language_model." in n for n in adapted)
    assert not any("vision_tower" in n or "multi_modal_projector" in n or "lm_head" in n for n in adapted)
    trainable = trainable_parameter_names(peft_model)
    assert all("lora_" in n or "multi_modal_projector" in n for n in trainable)
    assert any("multi_modal_projector" in n for n in trainable)
    assert not any(p.requires_grad for n, p in peft_model.named_parameters() if "vision_tower" in n)


@PEFT_DEPRECATION
def test_lora_merge_preserves_outputs(tiny_llava):
    model = tiny_llava(seed=5)
    peft_model = apply_lora(model, r=4, alpha=8, dropout=0.0).eval()
    torch.manual_seed(0)
    for name, param in peft_model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.2)  # B starts at 0; make the adapters matter
    ids, _, pixels = image_batch()
    with torch.no_grad():
        adapted = peft_model(input_ids=ids, pixel_values=pixels).logits
        merged_model = merge_lora(peft_model)
        merged = merged_model(input_ids=ids, pixel_values=pixels).logits
    assert type(merged_model).__name__ == "VlzooLlavaForConditionalGeneration"
    assert not any("lora_" in n for n, _ in merged_model.named_parameters())
    torch.testing.assert_close(merged, adapted, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", DEEPSPEED_CONFIGS)
def test_deepspeed_configs_are_trainer_compatible(name, tiny_llava, tmp_path):
    from transformers.integrations.deepspeed import HfTrainerDeepSpeedConfig, unset_hf_deepspeed_config

    raw = json.loads(deepspeed_config_path(name).read_text())
    assert raw["zero_optimization"]["stage"] == (2 if name == "zero2" else 3)
    for key in ("train_micro_batch_size_per_gpu", "gradient_accumulation_steps", "train_batch_size",
                "gradient_clipping"):
        assert raw[key] == "auto", key
    assert raw["fp16"]["enabled"] == "auto" and raw["bf16"]["enabled"] == "auto"
    if name == "zero3_offload":
        assert raw["zero_optimization"]["offload_optimizer"]["device"] == "cpu"
        assert set(raw["optimizer"]["params"].values()) == {"auto"}
    cpu = deepspeed_config(name, torch_adam=True)
    assert cpu["optimizer"]["params"]["torch_adam"] is True
    # Trainer's own check: fill every "auto" from TrainingArguments and the model, and find no mismatch.
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=2, learning_rate=1e-3,
                             report_to="none", use_cpu=True)
    model = tiny_llava()  # built before the config exists: a ZeRO-3 config makes from_config use zero.Init
    ds = HfTrainerDeepSpeedConfig(cpu)
    try:
        ds.trainer_config_process(args)
        ds.trainer_config_finalize(args, model, num_training_steps=10)
        assert "auto" not in json.dumps(ds.config)
        assert ds.config["train_micro_batch_size_per_gpu"] == 2 and ds.config["optimizer"]["params"]["lr"] == 1e-3
    finally:
        unset_hf_deepspeed_config()  # the config registers itself globally (ZeRO-3 would change from_pretrained)


def test_make_training_args_recipe_defaults(tmp_path):
    args = make_training_args(tmp_path, learning_rate=2e-5, per_device_train_batch_size=16, use_cpu=True)
    assert args.lr_scheduler_type == "cosine" and args.weight_decay == 0.0 and args.warmup_steps == 0.03
    assert args.remove_unused_columns is False and args.learning_rate == 2e-5


def test_trainer_steps_loss_decreases_and_checkpoint_reloads(tokenizer, tiny_configs, tmp_path):
    """End to end on CPU: plain template → expand → collate → HF Trainer (full fine-tune) → reload."""
    image_id = tokenizer.convert_tokens_to_ids("<image>")
    torch.manual_seed(0)
    model = build_llava(tiny_configs.llama(len(tokenizer)), tiny_configs.vision(), image_token_id=image_id,
                        attn_implementation="eager")
    captions = ["A small grey cat sits on a mat.", "It is a cat.", "Because it is tired.", "Hello"]
    dataset = []
    for index, caption in enumerate(captions):
        record = {"id": str(index), "image": f"{index}.jpg", "conversations": [
            {"from": "human", "value": "<image>\nDescribe it briefly."}, {"from": "gpt", "value": caption}]}
        encoded = encode_record(record, tokenizer, "plain", image_id)
        ids, labels = expand_image_tokens(encoded.input_ids, encoded.labels, image_id, model.num_image_tokens())
        dataset.append({"input_ids": ids, "labels": labels,
                        "pixel_values": torch.randn(3, 32, 32, generator=torch.Generator().manual_seed(index))})
    set_trainable(model, projector=True, language_model=True)
    args = make_training_args(
        tmp_path, learning_rate=3e-3, per_device_train_batch_size=2, max_steps=4, save_steps=2,
        warmup_steps=0, lr_scheduler_type="constant", use_cpu=True, seed=0, disable_tqdm=True,
        dataloader_num_workers=0,
    )
    trainer = build_trainer(model, args, dataset, MultimodalCollator(pad_token_id=tokenizer.pad_token_id),
                            save_projector_checkpoints=True)
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert len(losses) == 4 and all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < losses[0] and sum(losses[2:]) < sum(losses[:2]), losses
    for folder in (tmp_path / "checkpoint-2", tmp_path / "checkpoint-4", tmp_path):
        with safe_open(str(folder / PROJECTOR_FILE), "pt") as f:
            assert "linear_1.weight" in f.keys()
    reloaded = AutoModelForImageTextToText.from_pretrained(tmp_path / "checkpoint-4",
                                                           attn_implementation="eager").eval()
    batch = MultimodalCollator(pad_token_id=tokenizer.pad_token_id)(dataset[:2])
    batch.pop("labels")
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**batch).logits, model(**batch).logits)
