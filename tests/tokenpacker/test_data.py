"""TokenPacker data: template masking on real toy records, placeholder expansion (splice counts), eval prompts."""

import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from tokenpacker import hd
from tokenpacker.data import (
    ImagePipeline,
    LlavaSupervisedDataset,
    QuestionDataset,
    make_collator,
    subset_per_category,
)
from tokenpacker.engine import load_tokenizer
from vlzoo.data import read_llava_json, read_llava_questions
from vlzoo.mllm import IGNORE_INDEX, TokenizationMismatchWarning


@pytest.fixture(scope="module")
def tokenizer(tiny_lm_dir):
    return load_tokenizer(tiny_lm_dir)


def _supervised_text(tokenizer, sample):
    keep = sample["labels"] != IGNORE_INDEX
    return tokenizer.decode(sample["input_ids"][keep].tolist())


def _supervised_runs(tokenizer, sample) -> list[str]:
    """Each contiguous run of supervised tokens, decoded on its own."""
    keep = (sample["labels"] != IGNORE_INDEX).tolist()
    runs, current = [], []
    for token, kept in zip(sample["input_ids"].tolist(), keep):
        if kept:
            current.append(token)
        elif current:
            runs.append(current)
            current = []
    runs += [current] if current else []
    return [tokenizer.decode(run) for run in runs]


