"""Whole-checkpoint conversion between the official TokenPacker/LLaVA folder layout and ours.

Official folders (``sunshine-lwt/TokenPacker-7b-144token`` etc.; LLaVA v1.1.3 ``LlavaLlamaForCausalLM``,
spec tokenpacker.md §4, §8) hold a LLaMA ``config.json`` with the ``mm_*`` fields and weights named::

    official                                               ours (TokenPackerLlavaForConditionalGeneration)
    model.embed_tokens / model.layers.N.* / model.norm     model.language_model.embed_tokens / layers.N.* / norm
    lm_head.weight                                         lm_head.weight
    model.mm_projector.<official TokenPacker names>        model.multi_modal_projector.projector.<ours>
    model.mm_projector.{0,2}.* (LLaVA mlp2x_gelu)          model.multi_modal_projector.linear_{1,2}.*
    model.vision_tower.vision_tower.vision_model.*         model.vision_tower.*   (often absent: then the CLIP
                                                                                   folder of mm_vision_tower)

Conversion renames keys and moves tensors untouched, with two additions on the way in: ``<image>`` is added to
the tokenizer and one embedding row (the mean of the others, in ``embed_tokens`` and ``lm_head``) is appended
for it (official code spliced at id -200, which never reached the embedding table); the way out drops that
row and the token again. Official multi-level taps are hard-coded to ``hidden_states[12, 16, 22, 23]`` with the
query at ``mm_vision_select_layer`` (-2 = 23 of 24); a checkpoint we export records its own list under the
extra key ``mm_vision_multi_layers`` (ignored by the official code), which the import reads back.
Rotary ``inv_freq`` buffers of old checkpoints are recomputed, not loaded.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from tokenpacker.convert import projector_from_official, projector_to_official
from tokenpacker.hd import separator_token_ids
from tokenpacker.modeling import TokenPackerLlavaConfig, TokenPackerLlavaForConditionalGeneration
from vlzoo.mllm import MLP_PROJECTOR, add_image_token
from vlzoo.paths import MissingLocalFile, require_dir

__all__ = ["OFFICIAL_MULTI_LAYERS", "convert_from_official", "convert_to_official", "read_state_dict"]

OFFICIAL_MULTI_LAYERS = (12, 16, 22, 23)
"""The official ``feature_select`` default: HF hidden_states concatenated into the keys/values."""
_LLAMA_FIELDS = (
    "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
    "num_key_value_heads", "hidden_act", "max_position_embeddings", "rms_norm_eps", "rope_theta", "rope_scaling",
    "attention_bias", "tie_word_embeddings", "bos_token_id", "eos_token_id", "pad_token_id", "pretraining_tp",
)
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model",
                    "added_tokens.json")
_OURS_LM, _OURS_VISION, _OURS_PROJECTOR = "model.language_model.", "model.vision_tower.", "model.multi_modal_projector."
_OFF_VISION, _OFF_PROJECTOR = "model.vision_tower.vision_tower.vision_model.", "model.mm_projector."


def read_state_dict(folder: str | os.PathLike) -> dict[str, torch.Tensor]:
    """All tensors of an HF-style checkpoint folder (safetensors or ``.bin`` shards, read weights-only)."""
    folder = require_dir(folder, "checkpoint")
    files = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("pytorch_model*.bin"))
    if not files:
        raise MissingLocalFile(f"{folder}: no *.safetensors or pytorch_model*.bin weight files")
    state: dict[str, torch.Tensor] = {}
    for path in files:
        part = load_file(str(path)) if path.suffix == ".safetensors" else torch.load(path, map_location="cpu",
                                                                                   weights_only=True)
        clash = set(part) & set(state)
        if clash:
            raise ValueError(f"{path}: keys also in another shard: {sorted(clash)[:5]}")
        state.update(part)
    return state


def _append_image_row(matrix: torch.Tensor, rows: int) -> torch.Tensor:
    """Grow an embedding / lm_head matrix to ``rows`` rows with the mean row (the new ``<image>`` id)."""
    extra = rows - matrix.shape[0]
    if extra < 0:
        raise ValueError(f"embedding has {matrix.shape[0]} rows, more than the tokenizer's {rows}")
    return torch.cat([matrix, matrix.float().mean(0, keepdim=True).to(matrix.dtype).expand(extra, -1)])


def _vision_config(official: Mapping, vision_tower: str | os.PathLike | None, folder: Path):
    from transformers import AutoConfig, CLIPVisionConfig

    path = vision_tower or official.get("mm_vision_tower")
    if path and not Path(path).is_dir() and (Path(folder) / path).is_dir():
        path = Path(folder) / path  # a path relative to the checkpoint folder
    if not path or not Path(path).is_dir():
        raise MissingLocalFile(
            f"vision tower folder not found: {path!r} (mm_vision_tower of the checkpoint); pass the local "
            "clip-vit-large-patch14-336 folder as vision_tower"
        )
    config = AutoConfig.from_pretrained(str(path), local_files_only=True)
    return (config.vision_config if hasattr(config, "vision_config") else config), Path(path), CLIPVisionConfig


def convert_from_official(
    folder: str | os.PathLike,
    out: str | os.PathLike,
    vision_tower: str | os.PathLike | None = None,
    patch_num: int = 9,
) -> Path:
    """Official TokenPacker/LLaVA folder -> a ``TokenPackerLlavaForConditionalGeneration`` folder (+ tokenizer).

    Args:
        folder: the official checkpoint folder (config.json, weights, tokenizer files).
        out: where to write ours.
        vision_tower: local CLIP folder (default: the checkpoint's ``mm_vision_tower`` path); its weights are
            used when the checkpoint has no ``model.vision_tower.*`` keys.
        patch_num: TokenPacker-HD candidate list (not saved by the official code; its eval default is 9).

    Returns:
        ``out``, loadable with ``TokenPackerLlavaForConditionalGeneration.from_pretrained``.
    """
    from transformers import AutoTokenizer, LlamaConfig

    folder, out = Path(folder), Path(out)
    official = json.loads((require_dir(folder, "official checkpoint") / "config.json").read_text())
    if official.get("model_type") not in ("llava", "llava_llama", "llama"):
        raise ValueError(f"{folder}/config.json: model_type {official.get('model_type')!r} is not an official LLaVA")
    state = read_state_dict(folder)
    vision_config, vision_path, _ = _vision_config(official, vision_tower, folder)

    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.unk_token
    image_token_id = add_image_token(tokenizer)

    text_config = LlamaConfig(**{k: official[k] for k in _LLAMA_FIELDS if k in official})
    text_config.vocab_size = len(tokenizer)
    projector = {k[len(_OFF_PROJECTOR):]: v for k, v in state.items() if k.startswith(_OFF_PROJECTOR)}
    select = int(official.get("mm_vision_select_layer", -2))
    query_layer = select if select >= 0 else vision_config.num_hidden_layers + 1 + select
    if {"0.weight", "2.weight"} <= set(projector):
        projector_type, layers, kwargs = MLP_PROJECTOR, select, {}
        ours_projector = {"linear_1." + k[2:] if k.startswith("0.") else "linear_2." + k[2:]: v
                          for k, v in projector.items()}
    else:
        layers = list(official.get("mm_vision_multi_layers", OFFICIAL_MULTI_LAYERS))
        if layers[-1] != query_layer:
            raise ValueError(
                f"{folder}: the multi-level taps {layers} must end with the query layer hidden_states[{query_layer}] "
                f"(mm_vision_select_layer {select}); this converter needs x to be the last tapped layer"
            )
        projector_type = "tokenpacker"
        kwargs = {"scale_factor": int(official.get("scale_factor", 2)),
                  "num_heads": int(official.get("mm_projector_heads", max(1, vision_config.hidden_size // 128)))}
        ours_projector = {"projector." + k: v for k, v in projector_from_official(projector).items()}

    converted = {_OURS_PROJECTOR + k: v for k, v in ours_projector.items()}
    for key, value in state.items():
        if key.startswith(_OFF_VISION):
            converted[_OURS_VISION + key[len(_OFF_VISION):]] = value
        elif key.startswith("model.") and not key.startswith(("model.mm_projector.", "model.vision_tower.")):
            if not key.endswith("rotary_emb.inv_freq"):
                converted[_OURS_LM + key[len("model."):]] = value
        elif key == "lm_head.weight":
            converted[key] = value
    if not any(k.startswith(_OURS_VISION) for k in converted):
        vision_state = read_state_dict(vision_path)
        prefix = "vision_model." if any(k.startswith("vision_model.") for k in vision_state) else ""
        parts = ("embeddings.", "pre_layrnorm.", "encoder.", "post_layernorm.")
        converted.update({_OURS_VISION + k[len(prefix):]: v for k, v in vision_state.items()
                          if k.startswith(prefix) and k[len(prefix):].startswith(parts)})
    for key in (_OURS_LM + "embed_tokens.weight", "lm_head.weight"):
        if key in converted:
            converted[key] = _append_image_row(converted[key], len(tokenizer))

    aspect = official.get("image_aspect_ratio", "pad")
    aspect = aspect if aspect in ("square", "pad", "slice") else "pad"
    config = TokenPackerLlavaConfig(
        text_config=text_config, vision_config=vision_config, image_token_id=image_token_id,
        projector_type=projector_type, projector_kwargs=kwargs, vision_feature_layer=layers,
        vision_feature_select_strategy="default", image_aspect_ratio=aspect, patch_num=patch_num,
        hd_separator_ids=list(separator_token_ids(tokenizer, "official")) if aspect == "slice" else None,
    )
    with torch.device("meta"):
        model = TokenPackerLlavaForConditionalGeneration(config)
    missing, unexpected = model.load_state_dict(converted, strict=False, assign=True)
    missing = [k for k in missing if not (k == "lm_head.weight" and config.text_config.tie_word_embeddings)]
    if missing or unexpected:
        raise ValueError(f"{folder}: conversion left missing keys {missing[:8]} and unused keys {unexpected[:8]}")
    if config.text_config.tie_word_embeddings:
        model.tie_weights()
    model.config.image_seq_length = model.num_image_tokens()
    model.generation_config.suppress_tokens = [image_token_id]
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def _strip_image_token(folder: Path, token: str = "<image>") -> None:
    """Remove the added ``<image>`` token from saved tokenizer files (the official vocabulary lacks it)."""
    path = folder / "tokenizer.json"
    if path.is_file():
        data = json.loads(path.read_text())
        data["added_tokens"] = [t for t in data.get("added_tokens", []) if t.get("content") != token]
        path.write_text(json.dumps(data, ensure_ascii=False))
    path = folder / "tokenizer_config.json"
    if path.is_file():
        data = json.loads(path.read_text())
        for key in ("extra_special_tokens", "additional_special_tokens"):
            if isinstance(data.get(key), list):
                data[key] = [t for t in data[key] if t != token]
        if isinstance(data.get("added_tokens_decoder"), dict):
            data["added_tokens_decoder"] = {k: v for k, v in data["added_tokens_decoder"].items()
                                            if v.get("content") != token}
        path.write_text(json.dumps(data, indent=2, ensure_ascii=False))


def convert_to_official(folder: str | os.PathLike, out: str | os.PathLike, vision_tower_path: str = "") -> Path:
    """Our model folder -> the official key layout, config fields and tokenizer (the inverse conversion).

    Args:
        folder: a ``TokenPackerLlavaForConditionalGeneration`` folder.
        out: where to write the official-layout folder (``model.safetensors``, ``config.json``, tokenizer).
        vision_tower_path: recorded as ``mm_vision_tower`` (the official loader builds CLIP from it); "" writes
            the tower as a ``CLIPVisionModel`` folder ``<out>/vision_tower`` and records that (relative) path.

    Raises:
        ValueError: if ``<image>`` is not the last vocabulary row (the official vocabulary cannot drop it).
    """
    folder, out = require_dir(folder, "TokenPacker model"), Path(out)
    config = TokenPackerLlavaConfig.from_pretrained(str(folder))
    state = read_state_dict(folder)
    rows = state[_OURS_LM + "embed_tokens.weight"].shape[0]
    if config.image_token_id != rows - 1:
        raise ValueError(f"{folder}: <image> (id {config.image_token_id}) is not the last of {rows} vocabulary rows")
    projector = {k[len(_OURS_PROJECTOR):]: v for k, v in state.items() if k.startswith(_OURS_PROJECTOR)}
    official: dict[str, torch.Tensor] = {}
    if config.projector_type == "tokenpacker":
        official.update(projector_to_official({k[len("projector."):]: v for k, v in projector.items()}))
    elif config.projector_type == MLP_PROJECTOR:
        official.update({_OFF_PROJECTOR + k.replace("linear_1.", "0.").replace("linear_2.", "2."): v
                         for k, v in projector.items()})
    else:
        raise ValueError(f"projector_type {config.projector_type!r} has no official layout (only tokenpacker, mlp2x_gelu)")
    for key, value in state.items():
        if key.startswith(_OURS_LM):
            official["model." + key[len(_OURS_LM):]] = value
        elif key.startswith(_OURS_VISION):
            official[_OFF_VISION + key[len(_OURS_VISION):]] = value
        elif key == "lm_head.weight":
            official[key] = value
    for key in ("model.embed_tokens.weight", "lm_head.weight"):
        if key in official:
            official[key] = official[key][:-1].contiguous()
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in official.items()}, str(out / "model.safetensors"), metadata={"format": "pt"})

    if not vision_tower_path:
        from transformers import CLIPVisionModel

        with torch.device("meta"):
            tower = CLIPVisionModel(config.vision_config)
        tower.load_state_dict({k[len(_OURS_VISION):]: v for k, v in state.items() if k.startswith(_OURS_VISION)},
                              strict=True, assign=True)
        tower.save_pretrained(out / "vision_tower")
        vision_tower_path = "vision_tower"
    text = config.text_config.to_dict()
    layers = config.vision_feature_layer
    layers = [layers] if isinstance(layers, int) else list(layers)
    vision = config.vision_config
    fields = {k: text[k] for k in _LLAMA_FIELDS if k in text}
    fields["vocab_size"] = rows - 1
    fields.update({
        "architectures": ["LlavaLlamaForCausalLM"], "model_type": "llava",
        "mm_vision_tower": vision_tower_path, "mm_hidden_size": vision.hidden_size,
        "mm_vision_select_layer": layers[-1] - vision.num_hidden_layers - 1 if layers[-1] >= 0 else layers[-1],
        "mm_vision_select_feature": "patch",
        "mm_projector_type": config.projector_type if config.projector_type == MLP_PROJECTOR else "tokenpacker",
        "image_aspect_ratio": config.image_aspect_ratio, "mm_use_im_start_end": False,
        "mm_use_im_patch_token": False, "use_mm_proj": True, "tune_mm_mlp_adapter": False,
        "tokenizer_model_max_length": 2048, "tokenizer_padding_side": "right",
    })
    if config.projector_type == "tokenpacker":
        fields["scale_factor"] = int(config.projector_kwargs.get("scale_factor", 2))
        fields["mm_vision_multi_layers"] = layers
        fields["mm_projector_heads"] = int(config.projector_kwargs.get("num_heads", 8))
    (out / "config.json").write_text(json.dumps(fields, indent=2, sort_keys=True) + "\n")
    for name in _TOKENIZER_FILES:
        if (folder / name).is_file():
            shutil.copyfile(folder / name, out / name)
    _strip_image_token(out)
    return out
