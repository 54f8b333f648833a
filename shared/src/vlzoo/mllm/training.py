"""HF ``Trainer`` integration: trainable parts per stage, projector-only checkpoints, DeepSpeed configs.

LLaVA-1.5 training (spec tokenpacker.md §5): stage 1 trains only the projector on captions (``plain``) and
saves only it; stage 2 loads it and trains projector + LM (CLIP stays frozen) on ``vicuna_v1``
conversations. Both use HF ``Trainer`` with DeepSpeed (ZeRO-2 for TokenPacker; ZeRO-3 / ZeRO-3-offload
also shipped), AdamW, cosine schedule, warmup ratio 0.03, weight decay 0.

DeepSpeed JSONs live in ``vlzoo/mllm/deepspeed_configs/``; every value ``Trainer`` also sets is ``"auto"``. On CPU
(gloo) add ``torch_adam`` so DeepSpeed does not JIT-compile its fused/CPU Adam:
``deepspeed_config("zero2", torch_adam=True)``.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save as safetensors_bytes
from torch import nn
from transformers import Trainer, TrainerCallback, TrainingArguments

from vlzoo.mllm.modeling import VlzooLlavaForConditionalGeneration
from vlzoo.paths import require_file
from vlzoo.run import atomic_write_bytes

__all__ = [
    "DEEPSPEED_CONFIGS",
    "PROJECTOR_FILE",
    "SaveProjectorCallback",
    "build_trainer",
    "deepspeed_config",
    "deepspeed_config_path",
    "freeze_for_stage1",
    "load_projector",
    "make_training_args",
    "projector_state_dict",
    "save_projector",
    "set_trainable",
    "trainable_parameter_names",
]

DEEPSPEED_CONFIGS = ("zero2", "zero3", "zero3_offload")
PROJECTOR_FILE = "projector.safetensors"
_PROJECTOR_FORMAT = "vlzoo.mllm.projector"
# transformers 5.x renamed ``gradient_checkpointing`` to ``activation_checkpointing`` (the old name warns)
_CHECKPOINTING_FIELD = (
    "activation_checkpointing" if "activation_checkpointing" in TrainingArguments.__dataclass_fields__
    else "gradient_checkpointing"
)


def _unwrap(model) -> VlzooLlavaForConditionalGeneration:
    """The MLLM inside a DeepSpeed engine / DDP wrapper / peft ``PeftModel``."""
    for _ in range(8):  # peft → LoraModel → model; engine.module; never loops on a self-returning wrapper
        if hasattr(model, "get_base_model"):
            inner = model.get_base_model()
        elif isinstance(getattr(model, "module", None), nn.Module):
            inner = model.module
        else:
            break
        if inner is model:
            break
        model = inner
    if not hasattr(model, "model") or not hasattr(model.model, "multi_modal_projector"):
        raise TypeError(f"expected a LLaVA-style model with model.multi_modal_projector, got {type(model).__name__}")
    return model


def set_trainable(model, *, projector: bool, language_model: bool, vision_tower: bool = False) -> None:
    """Set ``requires_grad`` per part: projector, language model (incl. ``lm_head``), vision tower."""
    model = _unwrap(model)
    model.model.multi_modal_projector.requires_grad_(projector)
    model.model.language_model.requires_grad_(language_model)
    model.lm_head.requires_grad_(language_model)
    model.model.vision_tower.requires_grad_(vision_tower)


def freeze_for_stage1(model) -> None:
    """Stage 1 ("projector only", LLaVA's ``--tune_mm_mlp_adapter``): only the projector gets gradients."""
    set_trainable(model, projector=True, language_model=False, vision_tower=False)


def trainable_parameter_names(model: nn.Module) -> list[str]:
    """Names of the parameters that require grad."""
    return [name for name, p in model.named_parameters() if p.requires_grad]


@contextlib.contextmanager
def _gathered(module: nn.Module, modifier_rank: int | None = None):
    """Gather ZeRO-3-partitioned parameters of ``module`` (no-op when they are not partitioned)."""
    partitioned = [p for p in module.parameters() if hasattr(p, "ds_id")]
    if not partitioned:
        yield
        return
    import deepspeed

    with deepspeed.zero.GatheredParameters(partitioned, modifier_rank=modifier_rank):
        yield


def projector_state_dict(model) -> dict[str, torch.Tensor]:
    """The projector's weights (keys relative to the projector, CPU copies; gathered under ZeRO-3)."""
    projector = _unwrap(model).model.multi_modal_projector
    with _gathered(projector):
        return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in projector.state_dict().items()}


