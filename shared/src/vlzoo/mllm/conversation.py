"""Conversation templates ``plain`` (stage 1) and ``vicuna_v1`` (stage 2 / eval) with LLaVA's label masking.

Spec tokenpacker.md §4 (and osprey.md §4, which uses the same ``vicuna_v1``), after LLaVA's
``conversation.py`` / ``train.py``:

- ``plain``: the prompt is exactly ``<image>`` + caption + ``"\\n"``; the first turn's text is dropped.
  Masked: BOS and the placeholder; supervised: the caption and ``"\\n"``.
- ``vicuna_v1`` (separator style TWO, sep ``" "``, sep2 ``"</s>"``)::

      {system} USER: <image>\\n{q1} ASSISTANT: {a1}</s>USER: {q2} ASSISTANT: {a2}</s>

  Masked: BOS, and in every round the instruction ``"… ASSISTANT: "`` whose length is
  ``len(tokens(instruction)) - 2`` (its BOS and the lone ``"▁"`` a trailing space becomes with a
  LLaMA-like tokenizer). Each round advances by ``len(tokens(round))`` (its BOS stands for the ``</s>``
  removed by the split). If the rounds do not add up to the real length (the "tokenization mismatch"
  guard), the whole sample is masked and a :class:`TokenizationMismatchWarning` is issued.

Every turn containing ``<image>`` is first normalised to ``"<image>\\n" + rest`` (LLaVA's
``preprocess_multimodal``), so the first user turn starts with ``<image>\\n``.

Templates are frozen values looked up by name (:func:`get_template`); nothing here is global mutable state.

Deviation from official code: the mismatch guard compares with the sequence's real length, where LLaVA
counts the tokens that differ from ``pad_token_id`` (= ``<unk>``, so official code also masks every sample
that merely contains an ``<unk>``).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from vlzoo.data.llava import LlavaRecord, Turn
from vlzoo.mllm.tokens import IGNORE_INDEX, IMAGE_TOKEN, tokenizer_image_token

__all__ = [
    "PLAIN",
    "TEMPLATES",
    "VICUNA_V1",
    "ConversationTemplate",
    "EncodedConversation",
    "TokenizationMismatchWarning",
    "build_prompt",
    "encode_conversation",
    "encode_record",
    "get_template",
    "normalize_image_placement",
]

HUMAN, GPT = "human", "gpt"


class TokenizationMismatchWarning(UserWarning):
    """The per-round token counts of a conversation do not add up to its length; the sample is masked."""


@dataclass(frozen=True)
class ConversationTemplate:
    """A conversation format (LLaVA's ``Conversation`` without its mutable message list)."""

    name: str
    """Name used by :func:`get_template` and in configs."""
    style: Literal["plain", "two"]
    """``"plain"``: ``<image>`` + caption + sep; ``"two"``: ``system sep ROLE: msg sep ROLE: msg sep2 ...``."""
    system: str
    """System prompt put before the first turn (empty for ``plain``)."""
    roles: tuple[str, str]
    """Display names of the human and the assistant turns."""
    sep: str
    """Separator after a human turn (and after the system prompt); for ``plain`` the caption's end."""
    sep2: str = ""
    """Separator after an assistant turn (``"</s>"``, the EOS text, for vicuna_v1)."""

    def render(self, messages: Sequence[tuple[str, str | None]]) -> str:
        """The prompt for ``(role, text)`` messages; a None text ends the prompt with ``"ROLE:"``.

        Only for style ``"two"`` (``plain`` prompts are built by :func:`encode_conversation`).
        """
        if self.style != "two":
            raise ValueError(f"template {self.name!r} (style {self.style!r}) has no role-based rendering")
        seps = (self.sep, self.sep2)
        text = self.system + seps[0]
        for index, (role, message) in enumerate(messages):
            text += f"{role}: {message}{seps[index % 2]}" if message else f"{role}:"
        return text


PLAIN = ConversationTemplate(name="plain", style="plain", system="", roles=("", ""), sep="\n")
VICUNA_V1 = ConversationTemplate(
    name="vicuna_v1",
    style="two",
    system="A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions.",
    roles=("USER", "ASSISTANT"),
    sep=" ",
    sep2="</s>",
)
TEMPLATES: Mapping[str, ConversationTemplate] = {"plain": PLAIN, "vicuna_v1": VICUNA_V1, "v1": VICUNA_V1}
"""Named templates (``v1`` is LLaVA's alias of ``vicuna_v1``)."""


def get_template(template: str | ConversationTemplate) -> ConversationTemplate:
    """Look a template up by name (a template passes through)."""
    if isinstance(template, ConversationTemplate):
        return template
    if template not in TEMPLATES:
        raise ValueError(f"unknown conversation template {template!r}; known: {sorted(TEMPLATES)}")
    return TEMPLATES[template]


@dataclass(frozen=True)
class EncodedConversation:
    """A tokenised conversation with one placeholder per image (not yet expanded)."""

    input_ids: torch.Tensor
    """(L,) token ids."""
    labels: torch.Tensor
    """(L,) targets, -100 where not supervised."""
    prompt: str
    """The text that was tokenised."""
    mismatch: bool = False
    """True when the mismatch guard masked the whole sample."""


def _turns_of(record: Mapping | Sequence, record_id: str) -> list[dict]:
    turns = record.get("conversations") if isinstance(record, Mapping) else record
    if isinstance(turns, Sequence) and turns and all(isinstance(t, Turn) for t in turns):
        turns = [{"from": t.role, "value": t.value} for t in turns]  # vlzoo.data.read_llava_json's turns
    if not isinstance(turns, Sequence) or isinstance(turns, str) or not turns:
        raise ValueError(f"record {record_id}: 'conversations' must be a non-empty list of turns, got {turns!r}")
    for index, turn in enumerate(turns):
        if not isinstance(turn, Mapping) or turn.get("from") not in (HUMAN, GPT) or not isinstance(
            turn.get("value"), str
        ):
            raise ValueError(
                f"record {record_id}, turn {index}: expected {{'from': 'human'|'gpt', 'value': str}}, got {turn!r}"
            )
    return [dict(turn) for turn in turns]


def normalize_image_placement(turns: Sequence[Mapping]) -> list[dict]:
    """Move ``<image>`` to the front of every turn that has one: ``"<image>\\n" + rest`` (then stripped)."""
    out = []
    for turn in turns:
        turn = dict(turn)
        if IMAGE_TOKEN in turn["value"]:
            rest = turn["value"].replace(IMAGE_TOKEN, "").strip()
            turn["value"] = (IMAGE_TOKEN + "\n" + rest).strip()
        out.append(turn)
    return out


def _role_messages(turns: list[dict], template: ConversationTemplate, record_id: str) -> list[tuple[str, str]]:
    if turns[0]["from"] != HUMAN:
        turns = turns[1:]  # LLaVA skips a leading assistant turn
    messages = []
    for index, turn in enumerate(turns):
        expected = (HUMAN, GPT)[index % 2]
        if turn["from"] != expected:
            raise ValueError(
                f"record {record_id}: turn {index} is from {turn['from']!r} but turns must alternate human/gpt"
            )
        messages.append((template.roles[index % 2], turn["value"]))
    return messages


def build_prompt(
    turns: Sequence[Mapping],
    template: str | ConversationTemplate = "vicuna_v1",
    add_generation_prompt: bool = True,
    has_image: bool = True,
) -> str:
    """The text prompt for generation: the turns, then an open assistant turn (``" ASSISTANT:"``).

    For ``plain`` the prompt is ``"<image>"`` (what the model saw before the caption in stage 1).
    """
    template = get_template(template)
    turns = _turns_of(turns, "<prompt>")
    if template.style == "plain":
        return IMAGE_TOKEN
    if has_image:
        turns = normalize_image_placement(turns)
    messages = _role_messages(turns, template, "<prompt>")
    if add_generation_prompt:
        messages.append((template.roles[1], None))
    return template.render(messages)


def encode_conversation(
    turns: Sequence[Mapping],
    tokenizer,
    template: str | ConversationTemplate,
    image_token_id: int,
    has_image: bool,
    max_length: int | None = None,
    record_id: str = "?",
) -> EncodedConversation:
    """Tokenise one conversation and mask its labels as LLaVA does (see the module docstring).

    Args:
        turns: ``[{"from": "human"|"gpt", "value": str}, ...]``.
        tokenizer: HF tokenizer that adds BOS (LLaMA-like); ``sep2`` must be its EOS text.
        template: ``"plain"``, ``"vicuna_v1"`` or a :class:`ConversationTemplate`.
        image_token_id: the ``<image>`` placeholder id.
        has_image: whether the sample has an image (normalises ``<image>`` placement; ``plain`` needs it).
        max_length: truncate ids and labels to this many tokens (before the image expansion, as LLaVA's
            collator does); the mismatch guard is skipped for truncated samples.
        record_id: named in errors and warnings.
    """
    template = get_template(template)
    turns = _turns_of(turns, record_id)
    if has_image:
        turns = normalize_image_placement(turns)

    def tokens(text: str) -> list[int]:
        return tokenizer_image_token(text, tokenizer, image_token_id)

    if template.style == "plain":
        if len(turns) != 2 or IMAGE_TOKEN not in turns[0]["value"]:
            raise ValueError(
                f"record {record_id}: the plain template needs exactly 2 turns, the first with {IMAGE_TOKEN}; "
                f"got {len(turns)} turns"
            )
        prompt = IMAGE_TOKEN + turns[1]["value"] + template.sep
        ids = tokens(prompt)
        labels = list(ids)
        n_prefix = len(tokens(IMAGE_TOKEN))
        labels[:n_prefix] = [IGNORE_INDEX] * min(n_prefix, len(labels))
        mismatch = False
    else:
        _check_tokenizer_for_two(tokenizer, template)
        prompt = template.render(_role_messages(turns, template, record_id))
        ids = tokens(prompt)
        labels, mismatch = _mask_two(prompt, ids, tokens, template, max_length, record_id)

    if max_length is not None:
        ids, labels = ids[:max_length], labels[:max_length]
    return EncodedConversation(
        input_ids=torch.tensor(ids, dtype=torch.long),
        labels=torch.tensor(labels, dtype=torch.long),
        prompt=prompt,
        mismatch=mismatch,
    )


def _check_tokenizer_for_two(tokenizer, template: ConversationTemplate) -> None:
    """Style-TWO masking counts a BOS per round and needs ``sep2`` to be the EOS token."""
    bos = tokenizer.bos_token_id
    if bos is None or tokenizer("").input_ids[:1] != [bos]:
        raise ValueError(
            f"template {template.name!r} masks labels with LLaVA's per-round arithmetic, which needs a tokenizer "
            f"that prepends BOS (LLaMA/Vicuna-like); {type(tokenizer).__name__} does not"
        )
    if tokenizer.convert_tokens_to_ids(template.sep2) != tokenizer.eos_token_id:
        raise ValueError(
            f"template {template.name!r} ends assistant turns with {template.sep2!r}, which must be the tokenizer's "
            f"EOS token (the tokenizer's EOS is {tokenizer.eos_token!r})"
        )


def _mask_two(prompt, ids, tokens, template, max_length, record_id) -> tuple[list[int], bool]:
    """LLaVA ``preprocess_v1`` masking of a style-TWO prompt; returns (labels, mismatch)."""
    labels = list(ids)
    answer_start = template.sep + template.roles[1] + ": "
    cursor = 1
    labels[:cursor] = [IGNORE_INDEX] * cursor  # BOS
    for round_text in prompt.split(template.sep2):
        if round_text == "":
            break
        parts = round_text.split(answer_start)
        if len(parts) != 2:
            break
        round_len = len(tokens(round_text))
        instruction_len = len(tokens(parts[0] + answer_start)) - 2
        end = min(cursor + max(instruction_len, 0), len(labels))
        labels[cursor:end] = [IGNORE_INDEX] * max(end - cursor, 0)
        cursor += round_len
    labels[cursor:] = [IGNORE_INDEX] * max(len(labels) - cursor, 0)
    if (max_length is None or cursor < max_length) and cursor != len(ids):
        warnings.warn(
            f"record {record_id}: tokenization mismatch: the rounds add up to {cursor} tokens but the "
            f"conversation has {len(ids)}; the whole sample is masked",
            TokenizationMismatchWarning,
            stacklevel=3,
        )
        return [IGNORE_INDEX] * len(ids), True
    return labels, False


def encode_record(
    record: Mapping | LlavaRecord,
    tokenizer,
    template: str | ConversationTemplate,
    image_token_id: int,
    max_length: int | None = None,
) -> EncodedConversation:
    """Encode one LLaVA record: a :class:`vlzoo.data.LlavaRecord` (from ``read_llava_json``) or the raw
    JSON dict ``{"id", "image"?, "conversations": [...]}``; the sample has an image iff it lists one."""
    if isinstance(record, LlavaRecord):
        record_id, turns, has_image = str(record.id), record.conversations, not record.is_text_only
    elif isinstance(record, Mapping):
        record_id = str(record.get("id", "?"))
        turns, has_image = _turns_of(record, record_id), "image" in record
    else:
        raise ValueError(f"a LLaVA record must be a LlavaRecord or a dict, got {type(record).__name__}")
    return encode_conversation(
        turns, tokenizer, template, image_token_id, has_image=has_image, max_length=max_length,
        record_id=record_id,
    )
