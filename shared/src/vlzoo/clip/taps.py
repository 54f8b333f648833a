"""Multi-level feature taps of CLIP vision towers: ViT hidden states and ConvNeXt stage maps.

Shape shorthand: B images, H x W pixels, P patch size, G = (H/P)(W/P) patch tokens, D tower width, L blocks.

**ViT** (open_clip ``VisionTransformer`` or HF ``CLIPVisionModel``), HF indexing convention
(TokenPacker spec §2.1): index 0 is the embeddings after the pre-LayerNorm (``ln_pre`` / ``pre_layrnorm``),
index k in 1..L is the output of block k, i.e. HF ``hidden_states[k]`` = output of open_clip
``transformer.resblocks[k-1]``; negative indices count from the end (-1 = last block, -2 = penultimate,
LLaVA's ``mm_vision_select_layer``). States are taken before ``ln_post`` and the projection; each is
(B, G, D), or (B, 1+G, D) with the CLS token first when ``include_cls``. Only the blocks up to the deepest
requested index run. Patch dropout is never applied (a feature tap needs every patch).

**ConvNeXt** (open_clip's timm tower, Osprey spec §2 table): ``stem`` (stride 4), ``res2``..``res5`` (the
outputs of ``trunk.stages[0..3]``, strides 4/8/16/32) and optionally ``clip_vis_dense`` (``norm_pre`` of
``res5``, an identity for ConvNeXt-L), each (B, C_s, H/stride, W/stride). Only the stages up to the deepest
requested one run; the input is cast to the stem's dtype, as in Osprey.

:class:`VisionTaps` wraps a tower for use inside a model: frozen by default (``requires_grad=False``, kept in
eval mode even when the parent calls ``.train()``, run under ``torch.no_grad``); ``trainable=True`` opts out.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence

import torch
from torch import nn

__all__ = [
    "CONVNEXT_STAGES",
    "DEFAULT_CONVNEXT_STAGES",
    "VisionTaps",
    "convnext_stage_features",
    "resolve_layer_indices",
    "vit_hidden_states",
    "vit_tower",
]

CONVNEXT_STAGES = ("stem", "res2", "res3", "res4", "res5", "clip_vis_dense")
"""Every ConvNeXt tap name, in forward order."""
DEFAULT_CONVNEXT_STAGES = ("stem", "res2", "res3", "res4", "res5")


def _is_hf_vision(module: nn.Module) -> bool:
    return hasattr(module, "pre_layrnorm") and hasattr(module, "encoder") and hasattr(module, "embeddings")


def _is_open_clip_vit(module: nn.Module) -> bool:
    return hasattr(module, "conv1") and hasattr(module, "ln_pre") and hasattr(module, "transformer")


def _convnext_trunk(module: nn.Module) -> nn.Module | None:
    trunk = getattr(module, "trunk", module)  # open_clip TimmModel holds the timm model as .trunk
    if hasattr(trunk, "stem") and hasattr(trunk, "stages") and len(trunk.stages) == 4:
        return trunk
    return None


def _find_tower(model: nn.Module) -> tuple[nn.Module, str]:
    """(tower, kind) for a tower or any wrapper holding one as .visual / .vision_model / .model."""
    inner = getattr(model, "model", None)
    for candidate in (model, inner):
        if not isinstance(candidate, nn.Module):
            continue
        try:
            return vit_tower(candidate), "vit"
        except TypeError:
            visual = getattr(candidate, "visual", candidate)
            if _convnext_trunk(visual) is not None:
                return visual, "convnext"
    raise TypeError(
        f"{type(model).__name__}: no ViT (open_clip/HF) or ConvNeXt (open_clip timm) vision tower found"
    )


def vit_tower(model: nn.Module) -> nn.Module:
    """The ViT vision tower inside ``model`` (itself, ``.visual`` of open_clip, ``.vision_model`` of HF).

    Raises:
        TypeError: no open_clip ``VisionTransformer`` or HF ``CLIPVisionModel`` is found.
    """
    for candidate in (model, getattr(model, "visual", None), getattr(model, "vision_model", None)):
        if isinstance(candidate, nn.Module) and (_is_open_clip_vit(candidate) or _is_hf_vision(candidate)):
            return candidate
    raise TypeError(
        f"{type(model).__name__} is neither an open_clip VisionTransformer nor an HF CLIPVisionModel"
    )


def _vit_num_layers(tower: nn.Module) -> int:
    return len(tower.encoder.layers) if _is_hf_vision(tower) else len(tower.transformer.resblocks)


def _is_single(layers) -> bool:
    return hasattr(layers, "__index__")  # one integer (Python, numpy or 0-d torch) rather than a sequence


def resolve_layer_indices(layers: int | Sequence[int], num_layers: int) -> list[int]:
    """Map HF-convention indices (negative allowed) to 0..num_layers.

    Raises:
        IndexError: an index outside [-(num_layers+1), num_layers].
    """
    requested = [layers] if _is_single(layers) else list(layers)
    if not requested:
        raise ValueError("layers is empty: request at least one hidden-state index")
    resolved = []
    for raw in requested:
        if isinstance(raw, bool):
            raise TypeError(f"layer indices must be integers, got {raw!r}")
        try:
            index = operator.index(raw)  # ints, numpy / torch integer scalars
        except TypeError:
            raise TypeError(f"layer indices must be integers, got {raw!r}") from None
        if not -(num_layers + 1) <= index <= num_layers:
            raise IndexError(
                f"layer index {index} is out of range for a tower with {num_layers} blocks "
                f"(valid: -{num_layers + 1}..{num_layers}, 0 = embeddings after the pre-LayerNorm)"
            )
        resolved.append(index % (num_layers + 1))
    return resolved


def _check_image_size(images: torch.Tensor, expected: tuple[int, int], what: str) -> None:
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"{what}: expected images of shape (B, 3, H, W), got {tuple(images.shape)}")
    if tuple(images.shape[-2:]) != tuple(expected):
        raise ValueError(
            f"{what}: images are {images.shape[-2]}x{images.shape[-1]} but the tower's positional embedding "
            f"is for {expected[0]}x{expected[1]}; resize the images first"
        )


def _open_clip_embeddings(tower: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """ln_pre(cat(CLS, patch embeddings) + positional embedding): (B, 3, H, W) -> (B, 1+G, D)."""
    _check_image_size(images, tuple(tower.image_size), "open_clip ViT")
    x = tower.conv1(images.to(tower.conv1.weight.dtype))  # (B, D, H/P, W/P)
    x = x.flatten(2).transpose(1, 2)  # (B, G, D), row-major over the patch grid
    cls = tower.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
    x = torch.cat([cls, x], dim=1) + tower.positional_embedding.to(x.dtype)
    return tower.ln_pre(x)


def vit_hidden_states(
    tower: nn.Module,
    images: torch.Tensor,
    layers: int | Sequence[int],
    include_cls: bool = False,
) -> torch.Tensor | list[torch.Tensor]:
    """Hidden states of a ViT tower at HF-convention ``layers`` (see the module docstring).

    Args:
        tower: an open_clip ``VisionTransformer`` or HF ``CLIPVisionModel`` (or a model holding one).
        images: (B, 3, H, W) normalised pixels at the tower's image size.
        layers: one index or a sequence; 0 = ln_pre(embeddings), k = output of block k, negative from the end.
        include_cls: keep the CLS token (first) in each state.

    Returns:
        (B, G, D) or (B, 1+G, D) for an int ``layers``; a list of those, in the order asked, for a sequence.
    """
    tower = vit_tower(tower)
    indices = resolve_layer_indices(layers, _vit_num_layers(tower))
    deepest = max(indices)
    hf = _is_hf_vision(tower)
    if hf:
        x = tower.pre_layrnorm(tower.embeddings(images))
        blocks = tower.encoder.layers[:deepest]
    else:
        x = _open_clip_embeddings(tower, images)
        blocks = tower.transformer.resblocks[:deepest]
        if not getattr(tower.transformer, "batch_first", True):
            raise TypeError("open_clip transformers with batch_first=False are not supported")
    states = {0: x}
    for k, block in enumerate(blocks, start=1):
        x = block(x, None) if hf else block(x)  # HF layers take (hidden, attention_mask); vision has no mask
        states[k] = x
    start = 0 if include_cls else 1
    picked = [states[i][:, start:] for i in indices]
    return picked[0] if _is_single(layers) else picked


def convnext_stage_features(
    tower: nn.Module,
    images: torch.Tensor,
    stages: Sequence[str] | None = None,
) -> dict[str, torch.Tensor]:
    """ConvNeXt feature maps by name (``stem``, ``res2``..``res5``, ``clip_vis_dense``).

    Args:
        tower: open_clip's timm tower (``model.visual``), a timm ConvNeXt, or an open_clip model holding one.
        images: (B, 3, H, W) normalised pixels, any size (multiples of 32 keep every stride exact).
        stages: names to return (default ``stem, res2, res3, res4, res5``).

    Returns:
        {name: (B, C_s, H/stride_s, W/stride_s)} in forward order.
    """
    trunk = _convnext_trunk(getattr(tower, "visual", tower))
    if trunk is None:
        raise TypeError(
            f"{type(tower).__name__} is not a four-stage ConvNeXt-style timm tower (stem + 4 stages)"
        )
    names = list(DEFAULT_CONVNEXT_STAGES if stages is None else stages)
    unknown = [n for n in names if n not in CONVNEXT_STAGES]
    if unknown or not names:
        raise ValueError(f"unknown ConvNeXt stage names {unknown or names}; choose from {CONVNEXT_STAGES}")
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"ConvNeXt: expected images of shape (B, 3, H, W), got {tuple(images.shape)}")
    deepest = max(CONVNEXT_STAGES.index(n) for n in names)
    stem_dtype = next(trunk.stem.parameters()).dtype
    x = trunk.stem(images.to(stem_dtype))
    maps = {"stem": x}
    for i in range(min(deepest, 4)):
        x = trunk.stages[i](x)
        maps[CONVNEXT_STAGES[i + 1]] = x
    if deepest == 5:
        maps["clip_vis_dense"] = trunk.norm_pre(x)
    return {n: maps[n] for n in CONVNEXT_STAGES if n in names}


class VisionTaps(nn.Module):
    """One tap interface over an open_clip ViT, an HF ``CLIPVisionModel`` or an open_clip ConvNeXt tower.

    Args:
        tower: the vision tower, or a model holding one (open_clip ``CLIP``, HF ``CLIPModel``,
            :class:`~vlzoo.clip.ClipModel`, :class:`~vlzoo.clip.HfClip`). The module is shared, not copied:
            freezing here freezes it for its owner too.
        trainable: ``False`` (default) sets ``requires_grad=False``, keeps the tower in eval mode and runs
            it under ``torch.no_grad``; ``True`` leaves all three alone.

    Attributes:
        kind: ``"vit"`` or ``"convnext"``.
    """

    def __init__(self, tower: nn.Module, trainable: bool = False):
        super().__init__()
        self.tower, self.kind = _find_tower(tower)
        self.trainable = trainable
        if not trainable:
            self.tower.requires_grad_(False)
            self.tower.eval()

    def train(self, mode: bool = True) -> VisionTaps:
        """Frozen taps stay in eval mode (no dropout / stochastic depth) whatever the parent asks."""
        super().train(mode and self.trainable)
        self.training = mode
        return self

    @property
    def num_layers(self) -> int:
        """Number of transformer blocks L (ViT only)."""
        self._require("vit")
        return _vit_num_layers(self.tower)

    @property
    def width(self) -> int:
        """Token width D (ViT only)."""
        self._require("vit")
        if _is_hf_vision(self.tower):
            return self.tower.config.hidden_size
        return self.tower.conv1.out_channels

    @property
    def image_size(self) -> tuple[int, int]:
        """Input (H, W) the tower was built for."""
        if self.kind == "vit" and _is_hf_vision(self.tower):
            size = self.tower.config.image_size
            return (size, size) if isinstance(size, int) else tuple(size)
        size = getattr(self.tower, "image_size", None)
        return (size, size) if isinstance(size, int) else tuple(size)

    @property
    def grid_size(self) -> tuple[int, int]:
        """Patch grid (H/P, W/P) (ViT only)."""
        self._require("vit")
        if _is_hf_vision(self.tower):
            patch = self.tower.config.patch_size
            return (self.image_size[0] // patch, self.image_size[1] // patch)
        return tuple(self.tower.grid_size)

    @property
    def stage_channels(self) -> dict[str, int]:
        """Channels of each ConvNeXt tap (ConvNeXt only)."""
        self._require("convnext")
        trunk = _convnext_trunk(self.tower)
        dims = [int(info["num_chs"]) for info in trunk.feature_info]
        return {
            "stem": dims[0],
            "res2": dims[0],
            "res3": dims[1],
            "res4": dims[2],
            "res5": dims[3],
            "clip_vis_dense": dims[3],
        }

    @property
    def stage_strides(self) -> dict[str, int]:
        """Pixel stride of each ConvNeXt tap (ConvNeXt only)."""
        self._require("convnext")
        strides = [int(info["reduction"]) for info in _convnext_trunk(self.tower).feature_info]
        return {
            "stem": strides[0],
            "res2": strides[0],
            "res3": strides[1],
            "res4": strides[2],
            "res5": strides[3],
            "clip_vis_dense": strides[3],
        }

    def _require(self, kind: str) -> None:
        if self.kind != kind:
            raise TypeError(f"this is a {self.kind} tower; that needs a {kind} tower")

    def _grad_context(self):
        return torch.enable_grad() if self.trainable and torch.is_grad_enabled() else torch.no_grad()

    def hidden_states(
        self, images: torch.Tensor, layers: int | Sequence[int], include_cls: bool = False
    ) -> torch.Tensor | list[torch.Tensor]:
        """ViT hidden states; see :func:`vit_hidden_states`."""
        self._require("vit")
        with self._grad_context():
            return vit_hidden_states(self.tower, images, layers, include_cls)

    def stages(self, images: torch.Tensor, names: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """ConvNeXt stage maps; see :func:`convnext_stage_features`."""
        self._require("convnext")
        with self._grad_context():
            return convnext_stage_features(self.tower, images, names)

    def forward(self, images: torch.Tensor, layers=None, include_cls: bool = False):
        """``hidden_states(images, layers, include_cls)`` for a ViT (``layers`` default -2, the penultimate
        block); ``stages(images, layers)`` for a ConvNeXt (``layers`` = stage names)."""
        if self.kind == "vit":
            return self.hidden_states(images, -2 if layers is None else layers, include_cls)
        return self.stages(images, layers)
