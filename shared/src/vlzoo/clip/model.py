"""``create_clip``: open_clip models by name, with weights only from local files, checked on load.

Shape shorthand: B images, N texts, L context length, D joint embedding width (``embed_dim``).

``create_clip("ViT-L-14-336", weights="/ckpt/open_clip_pytorch_model.bin")`` builds the architecture from
open_clip's JSON registry (plus vlzoo's tiny configs), never passing a pretrained tag to open_clip, then
loads the file with :func:`vlzoo.clip.weights.load_checked`. ``weights=None`` is a random init, and
``device="meta"`` builds without allocating (parameter counts of the 300M+ towers in milliseconds).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from copy import deepcopy
from difflib import get_close_matches
from pathlib import Path
from typing import Any

import open_clip
import torch
import torch.nn.functional as F
from open_clip.model import get_model_preprocess_cfg
from open_clip.tokenizer import SimpleTokenizer
from open_clip.transform import PreprocessCfg, image_transform_v2
from torch import nn

from vlzoo.clip.hashing import weights_hash
from vlzoo.clip.taps import DEFAULT_CONVNEXT_STAGES, VisionTaps, convnext_stage_features, vit_hidden_states
from vlzoo.clip.weights import HubDownloadRefused, LoadReport, load_checked, resolve_open_clip_weights

__all__ = ["ClipModel", "create_clip"]


@contextlib.contextmanager
def _quiet_open_clip() -> Iterator[None]:
    """Silence open_clip's root-logger 'initialized randomly' warnings while vlzoo loads the weights itself."""
    previous = logging.root.manager.disable
    logging.disable(max(previous, logging.WARNING))
    try:
        yield
    finally:
        logging.disable(previous)


def _merge(base: dict, delta: Mapping) -> dict:
    out = deepcopy(base)
    for key, value in delta.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = deepcopy(value)
    return out


