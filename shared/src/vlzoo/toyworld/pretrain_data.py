"""One toy-world split in memory, as the tensors the toy-CLIP pretraining needs.

The split's files are read through :mod:`vlzoo.data` (validated COCO instances and captions, RGB images),
and turned into:

- ``images``: (N, 3, S, S) uint8 RGB;
- ``instances``: (N, S, S) uint8, 0 = background, k = the k-th object of the image (visible masks are
  disjoint: a pixel belongs to the object painted on top);
- per-object attributes, padded to K = :data:`~vlzoo.toyworld.world.MAX_OBJECTS` objects per image:
  ``category`` / ``color`` / ``size`` (N, K) int64 indices into ``CATEGORIES`` / ``COLORS`` / ``SIZES``
  (-1 for padding), ``centroid`` (N, K, 2) visible-mask centroids (x, y) in pixels;
- ``captions``: N lists of caption strings (``captions.json``, file order).

Attribute indices follow :data:`CATEGORIES`, :data:`COLORS` and :data:`SIZES` order. Every dense map is
derived from the instance map and the per-object attributes, so all labels agree with the annotation files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from vlzoo.data import load_image, read_coco_captions, read_coco_instances
from vlzoo.toyworld.world import CATEGORIES, COLORS, MAX_OBJECTS, SIZES

__all__ = ["ToySplit", "load_split", "soft_label_grid", "object_weights"]

_COLOR_INDEX = {name: i for i, name in enumerate(COLORS)}
_SIZE_INDEX = {name: i for i, name in enumerate(SIZES)}


@dataclass
class ToySplit:
    """A split of a toy world as tensors (see the module docstring for the shapes)."""

    root: Path
    """The split folder."""
    images: torch.Tensor
    """(N, 3, S, S) uint8 RGB."""
    instances: torch.Tensor
    """(N, S, S) uint8: 0 background, k >= 1 the k-th object (annotation order) of the image."""
    category: torch.Tensor
    """(N, K) int64 category index (CATEGORIES order) of each object, -1 for padding."""
    color: torch.Tensor
    """(N, K) int64 colour index (COLORS order), -1 for padding."""
    size: torch.Tensor
    """(N, K) int64 size index (SIZES order), -1 for padding."""
    centroid: torch.Tensor
    """(N, K, 2) float32 visible-mask centroid (x, y) in pixels, 0 for padding."""
    captions: list[list[str]]
    """N lists of captions."""

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def image_size(self) -> int:
        return int(self.images.shape[-1])

    @property
    def valid(self) -> torch.Tensor:
        """(N, K) bool: which object slots hold an object."""
        return self.category >= 0

    @property
    def num_objects(self) -> torch.Tensor:
        """(N,) int64 objects per image."""
        return self.valid.sum(dim=1)

    def presence(self) -> dict[str, torch.Tensor]:
        """Multi-hot presence per image: {"category": (N, 16), "color": (N, 10), "size": (N, 3)} float32."""
        out = {}
        for name, table, n in (
            ("category", self.category, len(CATEGORIES)),
            ("color", self.color, len(COLORS)),
            ("size", self.size, len(SIZES)),
        ):
            hot = torch.zeros(len(self), n + 1)
            hot.scatter_(1, torch.where(table >= 0, table, n), 1.0)
            out[name] = hot[:, :n].contiguous()
        return out

    def dense_maps(self) -> dict[str, torch.Tensor]:
        """Per-pixel labels (N, S, S) int64 with 0 = background: category + 1, colour + 1, size + 1."""
        inst = self.instances.long()
        out = {}
        for name, table in (("category", self.category), ("color", self.color), ("size", self.size)):
            lookup = torch.cat([torch.zeros(len(self), 1, dtype=torch.long), table + 1], dim=1)
            out[name] = torch.gather(lookup, 1, inst.flatten(1)).view_as(inst)
        return out


def _instance_map(masks: np.ndarray, image_size: int) -> np.ndarray:
    out = np.zeros((image_size, image_size), dtype=np.uint8)
    for k, mask in enumerate(masks):
        out[mask] = k + 1
    return out


def load_split(split_dir: str | os.PathLike) -> ToySplit:
    """Read one split folder of a toy world (``instances.json``, ``captions.json``, ``images/``).

    Raises:
        vlzoo.data.DataError: a malformed annotation file (naming the file and record).
        ValueError: an image of the wrong size, more than ``MAX_OBJECTS`` objects, an unknown attribute,
            or an image without captions.
    """
    root = Path(split_dir)
    coco = read_coco_instances(root / "instances.json", root / "images")
    captions_by_id = read_coco_captions(root / "captions.json")
    names = coco.category_names
    unknown = [n for n in names if n not in CATEGORIES]
    if unknown:
        raise ValueError(f"{root / 'instances.json'}: categories {unknown} are not toy-world categories")
    category_of = [CATEGORIES.index(n) for n in names]
    ids = coco.image_ids
    n = len(ids)
    first = coco.image(ids[0])
    size = int(first["height"])
    images = np.zeros((n, size, size, 3), dtype=np.uint8)
    instances = np.zeros((n, size, size), dtype=np.uint8)
    category = np.full((n, MAX_OBJECTS), -1, dtype=np.int64)
    color = np.full((n, MAX_OBJECTS), -1, dtype=np.int64)
    size_idx = np.full((n, MAX_OBJECTS), -1, dtype=np.int64)
    centroid = np.zeros((n, MAX_OBJECTS, 2), dtype=np.float32)
    captions: list[list[str]] = []
    for i, image_id in enumerate(ids):
        record = coco.image(image_id)
        where = f"{root / 'instances.json'}: image {image_id} ({record['file_name']})"
        if (record["height"], record["width"]) != (size, size):
            raise ValueError(f"{where}: size {record['width']}x{record['height']}, expected {size}x{size}")
        pixels = np.asarray(load_image(coco.image_path(image_id)))
        if pixels.shape != (size, size, 3):
            raise ValueError(f"{coco.image_path(image_id)}: image shape {pixels.shape}, expected {(size, size, 3)}")
        images[i] = pixels
        anns = coco.annotations(image_id)
        if len(anns) > MAX_OBJECTS:
            raise ValueError(f"{where}: {len(anns)} objects, at most {MAX_OBJECTS} expected")
        masks = coco.masks(image_id) if anns else np.zeros((0, size, size), dtype=bool)
        instances[i] = _instance_map(masks, size)
        labels = coco.labels(image_id)
        for k, (ann, label) in enumerate(zip(anns, labels)):
            attrs = ann.get("attributes", {})
            try:
                color[i, k] = _COLOR_INDEX[attrs["color"]]
                size_idx[i, k] = _SIZE_INDEX[attrs["size"]]
            except KeyError as err:
                raise ValueError(
                    f"{where}, annotation {ann['id']}: attributes {attrs!r} lack a known colour/size ({err})"
                ) from None
            category[i, k] = category_of[int(label)]
            rows, cols = np.nonzero(masks[k])
            centroid[i, k] = (cols.mean() + 0.5, rows.mean() + 0.5) if rows.size else (0.0, 0.0)
        caps = captions_by_id.get(image_id) or []
        if not caps:
            raise ValueError(f"{root / 'captions.json'}: image {image_id} has no caption")
        captions.append(list(caps))
    return ToySplit(
        root=root,
        images=torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(),
        instances=torch.from_numpy(instances),
        category=torch.from_numpy(category),
        color=torch.from_numpy(color),
        size=torch.from_numpy(size_idx),
        centroid=torch.from_numpy(centroid),
        captions=captions,
    )


def soft_label_grid(labels: torch.Tensor, num_classes: int, grid: int) -> torch.Tensor:
    """Fraction of each class's pixels in every cell of a grid x grid partition of the image.

    Args:
        labels: (N, S, S) int64 per-pixel class in [0, num_classes); S divisible by ``grid``.
        num_classes: C.
        grid: g, cells per side (the ViT patch grid, or a ConvNeXt stage's map size).

    Returns:
        (N, g, g, C) float32 distributions (each cell sums to 1).
    """
    n, s, _ = labels.shape
    if s % grid:
        raise ValueError(f"image size {s} is not divisible by the grid {grid}")
    cell = s // grid
    hot = F.one_hot(labels, num_classes).float()  # (N, S, S, C)
    return hot.view(n, grid, cell, grid, cell, num_classes).mean(dim=(2, 4))


def object_weights(instances: torch.Tensor, grid: int, num_objects: int = MAX_OBJECTS) -> torch.Tensor:
    """Mask-pooling weights of each object on a grid x grid feature map (Osprey-style region pooling).

    Args:
        instances: (B, S, S) instance map (0 background, k the k-th object).
        grid: the feature map's side.
        num_objects: K object slots.

    Returns:
        (B, K, g, g) float32: the fraction of each cell covered by the object, normalised to sum to 1 over
        the map (all zeros for an empty slot).
    """
    b, s, _ = instances.shape
    if s % grid:
        raise ValueError(f"image size {s} is not divisible by the grid {grid}")
    cell = s // grid
    hot = F.one_hot(instances.long(), num_objects + 1)[..., 1:].float()  # (B, S, S, K)
    cover = hot.view(b, grid, cell, grid, cell, num_objects).mean(dim=(2, 4)).permute(0, 3, 1, 2)
    return cover / cover.sum(dim=(2, 3), keepdim=True).clamp_min(1e-8)
