"""LLaVA-style MLLM scaffolding built on transformers' own LLaVA classes (shared by TokenPacker and Osprey).

- :class:`VlzooLlavaConfig` / :class:`VlzooLlavaModel` / :class:`VlzooLlavaForConditionalGeneration`:
  stock ``LlavaConfig`` / ``LlavaModel`` / ``LlavaForConditionalGeneration`` with a projector built by the
  overridable ``build_projector`` hook, per-sample variable-length image features, per-sample placeholder
  checks, and registration with the Auto classes (``model_type = "vlzoo_llava"``).
- :func:`build_llava`: any HF causal LM + an HF CLIP vision tower, from local folders or configs.
- :func:`add_image_token`, :func:`tokenizer_image_token`, :func:`expand_image_tokens`: the placeholder.
- :func:`encode_record` / :func:`encode_conversation`: ``plain`` and ``vicuna_v1`` with LLaVA's masking.
- :class:`MultimodalCollator`: right/left padding, images, per-sample extras.
- :func:`apply_lora` / :func:`merge_lora`; :func:`make_training_args` / :func:`build_trainer`;
  :func:`freeze_for_stage1`, :func:`save_projector` / :func:`load_projector`; :func:`deepspeed_config`.

A paper package plugs its projector in by subclassing::

    class TokenPackerLlavaConfig(VlzooLlavaConfig):
        model_type = "tokenpacker_llava"

    class TokenPackerLlavaModel(VlzooLlavaModel):
        config_class = TokenPackerLlavaConfig

        @classmethod
        def build_projector(cls, config):
            if config.projector_type == "tokenpacker":
                return TokenPackerProjector(**config.projector_kwargs)
            return super().build_projector(config)

    class TokenPackerLlavaForConditionalGeneration(VlzooLlavaForConditionalGeneration):
        config_class = TokenPackerLlavaConfig
        llava_model_class = TokenPackerLlavaModel

    register_llava_classes(TokenPackerLlavaConfig, TokenPackerLlavaModel, TokenPackerLlavaForConditionalGeneration)
"""

from vlzoo.mllm.builder import build_llava, describe_parts, load_language_model, load_vision_tower
from vlzoo.mllm.collator import MultimodalCollator, pad_sequences
from vlzoo.mllm.configuration import MLP_PROJECTOR, VlzooLlavaConfig
from vlzoo.mllm.conversation import (
    PLAIN,
    TEMPLATES,
    VICUNA_V1,
    ConversationTemplate,
    EncodedConversation,
    TokenizationMismatchWarning,
    build_prompt,
    encode_conversation,
    encode_record,
    get_template,
    normalize_image_placement,
)
from vlzoo.mllm.export import save_stock_llava
from vlzoo.mllm.lora import apply_lora, lora_target_modules, merge_lora
from vlzoo.mllm.modeling import (
    VlzooLlavaForConditionalGeneration,
    VlzooLlavaModel,
    register_llava_classes,
    splice_at_placeholders,
)
from vlzoo.mllm.tokens import (
    IGNORE_INDEX,
    IMAGE_TOKEN,
    add_image_token,
    expand_image_tokens,
    tokenizer_image_token,
)
from vlzoo.mllm.training import (
    DEEPSPEED_CONFIGS,
    PROJECTOR_FILE,
    SaveProjectorCallback,
    build_trainer,
    deepspeed_config,
    deepspeed_config_path,
    freeze_for_stage1,
    load_projector,
    make_training_args,
    projector_state_dict,
    save_projector,
    set_trainable,
    trainable_parameter_names,
)

__all__ = [
    "DEEPSPEED_CONFIGS",
    "IGNORE_INDEX",
    "IMAGE_TOKEN",
    "MLP_PROJECTOR",
    "PLAIN",
    "PROJECTOR_FILE",
    "TEMPLATES",
    "VICUNA_V1",
    "ConversationTemplate",
    "EncodedConversation",
    "MultimodalCollator",
    "SaveProjectorCallback",
    "TokenizationMismatchWarning",
    "VlzooLlavaConfig",
    "VlzooLlavaForConditionalGeneration",
    "VlzooLlavaModel",
    "add_image_token",
    "apply_lora",
    "build_llava",
    "build_prompt",
    "build_trainer",
    "deepspeed_config",
    "deepspeed_config_path",
    "describe_parts",
    "encode_conversation",
    "encode_record",
    "expand_image_tokens",
    "freeze_for_stage1",
    "get_template",
    "load_language_model",
    "load_projector",
    "load_vision_tower",
    "lora_target_modules",
    "make_training_args",
    "merge_lora",
    "normalize_image_placement",
    "pad_sequences",
    "projector_state_dict",
    "register_llava_classes",
    "save_projector",
    "save_stock_llava",
    "set_trainable",
    "splice_at_placeholders",
    "tokenizer_image_token",
    "trainable_parameter_names",
]
