"""Build, train (two stages, HF Trainer + optional DeepSpeed) and evaluate TokenPacker models; no argparse.

Spec tokenpacker.md §5 (recipe) and §7.1 (evaluation protocol). The stages, as the official scripts:

- **stage 1** (``pretrain.sh``): CLIP and LLM frozen, only the projector trains on ``plain`` captions; the
  artefact is ``<out>/stage1/projector.safetensors`` (official ``mm_projector.bin``).
- **stage 2** (``finetune.sh``): the projector starts from stage 1, projector + LLM train (or LoRA adapters on
  the LLM linears, merged before saving) on ``vicuna_v1`` conversations; the artefact is the HF folder
  ``<out>/stage2`` (``from_pretrained`` loads it with its tokenizer).

Evaluation generates greedy answers (KV cache, left-padded batches) and writes the official answer JSONL
(``question_id, prompt, text, answer_id, model_id, metadata``); ``tokenpacker.scoring`` scores it.
TPS follows the paper's definition [issue #13]: generated tokens (EOS included) over the wall time of
``generate()``.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from tokenpacker.config import ModelConfig, ProjectorSection, StageConfig, TokenPackerConfig
from tokenpacker.data import ImagePipeline, LlavaSupervisedDataset, QuestionDataset, make_collator
from tokenpacker.hd import separator_token_ids
from tokenpacker.modeling import TokenPackerLlavaForConditionalGeneration
from vlzoo.data import read_llava_json, write_jsonl
from vlzoo.mllm import (
    PROJECTOR_FILE,
    add_image_token,
    apply_lora,
    build_llava,
    build_trainer,
    deepspeed_config,
    freeze_for_stage1,
    load_projector,
    make_training_args,
    merge_lora,
    set_trainable,
)
from vlzoo.paths import cache_dir, require_dir
from vlzoo.run import MetricsLog, RunDir, seed_everything

__all__ = [
    "GenerationResult",
    "build_model",
    "evaluate",
    "image_pipeline",
    "stage_dataset",
    "write_answers",
    "fit",
    "generate_answers",
    "load_tokenizer",
    "load_trained",
    "resolve_towers",
    "toy_vision_tower",
    "train_stage",
]

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------- towers


def toy_vision_tower(kind: str = "pretrained", seed: int = 0) -> Path:
    """The toy CLIP ViT (96 px, patch 8: a 12x12 grid) as an HF folder.

    Args:
        kind: "pretrained": the toy CLIP of ``vlzoo.toyworld.pretrain.toy_hf_clip_path()`` (trained on first
            use and cached by that module); "random": a ``vlzoo-tiny-vit`` initialised from ``seed`` and
            converted to HF (cached under ``cache_dir("tokenpacker")``).
        seed: initialisation seed of the random tower.
    """
    if kind == "pretrained":
        try:  # imported on use: the pretrained toy CLIP is optional until it is built
            from vlzoo.toyworld.pretrain import toy_hf_clip_path
        except ImportError as exc:
            raise ImportError(
                "model.toy_vision_tower=pretrained needs vlzoo.toyworld.pretrain.toy_hf_clip_path "
                f"({exc}); use model.toy_vision_tower=random for the random-initialised toy ViT"
            ) from exc
        return Path(toy_hf_clip_path())
    if kind != "random":
        raise ValueError(f"toy_vision_tower must be 'pretrained' or 'random', got {kind!r}")
    folder = cache_dir("tokenpacker", f"random-vlzoo-tiny-vit-seed{seed}")
    if not (folder / "config.json").is_file():
        from vlzoo.clip import create_clip, save_hf_clip

        torch.manual_seed(seed)
        save_hf_clip(create_clip("vlzoo-tiny-vit"), folder, tokenizer=False)
    return folder


def resolve_towers(model_cfg: ModelConfig) -> tuple[Path, Path, Path]:
    """(language model, tokenizer, vision tower) folders; "" picks the toy ones (trained/cached on first use).

    The toy LM is pretrained on the text of an independent toy world (``vlzoo.toyworld.lm.LM_WORLD_SEED``), never
    on the conversations of the images the MLLM is tuned on.
    """
    if model_cfg.language_model:
        lm = require_dir(model_cfg.language_model, "language model")
    else:
        from vlzoo.toyworld.lm import ToyLMConfig, toy_language_model

        section = model_cfg.toy_lm
        lm = toy_language_model(
            ToyLMConfig(
                hidden_size=section.hidden_size,
                intermediate_size=section.intermediate_size,
                num_hidden_layers=section.num_hidden_layers,
                num_attention_heads=section.num_attention_heads,
                num_key_value_heads=section.num_attention_heads,
                steps=section.steps,
                batch_size=section.batch_size,
                block_size=section.block_size,
                vocab_size=section.vocab_size,
            ),
        )
    tokenizer = require_dir(model_cfg.tokenizer, "tokenizer") if model_cfg.tokenizer else lm
    if model_cfg.vision_tower:
        vision = require_dir(model_cfg.vision_tower, "vision tower")
    else:
        vision = toy_vision_tower(model_cfg.toy_vision_tower)
    return lm, tokenizer, vision


def load_tokenizer(folder: str | os.PathLike):
    """A local HF tokenizer with ``<image>`` added and pad = ``<unk>`` when it has no pad (LLaVA)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.unk_token
    add_image_token(tokenizer)
    return tokenizer


