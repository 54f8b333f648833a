"""Local-only weight files for open_clip models, and checked loading.

Nothing here downloads: a pretrained *tag* (``"openai"``, ``"laion2b_s29b_b131k_ft_soup"``) or an
``hf-hub:`` name raises :class:`HubDownloadRefused`, which names the file to fetch yourself and the HF repo
it lives in. Loading reports every missing and unexpected key; a missing key in the part of the model that
will be used is an error (:class:`IncompleteCheckpoint`). This is the check Osprey's official loader lacks:
it loaded with ``strict=False`` and silently left towers random when key names did not match.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from open_clip.convert import convert_state_dict
from open_clip.model import resize_pos_embed, resize_text_pos_embed
from open_clip.pretrained import get_pretrained_cfg

from vlzoo.paths import MissingLocalFile

__all__ = [
    "OPEN_CLIP_WEIGHT_NAMES",
    "HubDownloadRefused",
    "IncompleteCheckpoint",
    "LoadReport",
    "resolve_open_clip_weights",
    "read_state_dict",
    "load_checked",
    "hub_refusal_message",
]

logger = logging.getLogger(__name__)

OPEN_CLIP_WEIGHT_NAMES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
"""File names looked for, in this order, when ``weights`` is a folder (open_clip's HF-hub names)."""

_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
_REPORT_KEYS = 8  # how many key names an error message lists before "... and N more"


class HubDownloadRefused(MissingLocalFile):
    """A model name or pretrained tag that would need a download from a hub; provide the file locally."""


class IncompleteCheckpoint(ValueError):
    """A checkpoint that does not cover every parameter of the part of the model that will be used."""


@dataclass
class LoadReport:
    """What a checked load did.

    Attributes:
        source: the weight file that was read (``None`` for random init).
        scope: the key prefix that had to be fully covered (``"visual."`` for vision-only use, ``""`` for all).
        loaded: number of model keys that received a tensor from the file.
        missing_keys: model keys the file did not provide (outside ``scope`` when the load succeeded).
        unexpected_keys: file keys the model does not have.
        notes: conversions applied on the way (e.g. a resized positional embedding).
    """

    source: Path | None
    scope: str
    loaded: int = 0
    missing_keys: list[str] = field(default_factory=list)
    unexpected_keys: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        if self.source is None:
            return "random init (no weights file)"
        return (
            f"{self.source}: loaded {self.loaded} keys, {len(self.missing_keys)} missing, "
            f"{len(self.unexpected_keys)} unexpected" + (f"; {'; '.join(self.notes)}" if self.notes else "")
        )


def _key_list(keys: list[str]) -> str:
    shown = ", ".join(keys[:_REPORT_KEYS])
    return shown + (f" ... and {len(keys) - _REPORT_KEYS} more" if len(keys) > _REPORT_KEYS else "")


def hub_refusal_message(model_name: str, tag: str) -> str:
    """The error text for a pretrained tag: which file to download, from where, and how to pass it."""
    cfg = get_pretrained_cfg(model_name, tag) or {}
    hub = str(cfg.get("hf_hub", "")).strip("/")
    msg = (
        f"open_clip model {model_name!r} with pretrained tag {tag!r} would need a download, and vlzoo never "
        f"downloads weights. Pass weights=/path/to/open_clip_pytorch_model.bin (or a folder holding it)"
    )
    if hub:
        msg += f"; download it from the HF repo {hub} yourself"
    elif cfg.get("url"):
        msg += f"; download it from {cfg['url']} yourself (a TorchScript archive must first be re-saved as a state dict)"
    if cfg.get("quick_gelu"):
        msg += ". These weights were trained with QuickGELU: also pass quick_gelu=True"
    return msg


def resolve_open_clip_weights(model_name: str, weights: str | os.PathLike) -> Path:
    """Turn ``weights`` (a file, or a folder holding one of :data:`OPEN_CLIP_WEIGHT_NAMES`) into a file path.

    Raises:
        HubDownloadRefused: ``weights`` is an open_clip pretrained tag or an ``hf-hub:`` name.
        MissingLocalFile: the file or folder does not exist, or the folder holds no known weight file.
        ValueError: the file has an unsupported suffix.
    """
    text = os.fspath(weights)
    path = Path(text).expanduser()
    if not path.exists():
        if text.startswith("hf-hub:"):
            raise HubDownloadRefused(
                f"weights={text!r} names an HF hub repo, and vlzoo never downloads weights. Download "
                f"open_clip_pytorch_model.bin from the HF repo {text[len('hf-hub:') :]} yourself and pass "
                f"weights=/path/to/open_clip_pytorch_model.bin"
            )
        if get_pretrained_cfg(model_name, text):
            raise HubDownloadRefused(hub_refusal_message(model_name, text))
        raise MissingLocalFile(f"open_clip weights for {model_name!r} not found: {path}")
    if path.is_dir():
        for name in OPEN_CLIP_WEIGHT_NAMES:
            if (path / name).is_file():
                return path / name
        raise MissingLocalFile(
            f"open_clip weights folder {path} holds neither {' nor '.join(OPEN_CLIP_WEIGHT_NAMES)}; "
            f"put the model's weight file there under one of these names"
        )
    if not path.name.endswith(_WEIGHT_SUFFIXES):
        raise ValueError(
            f"{path}: unsupported weights file type; expected one of {', '.join(_WEIGHT_SUFFIXES)}"
        )
    return path


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Read a state dict from ``.safetensors`` or a torch file (``torch.load(weights_only=True)``), on CPU.

    A ``{"state_dict": ...}`` wrapper and a DDP ``module.`` prefix are removed.
    """
    try:
        if path.name.endswith(".safetensors"):
            from safetensors.torch import load_file

            obj = load_file(str(path), device="cpu")
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # corrupt file, TorchScript archive, pickled objects: all unreadable here
        raise ValueError(f"{path}: cannot read as a state dict ({type(err).__name__}: {err})") from err
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not obj:
        raise ValueError(
            f"{path}: expected a non-empty mapping of parameter names to tensors, got {type(obj).__name__}"
        )
    bad = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise ValueError(f"{path}: entries that are not tensors: {_key_list([str(k) for k in bad])}")
    state = dict(obj)
    if all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def load_checked(model: torch.nn.Module, path: Path, scope: str = "") -> LoadReport:
    """Load ``path`` into an open_clip model; every model key starting with ``scope`` must be provided.

    Applies open_clip's own compatibility conversions first (third-party formats, positional-embedding
    resizing, scalar/1-d ``logit_scale``). Keys outside ``scope`` that stay missing are only reported.

    Raises:
        IncompleteCheckpoint: a key under ``scope`` is missing from the file.
        ValueError: a tensor's shape does not match the model (names the keys and both shapes).
    """
    state = read_state_dict(path)
    report = LoadReport(source=path, scope=scope)
    state = convert_state_dict(model, state)
    own = model.state_dict()
    if (
        "logit_scale" in state
        and "logit_scale" in own
        and state["logit_scale"].shape != own["logit_scale"].shape
    ):
        state["logit_scale"] = state["logit_scale"].reshape(own["logit_scale"].shape)
    for key, resize in (
        ("visual.positional_embedding", resize_pos_embed),
        ("positional_embedding", resize_text_pos_embed),
    ):
        if key in state and key in own and state[key].shape != own[key].shape:
            before = tuple(state[key].shape)
            resize(state, model)
            report.notes.append(f"{key} resized from {before} to {tuple(state[key].shape)}")

    mismatched = [
        f"{k} (file {tuple(v.shape)}, model {tuple(own[k].shape)})"
        for k, v in state.items()
        if k in own and v.shape != own[k].shape
    ]
    if mismatched:
        raise ValueError(f"{path}: tensor shapes do not match the model: {_key_list(mismatched)}")

    result = model.load_state_dict(state, strict=False)
    report.missing_keys = sorted(result.missing_keys)
    report.unexpected_keys = sorted(result.unexpected_keys)
    report.loaded = len(own) - len(report.missing_keys)
    required = [k for k in report.missing_keys if k.startswith(scope)]
    if required:
        where = f"the '{scope}*' keys" if scope else "every key"
        raise IncompleteCheckpoint(
            f"{path}: the checkpoint does not cover {where} of the model; {len(required)} missing: "
            f"{_key_list(required)}. A tower left partly random would go unnoticed, so this is an error"
        )
    if report.unexpected_keys:
        logger.warning(
            "%s: %d unexpected keys ignored: %s",
            path,
            len(report.unexpected_keys),
            _key_list(report.unexpected_keys),
        )
    return report
