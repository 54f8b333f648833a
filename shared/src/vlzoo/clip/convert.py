"""open_clip ViT CLIP -> transformers ``CLIPModel`` (both towers), and a complete HF folder.

Shape shorthand: W tower width, D ``embed_dim``, 3W the fused q/k/v rows of ``nn.MultiheadAttention``.

The two implementations compute the same function; only names and layouts differ:

=====================================================  ===================================================
open_clip                                              transformers
=====================================================  ===================================================
``visual.conv1.weight``                                ``vision_model.embeddings.patch_embedding.weight``
``visual.class_embedding`` / ``positional_embedding``  ``vision_model.embeddings.class_embedding`` /
                                                       ``position_embedding.weight``
``visual.ln_pre`` / ``ln_post``                        ``vision_model.pre_layrnorm`` / ``post_layernorm``
``*.resblocks.i.ln_1`` / ``ln_2``                      ``*.encoder.layers.i.layer_norm1`` / ``layer_norm2``
``*.resblocks.i.attn.in_proj_weight`` (3W, W)          ``self_attn.{q,k,v}_proj.weight`` (W, W) each
``*.resblocks.i.attn.out_proj``                        ``self_attn.out_proj``
``*.resblocks.i.mlp.c_fc`` / ``c_proj``                ``mlp.fc1`` / ``mlp.fc2``
``visual.proj`` (W, D), ``text_projection`` (W, D)     ``visual_projection.weight`` / ``text_projection.weight``
                                                       (D, W): transposed
``token_embedding`` / ``positional_embedding``         ``text_model.embeddings.token_embedding`` /
                                                       ``position_embedding``
``ln_final``                                           ``text_model.final_layer_norm``
``logit_scale``                                        ``logit_scale``
=====================================================  ===================================================

Text pooling: open_clip takes the arg-max token (EOT has the largest id, 49407); HF with
``eos_token_id=49407`` takes the first 49407, the same position for open_clip-tokenised ids. Supported:
``tok`` pooling, linear bias-free projections, one LayerNorm eps per tower, GELU or QuickGELU, no
LayerScale, no attentional pooler, causal text mask. Anything else raises rather than converting wrongly.

:func:`save_hf_clip` writes ``config.json`` + ``model.safetensors``, an HF ``CLIPTokenizer`` derived from
open_clip's shipped BPE file (``vocab.json``, ``merges.txt``, ``tokenizer.json``) and a
``preprocessor_config.json``, so the folder loads with ``CLIPModel`` / ``CLIPVisionModel`` /
``CLIPTokenizer`` / ``CLIPImageProcessor`` ``.from_pretrained(folder)``.
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import Any

import torch
from open_clip.tokenizer import bytes_to_unicode, default_bpe
from open_clip.transformer import QuickGELU
from torch import nn

__all__ = [
    "hf_clip_config",
    "hf_tokenizer_from_open_clip",
    "open_clip_bpe_vocab",
    "open_clip_to_hf",
    "save_hf_clip",
]

BOS_TOKEN, EOS_TOKEN = "<|startoftext|>", "<|endoftext|>"
_OPEN_CLIP_SPECIALS = {"<start_of_text>": BOS_TOKEN, "<end_of_text>": EOS_TOKEN}
_NUM_MERGES = 49152 - 256 - 2  # open_clip (and OpenAI CLIP) use the first 48894 merges of the file


def _unwrap(model: nn.Module) -> nn.Module:
    return getattr(model, "model", model)  # ClipModel -> its open_clip CLIP


def _activation(transformer: nn.Module, where: str) -> str:
    act = transformer.resblocks[0].mlp.gelu
    if isinstance(act, QuickGELU):
        return "quick_gelu"
    if isinstance(act, nn.GELU) and act.approximate == "none":
        return "gelu"
    if isinstance(act, nn.GELU) and act.approximate == "tanh":
        return "gelu_pytorch_tanh"
    raise ValueError(f"{where}: activation {type(act).__name__} has no HF CLIP equivalent")


def _layer_norm_eps(modules: list[nn.Module], where: str) -> float:
    eps = {float(m.eps) for m in modules}
    if len(eps) != 1:
        raise ValueError(
            f"{where}: LayerNorms use several eps values {sorted(eps)}; HF CLIP has one per tower"
        )
    return eps.pop()


def _check_supported(clip: nn.Module) -> None:
    visual = clip.visual
    if not (hasattr(visual, "conv1") and hasattr(visual, "ln_pre")):
        raise TypeError(f"open_clip_to_hf needs a ViT vision tower, got {type(visual).__name__}")
    if not hasattr(clip, "token_embedding"):
        raise TypeError(f"open_clip_to_hf needs open_clip's built-in text tower, got {type(clip).__name__}")
    problems = []
    if getattr(visual, "attn_pool", None) is not None:
        problems.append("attentional pooler")
    if getattr(visual, "pool_type", "tok") != "tok" or getattr(visual, "final_ln_after_pool", False):
        problems.append(f"vision pool_type {getattr(visual, 'pool_type', None)!r}")
    if isinstance(visual.ln_pre, nn.Identity):
        problems.append("no ln_pre")
    if visual.proj is None:
        problems.append("no visual projection")
    for where, transformer in (("vision", visual.transformer), ("text", clip.transformer)):
        block = transformer.resblocks[0]
        if not isinstance(getattr(block, "attn", None), nn.MultiheadAttention):
            problems.append(f"{where} custom attention blocks")
        elif not isinstance(block.ls_1, nn.Identity):
            problems.append(f"{where} LayerScale")
    if not isinstance(clip.text_projection, nn.Parameter):
        problems.append("text projection with bias")
    if clip.text_pool_type != "argmax":
        problems.append(f"text pool_type {clip.text_pool_type!r}")
    if clip.attn_mask is None:
        problems.append("text tower without causal mask")
    if getattr(clip, "logit_bias", None) is not None:
        problems.append("logit_bias (SigLIP)")
    if problems:
        raise ValueError(f"open_clip model not convertible to HF CLIP: {', '.join(problems)}")


def hf_clip_config(model: nn.Module) -> Any:
    """The ``transformers.CLIPConfig`` equivalent to an open_clip ViT CLIP (or :class:`ClipModel`)."""
    from transformers import CLIPConfig, CLIPTextConfig, CLIPVisionConfig

    clip = _unwrap(model)
    _check_supported(clip)
    visual = clip.visual
    image_h, image_w = (
        (visual.image_size, visual.image_size) if isinstance(visual.image_size, int) else visual.image_size
    )
    patch_h, patch_w = visual.patch_size if isinstance(visual.patch_size, tuple) else (visual.patch_size,) * 2
    if image_h != image_w or patch_h != patch_w:
        raise ValueError(
            f"HF CLIP needs square images and patches, got image {visual.image_size}, patch {visual.patch_size}"
        )
    v_block, t_block = visual.transformer.resblocks[0], clip.transformer.resblocks[0]
    embed_dim = int(visual.proj.shape[1])
    vision = CLIPVisionConfig(
        hidden_size=int(visual.conv1.out_channels),
        intermediate_size=int(v_block.mlp.c_fc.out_features),
        num_hidden_layers=len(visual.transformer.resblocks),
        num_attention_heads=int(v_block.attn.num_heads),
        image_size=int(image_h),
        patch_size=int(patch_h),
        hidden_act=_activation(visual.transformer, "vision tower"),
        layer_norm_eps=_layer_norm_eps(
            [visual.ln_pre, visual.ln_post]
            + [m for b in visual.transformer.resblocks for m in (b.ln_1, b.ln_2)],
            "vision tower",
        ),
        projection_dim=embed_dim,
    )
    vocab_size = int(clip.token_embedding.num_embeddings)
    text = CLIPTextConfig(
        vocab_size=vocab_size,
        hidden_size=int(clip.token_embedding.embedding_dim),
        intermediate_size=int(t_block.mlp.c_fc.out_features),
        num_hidden_layers=len(clip.transformer.resblocks),
        num_attention_heads=int(t_block.attn.num_heads),
        max_position_embeddings=int(clip.positional_embedding.shape[0]),
        hidden_act=_activation(clip.transformer, "text tower"),
        layer_norm_eps=_layer_norm_eps(
            [clip.ln_final] + [m for b in clip.transformer.resblocks for m in (b.ln_1, b.ln_2)], "text tower"
        ),
        projection_dim=embed_dim,
        # open_clip's BPE: SOT = vocab-2, EOT = vocab-1 (the arg-max token open_clip pools at)
        bos_token_id=vocab_size - 2,
        eos_token_id=vocab_size - 1,
        pad_token_id=vocab_size - 1,
    )
    return CLIPConfig(
        text_config=text.to_dict(),
        vision_config=vision.to_dict(),
        projection_dim=embed_dim,
        logit_scale_init_value=float(clip.logit_scale.detach().float().reshape(-1)[0]),
    )


def _blocks(
    prefix_oc: str, prefix_hf: str, n: int, sd: dict[str, torch.Tensor], out: dict[str, torch.Tensor]
) -> None:
    for i in range(n):
        src, dst = f"{prefix_oc}.resblocks.{i}.", f"{prefix_hf}.encoder.layers.{i}."
        q_w, k_w, v_w = sd[src + "attn.in_proj_weight"].chunk(3, dim=0)
        q_b, k_b, v_b = sd[src + "attn.in_proj_bias"].chunk(3, dim=0)
        for name, w, b in (("q_proj", q_w, q_b), ("k_proj", k_w, k_b), ("v_proj", v_w, v_b)):
            out[dst + f"self_attn.{name}.weight"] = w
            out[dst + f"self_attn.{name}.bias"] = b
        pairs = {
            "attn.out_proj": "self_attn.out_proj",
            "ln_1": "layer_norm1",
            "ln_2": "layer_norm2",
            "mlp.c_fc": "mlp.fc1",
            "mlp.c_proj": "mlp.fc2",
        }
        for oc_name, hf_name in pairs.items():
            for leaf in ("weight", "bias"):
                out[dst + f"{hf_name}.{leaf}"] = sd[src + f"{oc_name}.{leaf}"]


def _hf_state_dict(clip: nn.Module) -> dict[str, torch.Tensor]:
    sd = {k: v.detach() for k, v in clip.state_dict().items()}
    out = {
        "vision_model.embeddings.patch_embedding.weight": sd["visual.conv1.weight"],
        "vision_model.embeddings.class_embedding": sd["visual.class_embedding"],
        "vision_model.embeddings.position_embedding.weight": sd["visual.positional_embedding"],
        "vision_model.pre_layrnorm.weight": sd["visual.ln_pre.weight"],
        "vision_model.pre_layrnorm.bias": sd["visual.ln_pre.bias"],
        "vision_model.post_layernorm.weight": sd["visual.ln_post.weight"],
        "vision_model.post_layernorm.bias": sd["visual.ln_post.bias"],
        "visual_projection.weight": sd["visual.proj"].t(),
        "text_model.embeddings.token_embedding.weight": sd["token_embedding.weight"],
        "text_model.embeddings.position_embedding.weight": sd["positional_embedding"],
        "text_model.final_layer_norm.weight": sd["ln_final.weight"],
        "text_model.final_layer_norm.bias": sd["ln_final.bias"],
        "text_projection.weight": sd["text_projection"].t(),
        "logit_scale": sd["logit_scale"].reshape(()),
    }
    _blocks("visual.transformer", "vision_model", len(clip.visual.transformer.resblocks), sd, out)
    _blocks("transformer", "text_model", len(clip.transformer.resblocks), sd, out)
    return {k: v.contiguous() for k, v in out.items()}


def open_clip_to_hf(model: nn.Module) -> Any:
    """A ``transformers.CLIPModel`` computing the same function as an open_clip ViT CLIP.

    Args:
        model: an open_clip ``CLIP`` with a ViT tower, or a :class:`~vlzoo.clip.ClipModel` holding one.

    Returns:
        ``CLIPModel`` in eval mode, on CPU, in the source's dtype; every key filled (strict load).
    """
    from transformers import CLIPModel

    clip = _unwrap(model)
    config = hf_clip_config(clip)
    state = _hf_state_dict(clip)
    dtype = state["visual_projection.weight"].dtype
    hf = CLIPModel(config)
    hf.load_state_dict({k: v.to("cpu") for k, v in state.items()}, strict=True)
    return hf.to(dtype).eval()


def open_clip_bpe_vocab() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """(vocab, merges) of open_clip's shipped BPE file in HF byte-level BPE form.

    The vocabulary is built the way open_clip's ``SimpleTokenizer`` builds it (256 byte symbols, the same
    with ``</w>``, one entry per merge, then SOT/EOT), with the specials under HF's names
    ``<|startoftext|>`` (49406) and ``<|endoftext|>`` (49407).
    """
    lines = gzip.open(default_bpe()).read().decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1 : _NUM_MERGES + 1]]
    symbols = list(bytes_to_unicode().values())
    tokens = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges] + [BOS_TOKEN, EOS_TOKEN]
    return {tok: i for i, tok in enumerate(tokens)}, merges


def hf_tokenizer_from_open_clip(context_length: int = 77) -> Any:
    """An HF ``CLIPTokenizer`` giving the same ids as open_clip's ``SimpleTokenizer`` (before padding).

    Padding differs by design: HF pads with ``<|endoftext|>`` (49407), open_clip with 0; with the causal
    text mask neither changes the pooled EOT embedding.
    """
    from transformers import CLIPTokenizer

    vocab, merges = open_clip_bpe_vocab()
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=context_length)


def _image_processor(clip: nn.Module) -> Any:
    from open_clip.model import get_model_preprocess_cfg
    from transformers import CLIPImageProcessor

    cfg = get_model_preprocess_cfg(clip)
    size = clip.visual.image_size
    side = size if isinstance(size, int) else int(size[0])
    return CLIPImageProcessor(
        size={"shortest_edge": side},
        crop_size={"height": side, "width": side},
        image_mean=list(cfg.get("mean", ())),
        image_std=list(cfg.get("std", ())),
        resample=3,  # PIL bicubic, as open_clip's eval transform
    )


def save_hf_clip(
    model: nn.Module, folder: str | os.PathLike, tokenizer: bool = True, image_processor: bool = True
) -> Path:
    """Write ``model`` as a complete HF CLIP folder (weights, config, tokenizer, image processor).

    Args:
        model: an open_clip ViT CLIP or :class:`~vlzoo.clip.ClipModel`.
        folder: created if needed; existing files of the same names are replaced.
        tokenizer: also write ``vocab.json``, ``merges.txt``, ``tokenizer.json`` and ``tokenizer_config.json``.
        image_processor: also write ``preprocessor_config.json`` (resize shortest edge, center crop, mean/std).

    Returns:
        The folder.
    """
    clip = _unwrap(model)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    hf = open_clip_to_hf(clip)
    hf.save_pretrained(folder, safe_serialization=True)
    if tokenizer:
        context_length = int(clip.positional_embedding.shape[0])
        tok = hf_tokenizer_from_open_clip(context_length)
        tok.save_pretrained(folder)
        vocab, merges = open_clip_bpe_vocab()
        (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
        (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n")
    if image_processor:
        _image_processor(clip).save_pretrained(folder)
    return folder