class ClipModel(nn.Module):
    """An open_clip model with its tokenizer, image transform and load report.

    Build it with :func:`create_clip`. It is an ``nn.Module`` holding the open_clip model as ``.model``
    (state-dict keys are prefixed ``model.``), so ``.to()``, ``.parameters()`` and ``.train()`` act on it.

    Attributes:
        model: the open_clip ``CLIP``.
        name: the open_clip architecture name.
        config: the resolved architecture dict (``embed_dim``, ``vision_cfg``, ``text_cfg``, ...).
        preprocess: open_clip's eval transform for PIL images (resize, center crop, CLIP mean/std).
        load_report: what the weight load did (missing / unexpected keys).
        vision_only: only the vision tower was required to be loaded; text methods refuse to run.
    """

    def __init__(
        self,
        model: nn.Module,
        name: str,
        config: dict,
        load_report: LoadReport,
        vision_only: bool = False,
    ):
        super().__init__()
        self.model = model
        self.name = name
        self.config = config
        self.load_report = load_report
        self.vision_only = vision_only
        self.preprocess: Callable = image_transform_v2(
            PreprocessCfg(**get_model_preprocess_cfg(model)), is_train=False
        )
        self._tokenizer: SimpleTokenizer | None = None

    # --- properties -----------------------------------------------------------------------------------
    @property
    def visual(self) -> nn.Module:
        """The vision tower (open_clip ``VisionTransformer`` or ``TimmModel``)."""
        return self.model.visual

    @property
    def kind(self) -> str:
        """``"vit"`` or ``"convnext"`` (or ``"other"`` for towers without taps, e.g. ModifiedResNet)."""
        if hasattr(self.visual, "conv1") and hasattr(self.visual, "ln_pre"):
            return "vit"
        if hasattr(getattr(self.visual, "trunk", None), "stages"):
            return "convnext"
        return "other"

    @property
    def embed_dim(self) -> int:
        return int(self.config["embed_dim"])

    @property
    def image_size(self) -> tuple[int, int]:
        size = self.visual.image_size
        return (size, size) if isinstance(size, int) else tuple(size)

    @property
    def context_length(self) -> int:
        return int(self.model.context_length)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def tokenizer(self) -> SimpleTokenizer:
        """open_clip's BPE tokenizer (built on first use, from the vocabulary file shipped in the wheel)."""
        if self._tokenizer is None:
            text_cfg = self.config.get("text_cfg", {})
            if text_cfg.get("hf_tokenizer_name") or "siglip" in self.name.lower():
                raise NotImplementedError(
                    f"{self.name!r} uses a hub tokenizer, which cannot be fetched offline; only open_clip's "
                    f"BPE tokenizer is supported"
                )
            self._tokenizer = SimpleTokenizer(
                context_length=self.context_length, **(text_cfg.get("tokenizer_kwargs") or {})
            )
        return self._tokenizer

    # --- text ---------------------------------------------------------------------------------------
    def _require_text(self) -> None:
        if self.vision_only:
            raise RuntimeError(
                f"{self.name!r} was created with vision_only=True: its text tower was not required to be "
                f"loaded and may be random; create it with vision_only=False to use text"
            )

    def tokenize(self, texts: str | Sequence[str]) -> torch.Tensor:
        """(N, L) int64 token ids: SOT, BPE ids, EOT, zero padding; truncated to L keeping EOT last."""
        return self.tokenizer(
            [texts] if isinstance(texts, str) else list(texts), context_length=self.context_length
        )

    def encode_text(self, text: torch.Tensor | str | Sequence[str], normalize: bool = False) -> torch.Tensor:
        """(N, D) text embeddings (EOT token, after ``ln_final`` and the projection) of ids or strings."""
        self._require_text()
        ids = text if isinstance(text, torch.Tensor) else self.tokenize(text)
        return self.model.encode_text(ids.to(self.device), normalize=normalize)

    def text_weights_hash(self) -> str:
        """SHA-256 of the text-side weights (every key outside ``visual.``), cached; see ``vlzoo.clip.hashing``."""
        return weights_hash(self.model, exclude_prefixes=("visual.",))

    def cache_identity(self) -> dict[str, Any]:
        """What besides the weights determines a text embedding (for on-disk cache keys)."""
        return {"backend": "open_clip", "name": self.name, "context_length": self.context_length}

    # --- vision -------------------------------------------------------------------------------------
    def encode_image(self, images: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        """(B, 3, H, W) normalised pixels -> (B, D) image embeddings."""
        return self.model.encode_image(images.to(self.device), normalize=normalize)

    def forward(
        self, images: torch.Tensor, text: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(image embeddings (B, D), text embeddings (N, D), both L2-normalised, logit scale exp()) for training."""
        image_features = F.normalize(self.model.encode_image(images), dim=-1)
        text_features = F.normalize(self.model.encode_text(text), dim=-1)
        return image_features, text_features, self.model.logit_scale.exp()

    @contextlib.contextmanager
    def _frozen_visual(self, trainable: bool) -> Iterator[None]:
        if trainable:
            yield
            return
        was_training = self.visual.training
        self.visual.eval()
        try:
            with torch.no_grad():
                yield
        finally:
            self.visual.train(was_training)

    def vision_hidden_states(
        self,
        images: torch.Tensor,
        layers: int | Sequence[int],
        include_cls: bool = False,
        trainable: bool = False,
    ) -> torch.Tensor | list[torch.Tensor]:
        """ViT hidden states, HF indexing (0 = ln_pre(embeddings), k = block k, -2 = penultimate).

        Runs in eval mode under ``no_grad`` unless ``trainable`` (no lasting change to the module; use
        :meth:`vision_taps` for a frozen submodule). See :func:`vlzoo.clip.taps.vit_hidden_states`.
        """
        with self._frozen_visual(trainable):
            return vit_hidden_states(self.visual, images.to(self.device), layers, include_cls)

    def convnext_stages(
        self,
        images: torch.Tensor,
        stages: Sequence[str] = DEFAULT_CONVNEXT_STAGES,
        trainable: bool = False,
    ) -> dict[str, torch.Tensor]:
        """ConvNeXt maps ``{stem, res2, res3, res4, res5}`` (+ ``clip_vis_dense`` on request), (B, C, h, w)."""
        with self._frozen_visual(trainable):
            return convnext_stage_features(self.visual, images.to(self.device), stages)

    def vision_taps(self, trainable: bool = False) -> VisionTaps:
        """A :class:`VisionTaps` module over this model's vision tower (frozen by default; shares weights)."""
        return VisionTaps(self.visual, trainable=trainable)


def _lookup_config(name: str) -> dict:
    if name.startswith(("hf-hub:", "local-dir:")):
        raise HubDownloadRefused(
            f"model name {name!r}: vlzoo builds open_clip models from registered architecture names only "
            f"(e.g. 'ViT-L-14-336', 'convnext_large_d_320'); pass the weights as weights=/path/to/"
            f"open_clip_pytorch_model.bin, downloaded yourself"
        )
    cfg = open_clip.get_model_config(name)
    if cfg is None:
        close = get_close_matches(name, open_clip.list_models(), n=5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"unknown open_clip architecture {name!r}{hint}")
    return cfg


def create_clip(
    name: str,
    weights: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    *,
    vision_only: bool = False,
    quick_gelu: bool = False,
    precision: str = "fp32",
    config_overrides: Mapping[str, Any] | None = None,
) -> ClipModel:
    """Build an open_clip model by architecture name; weights only from a local file or folder.

    Args:
        name: an open_clip architecture (``"ViT-L-14-336"``, ``"ViT-B-16"``, ``"convnext_large_d_320"``,
            ``"vlzoo-tiny-vit"``, ``"vlzoo-tiny-convnext"``, ...). Hub names are refused.
        weights: ``None`` for random init; a ``.bin``/``.pt``/``.pth`` (read with ``weights_only=True``) or
            ``.safetensors`` file; or a folder holding ``open_clip_model.safetensors`` or
            ``open_clip_pytorch_model.bin``. A pretrained tag raises :class:`HubDownloadRefused` naming the
            file to download and its HF repo.
        device: where the model lives; ``"meta"`` builds without memory (random init only).
        vision_only: only ``visual.*`` keys must be in the file (text tower may stay random; text methods
            then refuse to run). Otherwise every key must be present.
        quick_gelu: force QuickGELU (OpenAI-trained weights need it; LAION/DataComp and vlzoo's tiny ones
            do not); ``False`` keeps the architecture config's own choice.
        precision: open_clip precision string (``"fp32"``, ``"bf16"``, ``"fp16"``, ``"pure_bf16"``, ...).
        config_overrides: nested dict merged into the architecture config, e.g.
            ``{"vision_cfg": {"layers": 2}}``.

    Returns:
        A :class:`ClipModel` in eval mode.

    Raises:
        HubDownloadRefused: a pretrained tag or hub name; MissingLocalFile: the weights path is absent;
        IncompleteCheckpoint: the file misses keys that are needed; ValueError: unknown architecture,
        unreadable file or shape mismatch.
    """
    cfg = _lookup_config(name)
    if config_overrides:
        cfg = _merge(cfg, config_overrides)
    if quick_gelu:
        cfg["quick_gelu"] = True
    device = torch.device(device)
    if weights is not None and device.type == "meta":
        raise ValueError(
            "device='meta' builds an empty model; it cannot hold loaded weights (use weights=None)"
        )
    path: Path | None = resolve_open_clip_weights(name, weights) if weights is not None else None

    overrides = {key: cfg[key] for key in ("embed_dim", "vision_cfg", "text_cfg") if key in cfg}
    build_device = contextlib.nullcontext() if device.type != "meta" else torch.device("meta")
    with _quiet_open_clip(), build_device:
        model = open_clip.create_model(
            name,
            pretrained=None,
            precision=precision,
            device=device,
            force_quick_gelu=quick_gelu,
            pretrained_image=False,
            pretrained_text=False,
            **overrides,
        )
    scope = "visual." if vision_only else ""
    report = (
        load_checked(model, path, scope=scope) if path is not None else LoadReport(source=None, scope=scope)
    )
    model.eval()
    return ClipModel(model, name, cfg, report, vision_only=vision_only)