def _projector_kwargs(section: ProjectorSection) -> dict:
    """The ``projector_kwargs`` stored in the model config (JSON-safe; widths/grid come from the towers)."""
    if section.name == "mlp2x_gelu":
        return {}
    kwargs: dict = {"num_heads": section.num_heads, "attention": section.attention}
    if section.name != "mlp":
        kwargs["scale_factor"] = section.scale_factor
    optional = {
        "embed_dim": section.embed_dim,
        "resampler_dim": section.resampler_dim,
        "abstractor_dim": section.abstractor_dim,
    }
    kwargs.update({k: v for k, v in optional.items() if v is not None})
    kwargs["abstractor_depth"] = section.abstractor_depth
    return kwargs


def build_model(
    cfg: TokenPackerConfig, tokenizer, language_model: str | os.PathLike, vision_tower: str | os.PathLike
) -> TokenPackerLlavaForConditionalGeneration:
    """The MLLM: pretrained LM + pretrained CLIP (both from local folders) + a fresh projector.

    The projector is initialised from ``cfg.seed`` (so every projector of a comparison starts from the same
    random stream); the vision tower is frozen.
    """
    separators = None
    if cfg.model.image_aspect_ratio == "slice":
        separators = list(separator_token_ids(tokenizer, cfg.model.hd_newline))
    torch.manual_seed(cfg.seed)
    layers = list(cfg.projector.feature_layers)
    return build_llava(
        language_model,
        vision_tower,
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        vocab_size=len(tokenizer),
        model_class=TokenPackerLlavaForConditionalGeneration,
        projector_type=cfg.projector.name,
        projector_kwargs=_projector_kwargs(cfg.projector),
        vision_feature_layer=layers[0] if len(layers) == 1 else layers,
        attn_implementation=cfg.model.attn_implementation,
        dtype=getattr(torch, cfg.model.dtype),
        image_aspect_ratio=cfg.model.image_aspect_ratio,
        patch_num=cfg.model.patch_num,
        hd_separator_ids=separators,
    )


def image_pipeline(model, mode: str | None = None) -> ImagePipeline:
    """The image pipeline a model expects (its vision tower's input size and its ``image_aspect_ratio``)."""
    config = model.config
    return ImagePipeline(config.vision_config.image_size, mode or config.image_aspect_ratio, config.patch_num)


# -------------------------------------------------------------------------------------------- training


def _world() -> Path:
    from vlzoo.toyworld import default_world

    return default_world()


def _stage_data(stage: StageConfig, number: int) -> tuple[Path, Path]:
    if stage.data_path:
        return Path(stage.data_path), Path(stage.image_folder or Path(stage.data_path).parent)
    world = _world() / "train"
    name = "llava_pretrain.json" if number == 1 else "llava.json"
    return world / name, Path(stage.image_folder) if stage.image_folder else world / "images"


