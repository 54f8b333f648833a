"""Tiny offline pieces for the TokenPacker end-to-end tests: a toy world, tokenizer, LLaMA and CLIP folders.

Everything is random-initialised and small (vision 32 px / patch 8: a 4x4 grid; LLaMA width 32), so a forward
pass takes milliseconds and a two-step HF Trainer run a few seconds.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import CLIPVisionConfig, CLIPVisionModel, LlamaConfig, LlamaForCausalLM

from vlzoo.toyworld import generate_world
from vlzoo.toyworld.lm import build_toy_tokenizer, toy_text_corpus

IMAGE_SIZE = 32
PATCH = 8


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory) -> Path:
    """A toy world: 8 train / 6 val images at 32 px, seed 0."""
    return generate_world(tmp_path_factory.mktemp("tp_world") / "world", 8, 6, IMAGE_SIZE, 0)


@pytest.fixture(scope="session")
def tiny_lm_dir(tmp_path_factory, tiny_world) -> Path:
    """A random 1-layer LLaMA (width 32) with the toy BPE tokenizer, saved as an HF folder."""
    folder = tmp_path_factory.mktemp("tp_lm")
    tokenizer = build_toy_tokenizer(toy_text_corpus(tiny_world), 400)
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=1024,
        bos_token_id=1, eos_token_id=2, pad_token_id=0,
    ))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory) -> Path:
    """A random 4-block CLIP ViT (32 px, patch 8, width 32) saved as a ``CLIPVisionModel`` folder; taps
    [1, 2, 3] end at the penultimate block, as the official [12, 16, 22, 23] of 24."""
    folder = tmp_path_factory.mktemp("tp_clip")
    torch.manual_seed(1)
    CLIPVisionModel(CLIPVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=4, num_attention_heads=4,
        image_size=IMAGE_SIZE, patch_size=PATCH,
    )).save_pretrained(folder)
    return folder


@pytest.fixture
def tiny_overrides(tiny_world, tiny_lm_dir, tiny_clip_dir, tmp_path):
    """Dotted overrides that point a TokenPackerConfig at the tiny pieces (one step per stage)."""
    train, val = tiny_world / "train", tiny_world / "val"
    return [
        f"output_dir={tmp_path / 'run'}",
        f"model.language_model={tiny_lm_dir}",
        f"model.vision_tower={tiny_clip_dir}",
        "model.attn_implementation=eager",
        "projector.feature_layers=[1,2,3]",
        "projector.num_heads=4",
        f"stage1.data_path={train / 'llava_pretrain.json'}",
        f"stage1.image_folder={train / 'images'}",
        f"stage2.data_path={train / 'llava.json'}",
        f"stage2.image_folder={train / 'images'}",
        f"eval.question_file={val / 'vqa_questions.jsonl'}",
        f"eval.image_folder={val / 'images'}",
        f"eval.gold={val / 'vqa_answers.jsonl'}",
        "stage1.save_steps=0",
        "stage2.save_steps=0",
    ]
