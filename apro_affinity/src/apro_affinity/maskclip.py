"""MaskCLIP+-style dense pseudo labels from a CLIP ViT (the CLIP-guided setting of spec §4.3, §5.3).

MaskCLIP (Zhou et al., ECCV 2022) reads dense features from CLIP's image tower without training: in the last
transformer block the query-key attention is skipped and every token keeps its own *value* path,

    v = out_proj(W_v ln_1(x) + b_v) + x,    v = v + mlp(ln_2(v)),    f = ln_post(v) @ proj,

so each patch token gets an embedding in the joint space. The pseudo label of a pixel is the class whose
L2-normalised text embedding has the largest cosine with the (bilinearly upsampled) patch embedding; MaskCLIP+
trains a segmentation student on these labels. Two of MaskCLIP's refinements are implemented: *prompt
denoising* (a class whose best softmax(100 cos) confidence in an image is below ``pd_thresh`` is dropped from
that image) and a *confidence threshold* (pixels whose best cosine is below ``conf_thresh`` become
unlabelled, 255). Key smoothing is not implemented.

Shape shorthand: B images, K classes, G = g x g patch grid, D joint width, W tower width.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vlzoo.clip import ClipModel, encode_labels, vit_hidden_states

__all__ = ["MaskClipTeacher", "maskclip_dense_features"]


def _open_clip_vit(clip: ClipModel) -> nn.Module:
    tower = clip.visual
    if not hasattr(tower, "transformer") or not hasattr(tower, "ln_post"):
        raise TypeError(f"MaskCLIP needs an open_clip VisionTransformer tower, got {type(tower).__name__} "
                        f"({clip.name})")
    return tower


@torch.no_grad()
def maskclip_dense_features(clip: ClipModel, images: Tensor) -> Tensor:
    """Dense joint-space patch embeddings of MaskCLIP (value path in the last block).

    Args:
        clip: an open_clip ViT CLIP (:func:`vlzoo.clip.create_clip`).
        images: (B, 3, S, S) CLIP-normalised images at the tower's image size.

    Returns:
        (B, D, g, g) L2-normalised patch embeddings.
    """
    tower = _open_clip_vit(clip)
    blocks = tower.transformer.resblocks
    x = vit_hidden_states(tower, images, layers=len(blocks) - 1, include_cls=True)  # (B, 1+G, W)
    last = blocks[-1]
    attn = last.attn
    width = x.shape[-1]
    w_v = attn.in_proj_weight[2 * width:]
    b_v = attn.in_proj_bias[2 * width:] if attn.in_proj_bias is not None else None
    v = F.linear(last.ln_1(x), w_v, b_v)
    v = attn.out_proj(v)
    v = x + last.ls_1(v) if hasattr(last, "ls_1") else x + v
    v = v + (last.ls_2(last.mlp(last.ln_2(v))) if hasattr(last, "ls_2") else last.mlp(last.ln_2(v)))
    v = tower.ln_post(v[:, 1:])
    if tower.proj is not None:
        v = v @ tower.proj
    grid = tower.grid_size if hasattr(tower, "grid_size") else (int(v.shape[1] ** 0.5),) * 2
    feats = v.transpose(1, 2).reshape(v.shape[0], v.shape[-1], *grid)
    return F.normalize(feats, dim=1)


class MaskClipTeacher(nn.Module):
    """A frozen CLIP ViT that labels images densely with K class names (MaskCLIP+ pseudo labels).

    Args:
        clip: an open_clip ViT CLIP; its text tower encodes the class prompts once, at construction.
        class_names: the K class names, in label-index order.
        templates: prompt templates (a :data:`vlzoo.clip.TEMPLATE_SETS` name or a list of ``"{}"`` strings).
        conf_thresh: pixels whose best cosine is below it get 255 (0 disables).
        pd_thresh: prompt-denoising threshold on softmax(100 cos) per image and class (0 disables).
        ignore_index: the "no label" value.
    """

    def __init__(self, clip: ClipModel, class_names: Sequence[str], templates: str | Sequence[str] = "simple",
                 conf_thresh: float = 0.0, pd_thresh: float = 0.0, ignore_index: int = 255):
        super().__init__()
        if not class_names:
            raise ValueError("class_names is empty")
        self.clip = clip
        for p in self.clip.parameters():
            p.requires_grad_(False)
        self.clip.eval()
        text = encode_labels(clip, list(class_names), templates, reduce="mean_normalized", normalize_output=True,
                             cache=False)
        self.register_buffer("text_embeddings", text.float(), persistent=False)  # (K, D)
        self.conf_thresh, self.pd_thresh, self.ignore_index = conf_thresh, pd_thresh, ignore_index

    def train(self, mode: bool = True) -> MaskClipTeacher:
        """The teacher stays in eval mode whatever the student does."""
        super().train(False)
        return self

    @property
    def image_size(self) -> tuple[int, int]:
        return tuple(self.clip.image_size)

    @torch.no_grad()
    def cosine_maps(self, images: Tensor) -> Tensor:
        """(B, K, g, g) cosine similarity of each patch embedding with each class embedding.

        Args:
            images: (B, 3, H, W) CLIP-normalised images; resized (bilinear) to the tower's image size.
        """
        images = F.interpolate(images.float(), size=self.image_size, mode="bilinear", align_corners=False)
        feats = maskclip_dense_features(self.clip, images)
        return torch.einsum("bdhw,kd->bkhw", feats, self.text_embeddings.to(feats.dtype))

    @torch.no_grad()
    def pseudo_labels(self, images: Tensor, size: tuple[int, int]) -> Tensor:
        """(B, H, W) int64 MaskCLIP+ labels at ``size`` (``ignore_index`` where not confident).

        Args:
            images: (B, 3, h, w) CLIP-normalised images.
            size: output (H, W).
        """
        cos = self.cosine_maps(images)
        if self.pd_thresh > 0:
            confidence = F.softmax(cos * 100.0, dim=1).flatten(2).amax(dim=2)  # (B, K)
            cos = cos.masked_fill((confidence < self.pd_thresh)[:, :, None, None], -100.0)
        cos = F.interpolate(cos, size=size, mode="bilinear", align_corners=False)
        best, labels = cos.max(dim=1)
        if self.conf_thresh > 0:
            labels = labels.masked_fill(best < self.conf_thresh, self.ignore_index)
        return labels