def stage_dataset(cfg: TokenPackerConfig, number: int, tokenizer, model) -> LlavaSupervisedDataset:
    """The training dataset of stage ``number`` (1 or 2)."""
    stage = cfg.stage1 if number == 1 else cfg.stage2
    data_path, image_folder = _stage_data(stage, number)
    records = read_llava_json(data_path)
    if stage.max_samples is not None:
        records = records[: stage.max_samples]
    # Stage 1 of the official recipe uses the 'square' processor; HD runs slice in both stages.
    mode = "square" if number == 1 and cfg.model.image_aspect_ratio == "pad" else None
    dataset = LlavaSupervisedDataset(
        records,
        image_folder,
        tokenizer,
        stage.template,
        image_token_id=model.config.image_token_id,
        tokens_per_crop=model.num_image_tokens(),
        pipeline=image_pipeline(model, mode),
        max_length=cfg.model.max_length,
    )
    if stage.group_by_length:
        dataset.group_by_length(stage.per_device_batch_size * stage.gradient_accumulation_steps, cfg.seed)
    return dataset


def _training_args(cfg: TokenPackerConfig, stage: StageConfig, out: Path):
    deepspeed = None
    if stage.deepspeed:
        if stage.deepspeed in ("zero2", "zero3", "zero3_offload"):
            deepspeed = deepspeed_config(stage.deepspeed, torch_adam=stage.deepspeed_torch_adam)
        else:
            deepspeed = json.loads(Path(stage.deepspeed).read_text())
    extra = {}
    if not torch.cuda.is_available():
        extra["use_cpu"] = True
        if stage.deepspeed:
            extra["ddp_backend"] = "gloo"
    return make_training_args(
        out,
        learning_rate=stage.learning_rate,
        per_device_train_batch_size=stage.per_device_batch_size,
        num_train_epochs=stage.num_epochs,
        max_steps=stage.max_steps,
        gradient_accumulation_steps=stage.gradient_accumulation_steps,
        deepspeed=deepspeed,
        bf16=stage.bf16,
        gradient_checkpointing=stage.gradient_checkpointing,
        save_steps=max(stage.save_steps, 1),
        logging_steps=1,
        warmup_steps=stage.warmup_ratio,
        lr_scheduler_type=stage.lr_scheduler,
        weight_decay=stage.weight_decay,
        seed=cfg.seed,
        data_seed=cfg.seed,
        dataloader_num_workers=stage.dataloader_workers,
        disable_tqdm=os.environ.get("VLZOO_NO_PROGRESS", "0") not in ("", "0"),
        save_only_model=True,
        **({"save_strategy": "no"} if stage.save_steps <= 0 else {}),
        **({"train_sampling_strategy": "sequential"} if stage.group_by_length else {}),
        **extra,
    )


def train_stage(cfg: TokenPackerConfig, number: int, model, tokenizer, out: Path) -> dict:
    """Train one stage with HF Trainer; save its artefact into ``out``; return {losses, steps, seconds}.

    Stage 1 writes ``out/projector.safetensors``; stage 2 writes the full model + tokenizer into ``out``.
    """
    stage = cfg.stage1 if number == 1 else cfg.stage2
    seed_everything(cfg.seed)
    dataset = stage_dataset(cfg, number, tokenizer, model)
    if number == 1:
        freeze_for_stage1(model)
        trained = model
    elif stage.lora:
        set_trainable(model, projector=True, language_model=False, vision_tower=False)
        trained = apply_lora(model, r=stage.lora_r, alpha=stage.lora_alpha, dropout=stage.lora_dropout)
    else:
        set_trainable(model, projector=True, language_model=True, vision_tower=False)
        trained = model
    model.train()
    trainer = build_trainer(
        trained,
        _training_args(cfg, stage, out),
        dataset,
        make_collator(tokenizer, dataset.pipeline),
        save_projector_checkpoints=number == 1,
    )
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    model.eval()
    final = model
    if number == 2:
        if stage.lora:
            final = merge_lora(trained)  # a plain model again: from_pretrained needs no peft
            if trainer.is_world_process_zero():
                final.save_pretrained(out)
        else:
            trainer.save_model(str(out))  # gathers ZeRO-3 shards when configured to
        if trainer.is_world_process_zero():
            tokenizer.save_pretrained(out)
    trainer.accelerator.wait_for_everyone()  # rank 0's files are complete before any rank reads them
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    if trainer.is_world_process_zero():
        log = MetricsLog(out / "metrics.jsonl")
        for step, loss in enumerate(losses, 1):
            log.write(step=step, loss=loss)
        log.plot()
    return {"losses": losses, "steps": trainer.state.global_step, "seconds": seconds, "model": final}


