"""Templates ``plain`` / ``vicuna_v1``: golden prompts, golden label masks, the mismatch guard, placeholders."""

import pytest
import torch

from vlzoo.mllm import (
    IGNORE_INDEX,
    TokenizationMismatchWarning,
    build_prompt,
    encode_conversation,
    encode_record,
    expand_image_tokens,
    get_template,
    normalize_image_placement,
    tokenizer_image_token,
)

SYSTEM = ("A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, "
          "detailed, and polite answers to the user's questions.")

TWO_ROUNDS = {
    "id": "conv-1",
    "image": "coco/1.jpg",
    "conversations": [
        {"from": "human", "value": "What is in the image?\n<image>"},
        {"from": "gpt", "value": "It is a cat."},
        {"from": "human", "value": "Why?"},
        {"from": "gpt", "value": "Because it is tired."},
    ],
}


def supervised_tokens(tokenizer, encoded):
    keep = encoded.labels != IGNORE_INDEX
    assert torch.equal(encoded.labels[keep], encoded.input_ids[keep])  # labels are the ids where supervised
    return tokenizer.convert_ids_to_tokens(encoded.labels[keep].tolist())


def test_vicuna_v1_golden_prompt_and_mask(tokenizer):
    image_id = tokenizer.convert_tokens_to_ids("<image>")
    encoded = encode_record(TWO_ROUNDS, tokenizer, "vicuna_v1", image_id)
    assert encoded.prompt == (
        SYSTEM + " USER: <image>\nWhat is in the image? ASSISTANT: It is a cat.</s>"
        "USER: Why? ASSISTANT: Because it is tired.</s>"
    )
    tokens = tokenizer.convert_ids_to_tokens(encoded.input_ids.tolist())
    assert tokens[0] == "<s>" and tokens.count("<s>") == 1 and tokens.count("<image>") == 1
    # Golden mask: only the two answers and their </s> are supervised (BOS, system, both instructions masked).
    assert supervised_tokens(tokenizer, encoded) == [
        "▁It", "▁is", "▁a", "▁cat.", "</s>", "▁Because", "▁it", "▁is", "▁tired.", "</s>"
    ]
    # ...and they sit right after each "▁ASSISTANT:" (the -2 arithmetic lands exactly on the answer).
    labels = encoded.labels.tolist()
    first = tokens.index("▁ASSISTANT:") + 1
    assert labels[first - 1] == IGNORE_INDEX and labels[first] != IGNORE_INDEX
    assert not encoded.mismatch


def test_plain_golden_prompt_and_mask(tokenizer):
    image_id = tokenizer.convert_tokens_to_ids("<image>")
    record = {"id": "cap-7", "image": "x.jpg", "conversations": [
        {"from": "human", "value": "Describe it briefly.\n<image>"},
        {"from": "gpt", "value": "A small grey cat sits on a mat."},
    ]}
    encoded = encode_record(record, tokenizer, "plain", image_id)
    assert encoded.prompt == "<image>A small grey cat sits on a mat.\n"  # the question text is dropped
    tokens = tokenizer.convert_ids_to_tokens(encoded.input_ids.tolist())
    assert tokens == ["<s>", "<image>", "▁A", "▁small", "▁grey", "▁cat", "▁sits", "▁on", "▁a", "▁mat.", "\n"]
    assert encoded.labels[:2].tolist() == [IGNORE_INDEX, IGNORE_INDEX]
    assert supervised_tokens(tokenizer, encoded) == tokens[2:]


def test_mismatch_guard_masks_whole_sample_with_warning(tokenizer):
    image_id = tokenizer.convert_tokens_to_ids("<image>")
    record = {**TWO_ROUNDS, "id": "bad-3", "conversations": [
        {"from": "human", "value": "<image>\nWhat is in the image?"},
        {"from": "gpt", "value": "It is</s> a cat."},  # a literal sep2 inside an answer breaks the round split
    ]}
    with pytest.warns(TokenizationMismatchWarning, match="record bad-3: tokenization mismatch"):
        encoded = encode_record(record, tokenizer, "vicuna_v1", image_id)
    assert encoded.mismatch
    assert (encoded.labels == IGNORE_INDEX).all()
    assert len(encoded.input_ids) == len(encoded.labels)


def test_truncated_sample_skips_guard(tokenizer, recwarn):
    image_id = tokenizer.convert_tokens_to_ids("<image>")
    encoded = encode_record(TWO_ROUNDS, tokenizer, "vicuna_v1", image_id, max_length=40)
    assert len(encoded.input_ids) == 40 and not encoded.mismatch
    assert not [w for w in recwarn if issubclass(w.category, TokenizationMismatchWarning)]
    assert supervised_tokens(tokenizer, encoded) == ["▁It", "▁is", "▁a", "▁cat.", "</s>"]


def test_text_only_sample_is_not_normalised(tokenizer):
    image_id = tokenizer.convert_tokens_to_ids("<image>")
    record = {"id": "t", "conversations": [{"from": "human", "value": "Hello"}, {"from": "gpt", "value": "Hello"}]}
    encoded = encode_record(record, tokenizer, "vicuna_v1", image_id)
    assert encoded.prompt == SYSTEM + " USER: Hello ASSISTANT: Hello</s>"
    assert image_id not in encoded.input_ids.tolist()
    assert supervised_tokens(tokenizer, encoded) == ["▁Hello", "</s>"]


