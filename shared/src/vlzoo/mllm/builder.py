"""Assemble a LLaVA-style model from an HF causal LM and an HF CLIP vision tower (local folders or configs).

LLaVA-1.5 (Liu et al. 2023, §3) starts from a pretrained LM (Vicuna v1.5) and a pretrained CLIP ViT
(CLIP-L/14-336) and adds a fresh projector. The two towers here come from local folders
(``save_pretrained`` layout; nothing is downloaded) or, for tests and from-scratch runs, from configs.

Loading never builds the composite twice: the composite is constructed on the meta device, then the loaded
(or freshly built) language model, vision tower and projector are put in place, so a 7B LM is held once.
The projector keeps its constructor's initialisation (PyTorch's default ``nn.Linear`` init for the MLP, as
in LLaVA's ``build_vision_projector``).
"""

from __future__ import annotations

import os
from typing import Any

import torch
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    CLIPVisionConfig,
    PreTrainedConfig,
    PreTrainedModel,
)

from vlzoo.mllm.configuration import MLP_PROJECTOR
from vlzoo.mllm.modeling import VlzooLlavaForConditionalGeneration
from vlzoo.paths import require_dir

__all__ = ["build_llava", "describe_parts", "load_language_model", "load_vision_tower"]

PathLike = str | os.PathLike


def load_language_model(
    path: PathLike, attn_implementation: str | None = None, dtype: torch.dtype | str | None = None
) -> PreTrainedModel:
    """Load any HF causal LM (LLaMA/Vicuna, Qwen2, ...) from a local ``save_pretrained`` folder."""
    folder = require_dir(path, "language model", "Give a local folder written by save_pretrained (config.json + "
                         "safetensors); nothing is downloaded")
    kwargs: dict[str, Any] = {"local_files_only": True}
    if attn_implementation is not None:
        kwargs["attn_implementation"] = attn_implementation
    if dtype is not None:
        kwargs["dtype"] = dtype
    return AutoModelForCausalLM.from_pretrained(folder, **kwargs)


def load_vision_tower(
    path: PathLike, attn_implementation: str | None = None, dtype: torch.dtype | str | None = None
) -> PreTrainedModel:
    """Load the vision tower of an HF CLIP folder (a full ``CLIPModel`` or a ``CLIPVisionModel``).

    CLIP folders go through :func:`vlzoo.clip.load_hf_clip` (``vision_only=True``), which refuses a checkpoint
    that leaves any vision key random. Other vision models (e.g. SigLIP) load through ``AutoModel`` when
    their folder holds the vision model itself.
    """
    folder = require_dir(path, "vision tower", "Give a local CLIP folder written by save_pretrained; nothing is "
                         "downloaded")
    model_type = AutoConfig.from_pretrained(folder, local_files_only=True).model_type
    if model_type in ("clip", "clip_vision_model"):
        from vlzoo.clip import load_hf_clip

        tower = load_hf_clip(folder, vision_only=True, dtype=dtype if dtype is not None else torch.float32).model
        if attn_implementation is not None:
            tower.set_attn_implementation(attn_implementation)
        return tower
    kwargs: dict[str, Any] = {"local_files_only": True}
    if attn_implementation is not None:
        kwargs["attn_implementation"] = attn_implementation
    if dtype is not None:
        kwargs["dtype"] = dtype
    return AutoModel.from_pretrained(folder, **kwargs)


def _as_config(part: PathLike | PreTrainedConfig | dict, what: str) -> PreTrainedConfig | None:
    """The config when ``part`` is one (or a dict with ``model_type``), None when it is a folder to load."""
    if isinstance(part, PreTrainedConfig):
        return part
    if isinstance(part, dict):
        if "model_type" not in part:
            raise ValueError(f"{what} config dict needs a 'model_type' key, got keys {sorted(part)}")
        kind = part["model_type"]
        if kind == "clip_vision_model":
            return CLIPVisionConfig(**{k: v for k, v in part.items() if k != "model_type"})
        return AutoConfig.for_model(kind, **{k: v for k, v in part.items() if k != "model_type"})
    if isinstance(part, str | os.PathLike):
        return None
    raise TypeError(f"{what} must be a folder path, a PreTrainedConfig or a config dict, got {type(part).__name__}")


