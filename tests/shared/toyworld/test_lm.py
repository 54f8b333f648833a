"""The toy LM: a LLaMA-like BPE tokenizer built offline and a small LlamaForCausalLM pretrained on toy text."""

import json
import warnings

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from vlzoo.mllm import VICUNA_V1, TokenizationMismatchWarning, add_image_token, encode_record
from vlzoo.toyworld.lm import (
    BYTE_PIECES,
    ToyLMConfig,
    build_toy_tokenizer,
    pretrain_toy_lm,
    toy_language_model,
    toy_text_corpus,
)

TINY = dict(vocab_size=400, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
            num_key_value_heads=2, batch_size=8, block_size=32)


@pytest.fixture(scope="module")
def tokenizer(world):
    return build_toy_tokenizer(toy_text_corpus(world), 600)


def test_corpus_has_captions_chats_and_sentences(world):
    documents = toy_text_corpus(world)
    captions = json.loads((world / "train" / "captions.json").read_text())["annotations"]
    assert documents[: len(captions)] == [c["caption"] for c in captions]
    chats = [d for d in documents if d.startswith(VICUNA_V1.system)]
    assert len(chats) == len(json.loads((world / "train" / "llava.json").read_text()))
    assert all("<image>" not in d for d in documents) and "USER:" in chats[0] and "</s>" in chats[0]
    with pytest.raises(FileNotFoundError, match="captions.json"):
        toy_text_corpus(world / "nowhere")


def test_tokenizer_is_llama_like(tokenizer):
    ids = tokenizer("a small red circle").input_ids
    assert ids[0] == tokenizer.bos_token_id == 1 and tokenizer.eos_token_id == 2 and tokenizer.unk_token_id == 0
    assert tokenizer.convert_ids_to_tokens(ids[1:]) == ["▁a", "▁small", "▁red", "▁circle"]
    assert tokenizer.convert_ids_to_tokens(list(range(3, 3 + 256))) == list(BYTE_PIECES)
    # newline is the byte piece <0x0A>, not a token: convert_tokens_to_ids("\n") is <unk>, as in LLaMA
    assert tokenizer.convert_tokens_to_ids("\n") == tokenizer.unk_token_id
    assert "<0x0A>" in tokenizer.convert_ids_to_tokens(tokenizer("red\ncircle").input_ids)
    # </s> inside text is the EOS token; a trailing space is a lone "▁"
    assert tokenizer("x</s>USER: y").input_ids.count(tokenizer.eos_token_id) == 1
    assert tokenizer.convert_ids_to_tokens(tokenizer("ASSISTANT: ").input_ids)[-1] == "▁"
    # byte fallback: unseen characters round-trip
    text = "Größe 42 ✓"
    assert tokenizer.decode(tokenizer(text).input_ids, skip_special_tokens=True) == text
    assert tokenizer.pad_token == "<unk>"


def test_vicuna_masking_never_mismatches_on_toy_records(world, tokenizer):
    image = add_image_token(tokenizer)
    records = json.loads((world / "train" / "llava.json").read_text())
    with warnings.catch_warnings():
        warnings.simplefilter("error", TokenizationMismatchWarning)
        for record in records:
            encoded = encode_record(record, tokenizer, VICUNA_V1, image)
            assert not encoded.mismatch and (encoded.labels != -100).sum() > 0


def test_smoke_pretrain_saves_a_loadable_model_and_lowers_the_loss(world, tmp_path):
    torch.manual_seed(0)
    report = pretrain_toy_lm(tmp_path / "lm", world, ToyLMConfig(steps=20, learning_rate=1e-2, **TINY),
                             show_progress=False)
    assert report["final_loss"] < report["first_loss"] - 0.5
    assert json.loads((tmp_path / "lm" / "report.json").read_text())["final_loss"] == report["final_loss"]
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "lm")
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "lm")
    assert model.config.vocab_size == len(tokenizer) and model.config.hidden_size == 32
    with torch.no_grad():
        out = model.generate(**tokenizer("a small", return_tensors="pt"), max_new_tokens=3, do_sample=False)
    assert out.shape[1] == 3 + 3


def test_toy_language_model_is_cached_by_config(world, tmp_path, monkeypatch):
    monkeypatch.setenv("VLZOO_CACHE", str(tmp_path / "cache"))
    cfg = ToyLMConfig(steps=2, **TINY)
    first = toy_language_model(cfg, world=world, show_progress=False)
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    assert toy_language_model(cfg, world=world, show_progress=False) == first  # reused, not retrained
    assert (first / "model.safetensors").stat().st_mtime_ns == stamp
    other = toy_language_model(ToyLMConfig(steps=3, **TINY), world=world, show_progress=False)
    assert other != first and (other / "report.json").is_file()
    assert not list(first.parent.glob(".*partial*"))


def test_concurrent_callers_train_the_toy_lm_once(world, tmp_path, monkeypatch, concurrently):
    """Two callers wanting the same missing toy LM: one trains, the other waits on the cache lock and reuses
    it (before the lock both trained, and the second rename deleted the folder the first had returned)."""
    import vlzoo.toyworld.lm as lm

    monkeypatch.setenv("VLZOO_CACHE", str(tmp_path / "cache"))
    calls = []
    real = lm.pretrain_toy_lm

    def counting(out, *args, **kwargs):
        calls.append(out)
        return real(out, *args, **kwargs)

    monkeypatch.setattr(lm, "pretrain_toy_lm", counting)
    cfg = ToyLMConfig(steps=2, **TINY)

    results, errors = concurrently(lambda: toy_language_model(cfg, world=world, show_progress=False))
    assert errors == [] and len(calls) == 1
    assert results[0] == results[1] and (results[0] / "report.json").is_file()
    assert not list(results[0].parent.glob(".*partial*"))


def test_config_errors():
    with pytest.raises(ValueError, match="vocab_size"):
        ToyLMConfig(vocab_size=100)
    with pytest.raises(ValueError, match="divisible"):
        ToyLMConfig(hidden_size=30, num_attention_heads=4)


@pytest.mark.slow
def test_full_pretrain_reaches_a_low_held_out_loss(world, tmp_path, monkeypatch):
    """The default recipe on the default world, from an empty cache: it generates the LM's world first (21.5 min in
    all in the slow suite on 2026-12-01, beside nothing else of ours)."""
    monkeypatch.setenv("VLZOO_CACHE", str(tmp_path / "cache"))
    folder = toy_language_model(show_progress=False)
    report = json.loads((folder / "report.json").read_text())
    assert report["val_loss"] < 1.5 and report["final_loss"] < 1.2