def test_vicuna_masking_supervises_exactly_the_answers(tiny_world, tokenizer):
    records = read_llava_json(tiny_world / "train" / "llava.json")
    image = tokenizer.convert_tokens_to_ids("<image>")
    dataset = LlavaSupervisedDataset(records, tiny_world / "train" / "images", tokenizer, "vicuna_v1", image,
                                     tokens_per_crop=4, pipeline=ImagePipeline(32, "pad"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", TokenizationMismatchWarning)  # the toy tokenizer never trips the guard
        for record, sample in zip(records, dataset):
            answers = [t.value for t in record.conversations if t.role == "gpt"]
            assert _supervised_runs(tokenizer, sample) == [answer + "</s>" for answer in answers]
            assert int((sample["input_ids"] == image).sum()) == 4  # one placeholder -> M visual tokens
            assert (sample["labels"][sample["input_ids"] == image] == IGNORE_INDEX).all()
            assert sample["pixel_values"].shape == (1, 3, 32, 32)
            assert "image_grids" not in sample


def test_plain_masking_supervises_the_caption_and_newline(tiny_world, tokenizer):
    records = read_llava_json(tiny_world / "train" / "llava_pretrain.json")
    image = tokenizer.convert_tokens_to_ids("<image>")
    dataset = LlavaSupervisedDataset(records, tiny_world / "train" / "images", tokenizer, "plain", image,
                                     tokens_per_crop=9, pipeline=ImagePipeline(32, "square"))
    sample = dataset[0]
    assert sample["input_ids"][0] == tokenizer.bos_token_id
    assert sample["input_ids"][1 : 1 + 9].eq(image).all() and not sample["input_ids"][10:].eq(image).any()
    caption = records[0].conversations[1].value
    assert _supervised_text(tokenizer, sample) == caption + "\n"


def test_hd_samples_expand_to_the_hd_token_count_and_carry_their_grid(tmp_path, tokenizer):
    Image.fromarray(np.zeros((64, 96, 3), dtype=np.uint8)).save(tmp_path / "wide.png")
    record = {"id": "r0", "image": "wide.png",
              "conversations": [{"from": "human", "value": "<image>\nWhat is it?"}, {"from": "gpt", "value": "a star"}]}
    from vlzoo.data import LlavaRecord, Turn

    records = [LlavaRecord("r0", ("wide.png",), [Turn(t["from"], t["value"]) for t in record["conversations"]])]
    image = tokenizer.convert_tokens_to_ids("<image>")
    dataset = LlavaSupervisedDataset(records, tmp_path, tokenizer, "vicuna_v1", image, tokens_per_crop=4,
                                     pipeline=ImagePipeline(32, "slice"))
    sample = dataset[0]
    assert sample["image_grids"] == (2, 3)
    assert sample["pixel_values"].shape == (7, 3, 32, 32)
    assert int((sample["input_ids"] == image).sum()) == hd.num_visual_tokens(2, 3, 4) == 35


def test_truncation_that_cuts_the_image_is_an_error(tiny_world, tokenizer):
    records = read_llava_json(tiny_world / "train" / "llava.json")
    image = tokenizer.convert_tokens_to_ids("<image>")
    dataset = LlavaSupervisedDataset(records, tiny_world / "train" / "images", tokenizer, "vicuna_v1", image,
                                     tokens_per_crop=4, pipeline=ImagePipeline(32, "pad"), max_length=10)
    with pytest.raises(ValueError, match="raise model.max_length"):
        dataset[0]


def test_question_prompts_follow_model_vqa_loader(tiny_world, tokenizer):
    questions = read_llava_questions(tiny_world / "val" / "vqa_questions.jsonl")
    image = tokenizer.convert_tokens_to_ids("<image>")
    dataset = QuestionDataset(questions[:3], tiny_world / "val" / "images", tokenizer, "vicuna_v1", image,
                              tokens_per_crop=4, pipeline=ImagePipeline(32, "pad"))
    prompt = dataset.prompts[0]
    assert prompt.startswith("A chat between a curious user and an artificial intelligence assistant.")
    assert prompt.endswith(f"USER: <image>\n{questions[0]['text']} ASSISTANT:")
    sample = dataset[0]
    assert int((sample["input_ids"] == image).sum()) == 4 and "labels" not in sample
    batch = make_collator(tokenizer, dataset.pipeline, "left")([dataset[i] for i in range(3)])
    assert batch["attention_mask"][:, -1].all()  # left padding: every prompt ends at the last column


def test_collator_adds_one_keep_alive_image_for_text_only_batches(tokenizer):
    pipeline = ImagePipeline(32, "pad")
    batch = make_collator(tokenizer, pipeline)([{"input_ids": torch.tensor([1, 5, 6]), "labels": torch.tensor([-100, 5, 6])}])
    assert batch["pixel_values"].shape == (1, 3, 32, 32) and batch["images_per_sample"].tolist() == [0]
    assert torch.equal(batch["pixel_values"][0], torch.zeros(3, 32, 32))


def test_subset_per_category_is_seeded_and_balanced():
    questions = [{"question_id": i, "category": "count" if i % 3 else "color"} for i in range(30)]
    a = subset_per_category(questions, 4, seed=0)
    b = subset_per_category(questions, 4, seed=0)
    c = subset_per_category(questions, 4, seed=1)
    assert a == b and a != c
    assert sorted(q["category"] for q in a) == ["color"] * 4 + ["count"] * 4
    assert [q["question_id"] for q in a] == sorted(q["question_id"] for q in a)  # file order kept
    assert subset_per_category(questions, None) == questions
    with pytest.raises(ValueError, match=">= 1"):
        subset_per_category(questions, 0)


def test_image_pipelines():
    wide = Image.fromarray(np.full((20, 40, 3), 255, dtype=np.uint8))
    padded, grid = ImagePipeline(32, "pad")(wide)
    assert grid is None and padded.shape == (1, 3, 32, 32)
    assert torch.allclose(padded[0, :, 0, :], torch.zeros(3, 32), atol=1e-6)  # mean-colour padding on top
    cropped, _ = ImagePipeline(32, "square")(wide)
    assert cropped.shape == (1, 3, 32, 32) and cropped.min() > 1.0  # all white: nothing padded
    with pytest.raises(ValueError, match="'square', 'pad' or 'slice'"):
        ImagePipeline(32, "crop")


def test_length_grouped_order_is_a_seeded_permutation_of_sorted_megabatches():
    from tokenpacker.data import length_grouped_order

    lengths = [5, 1, 9, 3, 7, 2, 8, 4, 6, 0]
    order = length_grouped_order(lengths, batch_size=2, seed=0, mega_batches=2)
    assert sorted(order) == list(range(10)) and order == length_grouped_order(lengths, 2, 0, 2)
    for start in range(0, 10, 4):  # each mega-batch of 4 is sorted longest first
        chunk = [lengths[i] for i in order[start : start + 4]]
        assert chunk == sorted(chunk, reverse=True)
    assert order != length_grouped_order(lengths, 2, 1, 2)
