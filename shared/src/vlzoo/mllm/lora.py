"""LoRA on the language model only, through peft (spec tokenpacker.md §5: r=64, alpha=16, dropout 0.05).

LoRA (Hu et al. 2021, Eq. 3): h = W0·x + (alpha/r)·B·A·x with A (r, d_in), B (d_out, r), B initialised to 0.

Targets are the full dotted names of every ``nn.Linear`` inside the LM (``model.language_model``); ``lm_head``,
the projector and the vision tower are never targeted. Deviation from official LLaVA: its
``find_all_linear_names`` passes only the last name component (``q_proj``, ``v_proj``, ...), and peft matches
those by suffix anywhere, so CLIP's own ``q_proj``/``k_proj``/``v_proj`` got adapters too; full names avoid it.
"""

from __future__ import annotations

from torch import nn

from vlzoo.mllm.modeling import VlzooLlavaForConditionalGeneration

__all__ = ["apply_lora", "lora_target_modules", "merge_lora"]


def lora_target_modules(model: VlzooLlavaForConditionalGeneration) -> list[str]:
    """Full names (relative to ``model``) of every ``nn.Linear`` of the language model, sorted."""
    prefix = "model.language_model."
    names = [
        prefix + name for name, module in model.model.language_model.named_modules() if isinstance(module, nn.Linear)
    ]
    if not names:
        raise ValueError(f"{type(model.model.language_model).__name__} has no nn.Linear layers to adapt")
    return sorted(names)


def apply_lora(
    model: VlzooLlavaForConditionalGeneration,
    r: int = 64,
    alpha: int = 16,
    dropout: float = 0.05,
    train_projector: bool = True,
):
    """Wrap ``model`` in a peft ``PeftModel`` with LoRA on the LM's linear layers.

    Args:
        model: the MLLM (not yet wrapped).
        r / alpha / dropout: LoRA rank, scaling numerator and dropout on the adapter input.
        train_projector: keep the projector trainable next to the adapters (LLaVA's LoRA fine-tune trains it
            and saves it as a non-LoRA trainable; save it with :func:`vlzoo.mllm.save_projector`).

    Returns:
        The ``PeftModel``: only the adapters (and, if asked, the projector) require grad.
    """
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        bias="none",
        target_modules=lora_target_modules(model),
        task_type="CAUSAL_LM",
    )
    peft_model = get_peft_model(model, config)
    if train_projector:
        model.projector.requires_grad_(True)
    return peft_model


def merge_lora(peft_model) -> VlzooLlavaForConditionalGeneration:
    """Fold the adapters into the base weights (W0 + alpha/r·B·A) and return the plain model."""
    return peft_model.merge_and_unload()
