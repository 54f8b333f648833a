"""``VlzooLlavaConfig``: transformers' ``LlavaConfig`` plus a JSON-safe description of the projector.

LLaVA-1.5 (Liu et al., "Improved Baselines with Visual Instruction Tuning", 2023, §3) joins a CLIP vision
tower and a causal LM with a projector; transformers 5.x ships that model as ``LlavaConfig`` /
``LlavaForConditionalGeneration``. This subclass keeps every stock field (``vision_config``,
``text_config``, ``image_token_id``, ``vision_feature_layer``, ``vision_feature_select_strategy``, ...) and
adds what the stock config cannot say: *which* projector sits between the two towers.

The vision tap settings are the stock fields:

- ``vision_feature_layer``: an int (LLaVA-1.5: -2, the penultimate block) or a LIST of ``hidden_states``
  indices whose outputs are concatenated on the channel axis, in list order. TokenPacker taps
  ``[12, 16, 22, 23]`` of CLIP-L/336 (spec tokenpacker.md §2.1): the projector input is then
  (N, P, 4·C) and its last C channels are the query layer 23.
- ``vision_feature_select_strategy``: ``"default"`` drops the CLS token (LLaVA's ``'patch'``), ``"full"``
  keeps it.

A config whose ``projector_type`` is ``"mlp2x_gelu"`` describes exactly stock LLaVA-1.5 (Linear, GELU,
Linear over the concatenated taps), so a folder saved from it loads in stock
``LlavaForConditionalGeneration`` (the extra keys become plain attributes there).
"""

from __future__ import annotations

import json

from huggingface_hub.dataclasses import strict
from transformers import LlavaConfig

__all__ = ["MLP_PROJECTOR", "VlzooLlavaConfig"]

MLP_PROJECTOR = "mlp2x_gelu"
"""LLaVA-1.5's projector name: Linear(L·C → D), GELU, Linear(D → D), i.e. stock ``LlavaMultiModalProjector``."""


@strict
class VlzooLlavaConfig(LlavaConfig):
    """A ``LlavaConfig`` that also names its projector (``model_type = "vlzoo_llava"``).

    Paper packages subclass it with their own ``model_type`` (e.g. ``"tokenpacker_llava"``) and register
    it, with their model classes, through :func:`vlzoo.mllm.register_llava_classes`.
    """

    model_type = "vlzoo_llava"

    projector_type: str = MLP_PROJECTOR
    """Which projector the model's ``build_projector`` hook builds. ``"mlp2x_gelu"`` is the stock LLaVA
    MLP; any other name must be handled by a subclass that overrides ``build_projector``."""

    projector_kwargs: dict | None = None
    """Constructor arguments of the projector (JSON-safe: str/int/float/bool/None, lists, dicts). Empty for
    ``"mlp2x_gelu"``, whose sizes come from the vision/text configs and ``vision_feature_layer``."""

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.projector_kwargs is None:
            self.projector_kwargs = {}

    def validate_projector(self):
        """Part of ``@strict`` validation (every ``validate_*`` method runs): the projector description must be usable and JSON-safe."""
        if not self.projector_type:
            raise ValueError("VlzooLlavaConfig.projector_type must be a non-empty string")
        kwargs = self.projector_kwargs or {}
        try:
            json.dumps(kwargs, allow_nan=False)
        except (TypeError, ValueError) as err:
            raise ValueError(f"VlzooLlavaConfig.projector_kwargs must be JSON-safe, got {kwargs!r}: {err}") from err
        if self.projector_type == MLP_PROJECTOR and kwargs:
            raise ValueError(
                f"projector_type {MLP_PROJECTOR!r} takes no projector_kwargs (its sizes come from the vision "
                f"and text configs), got {sorted(kwargs)}"
            )
        layers = self.vision_feature_layer
        layers = [layers] if isinstance(layers, int) else list(layers)
        if not layers:
            raise ValueError("vision_feature_layer must be an int or a non-empty list of ints")
        if len(set(layers)) != len(layers):
            raise ValueError(f"vision_feature_layer lists a layer twice: {layers}")

    @property
    def num_vision_feature_layers(self) -> int:
        """How many vision layers are concatenated into the projector input (L in (N, P, L·C))."""
        return 1 if isinstance(self.vision_feature_layer, int) else len(self.vision_feature_layer)
