"""Tiny offline pieces for the vlzoo.mllm tests: a LLaMA-like tokenizer and tiny LM / CLIP configs."""

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import CLIPVisionConfig, LlamaConfig, PreTrainedTokenizerFast, Qwen2Config

from vlzoo.mllm import VICUNA_V1, add_image_token, build_llava

WORDS = VICUNA_V1.system.split() + (
    "USER: ASSISTANT: What is in the image? It is a cat. Describe it briefly. A small grey cat sits on a mat."
    " Why? Because it is tired. Hello"
).split()


def make_tokenizer() -> PreTrainedTokenizerFast:
    """LLaMA-like: BOS ``<s>`` prepended, EOS ``</s>``, ``<unk>`` (id 0, also the pad), a ``▁`` word prefix
    only at the start of the text (so a trailing space is a lone ``▁``), and ``\\n`` as its own token."""
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, "▁": 3, "\n": 4}
    for word in WORDS:
        for piece in ("▁" + word, word):
            vocab.setdefault(piece, len(vocab))
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first"),
         pre_tokenizers.Split("\n", behavior="isolated")]
    )
    backend.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    backend.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<unk>"
    )
    add_image_token(tokenizer)
    return tokenizer


@pytest.fixture(scope="session")
def tokenizer():
    return make_tokenizer()


def vision_config(image_size: int = 32, patch_size: int = 8) -> CLIPVisionConfig:
    return CLIPVisionConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=4, num_attention_heads=4,
                            image_size=image_size, patch_size=patch_size)


def llama_config(vocab_size: int = 64) -> LlamaConfig:
    return LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=2, vocab_size=vocab_size, max_position_embeddings=256)


def qwen2_config(vocab_size: int = 64) -> Qwen2Config:
    return Qwen2Config(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=2, vocab_size=vocab_size, max_position_embeddings=256,
                       tie_word_embeddings=True)


@pytest.fixture(scope="session")
def tiny_configs():
    """Factories for the tiny configs: ``tiny_configs.vision()``, ``.llama(vocab)``, ``.qwen2(vocab)``."""
    class Configs:
        vision = staticmethod(vision_config)
        llama = staticmethod(llama_config)
        qwen2 = staticmethod(qwen2_config)

    return Configs


@pytest.fixture
def tiny_llava():
    """Factory: a random tiny LLaMA + CLIP (32 px, patch 8 → 16 visual tokens) MLLM, vocab 64, <image> = 63."""
    def make(seed: int = 0, **kwargs):
        torch.manual_seed(seed)
        kwargs.setdefault("image_token_id", 63)
        kwargs.setdefault("attn_implementation", "eager")
        text = kwargs.pop("text", llama_config(64))
        vision = kwargs.pop("vision", vision_config())
        return build_llava(text, vision, **kwargs)

    return make
