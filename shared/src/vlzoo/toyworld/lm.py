"""The toy language model: a LLaMA-like BPE tokenizer and a small ``LlamaForCausalLM`` pretrained on toy text.

LLaVA-style MLLMs start from a *pretrained* LM (Vicuna); no weights can be downloaded here, so the toy
world gets its own: a byte-level-fallback BPE tokenizer built offline with ``tokenizers`` and a small LLaMA
trained as a plain causal LM on toy text (captions, conversations with their answers, detailed descriptions,
the text-only sentences; no images) for a fixed number of steps on the CPU. The text comes from an
*independent* toy world (seed :data:`LM_WORLD_SEED`): an LM pretrained on the very conversations an MLLM is
then tuned on memorises their answers, and the tuning stops needing the image (measured: a v1 toy LM trained on
the default world's own text left every projector at chance on the val questions, with the loss unchanged when
the images of a batch were shuffled).

Tokenizer, LLaMA-like on purpose (the ``vicuna_v1`` masking arithmetic and TokenPacker-HD's separator-id
gotcha both depend on it):

- specials ``<unk>`` (0, also the pad), ``<s>`` (1, BOS, prepended to every text), ``</s>`` (2, EOS, matched
  inside text so ``vicuna_v1``'s ``sep2`` is one token);
- the 256 byte pieces ``<0x00>``..``<0xFF>`` (ids 3..258) with byte fallback, so any text encodes;
  the corpus is split into lines, so ``"\\n"`` is not a piece and encodes as ``<0x0A>`` exactly as in the
  LLaMA vocabulary (``convert_tokens_to_ids("\\n")`` gives ``<unk>``);
- a ``Metaspace`` pre-tokenizer (``"▁"`` word prefix, prepended to every section, also after ``</s>``, as
  the legacy LLaMA tokenizer LLaVA trained with), so a trailing space is a lone ``"▁"``;
- BPE merges learned on the corpus, vocabulary size :attr:`ToyLMConfig.vocab_size`.

Model: ``LlamaForCausalLM`` (RMSNorm, SwiGLU, RoPE) of :class:`ToyLMConfig` size, trained on packed
blocks of the corpus (documents separated by ``</s>``) with AdamW and a cosine schedule; the step count,
not the wall clock, fixes the run, so the same seed gives the same weights.

Usage::

    from vlzoo.toyworld.lm import toy_language_model
    folder = toy_language_model()          # cached; trained on first use (about 2 minutes on 2 cores)
    tokenizer = AutoTokenizer.from_pretrained(folder); model = AutoModelForCausalLM.from_pretrained(folder)

    python -m vlzoo.toyworld.lm [--force] [--steps N]     # train (or reuse) and print the report

Cached in ``cache_dir("toylm", <key>)``; the key hashes the world, this config and :data:`LM_RECIPE`, so a
changed recipe retrains. The folder is written into a temporary sibling and renamed into place with
``report.json`` last, so a half-written model is never reused.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from vlzoo.mllm.conversation import VICUNA_V1

__all__ = [
    "BYTE_PIECES",
    "LM_RECIPE",
    "LM_WORLD_SEED",
    "SPECIAL_TOKENS",
    "ToyLMConfig",
    "build_toy_tokenizer",
    "pretrain_toy_lm",
    "toy_language_model",
    "toy_lm_key",
    "toy_text_corpus",
]

LM_RECIPE = "toylm-v2"
"""Version of the tokenizer + pretraining recipe; part of the cache key."""
LM_WORLD_SEED = 1
"""Seed of the toy world whose text the default toy LM is pretrained on: an independent world, not the default
one (seed 0) whose images and conversations the MLLMs are trained and evaluated on."""
SPECIAL_TOKENS = ("<unk>", "<s>", "</s>")
"""LLaMA's specials, ids 0, 1, 2."""
BYTE_PIECES = tuple(f"<0x{b:02X}>" for b in range(256))
"""SentencePiece-style byte-fallback pieces, ids 3..258 (LLaMA's layout)."""
_REPORT = "report.json"