def test_leading_gpt_turn_is_skipped_and_alternation_checked(tokenizer):
    image_id = tokenizer.convert_tokens_to_ids("<image>")
    turns = [{"from": "gpt", "value": "Hello"}, *TWO_ROUNDS["conversations"][:2]]
    encoded = encode_conversation(turns, tokenizer, "vicuna_v1", image_id, has_image=True)
    assert encoded.prompt.startswith(SYSTEM + " USER: <image>\n")
    bad = [TWO_ROUNDS["conversations"][0], TWO_ROUNDS["conversations"][0]]
    with pytest.raises(ValueError, match="record r9: turn 1 is from 'human'"):
        encode_conversation(bad, tokenizer, "vicuna_v1", image_id, has_image=True, record_id="r9")


def test_bad_records_name_the_record(tokenizer):
    with pytest.raises(ValueError, match="record x1, turn 0"):
        encode_record({"id": "x1", "conversations": [{"from": "bot", "value": "hi"}]}, tokenizer, "vicuna_v1", 91)
    with pytest.raises(ValueError, match="record x2: 'conversations' must be"):
        encode_record({"id": "x2"}, tokenizer, "vicuna_v1", 91)
    with pytest.raises(ValueError, match="record x3: the plain template needs exactly 2 turns"):
        encode_record({**TWO_ROUNDS, "id": "x3"}, tokenizer, "plain", 91)
    with pytest.raises(ValueError, match="unknown conversation template 'llama_2'"):
        get_template("llama_2")


def test_normalize_image_placement():
    turns = normalize_image_placement([{"from": "human", "value": "  Look <image> here "},
                                       {"from": "gpt", "value": "ok"}])
    assert turns[0]["value"] == "<image>\nLook  here" and turns[1]["value"] == "ok"
    assert normalize_image_placement([{"from": "human", "value": "<image>"}])[0]["value"] == "<image>"


def test_generation_prompt():
    turns = [{"from": "human", "value": "What is in the image? <image>"}]
    assert build_prompt(turns) == SYSTEM + " USER: <image>\nWhat is in the image? ASSISTANT:"
    assert build_prompt(turns, "plain") == "<image>"


def test_tokenizer_image_token_keeps_one_bos(tokenizer):
    image_id = tokenizer.convert_tokens_to_ids("<image>")
    ids = tokenizer_image_token("Hello <image> Hello<image>", tokenizer, image_id)
    assert tokenizer.convert_ids_to_tokens(ids) == ["<s>", "▁Hello", "▁", "<image>", "▁Hello", "<image>"]


def test_expand_image_tokens_counts_and_labels():
    ids = torch.tensor([1, 9, 5, 9, 6])
    labels = torch.tensor([-100, -100, 5, -100, 6])
    out_ids, out_labels = expand_image_tokens(ids, labels, 9, [3, 2])
    assert out_ids.tolist() == [1, 9, 9, 9, 5, 9, 9, 6]
    assert out_labels.tolist() == [-100, -100, -100, -100, 5, -100, -100, 6]
    assert expand_image_tokens(ids, None, 9, 4)[0].tolist().count(9) == 8
    with pytest.raises(ValueError, match="3 visual token counts given for 2"):
        expand_image_tokens(ids, labels, 9, [1, 2, 3])


def test_records_from_vlzoo_data_reader(tokenizer, tmp_path):
    import json

    from vlzoo.data import read_llava_json

    text_only = {"id": "t", "conversations": [{"from": "human", "value": "Hello"}, {"from": "gpt", "value": "Hello"}]}
    (tmp_path / "data.json").write_text(json.dumps([TWO_ROUNDS, text_only]))
    image_id = tokenizer.convert_tokens_to_ids("<image>")
    for record, raw in zip(read_llava_json(tmp_path / "data.json"), [TWO_ROUNDS, text_only]):
        ours = encode_record(record, tokenizer, "vicuna_v1", image_id)
        direct = encode_record(raw, tokenizer, "vicuna_v1", image_id)
        assert ours.prompt == direct.prompt and torch.equal(ours.labels, direct.labels)


def test_add_image_token_is_idempotent(tokenizer):
    from vlzoo.mllm import add_image_token

    size = len(tokenizer)
    assert add_image_token(tokenizer) == tokenizer.convert_tokens_to_ids("<image>") == size - 1
    assert len(tokenizer) == size
    assert tokenizer("<image>").input_ids == [1, size - 1]  # one special token, never split


def test_vicuna_needs_a_llama_like_tokenizer(tokenizer):
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    def copy_of_backend():
        return Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())

    backend = copy_of_backend()
    backend.post_processor = None  # no BOS
    no_bos = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="</s>", unk_token="<unk>")
    with pytest.raises(ValueError, match="needs a tokenizer that prepends BOS"):
        encode_record(TWO_ROUNDS, no_bos, "vicuna_v1", 91)
    other_eos = PreTrainedTokenizerFast(tokenizer_object=copy_of_backend(), bos_token="<s>", eos_token="<unk>",
                                        unk_token="<unk>")
    with pytest.raises(ValueError, match="must be the tokenizer's EOS token"):
        encode_record(TWO_ROUNDS, other_eos, "vicuna_v1", 91)