def fit(cfg: TokenPackerConfig) -> dict:
    """Run the configured stages into ``cfg.output_dir`` (config.yaml, stage1/, stage2/); return a summary.

    Returns:
        ``{"stage1": {...}, "stage2": {...}, "model_dir": path of the stage-2 folder (or None)}`` with each
        stage's losses, step count and seconds.
    """
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    run = RunDir.create(cfg.output_dir, cfg)
    lm, tokenizer_dir, vision = resolve_towers(cfg.model)
    tokenizer = load_tokenizer(tokenizer_dir)
    model = build_model(cfg, tokenizer, lm, vision)
    summary: dict = {"model_dir": None}
    if 1 in cfg.stages:
        result = train_stage(cfg, 1, model, tokenizer, run.path / "stage1")
        summary["stage1"] = {k: v for k, v in result.items() if k != "model"}
    if 2 in cfg.stages:
        if 1 in cfg.stages and cfg.stage2.projector_checkpoint:
            raise ValueError("stage2.projector_checkpoint is for a stage-2-only run; this run trains stage 1 too")
        checkpoint = cfg.stage2.projector_checkpoint or run.path / "stage1" / PROJECTOR_FILE
        if 1 in cfg.stages:
            # A fresh model, as a separate stage-2 call would build: a DeepSpeed engine of stage 1 leaves its
            # gradient hooks on the projector parameters, which a second engine must not inherit.
            del model
            model = build_model(cfg, tokenizer, lm, vision)
        load_projector(model, checkpoint)
        result = train_stage(cfg, 2, model, tokenizer, run.path / "stage2")
        summary["stage2"] = {k: v for k, v in result.items() if k != "model"}
        summary["model_dir"] = str(run.path / "stage2")
    (run.path / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def load_trained(folder: str | os.PathLike, dtype: torch.dtype | None = None):
    """(model, tokenizer) from a stage-2 folder (or any ``save_pretrained`` TokenPacker-LLaVA folder)."""
    from transformers import AutoTokenizer

    folder = require_dir(folder, "TokenPacker model", "Train one with tokenpacker-train")
    model = TokenPackerLlavaForConditionalGeneration.from_pretrained(str(folder), dtype=dtype or torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    if tokenizer.convert_tokens_to_ids("<image>") != model.config.image_token_id:
        raise ValueError(f"{folder}: the tokenizer's <image> id differs from the model's image_token_id")
    return model.eval(), tokenizer


# ------------------------------------------------------------------------------------------ generation


class GenerationResult(dict):
    """``answers`` (official answer lines), ``generated_tokens``, ``generate_seconds``, ``tokens_per_second``."""


def _answer_id(model_id: str, question_id) -> str:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"{model_id}/{question_id}").hex[:22]


@torch.no_grad()
def generate_answers(
    model,
    tokenizer,
    questions: Sequence[Mapping],
    image_folder: str | os.PathLike,
    *,
    template: str = "vicuna_v1",
    batch_size: int = 16,
    max_new_tokens: int = 128,
    model_id: str = "tokenpacker",
    show_progress: bool = False,
) -> GenerationResult:
    """Greedy answers for LLaVA question lines, in the official answer-file format.

    Args:
        model: a TokenPacker-LLaVA model (eval mode).
        tokenizer: its tokenizer.
        questions: lines with ``question_id``, ``image`` (relative to ``image_folder``), ``text``.
        template: prompt template (official: vicuna_v1).
        batch_size: questions per ``generate`` call (left padding; official: 1).
        max_new_tokens: generation limit (official: 128).

    Returns:
        :class:`GenerationResult` with one answer line per question (in order) and the TPS statistics.
    """
    from vlzoo.run import progress

    dataset = QuestionDataset(
        questions, image_folder, tokenizer, template, model.config.image_token_id, model.num_image_tokens(),
        image_pipeline(model),
    )
    collate = make_collator(tokenizer, dataset.pipeline, padding_side="left")
    eos = tokenizer.eos_token_id
    answers: list[dict] = []
    generated = 0
    seconds = 0.0
    batches = range(0, len(dataset), batch_size)
    for start in progress(batches, desc="generate") if show_progress else batches:
        indices = range(start, min(start + batch_size, len(dataset)))
        batch = collate([dataset[i] for i in indices])
        batch.pop("labels", None)
        width = batch["input_ids"].shape[1]
        began = time.perf_counter()
        output = model.generate(
            **batch, max_new_tokens=max_new_tokens, do_sample=False, num_beams=1, use_cache=True,
            eos_token_id=eos, pad_token_id=tokenizer.pad_token_id,
        )
        seconds += time.perf_counter() - began
        for row, index in zip(output[:, width:], indices):
            tokens = row.tolist()
            length = tokens.index(eos) + 1 if eos in tokens else len(tokens)
            generated += length
            question = dataset.questions[index]
            answers.append({
                "question_id": question["question_id"],
                "prompt": question["text"],
                "text": tokenizer.decode(tokens[:length], skip_special_tokens=True).strip(),
                "answer_id": _answer_id(model_id, question["question_id"]),
                "model_id": model_id,
                "metadata": {},
            })
    return GenerationResult(
        answers=answers,
        generated_tokens=generated,
        generate_seconds=seconds,
        tokens_per_second=generated / seconds if seconds > 0 else float("nan"),
    )


def write_answers(answers: Sequence[Mapping], path: str | os.PathLike) -> Path:
    """Write answer lines as JSONL (atomically)."""
    return write_jsonl(path, answers)


def evaluate(cfg: TokenPackerConfig, out_dir: str | os.PathLike | None = None) -> dict:
    """Generate answers for ``cfg.eval`` and score them; write ``answers.jsonl`` and ``scores.json``.

    The model is ``cfg.eval.model_dir`` (default ``<output_dir>/stage2``); toy defaults fill the question file,
    image folder and gold. Files go to ``out_dir`` (default ``<output_dir>/eval/<benchmark>``).

    Returns:
        ``{"scores": ..., "tokens_per_second": ..., "generated_tokens": ..., "questions": n, "answers": path}``.
    """
    from tokenpacker.data import subset_per_category
    from tokenpacker.scoring import load_questions, score_benchmark

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    spec = cfg.eval
    model_dir = Path(spec.model_dir or Path(cfg.output_dir) / "stage2")
    out = Path(out_dir or Path(cfg.output_dir) / "eval" / spec.benchmark)
    question_file, image_folder, gold = spec.question_file, spec.image_folder, spec.gold
    if not question_file:
        if spec.benchmark != "toy":
            raise ValueError(f"eval.question_file is required for benchmark {spec.benchmark!r}")
        val = _world() / "val"
        question_file, image_folder = val / "vqa_questions.jsonl", image_folder or val / "images"
        gold = gold or val / "vqa_answers.jsonl"
    if spec.benchmark in ("ocrbench", "mmbench") and not gold:
        gold = question_file
    image_folder = image_folder or Path(question_file).parent
    questions = subset_per_category(load_questions(spec.benchmark, question_file), spec.questions_per_category,
                                    cfg.seed)
    model, tokenizer = load_trained(model_dir)
    result = generate_answers(
        model, tokenizer, questions, image_folder, template=spec.template, batch_size=spec.batch_size,
        max_new_tokens=spec.max_new_tokens, model_id=spec.model_id,
        show_progress=os.environ.get("VLZOO_NO_PROGRESS", "0") in ("", "0"),
    )
    answers_path = write_answers(result["answers"], out / "answers.jsonl")
    scores = score_benchmark(spec.benchmark, result["answers"], questions, gold or None, out)
    summary = {
        "benchmark": spec.benchmark,
        "model_dir": str(model_dir),
        "questions": len(questions),
        "scores": scores,
        "generated_tokens": result["generated_tokens"],
        "generate_seconds": result["generate_seconds"],
        "tokens_per_second": result["tokens_per_second"],
        "answers": str(answers_path),
    }
    (out / "scores.json").write_text(json.dumps(summary, indent=2, default=float) + "\n")
    return summary