@dataclass
class ToyLMConfig:
    """Sizes and pretraining recipe of the toy LM (defaults: the cached toy LM the papers use)."""

    vocab_size: int = 1024
    """Target BPE vocabulary size, including the 3 specials and 256 byte pieces."""
    hidden_size: int = 256
    """LLaMA width."""
    intermediate_size: int = 688
    """SwiGLU inner width (about 8/3 of the width, as LLaMA)."""
    num_hidden_layers: int = 4
    """Decoder blocks."""
    num_attention_heads: int = 4
    """Attention heads (head dim = hidden_size / heads)."""
    num_key_value_heads: int = 4
    """KV heads (= heads: plain multi-head attention, as LLaMA-2 7B/13B)."""
    max_position_embeddings: int = 2048
    """RoPE positions the model is configured for (LLaVA sequences reach a few hundred toy tokens)."""
    steps: int = 600
    """Optimizer steps (fixes the run; about 2 minutes on 2 CPU cores at the default sizes)."""
    batch_size: int = 32
    """Blocks per step."""
    block_size: int = 128
    """Tokens per training block (the corpus is packed, documents separated by ``</s>``)."""
    learning_rate: float = 1e-3
    """Peak AdamW learning rate (linear warmup over 5 % of the steps, cosine to 10 %)."""
    weight_decay: float = 0.1
    """AdamW weight decay."""
    seed: int = 0
    """Seeds the initialisation and the block order."""
    max_documents: int | None = None
    """Use at most this many corpus documents (None: all); for fast tests."""

    def __post_init__(self) -> None:
        if self.vocab_size < len(SPECIAL_TOKENS) + len(BYTE_PIECES) + 16:
            raise ValueError(f"ToyLMConfig.vocab_size {self.vocab_size} leaves no room for BPE merges (>= 275)")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"ToyLMConfig.hidden_size {self.hidden_size} is not divisible by num_attention_heads "
                f"{self.num_attention_heads}"
            )
        if self.steps < 1 or self.batch_size < 1 or self.block_size < 2:
            raise ValueError("ToyLMConfig.steps, batch_size must be >= 1 and block_size >= 2")


def _strip_image(text: str) -> str:
    return text.replace("<image>", "").strip()


def toy_text_corpus(world: str | os.PathLike, split: str = "train") -> list[str]:
    """The toy world's text of one split as documents.

    Documents: each COCO caption; each LLaVA record's conversation without its image, rendered in the
    ``vicuna_v1`` chat layout (``{system} USER: {q} ASSISTANT: {a}</s>USER: ...``: Vicuna is LLaMA tuned on
    text-only conversations in this layout, so the toy LM plays both roles); each text-only sentence
    (``texts.json``).

    Raises:
        FileNotFoundError: naming the missing world file.
    """
    folder = Path(world) / split
    needed = [folder / name for name in ("captions.json", "llava.json", "texts.json")]
    for path in needed:
        if not path.is_file():
            raise FileNotFoundError(f"toy world file not found: {path} (generate the world first)")
    documents = [ann["caption"] for ann in json.loads(needed[0].read_text())["annotations"]]
    for record in json.loads(needed[1].read_text()):
        turns = record["conversations"]
        roles = [VICUNA_V1.roles[turn["from"] == "gpt"] for turn in turns]
        documents.append(VICUNA_V1.render([(r, _strip_image(t["value"])) for r, t in zip(roles, turns)]))
    documents.extend(item["text"] for item in json.loads(needed[2].read_text()))
    return documents