def save_projector(model, path: str | os.PathLike, write: bool = True) -> Path:
    """Save only the projector to a safetensors file (stage-1 checkpoint, LLaVA's ``mm_projector.bin``).

    Args:
        model: the MLLM (possibly wrapped).
        path: the file to write (``.safetensors``); written atomically.
        write: False on non-main ranks: they take part in the ZeRO-3 gather but write nothing.
    """
    inner = _unwrap(model)
    state = projector_state_dict(inner)
    path = Path(path)
    if write:
        metadata = {"format": "pt", "vlzoo": _PROJECTOR_FORMAT, "projector_type": inner.config.projector_type,
                    "projector_kwargs": json.dumps(inner.config.projector_kwargs or {}, sort_keys=True)}
        atomic_write_bytes(path, safetensors_bytes(state, metadata=metadata))
    return path


def load_projector(model, path: str | os.PathLike) -> None:
    """Load a :func:`save_projector` file into ``model``'s projector (strict: names, shapes and type).

    Raises:
        MissingLocalFile: the file does not exist.
        ValueError: it is not a projector file, was saved from another projector type, or its tensors do not
            match the model's projector (the message names the file and the keys).
    """
    path = require_file(path, "projector checkpoint", "Write one with vlzoo.mllm.save_projector")
    inner = _unwrap(model)
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
        state = {key: handle.get_tensor(key) for key in handle.keys()}
    if metadata.get("vlzoo") != _PROJECTOR_FORMAT:
        raise ValueError(f"{path}: not a vlzoo projector checkpoint (metadata {metadata})")
    if metadata.get("projector_type") != inner.config.projector_type:
        raise ValueError(
            f"{path}: saved from projector_type {metadata.get('projector_type')!r}, but the model's is "
            f"{inner.config.projector_type!r}"
        )
    projector = inner.model.multi_modal_projector
    with _gathered(projector, modifier_rank=0):
        expected = projector.state_dict()
        missing = sorted(set(expected) - set(state))
        unexpected = sorted(set(state) - set(expected))
        wrong = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
                 for k in sorted(set(state) & set(expected)) if state[k].shape != expected[k].shape]
        if missing or unexpected or wrong:
            raise ValueError(
                f"{path}: does not match the model's projector: missing {missing}, unexpected {unexpected}, "
                f"shape mismatches {wrong}"
            )
        projector.load_state_dict(state, strict=True)


def deepspeed_config_path(name: str) -> Path:
    """Path of a packaged DeepSpeed JSON: ``"zero2"``, ``"zero3"`` or ``"zero3_offload"``."""
    if name not in DEEPSPEED_CONFIGS:
        raise ValueError(f"unknown DeepSpeed config {name!r}; packaged: {list(DEEPSPEED_CONFIGS)}")
    return Path(str(resources.files("vlzoo.mllm.deepspeed_configs").joinpath(f"{name}.json")))


def deepspeed_config(name: str, torch_adam: bool = False, **updates: Any) -> dict:
    """A packaged DeepSpeed config as a dict, optionally for CPU runs and with top-level ``updates``.

    Args:
        name: ``"zero2"``, ``"zero3"`` or ``"zero3_offload"``.
        torch_adam: use DeepSpeed's AdamW with ``"torch_adam": true`` (the plain torch optimizer; no JIT
            build of fused or CPU Adam). Adds an ``optimizer`` section when the config has none.
        **updates: top-level keys to set (dicts are merged one level deep).
    """
    config = json.loads(deepspeed_config_path(name).read_text())
    if torch_adam:
        optimizer = config.setdefault(
            "optimizer",
            {"type": "AdamW", "params": {"lr": "auto", "betas": "auto", "eps": "auto", "weight_decay": "auto"}},
        )
        optimizer["params"]["torch_adam"] = True
    for key, value in updates.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **copy.deepcopy(value)}
        else:
            config[key] = copy.deepcopy(value)
    return config