def build_llava(
    text: PathLike | PreTrainedConfig | dict,
    vision: PathLike | PreTrainedConfig | dict,
    *,
    image_token_id: int,
    vocab_size: int | None = None,
    model_class: type[VlzooLlavaForConditionalGeneration] = VlzooLlavaForConditionalGeneration,
    projector_type: str = MLP_PROJECTOR,
    projector_kwargs: dict | None = None,
    vision_feature_layer: int | list[int] = -2,
    vision_feature_select_strategy: str = "default",
    attn_implementation: str | None = None,
    dtype: torch.dtype | str | None = None,
    freeze_vision_tower: bool = True,
    **config_kwargs,
) -> VlzooLlavaForConditionalGeneration:
    """Build a LLaVA-style model: LM + vision tower (each from a local folder or a config) + new projector.

    Args:
        text: the causal LM: a local folder, a ``PreTrainedConfig`` (e.g. ``LlamaConfig``, ``Qwen2Config``)
            or a config dict with ``model_type``. A config gives a randomly initialised LM.
        vision: the vision tower: a local CLIP folder, a ``CLIPVisionConfig`` or a dict.
        image_token_id: id of the ``<image>`` token (see :func:`vlzoo.mllm.add_image_token`).
        vocab_size: resize the LM's embeddings to this many rows first (``len(tokenizer)`` after adding
            ``<image>``); must exceed ``image_token_id``.
        model_class: the model to build (a paper package's subclass plugs its projector in this way).
        projector_type / projector_kwargs: the projector description stored in the config.
        vision_feature_layer: ``hidden_states`` index or list of indices (concatenated) fed to the projector.
        vision_feature_select_strategy: ``"default"`` drops CLS, ``"full"`` keeps it.
        attn_implementation: ``"eager"``, ``"sdpa"``, ``"flash_attention_2"``, ... for both towers (or a dict
            ``{"text_config": ..., "vision_config": ...}``); never chosen by patching.
        dtype: dtype of every part.
        freeze_vision_tower: set ``requires_grad=False`` on the vision tower (LLaVA keeps CLIP frozen).
        **config_kwargs: further config fields (e.g. ``projector_hidden_act``).

    Returns:
        The model in eval mode (as ``from_pretrained`` returns it).
    """
    text_config = _as_config(text, "text")
    vision_config = _as_config(vision, "vision")
    per_part_attn = attn_implementation if isinstance(attn_implementation, dict) else None
    text_attn = per_part_attn.get("text_config") if per_part_attn else attn_implementation
    vision_attn = per_part_attn.get("vision_config") if per_part_attn else attn_implementation

    language_model = None if text_config is not None else load_language_model(text, text_attn, dtype)
    vision_tower = None if vision_config is not None else load_vision_tower(vision, vision_attn, dtype)
    if language_model is not None:
        text_config = language_model.config
    if vision_tower is not None:
        vision_config = vision_tower.config

    config = model_class.config_class(
        text_config=text_config,
        vision_config=vision_config,
        image_token_id=image_token_id,
        projector_type=projector_type,
        projector_kwargs=dict(projector_kwargs or {}),
        vision_feature_layer=vision_feature_layer,
        vision_feature_select_strategy=vision_feature_select_strategy,
        **config_kwargs,
    )
    if attn_implementation is not None:
        config._attn_implementation = attn_implementation  # applied recursively to the sub-configs

    with torch.device("meta"):
        model = model_class(config)
    inner = model.model
    if language_model is None:
        language_model = AutoModelForCausalLM.from_config(config.text_config, dtype=dtype)
    if vision_tower is None:
        vision_tower = AutoModel.from_config(config.vision_config, dtype=dtype)
    inner.language_model = language_model.base_model
    model.lm_head = language_model.get_output_embeddings()
    inner.vision_tower = vision_tower
    inner.multi_modal_projector = inner.build_projector(config)
    if dtype is not None:
        inner.multi_modal_projector.to(getattr(torch, dtype) if isinstance(dtype, str) else dtype)
    if config.tie_word_embeddings:
        model.tie_weights()

    leftover = [name for name, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if leftover:
        raise RuntimeError(f"{model_class.__name__} has parts the builder did not fill: {leftover[:5]}")

    if vocab_size is not None and vocab_size != model.get_input_embeddings().num_embeddings:
        model.resize_token_embeddings(vocab_size)
    embeddings = model.get_input_embeddings().num_embeddings
    if not 0 <= image_token_id < embeddings:
        raise ValueError(
            f"image_token_id {image_token_id} is outside the LM vocabulary of {embeddings} rows; add <image> to "
            f"the tokenizer (add_image_token) and pass vocab_size=len(tokenizer)"
        )
    config.image_seq_length = model.num_image_tokens()
    # LLaVA's placeholder (-200) can never be generated; ours is a vocabulary row, so forbid it explicitly.
    model.generation_config.suppress_tokens = sorted({*(model.generation_config.suppress_tokens or []),
                                                      image_token_id})
    if freeze_vision_tower:
        inner.vision_tower.requires_grad_(False)
    return model.eval()


def describe_parts(model: VlzooLlavaForConditionalGeneration) -> dict[str, int]:
    """Parameter counts of the three parts (vision tower, projector, language model incl. lm_head)."""
    def count(module: torch.nn.Module) -> int:
        return sum(p.numel() for p in module.parameters())

    lm = count(model.model.language_model)
    if model.lm_head.weight is not model.get_input_embeddings().weight:
        lm += count(model.lm_head)
    return {"vision_tower": count(model.model.vision_tower), "projector": count(model.projector),
            "language_model": lm}

