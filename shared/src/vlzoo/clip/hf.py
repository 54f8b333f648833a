"""HF ``CLIPModel`` / ``CLIPVisionModel`` from a local folder, with the same interface as :class:`ClipModel`.

Shape shorthand: B images, N texts, L context length, D projection width, W tower width.

``load_hf_clip(folder)`` reads ``config.json`` and ``model.safetensors`` (or ``pytorch_model.bin``, or a
sharded index) with ``local_files_only=True`` and checks the load: any missing or shape-mismatched key in
the part that is used (the vision tower for ``vision_only=True``, everything otherwise) is an error. A
``CLIPModel`` folder (e.g. ``openai/clip-vit-large-patch14-336``) loads as a vision-only tower too, as
TokenPacker/LLaVA do. The tokenizer is read from the folder when its files are there.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vlzoo.clip.hashing import weights_hash
from vlzoo.clip.taps import VisionTaps, vit_hidden_states
from vlzoo.clip.weights import IncompleteCheckpoint, LoadReport
from vlzoo.paths import MissingLocalFile, require_dir

__all__ = ["HF_WEIGHT_NAMES", "HfClip", "load_hf_clip"]

HF_WEIGHT_NAMES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
"""Weight files ``from_pretrained`` reads from a local folder (any one suffices)."""

_TOKENIZER_FILES = ("tokenizer.json", "vocab.json")
_VISION_PREFIXES = ("vision_model.", "visual_projection.")


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Hide transformers' load-report table: vlzoo checks the keys itself and raises on real problems."""
    from transformers.utils import logging as hf_logging

    previous = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(previous)


