"""The tiny open_clip architectures shipped with vlzoo, registered with open_clip on import of ``vlzoo.clip``.

Each architecture is one JSON file in ``model_configs/`` in open_clip's own format (``embed_dim``,
``vision_cfg``, ``text_cfg``), so a width or depth change is a one-line edit of the JSON:

- ``vlzoo-tiny-vit``: a 96 px ViT with 8 px patches (12x12 grid), width 128, 6 blocks, 4 heads (head width
  32), exact GELU (not QuickGELU), so it maps 1:1 onto HF CLIP with ``hidden_act="gelu"``; text tower with
  context 32, width 128, 4 blocks, 4 heads and open_clip's BPE vocabulary (49408).
- ``vlzoo-tiny-convnext``: timm's ``test_convnext2`` (four stages, depths 1/1/1/1, dims 32/64/96/128,
  0.48M trunk parameters, Linear-MLP blocks like ConvNeXt-L; GELU-tanh) at 128 px, built like
  ``convnext_large_d_320`` (``timm_proj "mlp"``) except for the global pooling: ``timm_pool "max"`` where
  ConvNeXt-L keeps timm's average pooling. Measured on the toy world: an average over the 4 x 4 last map lets
  the background textures swamp objects that cover a few cells, and the pooled embedding never learned which
  colours were present (BCE stuck at its prior, 0.52-0.60 after 150 steps, against 0.32 with max pooling), so
  zero-shot colour stayed at 15 %. Same text tower. open_clip's JSON cannot
  pass timm depths/dims, so the trunk size is changed by naming another timm ConvNeXt: ``test_convnext``
  (0.27M) < ``test_convnext2`` < ``convnext_atto`` (3.7M, depths 2/2/6/2; the whole CLIP builds in ~0.45 s
  against ~0.33 s with one thread on the loaded 2-core machine) < ``convnext_femto`` < ``convnext_pico``.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import MappingProxyType

import open_clip

__all__ = ["MODEL_CONFIG_DIR", "TINY_CONFIGS", "register_tiny_configs"]

MODEL_CONFIG_DIR = Path(__file__).resolve().parent / "model_configs"

TINY_CONFIGS: MappingProxyType[str, Path] = MappingProxyType(
    {path.stem: path for path in sorted(MODEL_CONFIG_DIR.glob("*.json"))}
)
"""Name -> JSON file of every vlzoo architecture (``open_clip.get_model_config(name)`` gives the dict)."""

_registered = False


def register_tiny_configs() -> None:
    """Add ``model_configs/`` to open_clip's registry (idempotent; runs on import of ``vlzoo.clip``)."""
    global _registered
    if _registered:
        return
    for name, path in TINY_CONFIGS.items():
        cfg = json.loads(path.read_text())
        missing = {"embed_dim", "vision_cfg", "text_cfg"} - cfg.keys()
        if missing:
            raise ValueError(f"{path}: open_clip config {name!r} lacks the keys {sorted(missing)}")
    open_clip.add_model_config(MODEL_CONFIG_DIR)
    _registered = True
