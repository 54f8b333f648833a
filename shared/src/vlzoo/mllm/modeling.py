"""LLaVA-style MLLM on transformers' own LLaVA classes, with a swappable projector and per-sample splicing.

LLaVA-1.5 (Liu et al. 2023, §3, Fig. 1): H_v = W · Z_v with Z_v = g(X_v) the CLIP patch features; the
visual tokens H_v replace the image placeholder in the LM's input embeddings. transformers 5.x implements
that as ``LlavaModel``: vision tower → ``hidden_states[vision_feature_layer]`` (a list of layers is
concatenated on channels) → ``multi_modal_projector`` → ``masked_scatter`` at ``image_token_id``. This file
subclasses it and adds only what it lacks:

- ``build_projector(config)``: the hook that builds ``multi_modal_projector`` (stock MLP for
  ``"mlp2x_gelu"``, so the saved keys are exactly stock LLaVA's; paper packages override it);
- ``assemble_image_features(...)``: regroups the projected features of all encoded images into ONE
  variable-length sequence per sample (TokenPacker-HD tiles + separators, Osprey extras);
- ``splice_image_features(...)``: splices those sequences at the placeholders with a PER-SAMPLE count check
  that names the sample (stock checks only the batch total);
- per-sample extras ``images_per_sample``, ``image_grids``, ``region_masks`` through ``forward`` and
  ``get_image_features`` (so ``generate`` passes them to its pre-fill image encoding).

Shape shorthand: B samples, L tokens, N_img encoded images (rows of ``pixel_values``), P patches per image,
C vision width, Lv tapped layers, M visual tokens per image after the projector, D LM width.

    pixel_values (N_img, 3, H, W) → taps (N_img, P, Lv·C) → projector (N_img, M, D)
    → assemble: list over B of (n_b, D) → splice at the n_b placeholders of sample b → LM.

Deviation from official LLaVA/TokenPacker code: the placeholder is a real (added) token repeated once per
visual token, as in HF LLaVA, instead of a single id -200 that is cut out and concatenated around.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, AutoModelForImageTextToText
from transformers.modeling_outputs import BaseModelOutputWithPooling
from transformers.models.llava.modeling_llava import (
    LlavaForConditionalGeneration,
    LlavaModel,
    LlavaModelOutputWithPast,
    LlavaMultiModalProjector,
    LlavaPreTrainedModel,
)
from transformers.utils.deprecation import deprecate_kwarg
from transformers.utils.generic import can_return_tuple

from vlzoo.mllm.configuration import MLP_PROJECTOR, VlzooLlavaConfig

__all__ = [
    "VlzooLlavaForConditionalGeneration",
    "VlzooLlavaModel",
    "register_llava_classes",
    "splice_at_placeholders",
]


def splice_at_placeholders(
    inputs_embeds: torch.Tensor,
    placeholder_mask: torch.Tensor,
    features: Sequence[torch.Tensor],
    what: str = "<image>",
) -> torch.Tensor:
    """Write each sample's feature rows into its placeholder positions, in order.

    Args:
        inputs_embeds: (B, L, D) token embeddings.
        placeholder_mask: (B, L) bool, True at the placeholder positions.
        features: B tensors, the b-th of shape (n_b, D) with n_b = placeholder count of sample b.
        what: the placeholder's name, for error messages.

    Returns:
        (B, L, D) embeddings with the placeholders replaced (a new tensor; autograd flows to ``features``).

    Raises:
        ValueError: naming every sample whose placeholder count differs from its feature count.
    """
    batch, _, width = inputs_embeds.shape
    if len(features) != batch:
        raise ValueError(
            f"{len(features)} {what} feature sequences were given for a batch of {batch} samples; give one per "
            f"sample (pass images_per_sample when samples have zero or several images)"
        )
    found = placeholder_mask.sum(dim=1).tolist()
    given = [int(f.shape[0]) for f in features]
    bad = [f"sample {b}: {n} {what} placeholder tokens found, {g} features given" for b, (n, g) in
           enumerate(zip(found, given)) if n != g]
    if bad:
        raise ValueError(f"{what} placeholders and features do not match: " + "; ".join(bad))
    widths = {int(f.shape[-1]) for f in features if f.ndim == 2}
    if any(f.ndim != 2 for f in features) or widths - {width}:
        shapes = [tuple(f.shape) for f in features]
        raise ValueError(f"{what} features must be (n_b, {width}) per sample, got shapes {shapes}")
    source = torch.cat(list(features), dim=0).to(inputs_embeds.device, inputs_embeds.dtype)
    return inputs_embeds.masked_scatter(placeholder_mask.unsqueeze(-1).to(inputs_embeds.device), source)


class VlzooLlavaModel(LlavaModel):
    """``LlavaModel`` whose projector comes from :meth:`build_projector` and whose image path is per sample.

    Subclass hooks (override in a paper package):

    - :meth:`build_projector` (classmethod): ``config → nn.Module`` mapping (N_img, P, Lv·C) → (N_img, M, D).
      A projector may define ``num_output_tokens(num_patches) -> int`` for :meth:`num_image_tokens`.
    - :meth:`assemble_image_features`: (N_img, M, D) → list over samples of (n_b, D).
    - :meth:`splice_image_features`: splice into the embeddings (Osprey adds its region tokens here).
    """

    config_class = VlzooLlavaConfig

    def __init__(self, config: VlzooLlavaConfig):
        LlavaPreTrainedModel.__init__(self, config)
        self.vision_tower = AutoModel.from_config(config.vision_config)
        self.multi_modal_projector = self.build_projector(config)
        self.language_model = AutoModel.from_config(config.text_config)
        self.post_init()

    @classmethod
    def build_projector(cls, config: VlzooLlavaConfig) -> nn.Module:
        """Build the vision→LM projector described by ``config.projector_type`` / ``projector_kwargs``.

        ``"mlp2x_gelu"`` gives stock ``LlavaMultiModalProjector`` (``linear_1``, ``act``, ``linear_2``), so
        weights are saved under stock LLaVA's names. Subclasses handle their own types and call ``super()``
        for the rest.
        """
        if config.projector_type == MLP_PROJECTOR:
            return LlavaMultiModalProjector(config)
        raise ValueError(
            f"{cls.__name__} cannot build projector_type {config.projector_type!r} (it builds only "
            f"{MLP_PROJECTOR!r}); use the model class of the package that defines it, which overrides "
            f"build_projector"
        )

    def num_image_tokens(self) -> int:
        """Visual tokens one image contributes (LLaVA-1.5, CLIP-L/14-336, 'default': 24² = 576).

        Patches per image from the vision config (+1 for CLS with the ``"full"`` strategy), mapped through the
        projector's ``num_output_tokens`` when it has one (TokenPacker: (grid/s)²).
        """
        vision = self.config.vision_config
        patches = (vision.image_size // vision.patch_size) ** 2
        if self.config.vision_feature_select_strategy == "full":
            patches += 1
        count = getattr(self.multi_modal_projector, "num_output_tokens", None)
        return int(count(patches)) if callable(count) else patches

    @can_return_tuple
    def get_image_features(
        self,
        pixel_values: torch.Tensor,
        vision_feature_layer: int | list[int] | None = None,
        vision_feature_select_strategy: str | None = None,
        images_per_sample: Sequence[int] | torch.Tensor | None = None,
        image_grids: Sequence | None = None,
        region_masks: Sequence | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPooling:
        """Encode and project every image, then regroup into one feature sequence per sample.

        Args:
            pixel_values: (N_img, 3, H, W), all encoded images of the batch in sample order.
            vision_feature_layer / vision_feature_select_strategy: the taps (config values when None).
            images_per_sample: (B,) how many rows of ``pixel_values`` belong to each sample; None means
                exactly one image per sample. Rows beyond its sum are encoded but spliced nowhere.
            image_grids / region_masks: per-sample extras for subclasses (lists of length B).

        Returns:
            The vision tower's output with ``pooler_output`` = list over B of (n_b, D).
        """
        if not isinstance(pixel_values, torch.Tensor):
            raise ValueError(
                f"{type(self).__name__} encodes one (N_img, 3, H, W) tensor; got {type(pixel_values).__name__} "
                f"(images of different sizes?): resize them in the dataset or override get_image_features"
            )
        image_outputs = super().get_image_features(
            pixel_values=pixel_values,
            vision_feature_layer=vision_feature_layer,
            vision_feature_select_strategy=vision_feature_select_strategy,
            return_dict=True,
            **kwargs,
        )
        per_image = torch.stack(list(image_outputs.pooler_output))  # (N_img, M, D)
        image_outputs.pooler_output = self.assemble_image_features(
            per_image, images_per_sample=images_per_sample, image_grids=image_grids, region_masks=region_masks
        )
        return image_outputs

    def assemble_image_features(
        self,
        image_features: torch.Tensor,
        images_per_sample: Sequence[int] | torch.Tensor | None = None,
        image_grids: Sequence | None = None,
        region_masks: Sequence | None = None,
    ) -> list[torch.Tensor]:
        """Group projected image features into one sequence per sample (concatenated in image order).

        Args:
            image_features: (N_img, M, D) projector output.
            images_per_sample: (B,) image counts per sample, or None for one image per sample. Rows after
                the counted ones (the collator's keep-alive dummy image for text-only batches, as LLaVA does
                for ZeRO-3) join sample 0 as a zero-length slice, so the graph still reaches the projector.
            image_grids / region_masks: unused here; a subclass that needs them overrides this method.

        Returns:
            B tensors of shape (count_b · M, D).
        """
        for name, value in (("image_grids", image_grids), ("region_masks", region_masks)):
            if value is not None:
                raise ValueError(
                    f"{type(self).__name__} does not use {name}; a model that does (e.g. TokenPacker-HD, "
                    f"Osprey) overrides assemble_image_features"
                )
        n_images, _, width = image_features.shape
        if images_per_sample is None:
            return list(image_features)
        counts = [int(c) for c in images_per_sample]
        if any(c < 0 for c in counts) or sum(counts) > n_images:
            raise ValueError(
                f"images_per_sample {counts} is invalid for {n_images} encoded images (counts must be >= 0 and "
                f"sum to at most the number of images)"
            )
        n_real = sum(counts)
        tokens = image_features[:n_real].reshape(-1, width)
        per_sample = list(torch.split(tokens, [c * image_features.shape[1] for c in counts]))
        if n_real < n_images and per_sample:
            keep_alive = image_features[n_real:].reshape(-1, width)[:0]
            per_sample[0] = torch.cat([per_sample[0], keep_alive], dim=0)
        return per_sample

    def image_placeholder_mask(
        self, input_ids: torch.Tensor | None, inputs_embeds: torch.Tensor
    ) -> torch.Tensor:
        """(B, L) bool: where ``image_token_id`` sits (from the ids, or by embedding equality without ids)."""
        if input_ids is not None:
            return input_ids == self.config.image_token_id
        image_embedding = self.get_input_embeddings()(
            torch.tensor(self.config.image_token_id, dtype=torch.long, device=inputs_embeds.device)
        )
        return (inputs_embeds == image_embedding).all(dim=-1)

    def splice_image_features(
        self,
        input_ids: torch.Tensor | None,
        inputs_embeds: torch.Tensor,
        image_outputs: BaseModelOutputWithPooling,
    ) -> torch.Tensor:
        """Replace the ``<image>`` placeholders of each sample with its assembled visual tokens."""
        mask = self.image_placeholder_mask(input_ids, inputs_embeds)
        return splice_at_placeholders(inputs_embeds, mask, image_outputs.pooler_output, "<image>")

    @can_return_tuple
    @deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")  # as stock: the old name still works
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        pixel_values: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache=None,
        inputs_embeds: torch.Tensor | None = None,
        vision_feature_layer: int | list[int] | None = None,
        vision_feature_select_strategy: str | None = None,
        images_per_sample: Sequence[int] | torch.Tensor | None = None,
        image_grids: Sequence | None = None,
        region_masks: Sequence | None = None,
        mm_encoder_outputs: dict[str, BaseModelOutputWithPooling] | None = None,
        **kwargs,
    ) -> LlavaModelOutputWithPast:
        """Stock ``LlavaModel.forward`` with per-sample image assembly and splicing (see module docstring)."""
        if (input_ids is None) ^ (inputs_embeds is not None):
            raise ValueError("You must specify exactly one of input_ids or inputs_embeds")
        if pixel_values is not None and mm_encoder_outputs is not None:
            raise ValueError("You cannot specify both pixel_values and mm_encoder_outputs at the same time")
        if inputs_embeds is None:
            inputs_embeds = self.get_input_embeddings()(input_ids)

        mm_encoder_outputs = dict(mm_encoder_outputs) if mm_encoder_outputs is not None else {}
        if mm_encoder_outputs.get("image") is None and pixel_values is not None:
            mm_encoder_outputs["image"] = self.get_image_features(
                pixel_values=pixel_values,
                vision_feature_layer=vision_feature_layer,
                vision_feature_select_strategy=vision_feature_select_strategy,
                images_per_sample=images_per_sample,
                image_grids=image_grids,
                region_masks=region_masks,
                return_dict=True,
                **kwargs,
            )
        image_outputs = mm_encoder_outputs.get("image")
        if image_outputs is not None:
            inputs_embeds = self.splice_image_features(input_ids, inputs_embeds, image_outputs)

        outputs = self.language_model(
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            inputs_embeds=inputs_embeds,
            **kwargs,
        )
        return LlavaModelOutputWithPast(**outputs, image_outputs=image_outputs)


class VlzooLlavaForConditionalGeneration(LlavaForConditionalGeneration):
    """``LlavaForConditionalGeneration`` around :class:`VlzooLlavaModel` (or ``llava_model_class``).

    ``generate()`` is the stock one: images are encoded once before pre-fill (``get_image_features`` gets
    ``pixel_values`` and the per-sample extras), decode steps run on the KV cache. A paper package sets
    ``config_class`` and ``llava_model_class`` to its subclasses and registers them.
    """

    config_class = VlzooLlavaConfig
    llava_model_class: ClassVar[type[VlzooLlavaModel]] = VlzooLlavaModel

    def __init__(self, config: VlzooLlavaConfig):
        LlavaPreTrainedModel.__init__(self, config)
        self.model = self.llava_model_class(config)
        self.lm_head = nn.Linear(config.text_config.hidden_size, config.text_config.vocab_size, bias=False)
        self.post_init()

    @property
    def projector(self) -> nn.Module:
        """The vision→LM projector (``model.multi_modal_projector``)."""
        return self.model.multi_modal_projector

    def num_image_tokens(self) -> int:
        """Visual tokens one image contributes; see :meth:`VlzooLlavaModel.num_image_tokens`."""
        return self.model.num_image_tokens()

    def get_image_features(
        self,
        pixel_values: torch.Tensor,
        vision_feature_layer: int | list[int] | None = None,
        vision_feature_select_strategy: str | None = None,
        images_per_sample: Sequence[int] | torch.Tensor | None = None,
        image_grids: Sequence | None = None,
        region_masks: Sequence | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPooling:
        """See :meth:`VlzooLlavaModel.get_image_features`."""
        return self.model.get_image_features(
            pixel_values=pixel_values,
            vision_feature_layer=vision_feature_layer,
            vision_feature_select_strategy=vision_feature_select_strategy,
            images_per_sample=images_per_sample,
            image_grids=image_grids,
            region_masks=region_masks,
            **kwargs,
        )

    @deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")  # as stock: the old name still works
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        pixel_values: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache=None,
        inputs_embeds: torch.Tensor | None = None,
        vision_feature_layer: int | list[int] | None = None,
        vision_feature_select_strategy: str | None = None,
        labels: torch.LongTensor | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        images_per_sample: Sequence[int] | torch.Tensor | None = None,
        image_grids: Sequence | None = None,
        region_masks: Sequence | None = None,
        mm_encoder_outputs: dict[str, BaseModelOutputWithPooling] | None = None,
        **kwargs,
    ):
        """Stock forward (loss = mean shifted CE over ``labels`` != -100) plus the per-sample image extras.

        Args:
            input_ids: (B, L) with one ``image_token_id`` per visual token.
            pixel_values: (N_img, 3, H, W).
            attention_mask: (B, L), 1 on real tokens.
            labels: (B, L), -100 where not supervised.
            images_per_sample / image_grids / region_masks: see :meth:`VlzooLlavaModel.get_image_features`.
            Everything else: as ``LlavaForConditionalGeneration.forward``.
        """
        extras = {
            k: v for k, v in (("images_per_sample", images_per_sample), ("image_grids", image_grids),
                              ("region_masks", region_masks)) if v is not None
        }
        return super().forward(
            input_ids=input_ids,
            pixel_values=pixel_values,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            inputs_embeds=inputs_embeds,
            vision_feature_layer=vision_feature_layer,
            vision_feature_select_strategy=vision_feature_select_strategy,
            labels=labels,
            logits_to_keep=logits_to_keep,
            mm_encoder_outputs=mm_encoder_outputs,
            **extras,
            **kwargs,
        )


def register_llava_classes(
    config_class: type[VlzooLlavaConfig],
    model_class: type[VlzooLlavaModel],
    generation_class: type[VlzooLlavaForConditionalGeneration],
) -> None:
    """Register a config ``model_type`` with ``AutoConfig``, ``AutoModel`` and ``AutoModelForImageTextToText``.

    Safe to call twice (re-importing a module). Paper packages call it for their own subclasses.
    """
    AutoConfig.register(config_class.model_type, config_class, exist_ok=True)
    AutoModel.register(config_class, model_class, exist_ok=True)
    AutoModelForImageTextToText.register(config_class, generation_class, exist_ok=True)


register_llava_classes(VlzooLlavaConfig, VlzooLlavaModel, VlzooLlavaForConditionalGeneration)
