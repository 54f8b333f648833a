"""The small CPU networks of the miniature reproduction (not APro's architectures: those are the mmdet heads).

Shape shorthand: B images, R instances, K classes, H x W the image (96 x 96 in the toy world), S x S an
instance crop.

- :class:`TinyUNet`: a four-level U-Net (conv-BN-ReLU pairs, widths 16/32/64/96 by default), optionally
  with a stride-2 stem; the decoder returns to the stem resolution. Returns the logits and the last decoder
  feature.
- :class:`BoxMaskNet`: the box-conditioned mask head of the box task, run on *instance crops* (an RoI head, as
  in Mask R-CNN): a square window around the ground-truth box (``context`` times its longer side) resampled
  to S x S, with the box mask as a fourth input channel; output: mask logits (R, S, S) in crop coordinates.
  :func:`crop_instances` makes the crops and :func:`paste_masks` maps crop predictions back to the image.
  Given the ground-truth box, the task measures mask quality, not detection.
- :class:`SegNet`: the semantic network of the point / scribble tasks, (B, 3, H, W) -> (B, K, H/2, W/2)
  (stride-2 stem).

Both return their last decoder feature too (TEL's high-level tree is built on it in the miniature).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["TinyUNet", "BoxMaskNet", "SegNet", "crop_instances", "paste_masks"]


def _block(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )


def _up(x: Tensor, like: Tensor) -> Tensor:
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)


class TinyUNet(nn.Module):
    """Four-level U-Net; level 0 is at the input resolution divided by ``stem_stride``.

    Args:
        in_channels: input channels.
        out_channels: logit channels.
        widths: channels of the four encoder levels.
        stem_stride: 1 (logits at the input size) or 2 (at half of it).
    """

    def __init__(self, in_channels: int, out_channels: int, widths: tuple[int, int, int, int] = (16, 32, 64, 96),
                 stem_stride: int = 1):
        super().__init__()
        if stem_stride not in (1, 2):
            raise ValueError(f"stem_stride must be 1 or 2, got {stem_stride}")
        w0, w1, w2, w3 = widths
        self.stride = stem_stride
        self.enc0 = _block(in_channels, w0, stride=stem_stride)
        self.enc1, self.enc2, self.enc3 = _block(w0, w1), _block(w1, w2), _block(w2, w3)
        self.dec2, self.dec1, self.dec0 = _block(w3 + w2, w2), _block(w2 + w1, w1), _block(w1 + w0, w0)
        self.head = nn.Conv2d(w0, out_channels, 1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(N, in, H, W) -> (logits (N, out, H/s, W/s), decoder feature (N, w0, H/s, W/s)), s = stem stride."""
        multiple = 8 * self.stride
        if x.shape[-1] % multiple or x.shape[-2] % multiple:
            raise ValueError(f"input size must be divisible by {multiple}, got {tuple(x.shape[-2:])}")
        f0 = self.enc0(x)
        f1 = self.enc1(F.max_pool2d(f0, 2))
        f2 = self.enc2(F.max_pool2d(f1, 2))
        f3 = self.enc3(F.max_pool2d(f2, 2))
        d2 = self.dec2(torch.cat([_up(f3, f2), f2], 1))
        d1 = self.dec1(torch.cat([_up(d2, f1), f1], 1))
        d0 = self.dec0(torch.cat([_up(d1, f0), f0], 1))
        return self.head(d0), d0


def _crop_theta(boxes: Tensor, height: int, width: int, context: float) -> Tensor:
    """(R, 2, 3) affine maps from crop coordinates [-1, 1]^2 to image coordinates [-1, 1]^2 (align_corners=False).

    The crop is the square of side ``context * max(w, h)`` centred on the box.
    """
    x1, y1, x2, y2 = boxes.float().unbind(-1)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    side = context * torch.maximum(x2 - x1, y2 - y1).clamp(min=1.0)
    theta = boxes.new_zeros((boxes.shape[0], 2, 3), dtype=torch.float32)
    theta[:, 0, 0] = side / width
    theta[:, 1, 1] = side / height
    theta[:, 0, 2] = 2 * cx / width - 1
    theta[:, 1, 2] = 2 * cy / height - 1
    return theta