def build_toy_tokenizer(documents: Iterable[str], vocab_size: int = 1024):
    """Train the LLaMA-like BPE tokenizer of the module docstring on ``documents``.

    Returns:
        A ``transformers.PreTrainedTokenizerFast`` with BOS/EOS/UNK/PAD set (pad = ``<unk>``, as LLaVA).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    # Lines, not documents: the corpus never shows "\n", so newline stays a byte piece (LLaMA's <0x0A>).
    lines = [line for doc in documents for line in doc.split("\n") if line.strip()]
    if not lines:
        raise ValueError("build_toy_tokenizer: the corpus is empty")
    pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    learner = Tokenizer(models.BPE(unk_token="<unk>"))
    learner.pre_tokenizer = pre_tokenizer
    reserved = len(SPECIAL_TOKENS) + len(BYTE_PIECES)
    learner.train_from_iterator(
        lines,
        trainers.BpeTrainer(
            vocab_size=vocab_size - reserved + len(SPECIAL_TOKENS),
            special_tokens=list(SPECIAL_TOKENS),
            initial_alphabet=sorted({ch for ch in "".join(chr(c) for c in range(32, 127))} | {"▁"}),
            show_progress=False,
        ),
    )
    learned = json.loads(learner.to_str())["model"]
    # Re-number: specials, then the byte pieces (LLaMA's ids 3..258), then the learned pieces in order.
    ordered = list(SPECIAL_TOKENS) + list(BYTE_PIECES)
    ordered += [p for p, _ in sorted(learned["vocab"].items(), key=lambda kv: kv[1]) if p not in SPECIAL_TOKENS]
    vocab = {piece: index for index, piece in enumerate(ordered)}
    merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in learned["merges"]]
    backend = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", byte_fallback=True))
    backend.pre_tokenizer = pre_tokenizer
    backend.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    backend.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", vocab["<s>"])]
    )
    backend.add_special_tokens(list(SPECIAL_TOKENS))
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<unk>",
        model_max_length=2048,
        padding_side="right",
    )


def _token_stream(tokenizer, documents: Sequence[str]) -> torch.Tensor:
    """All documents tokenised (BOS first) and joined, each followed by EOS: (T,) int64."""
    encoded = tokenizer(list(documents), add_special_tokens=True).input_ids
    eos = tokenizer.eos_token_id
    return torch.tensor([token for ids in encoded for token in (*ids, eos)], dtype=torch.long)


def _lr_at(step: int, cfg: ToyLMConfig) -> float:
    warmup = max(1, round(0.05 * cfg.steps))
    if step < warmup:
        return cfg.learning_rate * (step + 1) / warmup
    progress = (step - warmup) / max(1, cfg.steps - warmup)
    return cfg.learning_rate * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def pretrain_toy_lm(
    out: str | os.PathLike, world: str | os.PathLike, cfg: ToyLMConfig | None = None, show_progress: bool = True
) -> dict:
    """Build the tokenizer, pretrain the LM on the world's train text and save both to ``out``.

    Writes ``out/`` as an HF folder (``config.json``, ``model.safetensors``, tokenizer files) plus
    ``metrics.jsonl`` (loss per 10 steps) and ``report.json`` (config, first/last loss, held-out loss on
    the val text, wall time).

    Returns:
        The report dict.
    """
    from transformers import LlamaConfig, LlamaForCausalLM

    from vlzoo.run import MetricsLog, progress, seed_everything

    cfg = cfg or ToyLMConfig()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    seed_everything(cfg.seed)
    documents = toy_text_corpus(world, "train")
    if cfg.max_documents is not None:
        documents = documents[: cfg.max_documents]
    tokenizer = build_toy_tokenizer(documents, cfg.vocab_size)
    stream = _token_stream(tokenizer, documents)
    n_blocks = (stream.numel() - 1) // cfg.block_size
    if n_blocks < 1:
        raise ValueError(f"the toy corpus has {stream.numel()} tokens, fewer than one block of {cfg.block_size}")
    blocks = stream[: n_blocks * cfg.block_size + 1]
    val_documents = toy_text_corpus(world, "val")[: 2000]
    val_stream = _token_stream(tokenizer, val_documents)

    model = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=cfg.hidden_size,
            intermediate_size=cfg.intermediate_size,
            num_hidden_layers=cfg.num_hidden_layers,
            num_attention_heads=cfg.num_attention_heads,
            num_key_value_heads=cfg.num_key_value_heads,
            max_position_embeddings=cfg.max_position_embeddings,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            tie_word_embeddings=False,
        )
    )
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.learning_rate, betas=(0.9, 0.95),
    )
    generator = torch.Generator().manual_seed(cfg.seed)
    log = MetricsLog(out / "metrics.jsonl")
    losses: list[float] = []
    model.train()
    order = torch.randperm(n_blocks, generator=generator)
    cursor = 0
    bar = progress(range(cfg.steps), desc="toy LM pretrain") if show_progress else range(cfg.steps)
    for step in bar:
        if cursor + cfg.batch_size > n_blocks:
            order, cursor = torch.randperm(n_blocks, generator=generator), 0
        starts = order[cursor : cursor + cfg.batch_size] * cfg.block_size
        cursor += cfg.batch_size
        batch = torch.stack([blocks[s : s + cfg.block_size] for s in starts.tolist()])  # (B, block)
        for group in optimizer.param_groups:
            group["lr"] = _lr_at(step, cfg)
        loss = model(input_ids=batch, labels=batch).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
        if step % 10 == 0 or step == cfg.steps - 1:
            log.write(step=step, loss=losses[-1], lr=_lr_at(step, cfg))
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(loss=f"{losses[-1]:.3f}")
    model.eval()
    val_loss = _held_out_loss(model, val_stream, cfg.block_size)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    log.plot()
    report = {
        "recipe": LM_RECIPE,
        "config": dataclasses.asdict(cfg),
        "vocab_size": len(tokenizer),
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_tokens": int(stream.numel()),
        "first_loss": losses[0],
        "final_loss": sum(losses[-10:]) / len(losses[-10:]),
        "val_loss": val_loss,
        "wall_time_s": round(time.perf_counter() - started, 1),
        "torch_threads": torch.get_num_threads(),
    }
    (out / _REPORT).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    return report


@torch.no_grad()
def _held_out_loss(model, stream: torch.Tensor, block_size: int, max_blocks: int = 64) -> float:
    n_blocks = min(max_blocks, (stream.numel() - 1) // block_size)
    if n_blocks < 1:
        return float("nan")
    batch = stream[: n_blocks * block_size].reshape(n_blocks, block_size)
    return float(model(input_ids=batch, labels=batch).loss)


def toy_lm_key(world: str | os.PathLike, cfg: ToyLMConfig) -> str:
    """Cache key: recipe, world folder name and a hash of the config."""
    digest = hashlib.sha256(
        json.dumps({"recipe": LM_RECIPE, "config": dataclasses.asdict(cfg)}, sort_keys=True).encode()
    ).hexdigest()[:12]
    return f"{LM_RECIPE}_{Path(world).name}_{digest}"


def toy_language_model(
    cfg: ToyLMConfig | None = None,
    world: str | os.PathLike | None = None,
    force: bool = False,
    show_progress: bool = True,
) -> Path:
    """The cached toy LM folder (an HF ``LlamaForCausalLM`` + tokenizer), pretrained on first use.

    Args:
        cfg: sizes and recipe (default :class:`ToyLMConfig`).
        world: the toy world folder whose train text is the corpus (default: ``default_world(seed=LM_WORLD_SEED)``,
            a world independent of the default one, so the LM has never read the conversations of the images
            an MLLM is later tuned and evaluated on; the held-out loss uses its val text).
        force: retrain even when a cached model exists.
        show_progress: tqdm bar while training.

    Returns:
        ``cache_dir("toylm", toy_lm_key(world, cfg))``, loadable with ``from_pretrained``.
    """
    from vlzoo.paths import build_once, cache_dir
    from vlzoo.toyworld.generate import default_world

    cfg = cfg or ToyLMConfig()
    world = Path(world) if world is not None else default_world(seed=LM_WORLD_SEED, show_progress=show_progress)
    # Under the cache lock a second caller waits and reuses the first one's model: without it both trained,
    # and the later rename deleted the folder the first caller had returned (and might be reading).
    return build_once(
        cache_dir("toylm") / toy_lm_key(world, cfg),
        lambda p: (p / _REPORT).is_file(),
        lambda tmp: pretrain_toy_lm(tmp, world, cfg, show_progress=show_progress),
        force=force,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m vlzoo.toyworld.lm [--force] [--steps N]``: train (or reuse) the toy LM, print its report."""
    parser = argparse.ArgumentParser(prog="python -m vlzoo.toyworld.lm", description=__doc__.split("\n")[0])
    parser.add_argument("--force", action="store_true", help="retrain even if cached")
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps (default: ToyLMConfig)")
    args = parser.parse_args(argv)
    cfg = ToyLMConfig() if args.steps is None else ToyLMConfig(steps=args.steps)
    folder = toy_language_model(cfg, force=args.force)
    print(folder)
    print((folder / _REPORT).read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
