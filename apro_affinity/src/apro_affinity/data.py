"""Toy-world data for the miniature reproduction, read through ``vlzoo.data`` and held in memory.

A split folder ``<world>/<split>/`` (``vlzoo.toyworld`` layout) gives:

- images: ``images/*.png`` (RGB), as uint8 (N, 3, H, W);
- instances (box task): ``instances.json`` (COCO; tight ``[x, y, w, h]`` boxes and RLE masks), flattened to
  R instances with their image, ``[x1, y1, x2, y2]`` box (``x2 = x + w``, exclusive), contiguous category and
  ground-truth mask (the mask is used for evaluation only);
- label maps: ``semantic/``, ``scribbles/``, ``points/`` palette PNGs (255 = unlabelled), uint8 (N, H, W).

Batches are drawn deterministically from (seed, step) (``vlzoo.run.epoch_permutation``), so a resumed run
sees exactly the batches of an uninterrupted one. Shape shorthand: N images, R instances, H x W the image.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from apro_affinity.config import WorldConfig
from vlzoo.data import DataError, load_image, read_coco_instances, read_label_png
from vlzoo.run import epoch_permutation

__all__ = [
    "MMDET_MEAN",
    "MMDET_STD",
    "ToySplit",
    "load_split",
    "resolve_world",
    "normalize_images",
    "batch_image_indices",
    "flip_flags",
]

MMDET_MEAN = (123.675, 116.28, 103.53)
"""The mmdet/mmseg ImageNet mean (RGB); APro's GP/LP guidance is the image normalised with it."""
MMDET_STD = (58.395, 57.12, 57.375)
"""The matching std."""

LABEL_FOLDERS = ("semantic", "scribbles", "points")


@dataclass
class ToySplit:
    """One split of the toy world in memory.

    Attributes:
        root: the split folder.
        image_ids: (N,) COCO image ids, in file order.
        images: (N, 3, H, W) uint8 RGB.
        labels: ``{"semantic" | "scribbles" | "points": (N, H, W) uint8}`` (255 = unlabelled).
        inst_image: (R,) int64 index into ``images`` of each instance.
        inst_boxes: (R, 4) float32 ``[x1, y1, x2, y2]`` (end exclusive).
        inst_categories: (R,) int64 COCO category id.
        inst_masks: (R, H, W) bool ground-truth masks (evaluation only).
        num_classes: semantic classes (background + categories).
        categories: COCO category records, ascending id.
    """

    root: Path
    image_ids: Tensor
    images: Tensor
    labels: dict[str, Tensor]
    inst_image: Tensor
    inst_boxes: Tensor
    inst_categories: Tensor
    inst_masks: Tensor
    num_classes: int
    categories: list[dict]

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def instances_of(self, image_indices: Tensor) -> Tensor:
        """(R',) instance indices whose image is in ``image_indices``, in ascending instance order."""
        return torch.nonzero(torch.isin(self.inst_image, image_indices)).flatten()

    def coco_subset(self) -> dict:
        """The COCO ground truth of the loaded images (for ``vlzoo.metrics.coco_mask_ap``)."""
        import json

        data = json.loads((self.root / "instances.json").read_text())
        keep = {int(i) for i in self.image_ids.tolist()}
        return {
            "images": [im for im in data["images"] if im["id"] in keep],
            "categories": data["categories"],
            "annotations": [a for a in data["annotations"] if a["image_id"] in keep],
        }


def resolve_world(cfg: WorldConfig) -> Path:
    """The world folder: ``cfg.root`` if given, else the cached default world (generated on first use)."""
    if cfg.root is not None:
        root = Path(cfg.root).expanduser()
        if not (root / "train").is_dir() or not (root / "val").is_dir():
            raise FileNotFoundError(f"toy world {root} has no train/ and val/ folders; generate one with "
                                    f"`python -m vlzoo.toyworld generate --out {root}`")
        return root
    from vlzoo.toyworld import default_world

    return Path(default_world(n_train=cfg.n_train, n_val=cfg.n_val, image_size=cfg.image_size, seed=cfg.world_seed,
                              show_progress=False))