def crop_instances(images: Tensor, image_index: Tensor, boxes: Tensor, size: int, context: float = 1.5,
                   box_masks: Tensor | None = None) -> tuple[Tensor, Tensor | None, Tensor]:
    """Square crops around boxes, resampled bilinearly (zeros outside the image).

    Args:
        images: (B, C, H, W) images (any normalisation).
        image_index: (R,) image of each box.
        boxes: (R, 4) ``[x1, y1, x2, y2]`` in pixels.
        size: S, the crop side in pixels.
        context: crop side / longer box side.
        box_masks: optional (R, H, W) box masks, cropped the same way (soft borders).

    Returns:
        ``(crops (R, C, S, S), box-mask crops (R, S, S) or None, theta (R, 2, 3))``.
    """
    h, w = images.shape[-2:]
    theta = _crop_theta(boxes, h, w, context)
    grid = F.affine_grid(theta, [boxes.shape[0], 1, size, size], align_corners=False)
    crops = F.grid_sample(images[image_index.long()].float(), grid, mode="bilinear", padding_mode="zeros",
                          align_corners=False)
    mask_crops = None
    if box_masks is not None:
        mask_crops = F.grid_sample(box_masks[:, None].float(), grid, mode="bilinear", padding_mode="zeros",
                                   align_corners=False)[:, 0]
    return crops, mask_crops, theta


def paste_masks(crop_probs: Tensor, theta: Tensor, height: int, width: int) -> Tensor:
    """Map crop-coordinate predictions (R, S, S) back onto the (R, height, width) image grid (0 outside)."""
    r = crop_probs.shape[0]
    # Invert x_img = A x_crop + t  ->  x_crop = A^-1 (x_img - t); A is diagonal.
    inverse = torch.zeros_like(theta)
    inverse[:, 0, 0] = 1 / theta[:, 0, 0]
    inverse[:, 1, 1] = 1 / theta[:, 1, 1]
    inverse[:, 0, 2] = -theta[:, 0, 2] / theta[:, 0, 0]
    inverse[:, 1, 2] = -theta[:, 1, 2] / theta[:, 1, 1]
    grid = F.affine_grid(inverse, [r, 1, height, width], align_corners=False)
    return F.grid_sample(crop_probs[:, None].float(), grid, mode="bilinear", padding_mode="zeros",
                         align_corners=False)[:, 0]


class BoxMaskNet(nn.Module):
    """Box-conditioned instance mask network on crops: (R, 3, S, S) + (R, S, S) box masks -> (R, S, S) logits.

    Args:
        widths: U-Net widths.
    """

    def __init__(self, widths: tuple[int, int, int, int] = (16, 32, 64, 96)):
        super().__init__()
        self.net = TinyUNet(4, 1, widths, stem_stride=1)

    def forward(self, crops: Tensor, box_masks: Tensor) -> tuple[Tensor, Tensor]:
        """Returns (mask logits (R, S, S), decoder feature (R, w0, S, S))."""
        logits, feature = self.net(torch.cat([crops, box_masks[:, None].to(crops.dtype)], dim=1))
        return logits[:, 0], feature



class SegNet(nn.Module):
    """Semantic segmentation network: (B, 3, H, W) -> (B, K, H/2, W/2) logits.

    Args:
        num_classes: K (17 in the toy world: background + 16 shapes).
        widths: U-Net widths.
    """

    def __init__(self, num_classes: int, widths: tuple[int, int, int, int] = (16, 32, 64, 96)):
        super().__init__()
        self.net = TinyUNet(3, num_classes, widths, stem_stride=2)

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """Returns (logits (B, K, H/2, W/2), decoder feature (B, w0, H/2, W/2))."""
        return self.net(images)