def make_training_args(
    output_dir: str | os.PathLike,
    *,
    learning_rate: float,
    per_device_train_batch_size: int,
    num_train_epochs: float = 1.0,
    max_steps: int = -1,
    gradient_accumulation_steps: int = 1,
    deepspeed: str | dict | None = None,
    bf16: bool = False,
    gradient_checkpointing: bool = False,
    save_steps: int | float = 500,
    logging_steps: int | float = 1,
    **overrides: Any,
) -> TrainingArguments:
    """``TrainingArguments`` with LLaVA-1.5's recipe defaults (cosine, warmup 0.03, wd 0, AdamW).

    Args:
        output_dir: the run folder.
        learning_rate: 1e-3 (stage 1) / 2e-5 (stage 2) in LLaVA-1.5 and TokenPacker.
        per_device_train_batch_size / gradient_accumulation_steps / num_train_epochs / max_steps: as HF.
        deepspeed: a packaged config name (``"zero2"``, ...), a dict, a JSON path, or None.
        bf16 / gradient_checkpointing / save_steps / logging_steps: as HF.
        **overrides: any other ``TrainingArguments`` field (they win over the defaults here).
    """
    if isinstance(deepspeed, str) and deepspeed in DEEPSPEED_CONFIGS:
        deepspeed = deepspeed_config(deepspeed)
    kwargs: dict[str, Any] = dict(
        output_dir=str(output_dir),
        learning_rate=learning_rate,
        per_device_train_batch_size=per_device_train_batch_size,
        num_train_epochs=num_train_epochs,
        max_steps=max_steps,
        gradient_accumulation_steps=gradient_accumulation_steps,
        deepspeed=deepspeed,
        bf16=bf16,
        **{_CHECKPOINTING_FIELD: gradient_checkpointing},
        save_steps=save_steps,
        logging_steps=logging_steps,
        lr_scheduler_type="cosine",
        warmup_steps=0.03,
        weight_decay=0.0,
        optim="adamw_torch",
        remove_unused_columns=False,  # the collator's per-sample extras must reach forward()
        report_to="none",
        save_strategy="steps",
    )
    kwargs.update(overrides)
    return TrainingArguments(**kwargs)


class SaveProjectorCallback(TrainerCallback):
    """Write ``projector.safetensors`` into every checkpoint folder and, at the end, into ``output_dir``.

    This is the stage-1 artefact stage 2 starts from (:func:`load_projector`). Every rank calls it (ZeRO-3
    gathers collectively); only the main process writes.
    """

    def __init__(self, filename: str = PROJECTOR_FILE):
        self.filename = filename

    def on_save(self, args, state, control, model=None, **kwargs):
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        save_projector(model, folder / self.filename, write=state.is_world_process_zero)
        return control

    def on_train_end(self, args, state, control, model=None, **kwargs):
        save_projector(model, Path(args.output_dir) / self.filename, write=state.is_world_process_zero)
        return control


def build_trainer(
    model,
    args: TrainingArguments,
    train_dataset,
    data_collator,
    eval_dataset=None,
    callbacks: Sequence[TrainerCallback] | Iterable[TrainerCallback] = (),
    save_projector_checkpoints: bool = False,
) -> Trainer:
    """A plain HF ``Trainer`` for the MLLM (no subclass).

    Args:
        model: the MLLM (or its peft wrapper); set trainable parts first (:func:`freeze_for_stage1`, ...).
        args: from :func:`make_training_args`.
        train_dataset / eval_dataset: datasets of collator-ready samples.
        data_collator: usually :class:`vlzoo.mllm.MultimodalCollator`.
        callbacks: extra ``TrainerCallback`` s.
        save_projector_checkpoints: add :class:`SaveProjectorCallback` (stage 1).
    """
    if not any(p.requires_grad for p in model.parameters()):
        raise ValueError("no parameter requires grad: set the trainable parts (e.g. freeze_for_stage1) first")
    if getattr(args, _CHECKPOINTING_FIELD) and hasattr(model, "enable_input_require_grads"):
        model.enable_input_require_grads()  # checkpointed blocks need an input that requires grad
    callbacks = list(callbacks)
    if save_projector_checkpoints:
        callbacks.append(SaveProjectorCallback())
    return Trainer(
        model=model,
        args=args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        data_collator=data_collator,
        callbacks=callbacks,
    )
