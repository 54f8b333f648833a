"""The ``<image>`` placeholder: adding it to a tokenizer, tokenising around it, expanding it per visual token.

LLaVA (official code, ``mm_utils.tokenizer_image_token``) splits the prompt on ``<image>``, tokenises each
chunk on its own, keeps a single BOS and puts one placeholder between chunks. We do the same, but the
placeholder is the id of ``<image>`` added to the tokenizer as a special token (``image_token_id``) instead of
-200; before the model sees the sequence, :func:`expand_image_tokens` repeats each placeholder once per
visual token the projector makes for that image (HF LLaVA's layout), so ``masked_scatter`` can splice.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["IGNORE_INDEX", "IMAGE_TOKEN", "add_image_token", "expand_image_tokens", "tokenizer_image_token"]

IGNORE_INDEX = -100
"""Label of positions that are not supervised (``CrossEntropyLoss(ignore_index=-100)``)."""

IMAGE_TOKEN = "<image>"
"""The image placeholder in conversation text (LLaVA's ``DEFAULT_IMAGE_TOKEN``)."""


def add_image_token(tokenizer, token: str = IMAGE_TOKEN) -> int:
    """Add ``token`` to ``tokenizer`` as a special token if absent; return its id.

    Resize the model's embeddings to ``len(tokenizer)`` afterwards (``build_llava(vocab_size=...)``).
    """
    vocab = tokenizer.get_vocab()
    if token not in vocab:
        tokenizer.add_special_tokens({"additional_special_tokens": [token]})
    token_id = tokenizer.convert_tokens_to_ids(token)
    if token_id is None or token_id == tokenizer.unk_token_id:
        raise ValueError(f"could not add {token!r} to the tokenizer {type(tokenizer).__name__}")
    return int(token_id)


def tokenizer_image_token(prompt: str, tokenizer, image_token_id: int, image_token: str = IMAGE_TOKEN) -> list[int]:
    """Tokenise ``prompt`` with one ``image_token_id`` per ``<image>`` and a single leading BOS.

    Each chunk between placeholders is tokenised separately (so the tokenizer never sees ``<image>``); the
    BOS the tokenizer puts in front of every chunk is kept only for the first one.

    Args:
        prompt: text with zero or more ``<image>``.
        tokenizer: an HF tokenizer (adds BOS itself when it is LLaMA-like).
        image_token_id: the placeholder id.

    Returns:
        The token ids.
    """
    chunks = [tokenizer(chunk).input_ids for chunk in prompt.split(image_token)]
    bos = tokenizer.bos_token_id
    has_bos = bos is not None and bool(chunks[0]) and chunks[0][0] == bos
    ids: list[int] = [bos] if has_bos else []
    for index, chunk in enumerate(chunks):
        if index > 0:
            ids.append(image_token_id)
        ids.extend(chunk[1:] if has_bos and chunk and chunk[0] == bos else chunk)
    return ids


def expand_image_tokens(
    input_ids: torch.Tensor,
    labels: torch.Tensor | None,
    image_token_id: int,
    tokens_per_placeholder: int | Sequence[int],
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Repeat each placeholder to the number of visual tokens it stands for; their labels become -100.

    Args:
        input_ids: (L,) ids with one ``image_token_id`` per image.
        labels: (L,) labels or None.
        tokens_per_placeholder: visual tokens per placeholder: one int for all, or one per placeholder in
            order (TokenPacker-HD: a different count per image grid).

    Returns:
        (L',) ids and (L',) labels (or None), L' = L + Σ(count - 1).

    Raises:
        ValueError: when the per-placeholder list length differs from the number of placeholders.
    """
    input_ids = torch.as_tensor(input_ids, dtype=torch.long)
    is_image = input_ids == image_token_id
    n_placeholders = int(is_image.sum())
    if isinstance(tokens_per_placeholder, int):
        counts = torch.full((n_placeholders,), tokens_per_placeholder, dtype=torch.long)
    else:
        counts = torch.as_tensor(list(tokens_per_placeholder), dtype=torch.long)
        if counts.numel() != n_placeholders:
            raise ValueError(
                f"{counts.numel()} visual token counts given for {n_placeholders} {'<image>'} placeholders"
            )
    if (counts < 1).any():
        raise ValueError(f"every placeholder needs at least one visual token, got counts {counts.tolist()}")
    repeats = torch.ones_like(input_ids)
    repeats[is_image] = counts
    expanded_ids = input_ids.repeat_interleave(repeats)
    if labels is None:
        return expanded_ids, None
    labels = torch.as_tensor(labels, dtype=torch.long)
    if labels.shape != input_ids.shape:
        raise ValueError(f"labels shape {tuple(labels.shape)} differs from input_ids shape {tuple(input_ids.shape)}")
    expanded_labels = labels.masked_fill(is_image, IGNORE_INDEX).repeat_interleave(repeats)
    return expanded_ids, expanded_labels