class HfClip(nn.Module):
    """An HF CLIP (full or vision-only) with its tokenizer, mirroring :class:`~vlzoo.clip.ClipModel`.

    Attributes:
        model: ``transformers.CLIPModel`` or, for ``vision_only``, ``transformers.CLIPVisionModel``.
        tokenizer: ``transformers.CLIPTokenizer`` from the folder, or ``None`` when it holds no tokenizer.
        folder: where it was loaded from.
        vision_only: only the vision tower is present; text methods refuse to run.
        load_report: keys the checkpoint lacked or had in excess.
    """

    def __init__(
        self, model: nn.Module, tokenizer: Any, folder: Path, vision_only: bool, load_report: LoadReport
    ):
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.folder = folder
        self.vision_only = vision_only
        self.load_report = load_report

    @property
    def vision_model(self) -> nn.Module:
        """The ``CLIPVisionModel`` (the model itself when vision-only)."""
        return self.model if self.vision_only else self.model.vision_model

    @property
    def kind(self) -> str:
        return "vit"

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def image_size(self) -> tuple[int, int]:
        size = self.vision_model.config.image_size
        return (size, size) if isinstance(size, int) else tuple(size)

    @property
    def context_length(self) -> int:
        self._require_text()
        return int(self.model.config.text_config.max_position_embeddings)

    def _require_text(self) -> None:
        if self.vision_only:
            raise RuntimeError(f"{self.folder} was loaded with vision_only=True: there is no text tower")

    # --- text ---------------------------------------------------------------------------------------
    def tokenize(self, texts: str | Sequence[str]) -> torch.Tensor:
        """(N, L) int64 ids from the folder's tokenizer, padded / truncated to the context length."""
        self._require_text()
        if self.tokenizer is None:
            raise MissingLocalFile(
                f"{self.folder} holds no tokenizer (tokenizer.json or vocab.json + merges.txt); "
                f"save one with vlzoo.clip.save_hf_clip or copy the model's tokenizer files there"
            )
        batch = self.tokenizer(
            [texts] if isinstance(texts, str) else list(texts),
            padding="max_length",
            truncation=True,
            max_length=self.context_length,
            return_tensors="pt",
        )
        return batch["input_ids"]

    def encode_text(self, text: torch.Tensor | str | Sequence[str], normalize: bool = False) -> torch.Tensor:
        """(N, D) projected EOS embeddings of ids or strings."""
        self._require_text()
        ids = text if isinstance(text, torch.Tensor) else self.tokenize(text)
        out = self.model.get_text_features(input_ids=ids.to(self.device)).pooler_output
        return F.normalize(out, dim=-1) if normalize else out

    def text_weights_hash(self) -> str:
        """SHA-256 of the text-side weights (everything outside the vision tower), cached."""
        self._require_text()
        return weights_hash(self.model, exclude_prefixes=_VISION_PREFIXES)

    def cache_identity(self) -> dict[str, Any]:
        return {"backend": "hf", "name": type(self.model).__name__, "context_length": self.context_length}

    # --- vision -------------------------------------------------------------------------------------
    def encode_image(self, images: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        """(B, 3, H, W) -> (B, D) projected image embeddings; vision-only: (B, W) ``post_layernorm(CLS)``."""
        images = images.to(self.device)
        if self.vision_only:
            out = self.model(pixel_values=images).pooler_output
        else:
            out = self.model.get_image_features(pixel_values=images).pooler_output
        return F.normalize(out, dim=-1) if normalize else out

    def vision_hidden_states(
        self,
        images: torch.Tensor,
        layers: int | Sequence[int],
        include_cls: bool = False,
        trainable: bool = False,
    ) -> torch.Tensor | list[torch.Tensor]:
        """HF ``hidden_states[layers]`` without running deeper blocks; see :func:`vlzoo.clip.taps.vit_hidden_states`."""
        tower = self.vision_model
        was_training = tower.training
        if not trainable:
            tower.eval()
        try:
            with contextlib.nullcontext() if trainable else torch.no_grad():
                return vit_hidden_states(tower, images.to(self.device), layers, include_cls)
        finally:
            tower.train(was_training)

    def vision_taps(self, trainable: bool = False) -> VisionTaps:
        """A frozen (by default) :class:`VisionTaps` module sharing this vision tower."""
        return VisionTaps(self.vision_model, trainable=trainable)


def _check_loading_info(folder: Path, info: dict) -> LoadReport:
    """Every key of the loaded class must come from the file (a CLIPVisionModel has vision keys only)."""
    missing = sorted(info.get("missing_keys", ()))
    unexpected = sorted(info.get("unexpected_keys", ()))
    mismatched = [str(m) for m in info.get("mismatched_keys", ())]
    errors = [str(e) for e in info.get("error_msgs", ())]
    report = LoadReport(source=folder, scope="", missing_keys=missing, unexpected_keys=unexpected)
    if mismatched or errors:
        raise ValueError(f"{folder}: tensor shapes do not match the config: {(mismatched + errors)[:8]}")
    if missing:
        raise IncompleteCheckpoint(
            f"{folder}: the checkpoint does not cover {len(missing)} keys of the model it must fill: "
            f"{', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}. A tower left partly random "
            f"would go unnoticed, so this is an error"
        )
    return report


def load_hf_clip(
    folder: str | os.PathLike,
    vision_only: bool = False,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | str = torch.float32,
) -> HfClip:
    """Load an HF CLIP from a local folder (never the hub).

    Args:
        folder: holds ``config.json`` and one of :data:`HF_WEIGHT_NAMES`; optionally tokenizer files.
        vision_only: load ``CLIPVisionModel`` (from a ``CLIPModel`` or ``CLIPVisionModel`` folder); only
            vision keys must be present.
        device: where to put the model.
        dtype: parameter dtype (``"auto"`` keeps the file's).

    Raises:
        MissingLocalFile: no folder, no ``config.json`` or no weight file (the message names the file).
        IncompleteCheckpoint: weights missing for keys that are used. ValueError: wrong model type.
    """
    from transformers import CLIPModel, CLIPTokenizer, CLIPVisionModel

    path = require_dir(folder, "HF CLIP")
    config_file = path / "config.json"
    if not config_file.is_file():
        raise MissingLocalFile(
            f"HF CLIP folder {path} has no config.json; copy the model's config.json there "
            f"(or write the folder with vlzoo.clip.save_hf_clip)"
        )
    if not any((path / name).is_file() for name in HF_WEIGHT_NAMES):
        raise MissingLocalFile(
            f"HF CLIP folder {path} has no weights file: expected model.safetensors (or pytorch_model.bin, "
            f"or a sharded *.index.json)"
        )
    try:
        model_type = json.loads(config_file.read_text()).get("model_type")
    except json.JSONDecodeError as err:
        raise ValueError(f"{config_file}: not valid JSON ({err})") from err
    if model_type not in ("clip", "clip_vision_model"):
        raise ValueError(
            f"{config_file}: model_type {model_type!r} is not a CLIP ('clip' or 'clip_vision_model')"
        )
    if model_type == "clip_vision_model" and not vision_only:
        raise ValueError(
            f"{path} holds a vision-only CLIP (model_type 'clip_vision_model'); pass vision_only=True"
        )

    cls = CLIPVisionModel if vision_only else CLIPModel
    with _quiet_transformers():
        model, info = cls.from_pretrained(path, local_files_only=True, output_loading_info=True, dtype=dtype)
    report = _check_loading_info(path, info)
    report.loaded = len(model.state_dict()) - len(report.missing_keys)
    model.to(device).eval()

    tokenizer = None
    if not vision_only and any((path / name).is_file() for name in _TOKENIZER_FILES):
        tokenizer = CLIPTokenizer.from_pretrained(path, local_files_only=True)
    return HfClip(model, tokenizer, path, vision_only, report)
