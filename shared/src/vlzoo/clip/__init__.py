"""One wrapper for the CLIP vision-language towers every paper uses (open_clip and HF transformers).

- :func:`create_clip` builds an open_clip model by name, weights only from a local file or folder, every
  needed key checked; :func:`load_hf_clip` does the same for an HF ``CLIPModel`` / ``CLIPVisionModel`` folder.
- :class:`VisionTaps` (and ``ClipModel.vision_hidden_states`` / ``convnext_stages``): multi-level features
  with HF's hidden-state indexing for ViTs and ``stem``/``res2..res5`` maps for ConvNeXt; frozen by default.
- :func:`encode_labels` + :data:`TEMPLATE_SETS`: prompt-ensembled label embeddings with a safe disk cache.
- :func:`open_clip_to_hf` / :func:`save_hf_clip`: an open_clip ViT CLIP as an HF folder (model, tokenizer,
  image processor), numerically equal.
- :func:`preprocess_images`: tensor resize + CLIP normalisation.

Importing this package registers vlzoo's tiny architectures (:data:`TINY_CONFIGS`: ``vlzoo-tiny-vit``,
``vlzoo-tiny-convnext``) with open_clip. transformers is imported only by the HF functions.
"""

from vlzoo.clip.convert import (
    hf_clip_config,
    hf_tokenizer_from_open_clip,
    open_clip_to_hf,
    save_hf_clip,
)
from vlzoo.clip.hashing import weights_hash
from vlzoo.clip.hf import HfClip, load_hf_clip
from vlzoo.clip.model import ClipModel, create_clip
from vlzoo.clip.preprocess import CLIP_MEAN, CLIP_STD, normalize_images, preprocess_images
from vlzoo.clip.registry import TINY_CONFIGS, register_tiny_configs
from vlzoo.clip.taps import CONVNEXT_STAGES, VisionTaps, convnext_stage_features, vit_hidden_states
from vlzoo.clip.text import QKS_SCENE_TEMPLATES, TEMPLATE_SETS, encode_labels, render_prompts
from vlzoo.clip.weights import HubDownloadRefused, IncompleteCheckpoint, LoadReport

__all__ = [
    "CLIP_MEAN",
    "CLIP_STD",
    "CONVNEXT_STAGES",
    "QKS_SCENE_TEMPLATES",
    "TEMPLATE_SETS",
    "TINY_CONFIGS",
    "ClipModel",
    "HfClip",
    "HubDownloadRefused",
    "IncompleteCheckpoint",
    "LoadReport",
    "VisionTaps",
    "convnext_stage_features",
    "create_clip",
    "encode_labels",
    "hf_clip_config",
    "hf_tokenizer_from_open_clip",
    "load_hf_clip",
    "normalize_images",
    "open_clip_to_hf",
    "preprocess_images",
    "register_tiny_configs",
    "render_prompts",
    "save_hf_clip",
    "vit_hidden_states",
    "weights_hash",
]

register_tiny_configs()