def load_split(folder: str | os.PathLike, limit: int = 0) -> ToySplit:
    """Read a toy-world split folder into memory.

    Args:
        folder: ``<world>/<split>``.
        limit: keep only the first ``limit`` images in ``instances.json`` order (0: all).

    Returns:
        A :class:`ToySplit`.

    Raises:
        DataError: a file fails validation (named by the ``vlzoo.data`` readers), or a label PNG is missing.
    """
    root = Path(folder)
    coco = read_coco_instances(root / "instances.json", root / "images")
    ids = coco.image_ids[:limit] if limit else coco.image_ids
    images, labels = [], {k: [] for k in LABEL_FOLDERS}
    inst_image, inst_boxes, inst_cats, inst_masks = [], [], [], []
    num_classes = len(coco.categories) + 1
    for n, image_id in enumerate(ids):
        info = coco.image(image_id)
        h, w = info["height"], info["width"]
        rgb = np.asarray(load_image(coco.image_path(image_id)), dtype=np.uint8)
        if rgb.shape[:2] != (h, w):
            raise DataError(root / "instances.json", f"image is {rgb.shape[1]}x{rgb.shape[0]}, the record says "
                                                     f"{w}x{h}", f"image id {image_id}")
        images.append(torch.from_numpy(rgb.copy()).permute(2, 0, 1))
        stem = Path(info["file_name"]).stem
        for kind in LABEL_FOLDERS:
            path = root / kind / f"{stem}.png"
            if not path.is_file():
                raise DataError(path, f"label PNG missing for image id {image_id}")
            labels[kind].append(torch.from_numpy(read_label_png(path, num_classes, expected_size=(h, w)).copy()))
        boxes = coco.boxes(image_id, fmt="xyxy")
        inst_boxes.append(torch.from_numpy(boxes))
        inst_cats.append(torch.tensor([a["category_id"] for a in coco.annotations(image_id)], dtype=torch.long))
        inst_masks.append(torch.from_numpy(coco.masks(image_id)))
        inst_image.append(torch.full((boxes.shape[0],), n, dtype=torch.long))
    if not images:
        raise DataError(root / "instances.json", "no images to load")
    return ToySplit(
        root=root,
        image_ids=torch.tensor([int(i) for i in ids], dtype=torch.long),
        images=torch.stack(images),
        labels={k: torch.stack(v) for k, v in labels.items()},
        inst_image=torch.cat(inst_image),
        inst_boxes=torch.cat(inst_boxes).float(),
        inst_categories=torch.cat(inst_cats),
        inst_masks=torch.cat(inst_masks).bool(),
        num_classes=num_classes,
        categories=list(coco.categories),
    )


def normalize_images(images: Tensor) -> Tensor:
    """uint8 or float RGB (N, 3, H, W) in [0, 255] -> float32 ``(x - mean) / std`` (mmdet's normalisation)."""
    mean = torch.tensor(MMDET_MEAN, dtype=torch.float32, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(MMDET_STD, dtype=torch.float32, device=images.device).view(1, 3, 1, 1)
    return (images.float() - mean) / std


def batch_image_indices(num_images: int, batch_size: int, seed: int, step: int) -> Tensor:
    """The image indices of training step ``step``: consecutive slices of a per-epoch permutation."""
    if batch_size > num_images:
        raise ValueError(f"batch of {batch_size} images from a split of {num_images}")
    per_epoch = num_images // batch_size
    epoch, slot = divmod(step, per_epoch)
    order = epoch_permutation(seed, epoch, num_images)
    return order[slot * batch_size:(slot + 1) * batch_size]


def flip_flags(batch_size: int, seed: int, step: int) -> Tensor:
    """(batch_size,) bool: which images of step ``step`` are flipped horizontally (p = 0.5)."""
    g = torch.Generator().manual_seed(int(seed) * 7_919 + int(step) + 17)
    return torch.rand(batch_size, generator=g) < 0.5
