"""TokenPacker-LLaVA: ``vlzoo.mllm``'s LLaVA model with a swappable projector and TokenPacker-HD assembly.

Paper: Li et al., "TokenPacker: Efficient Visual Projector for Multimodal LLM", arXiv 2407.02392, §3.1
(LLaVA-style architecture: vision encoder, projector, LLM), §3.2 (the projector, ``tokenpacker.packer``) and
§3.3 (TokenPacker-HD: dynamic image partition, ``tokenpacker.hd``). Spec: tokenpacker.md §2.1, §3.7, §4.

Shape shorthand: B samples, N_img encoded crops (rows of ``pixel_values``), P = g*g patches per crop,
C vision width, Lv tapped layers, M visual tokens per crop, D LLM width, T_b crops of sample b.

    pixel_values (N_img, 3, S, S) -> CLIP hidden_states[feature_layers] concatenated (N_img, P, Lv*C)
    -> projector: x = last C channels (query layer), x_multi = all             (N_img, M, D)
    -> per sample b: plain  -> its T_b crops' tokens in order                  (T_b*M, D)
                     slice  -> hd.assemble_hd_batch: tiles row by row, ',' between tiles, '\\n' after each
                               row, then the thumbnail and '\\n'               (hd.num_visual_tokens(rows, cols, M), D)
    -> spliced at sample b's <image> placeholders -> LLM.

The per-sample grid travels with the batch (``image_grids``, one (rows, cols) or None per sample), so each
sample's tiles are assembled in its own sequence: the fix of the official HD-training bug (spec §5, the
collator dropped ``mode``). The ',' and '\\n' separator embeddings are rows of the LLM's input embedding
table (``config.hd_separator_ids``), as in the official ``llava_arch.py``.

Deviations from the official code (CircleRadon/TokenPacker ``llava_arch.py``, ``builder.py``):

- built on transformers' ``LlavaForConditionalGeneration`` (via ``vlzoo.mllm``): the ``<image>`` placeholder
  is an added token repeated once per visual token instead of id -200 (see ``vlzoo/mllm/README.md``);
- the projector is picked by ``config.projector_type`` (the official builder ignores ``mm_projector_type`` and
  always builds TokenPacker), so every baseline of Tab. 3 runs in the same model;
- the projector weights sit at ``model.multi_modal_projector.projector.*`` (official
  ``model.mm_projector.*``); ``tokenpacker.official`` converts whole checkpoints.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from huggingface_hub.dataclasses import strict
from torch import nn

from tokenpacker.hd import HDBatch, assemble_hd_batch
from tokenpacker.projectors import PROJECTORS, ProjectorConfig, build_projector_from_config
from vlzoo.mllm import (
    MLP_PROJECTOR,
    VlzooLlavaConfig,
    VlzooLlavaForConditionalGeneration,
    VlzooLlavaModel,
    register_llava_classes,
)

__all__ = [
    "ConcatenatedFeatureProjector",
    "TokenPackerLlavaConfig",
    "TokenPackerLlavaForConditionalGeneration",
    "TokenPackerLlavaModel",
    "projector_config_from_llava",
]

IMAGE_ASPECT_RATIOS = ("square", "pad", "slice")


@strict
class TokenPackerLlavaConfig(VlzooLlavaConfig):
    """``VlzooLlavaConfig`` + the image pipeline and the TokenPacker-HD separators (``tokenpacker_llava``).

    ``projector_type`` is a key of ``tokenpacker.projectors.PROJECTORS`` (or stock ``"mlp2x_gelu"``);
    ``projector_kwargs`` holds the :class:`tokenpacker.projectors.ProjectorConfig` fields other than the
    name and ``feature_layers`` (those are ``projector_type`` and ``vision_feature_layer``).
    """

    model_type = "tokenpacker_llava"

    image_aspect_ratio: str = "pad"
    """"square", "pad" or "slice" (TokenPacker-HD); the official config field of the same name."""
    patch_num: int = 9
    """TokenPacker-HD candidate list (9/16/25); the official code never saved it (eval defaulted to 9)."""
    hd_separator_ids: list[int] | None = None
    """[comma_id, newline_id] of the HD separators in the LLM vocabulary; needed for "slice"."""

    def validate_tokenpacker(self):
        """Part of ``@strict`` validation: the pipeline fields are usable."""
        if self.image_aspect_ratio not in IMAGE_ASPECT_RATIOS:
            raise ValueError(
                f"image_aspect_ratio must be one of {IMAGE_ASPECT_RATIOS}, got {self.image_aspect_ratio!r}"
            )
        if self.image_aspect_ratio == "slice" and (
            self.hd_separator_ids is None or len(self.hd_separator_ids) != 2
        ):
            raise ValueError(
                "image_aspect_ratio 'slice' needs hd_separator_ids = [comma_id, newline_id] "
                "(tokenpacker.hd.separator_token_ids(tokenizer))"
            )
        if self.projector_type != MLP_PROJECTOR and self.projector_type not in PROJECTORS:
            raise ValueError(
                f"projector_type must be {MLP_PROJECTOR!r} or one of {sorted(PROJECTORS)}, got "
                f"{self.projector_type!r}"
            )


def projector_config_from_llava(config: TokenPackerLlavaConfig) -> ProjectorConfig:
    """The :class:`ProjectorConfig` a model config describes (sizes from the two towers)."""
    vision = config.vision_config
    layers = config.vision_feature_layer
    layers = (layers,) if isinstance(layers, int) else tuple(layers)
    if config.vision_feature_select_strategy != "default":
        raise ValueError(
            "TokenPacker projectors need the patch grid without CLS (vision_feature_select_strategy "
            f"'default'), got {config.vision_feature_select_strategy!r} (official 'cls_patch' is unsupported too)"
        )
    kwargs = dict(config.projector_kwargs or {})
    for key in ("name", "feature_layers", "vision_dim", "llm_dim", "grid_size"):
        if key in kwargs:
            raise ValueError(f"projector_kwargs must not set {key!r}: it comes from the model config")
    return ProjectorConfig(
        name=config.projector_type,
        vision_dim=vision.hidden_size,
        feature_layers=layers,
        llm_dim=config.text_config.hidden_size,
        grid_size=vision.image_size // vision.patch_size,
        **kwargs,
    )


class ConcatenatedFeatureProjector(nn.Module):
    """Adapts a ``tokenpacker.projectors`` module to ``vlzoo.mllm``'s single concatenated input.

    ``forward(features (N_img, P, Lv*C)) -> (N_img, M, D)``: x = the last C channels (the query layer),
    x_multi = all of them (only TokenPacker reads it).
    """

    def __init__(self, projector: nn.Module, config: ProjectorConfig):
        super().__init__()
        self.projector = projector
        self.vision_dim = config.vision_dim
        self.projector_config = config

    def restore_buffers(self) -> None:
        """Recompute the projector's non-persistent buffers (the resampler's fixed 2D positions).

        ``from_pretrained`` builds models on the meta device and loads only saved tensors, so buffers computed
        in ``__init__`` and not saved come back as uninitialised memory; a fresh CPU build supplies them.
        """
        targets = [(name, owner) for owner_name, owner in self.projector.named_modules()
                   for name in owner._non_persistent_buffers_set]
        if not targets:
            return
        with torch.device("cpu"):
            fresh = build_projector_from_config(self.projector_config)
        fresh_modules = dict(fresh.named_modules())
        for owner_name, owner in self.projector.named_modules():
            for name in owner._non_persistent_buffers_set:
                old = owner._buffers[name]
                value = fresh_modules[owner_name]._buffers[name]
                device = "cpu" if old is None or old.is_meta else old.device
                owner._buffers[name] = value.to(device=device, dtype=old.dtype if old is not None else value.dtype)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.projector.from_concatenated(features)

    def num_output_tokens(self, num_patches: int) -> int:
        """M for a crop of ``num_patches`` = g*g patches."""
        grid = math.isqrt(num_patches)
        if grid * grid != num_patches:
            raise ValueError(f"{num_patches} patches do not form a square grid")
        return int(self.projector.num_tokens(grid))


def _restore_projector_buffers(projector: nn.Module, module: nn.Module) -> None:
    """From ``_init_weights``: HF initialises a loaded module whose non-persistent buffers were not in the file."""
    if isinstance(projector, ConcatenatedFeatureProjector) and module._non_persistent_buffers_set and any(
        module is part for part in projector.modules()
    ):
        projector.restore_buffers()


class TokenPackerLlavaModel(VlzooLlavaModel):
    """``VlzooLlavaModel`` with the paper's projectors and per-sample TokenPacker-HD assembly."""

    config_class = TokenPackerLlavaConfig

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        _restore_projector_buffers(self.multi_modal_projector, module)

    @classmethod
    def build_projector(cls, config: TokenPackerLlavaConfig) -> nn.Module:
        if config.projector_type == MLP_PROJECTOR:
            return super().build_projector(config)
        projector_config = projector_config_from_llava(config)
        return ConcatenatedFeatureProjector(build_projector_from_config(projector_config), projector_config)

    def separator_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(D,) embeddings of the ',' and '\\n' HD separators (rows of the LLM's input embeddings)."""
        ids = self.config.hd_separator_ids
        if ids is None:
            raise ValueError("this model has no hd_separator_ids: it was not configured for image_aspect_ratio 'slice'")
        table = self.get_input_embeddings()
        rows = table(torch.tensor(list(ids), dtype=torch.long, device=table.weight.device))
        return rows[0], rows[1]

    def assemble_image_features(
        self,
        image_features: torch.Tensor,
        images_per_sample: Sequence[int] | torch.Tensor | None = None,
        image_grids: Sequence | None = None,
        region_masks: Sequence | None = None,
    ) -> list[torch.Tensor]:
        """One visual-token sequence per sample; HD samples (a grid in ``image_grids``) get the HD layout.

        Args:
            image_features: (N_img, M, D) projector outputs of every crop, sample after sample.
            images_per_sample: (B,) crops of each sample (T_b); required with ``image_grids``.
            image_grids: B entries: ``(rows, cols)`` for a TokenPacker-HD sample (its T_b crops are the
                rows*cols tiles then the thumbnail when rows*cols > 1), or None (its crops' tokens are used
                as they are, e.g. a text-only sample or a 'pad' image).
            region_masks: not used by TokenPacker.

        Returns:
            B tensors (n_b, D).
        """
        if image_grids is None:
            return super().assemble_image_features(image_features, images_per_sample, None, region_masks)
        if region_masks is not None:
            raise ValueError(f"{type(self).__name__} does not use region_masks")
        if images_per_sample is None:
            raise ValueError("image_grids needs images_per_sample (the crop count of each sample)")
        counts = [int(c) for c in images_per_sample]
        if len(image_grids) != len(counts):
            raise ValueError(f"{len(image_grids)} image_grids for {len(counts)} samples")
        n_real = sum(counts)
        if n_real > image_features.shape[0]:
            raise ValueError(f"images_per_sample {counts} sums past the {image_features.shape[0]} encoded crops")
        width = image_features.shape[-1]
        per_sample_crops = list(torch.split(image_features[:n_real], counts))
        hd_samples = [b for b, grid in enumerate(image_grids) if grid is not None]
        out = [crops.reshape(-1, width) for crops in per_sample_crops]
        if hd_samples:
            grids = tuple((int(image_grids[b][0]), int(image_grids[b][1])) for b in hd_samples)
            batch = HDBatch(pixel_values=image_features.new_empty(0), grids=grids, modes=("slice",) * len(grids))
            for b, expected in zip(hd_samples, batch.tiles_per_sample):
                if counts[b] != expected:
                    raise ValueError(
                        f"sample {b}: a {grids[hd_samples.index(b)][0]}x{grids[hd_samples.index(b)][1]} "
                        f"HD grid needs {expected} crops (tiles + thumbnail), got {counts[b]}"
                    )
            comma, newline = self.separator_embeddings()
            features = torch.cat([per_sample_crops[b] for b in hd_samples])
            for b, sequence in zip(hd_samples, assemble_hd_batch(features, batch, comma, newline)):
                out[b] = sequence
        if n_real < image_features.shape[0] and out:  # the collator's keep-alive crop: a zero-length slice
            out[0] = torch.cat([out[0], image_features[n_real:].reshape(-1, width)[:0]])
        return out


class TokenPackerLlavaForConditionalGeneration(VlzooLlavaForConditionalGeneration):
    """The generation model around :class:`TokenPackerLlavaModel` (``AutoModelForImageTextToText``)."""

    config_class = TokenPackerLlavaConfig
    llava_model_class = TokenPackerLlavaModel

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        _restore_projector_buffers(self.model.multi_modal_projector, module)

    def tokens_per_crop(self) -> int:
        """M: visual tokens one crop (one image, or one HD tile) contributes."""
        return self.num_image_tokens()


register_llava_classes(TokenPackerLlavaConfig, TokenPackerLlavaModel, TokenPackerLlavaForConditionalGeneration)
