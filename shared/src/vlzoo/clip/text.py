"""Label embeddings by prompt-template ensembling, with an on-disk cache that cannot go stale.

Shape shorthand: C labels, T templates, D joint embedding width.

``encode_labels`` encodes every (label, template) prompt with the CLIP text tower (batched, no grad) and
averages over the T templates per label:

- ``reduce="mean_raw"``: mean of the raw (un-normalised) embeddings -- QKS's prompt pool (multilabel spec
  A2: 85 templates, raw mean, magnitudes kept);
- ``reduce="mean_normalized"``: mean of the L2-normalised embeddings (CLIP's zero-shot classifier recipe);

then, if ``normalize_output``, L2-normalises each label's mean. The result is cached under
``vlzoo.paths.cache_dir("label_embeddings")`` with a key that hashes the text-tower weights (tensor bytes),
the model identity (backend, architecture, context length), every rendered prompt, the reduction and the
normalisation. A changed template, label, weight or tokenizer length therefore always misses; QKS's own
``*_text_features.npy`` caches were never invalidated (multilabel spec 0.4).

Template sets (``TEMPLATE_SETS``):

- ``openai_imagenet``: open_clip's shipped 80 OpenAI ImageNet templates (imported, not copied);
- ``qks85``: those 80 plus 5 "there is / this is a {} in the scene" variants (QKS's 85-template pool; the
  5 strings are written here from the spec's description, the official file's exact wording is unknown);
- ``simple``: open_clip's shipped 7 "simple" ImageNet templates;
- ``photo``: the single template "a photo of a {}.".
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Protocol

import torch
import torch.nn.functional as F
from open_clip import OPENAI_IMAGENET_TEMPLATES, SIMPLE_IMAGENET_TEMPLATES
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from vlzoo.paths import cache_dir
from vlzoo.run import atomic_write_bytes, progress

__all__ = [
    "QKS_SCENE_TEMPLATES",
    "REDUCTIONS",
    "TEMPLATE_SETS",
    "TextEncoder",
    "encode_labels",
    "render_prompts",
]

Template = str | Callable[[str], str]

QKS_SCENE_TEMPLATES: tuple[str, ...] = (
    "there is a {} in the scene.",
    "there is the {} in the scene.",
    "this is a {} in the scene.",
    "this is the {} in the scene.",
    "this is one {} in the scene.",
)
"""The 5 scene templates QKS adds to the 80 OpenAI ones (reconstructed wording)."""

TEMPLATE_SETS: dict[str, tuple[Template, ...]] = {
    "openai_imagenet": tuple(OPENAI_IMAGENET_TEMPLATES),
    "qks85": tuple(OPENAI_IMAGENET_TEMPLATES) + QKS_SCENE_TEMPLATES,
    "simple": tuple(SIMPLE_IMAGENET_TEMPLATES),
    "photo": ("a photo of a {}.",),
}
"""Named template sets; a template is a ``str.format`` string with one ``{}`` or a callable label -> prompt."""

REDUCTIONS = ("mean_raw", "mean_normalized")
_CACHE_FORMAT = 1  # bump when the cached content's meaning changes


class TextEncoder(Protocol):
    """What :func:`encode_labels` needs: :class:`~vlzoo.clip.ClipModel` and :class:`~vlzoo.clip.HfClip` fit."""

    def tokenize(self, texts: Sequence[str]) -> torch.Tensor: ...

    def encode_text(self, text: torch.Tensor, normalize: bool = False) -> torch.Tensor: ...

    def text_weights_hash(self) -> str: ...

    def cache_identity(self) -> dict: ...


def _render(template: Template, label: str) -> str:
    if callable(template):
        prompt = template(label)
        if not isinstance(prompt, str):
            raise TypeError(f"template {template!r} returned {type(prompt).__name__}, not a str")
        return prompt
    if not isinstance(template, str) or template.count("{}") != 1:
        raise ValueError(
            f"template {template!r} must be a str with exactly one '{{}}' placeholder, or a callable"
        )
    return template.format(label)


def _template_list(templates: str | Sequence[Template]) -> list[Template]:
    if isinstance(templates, str):
        if templates in TEMPLATE_SETS:
            return list(TEMPLATE_SETS[templates])
        if "{}" in templates:
            return [templates]
        raise ValueError(f"unknown template set {templates!r}; known sets: {sorted(TEMPLATE_SETS)}")
    out = list(templates)
    if not out:
        raise ValueError("templates is empty")
    return out


def render_prompts(labels: Sequence[str], templates: str | Sequence[Template]) -> list[str]:
    """Every prompt, label-major: ``[t_0(l_0), ..., t_{T-1}(l_0), t_0(l_1), ...]`` (C*T strings)."""
    template_list = _template_list(templates)
    bad = [(i, lab) for i, lab in enumerate(labels) if not isinstance(lab, str) or not lab.strip()]
    if bad:
        raise ValueError(f"labels must be non-empty strings; bad entries (index, value): {bad[:5]}")
    return [_render(t, label) for label in labels for t in template_list]


def _cache_key(
    clip: TextEncoder, labels: Sequence[str], prompts: list[str], reduce: str, normalize_output: bool
) -> str:
    spec = {
        "format": _CACHE_FORMAT,
        "model": clip.cache_identity(),
        "weights": clip.text_weights_hash(),
        "labels": list(labels),
        "prompts": prompts,
        "reduce": reduce,
        "normalize_output": normalize_output,
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def encode_labels(
    clip: TextEncoder,
    labels: Sequence[str],
    templates: str | Sequence[Template] = "openai_imagenet",
    reduce: str = "mean_raw",
    normalize_output: bool = False,
    batch_size: int = 256,
    cache: bool = True,
) -> torch.Tensor:
    """(C, D) float32 label embeddings: the per-label mean over templates of CLIP text embeddings.

    Args:
        clip: a :class:`~vlzoo.clip.ClipModel` or :class:`~vlzoo.clip.HfClip` (anything :class:`TextEncoder`).
        labels: C label names, in output-row order.
        templates: a :data:`TEMPLATE_SETS` name, one ``"... {} ..."`` string, or a sequence of format
            strings / callables.
        reduce: ``"mean_raw"`` (QKS) or ``"mean_normalized"`` (see the module docstring).
        normalize_output: L2-normalise each row of the result.
        batch_size: prompts per text-tower forward pass.
        cache: read / write the on-disk cache (``vlzoo.paths.cache_dir("label_embeddings")``).

    Returns:
        (C, D) float32 on the model's device.
    """
    if reduce not in REDUCTIONS:
        raise ValueError(f"reduce must be one of {REDUCTIONS}, got {reduce!r}")
    if isinstance(labels, str):
        raise TypeError("labels must be a sequence of label names, not one string")
    if not labels:
        raise ValueError("labels is empty")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    labels = list(labels)
    prompts = render_prompts(labels, templates)
    num_templates = len(prompts) // len(labels)
    device = clip.device

    path = None
    if cache:
        key = _cache_key(clip, labels, prompts, reduce, normalize_output)
        path = cache_dir("label_embeddings") / f"{key}.safetensors"
        if path.is_file():
            try:
                cached = load_safetensors(path.read_bytes())["embeddings"]
                if cached.shape[0] == len(labels):
                    return cached.to(device)
            except Exception:  # a damaged cache file is recomputed and overwritten
                pass

    rows = []
    with torch.no_grad():
        starts = range(0, len(prompts), batch_size)
        for start in progress(starts, desc="label embeddings", total=len(starts), leave=False):
            ids = clip.tokenize(prompts[start : start + batch_size])
            emb = clip.encode_text(ids).float()
            rows.append(F.normalize(emb, dim=-1) if reduce == "mean_normalized" else emb)
    per_prompt = torch.cat(rows)  # (C*T, D), label-major
    result = per_prompt.view(len(labels), num_templates, -1).mean(dim=1)
    if normalize_output:
        result = F.normalize(result, dim=-1)

    if path is not None:
        meta = {"num_labels": str(len(labels)), "num_templates": str(num_templates), "reduce": reduce}
        atomic_write_bytes(
            path, save_safetensors({"embeddings": result.detach().cpu().contiguous()}, metadata=meta)
        )
    return result
