"""TokenPacker-HD: dynamic image partition (arXiv 2407.02392 §3.3, Eq. 3; official ``patch_divide.py``,
``train.py`` ``LazySupervisedDataset`` and ``llava_arch.py`` mode 'slice'; spec §3).

Pipeline for one image of H x W pixels, tile size t = 336::

    normalise (CLIP mean/std, native resolution)                        (3, H, W)
    select_grid -> (rows, cols) from a fixed candidate list             rows*cols <= patch_num
    resize_and_pad: scale by alpha, paste top-left on a zero canvas      (3, rows*t, cols*t)
    split_tiles: row-major t x t tiles                                   (rows*cols, 3, t, t)
    thumbnail of the padded canvas, only when rows*cols > 1, appended    (T, 3, t, t)
                                                        with T = rows*cols + (1 if rows*cols > 1 else 0)
    ... CLIP + projector per tile ...                                    (T, M, H)
    assemble_hd_sequence: tiles row by row, ',' between tiles, '\\n'     (num_visual_tokens(rows, cols, M), H)
    after each row, then the thumbnail and '\\n'

Grid score (official ``Image_Patch.calculate``), for candidate (nH, nW) and r = t::

    alpha = min(nH*r / H, nW*r / W)
    score = round(H*alpha) * round(W*alpha) / (nH*r * nW*r)
            + 0.1 * IoU([0, 0, nH*r, nW*r], [0, 0, 1.4*H, 1.4*W])

The 1.4 factor is in the code, not in the paper's Eq. 3; the IoU has the code's +1e-5 in its denominator.
The score is computed in float32 as in the code, and ties go to the first candidate in the list.

Quirks reproduced from the official code:

- The thumbnail resizes the *padded canvas*, not the original image, to the original aspect ratio fitted in
  t x t; when the canvas has padding its content is slightly squashed.
- Python's ``round`` (half to even) clamps the resized long side, and the resize is bilinear without
  antialias on the normalised tensor; zero padding in normalised space is the CLIP mean colour.
- The separator ids come from ``tokenizer.convert_tokens_to_ids`` of ``','`` and ``'\\n'``. With the
  LLaMA/Vicuna sentencepiece tokenizer ``'\\n'`` is not a vocabulary piece (newline is the byte piece
  ``<0x0A>``), so the official code very likely embeds ``<unk>`` as its row separator.
  :func:`separator_token_ids` reproduces that with ``newline="official"`` (the released checkpoints were
  trained that way) and gives the real newline piece with ``newline="byte"``.

Fix of an official bug (spec §5): the official collator drops the per-sample ``mode``/grid, so during HD
training every sample consumed one crop. :class:`HDImage` carries mode and grid per sample, and
:func:`collate_hd_images` / :func:`assemble_hd_batch` keep them, so each sample's tiles are assembled in its
own sequence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "CANDIDATE_GRIDS",
    "CLIP_MEAN",
    "CLIP_STD",
    "TILE_SIZE",
    "HDImage",
    "HDBatch",
    "grid_scores",
    "select_grid",
    "fitted_size",
    "to_normalized_tensor",
    "resize_and_pad",
    "split_tiles",
    "thumbnail",
    "slice_image",
    "num_visual_tokens",
    "assemble_hd_sequence",
    "collate_hd_images",
    "assemble_hd_batch",
    "separator_token_ids",
]

TILE_SIZE = 336
"""Side of one tile in pixels (the CLIP ViT-L/14-336 input)."""

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

_GRIDS_9 = (
    (1, 1), (1, 2), (2, 1), (1, 3), (3, 1), (2, 2), (1, 4), (4, 1), (1, 5), (5, 1), (1, 6), (6, 1),
    (2, 3), (3, 2), (1, 7), (7, 1), (4, 2), (2, 4), (1, 8), (8, 1), (3, 3), (1, 9), (9, 1),
)  # fmt: skip
_EXTRA_16 = (
    (2, 5),
    (5, 2),
    (2, 6),
    (6, 2),
    (3, 4),
    (4, 3),
    (2, 7),
    (7, 2),
    (3, 5),
    (5, 3),
    (2, 8),
    (8, 2),
    (4, 4),
)
_EXTRA_25 = (
    (3, 6), (6, 3), (2, 9), (9, 2), (4, 5), (5, 4), (2, 10), (10, 2), (3, 7), (7, 3), (11, 2), (2, 11),
    (4, 6), (6, 4), (12, 2), (2, 12), (3, 8), (8, 3), (4, 6), (6, 4), (5, 5),
)  # fmt: skip

CANDIDATE_GRIDS: dict[int, tuple[tuple[int, int], ...]] = {
    9: _GRIDS_9,
    16: _GRIDS_9 + _EXTRA_16,
    25: _GRIDS_9 + _EXTRA_16 + _EXTRA_25,
}
"""``patch_num`` -> candidate (rows, cols) grids in the official order (the 25-list repeats (4,6), (6,4))."""

HDMode = Literal["slice", "single"]
NewlineMode = Literal["official", "byte"]


def _check_size(height: int, width: int) -> None:
    if int(height) != height or int(width) != width or height < 1 or width < 1:
        raise ValueError(f"image size must be positive integers, got {height}x{width}")


def grid_scores(height: int, width: int, patch_num: int = 9, tile: int = TILE_SIZE) -> torch.Tensor:
    """The official float32 score of every candidate grid for an image of ``height x width`` pixels.

    Returns:
        (K,) float32, one score per entry of ``CANDIDATE_GRIDS[patch_num]``.
    """
    if patch_num not in CANDIDATE_GRIDS:
        raise ValueError(f"patch_num must be one of {sorted(CANDIDATE_GRIDS)}, got {patch_num}")
    _check_size(height, width)
    canvas = torch.tensor(CANDIDATE_GRIDS[patch_num], dtype=torch.int64) * tile  # (K, 2): canvas (h, w)
    size = torch.tensor([[height, width]], dtype=torch.int64)
    canvas_area = canvas[:, 0] * canvas[:, 1]
    # Same operations and dtypes as the official code (int64 / int64 -> float32), so ties break alike.
    alpha = (canvas.float() / size.float()).min(dim=1).values
    coverage = torch.round(height * alpha) * torch.round(width * alpha) / canvas_area
    target = size.float() * 1.4  # (1, 2): the input box scaled by 1.4 (code, not paper)
    overlap = torch.minimum(canvas.float(), target).clamp(min=0)
    intersection = overlap[:, 0] * overlap[:, 1]
    union = canvas_area + target[0, 0] * target[0, 1] - intersection
    return coverage + intersection / (union + 1e-5) * 0.1


def select_grid(height: int, width: int, patch_num: int = 9, tile: int = TILE_SIZE) -> tuple[int, int]:
    """Choose the (rows, cols) tile grid of TokenPacker-HD for an image of ``height x width`` pixels.

    Args:
        height, width: image size in pixels.
        patch_num: candidate list, 9, 16 or 25 (at most that many tiles).
        tile: tile side in pixels.

    Returns:
        ``(rows, cols)``: the argmax of :func:`grid_scores`, the first candidate on ties.
    """
    scores = grid_scores(height, width, patch_num, tile)
    best = int(
        torch.nonzero(scores == scores.max())[0, 0]
    )  # first of the maxima, as torch.argmax in the code
    return CANDIDATE_GRIDS[patch_num][best]


def fitted_size(height: int, width: int, box_height: int, box_width: int) -> tuple[int, int]:
    """Size of an image scaled to fit ``box_height x box_width`` keeping its aspect ratio (official rule).

    The fitting side equals the box; the other is ``round()``-ed and clamped to the box.
    """
    h_ratio, w_ratio = box_height / height, box_width / width
    if h_ratio <= w_ratio:
        return box_height, min(box_width, round(width * h_ratio))
    return min(box_height, round(height * w_ratio)), box_width


def to_normalized_tensor(image: Any) -> torch.Tensor:
    """PIL image or (H, W, 3) uint8 array -> (3, H, W) float32, CLIP-normalised (ToTensor + Normalize).

    Raises:
        ValueError: if the array is not (H, W, 3) uint8.
    """
    if hasattr(image, "convert"):
        image = image.convert("RGB")
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise ValueError(
            f"expected an RGB image or an (H, W, 3) uint8 array, got {array.dtype} {array.shape}"
        )
    pixels = torch.from_numpy(array.copy()).permute(2, 0, 1).float().div(255)
    mean = torch.tensor(CLIP_MEAN).view(3, 1, 1)
    std = torch.tensor(CLIP_STD).view(3, 1, 1)
    return (pixels - mean) / std


def _check_image(image: torch.Tensor) -> None:
    if image.ndim != 3 or not image.is_floating_point():
        raise ValueError(
            f"expected a normalised float image (C, H, W), got {image.dtype} {tuple(image.shape)}"
        )


def resize_and_pad(image: torch.Tensor, rows: int, cols: int, tile: int = TILE_SIZE) -> torch.Tensor:
    """Scale a normalised image to fit a ``rows x cols`` tile canvas and paste it at the top-left.

    Args:
        image: (C, H, W) normalised float image.
        rows, cols: the grid from :func:`select_grid`.
        tile: tile side in pixels.

    Returns:
        (C, rows*tile, cols*tile); outside the pasted image the canvas is 0 (the CLIP mean colour).
    """
    _check_image(image)
    new_h, new_w = fitted_size(image.shape[1], image.shape[2], rows * tile, cols * tile)
    resized = F.interpolate(image[None], size=(new_h, new_w), mode="bilinear", align_corners=False)[0]
    canvas = image.new_zeros(image.shape[0], rows * tile, cols * tile)
    canvas[:, :new_h, :new_w] = resized
    return canvas


def split_tiles(canvas: torch.Tensor, rows: int, cols: int, tile: int = TILE_SIZE) -> torch.Tensor:
    """Cut a (C, rows*tile, cols*tile) canvas into (rows*cols, C, tile, tile) tiles in row-major order."""
    channels = canvas.shape[0]
    if tuple(canvas.shape[1:]) != (rows * tile, cols * tile):
        raise ValueError(f"canvas {tuple(canvas.shape)} is not a {rows}x{cols} grid of {tile}px tiles")
    grid = canvas.reshape(channels, rows, tile, cols, tile).permute(1, 3, 0, 2, 4)
    return grid.reshape(rows * cols, channels, tile, tile)


def thumbnail(canvas: torch.Tensor, height: int, width: int, tile: int = TILE_SIZE) -> torch.Tensor:
    """The global view: the padded canvas resized to the original aspect ratio fitted in one tile.

    Official quirk (kept): it is the *padded canvas* (C, rows*tile, cols*tile), not the original image,
    that is resized to the size the original ``height x width`` image would get; where the canvas has
    padding, the content is squashed.

    Returns:
        (C, tile, tile), the resized canvas at the top-left of a zero tile.
    """
    new_h, new_w = fitted_size(height, width, tile, tile)
    resized = F.interpolate(canvas[None], size=(new_h, new_w), mode="bilinear", align_corners=False)[0]
    out = canvas.new_zeros(canvas.shape[0], tile, tile)
    out[:, :new_h, :new_w] = resized
    return out


def num_visual_tokens(rows: int, cols: int, tokens_per_tile: int) -> int:
    """Visual tokens of one HD image: ``rows*cols*M + rows*(cols-1) + rows + (M+1 if rows*cols > 1)``.

    Tiles, a ',' between neighbouring tiles of a row, a '\\n' after each row, and the thumbnail plus '\\n'
    when there is more than one tile (spec §3.8).
    """
    if rows < 1 or cols < 1 or tokens_per_tile < 1:
        raise ValueError(
            f"rows, cols and tokens_per_tile must be >= 1, got {rows}, {cols}, {tokens_per_tile}"
        )
    tiles = rows * cols
    return tiles * tokens_per_tile + rows * (cols - 1) + rows + (tokens_per_tile + 1 if tiles > 1 else 0)


def _tiles_for(rows: int, cols: int) -> int:
    return rows * cols + (1 if rows * cols > 1 else 0)


@dataclass
class HDImage:
    """One image ready for the vision tower, with what the LLM side needs to assemble its tokens."""

    tiles: torch.Tensor
    """(T, C, t, t) crops: rows*cols tiles in row-major order, then the thumbnail when rows*cols > 1."""
    rows: int
    """Tile rows nH of the grid."""
    cols: int
    """Tile columns nW of the grid."""
    mode: HDMode = "slice"
    """"slice": HD assembly with ',' / '\\n' separators; "single": one crop whose tokens are used as they are
    (LLaVA 'pad'/'square' images, no separators)."""

    def __post_init__(self) -> None:
        if self.mode not in ("slice", "single"):
            raise ValueError(f"HDImage.mode must be 'slice' or 'single', got {self.mode!r}")
        if self.rows < 1 or self.cols < 1:
            raise ValueError(f"HDImage grid must be at least 1x1, got {self.rows}x{self.cols}")
        if self.mode == "single" and (self.rows, self.cols) != (1, 1):
            raise ValueError(f"a 'single' HDImage has a 1x1 grid, got {self.rows}x{self.cols}")
        expected = _tiles_for(self.rows, self.cols)
        if self.tiles.ndim != 4 or self.tiles.shape[0] != expected:
            raise ValueError(
                f"HDImage {self.rows}x{self.cols} needs ({expected}, C, t, t) tiles, "
                f"got {tuple(self.tiles.shape)}"
            )

    @property
    def num_tiles(self) -> int:
        """T, the crops this image sends through the vision tower."""
        return self.tiles.shape[0]

    def num_visual_tokens(self, tokens_per_tile: int) -> int:
        """Visual tokens this image becomes in the LLM sequence."""
        if self.mode == "single":
            return tokens_per_tile
        return num_visual_tokens(self.rows, self.cols, tokens_per_tile)


def slice_image(image: torch.Tensor, patch_num: int = 9, tile: int = TILE_SIZE) -> HDImage:
    """The full TokenPacker-HD partition of one normalised (C, H, W) image -> :class:`HDImage`."""
    _check_image(image)
    height, width = image.shape[1], image.shape[2]
    rows, cols = select_grid(height, width, patch_num, tile)
    canvas = resize_and_pad(image, rows, cols, tile)
    crops = split_tiles(canvas, rows, cols, tile)
    if rows * cols > 1:
        crops = torch.cat([crops, thumbnail(canvas, height, width, tile)[None]], dim=0)
    return HDImage(crops, rows, cols, "slice")


def _separator_flags(rows: int, cols: int) -> torch.Tensor:
    """(T,) bool: True where the separator after crop t is '\\n' (row end or thumbnail), False for ','."""
    index = torch.arange(_tiles_for(rows, cols))
    return (index % cols == cols - 1) | (index == rows * cols)


def assemble_hd_sequence(
    tile_features: torch.Tensor, rows: int, cols: int, comma_embed: torch.Tensor, newline_embed: torch.Tensor
) -> torch.Tensor:
    """Lay out one image's crop features as the LLM sees them (official ``llava_arch.py`` mode 'slice').

    Row by row: tile tokens, ',' between tiles, '\\n' after the last tile of the row; then, when there is
    more than one tile, the thumbnail tokens and '\\n'. Every crop is therefore followed by exactly one
    separator, which makes the layout one concatenation (no loop over tiles).

    Args:
        tile_features: (T, M, H) projector outputs of the crops, in :class:`HDImage` order.
        rows, cols: the grid.
        comma_embed: (H,) embedding of the ',' separator.
        newline_embed: (H,) embedding of the '\\n' separator.

    Returns:
        (num_visual_tokens(rows, cols, M), H).
    """
    expected = _tiles_for(rows, cols)
    if tile_features.ndim != 3 or tile_features.shape[0] != expected:
        raise ValueError(
            f"a {rows}x{cols} grid needs ({expected}, M, H) features, got {tuple(tile_features.shape)}"
        )
    separators = torch.where(
        _separator_flags(rows, cols)[:, None].to(tile_features.device), newline_embed, comma_embed
    )
    tokens = torch.cat([tile_features, separators[:, None].to(tile_features.dtype)], dim=1)  # (T, M+1, H)
    return tokens.reshape(-1, tile_features.shape[-1])


@dataclass
class HDBatch:
    """The images of a batch, collated: all crops in one tensor, mode and grid kept per sample."""

    pixel_values: torch.Tensor
    """(sum T_b, C, t, t) crops of all samples, sample after sample."""
    grids: tuple[tuple[int, int], ...]
    """(rows, cols) of each sample."""
    modes: tuple[HDMode, ...]
    """Mode of each sample ("slice" or "single")."""

    @property
    def tiles_per_sample(self) -> list[int]:
        """T_b of each sample."""
        return [_tiles_for(rows, cols) for rows, cols in self.grids]

    def num_visual_tokens(self, tokens_per_tile: int) -> list[int]:
        """Visual tokens of each sample in the LLM sequence."""
        return [
            tokens_per_tile if mode == "single" else num_visual_tokens(rows, cols, tokens_per_tile)
            for (rows, cols), mode in zip(self.grids, self.modes, strict=True)
        ]


def collate_hd_images(images: Sequence[HDImage]) -> HDBatch:
    """Concatenate the crops of several :class:`HDImage` (any mix of grids and modes) for one CLIP pass."""
    if not images:
        raise ValueError("collate_hd_images needs at least one image")
    shapes = {tuple(image.tiles.shape[1:]) for image in images}
    if len(shapes) != 1:
        raise ValueError(f"all crops of a batch must have the same (C, t, t) shape, got {sorted(shapes)}")
    return HDBatch(
        pixel_values=torch.cat([image.tiles for image in images], dim=0),
        grids=tuple((image.rows, image.cols) for image in images),
        modes=tuple(image.mode for image in images),
    )


def assemble_hd_batch(
    tile_features: torch.Tensor, batch: HDBatch, comma_embed: torch.Tensor, newline_embed: torch.Tensor
) -> list[torch.Tensor]:
    """Split the projector outputs of a collated batch back into one visual-token block per sample.

    Args:
        tile_features: (sum T_b, M, H) projector outputs of ``batch.pixel_values``, in the same order.
        batch: the :class:`HDBatch` the crops came from.
        comma_embed, newline_embed: (H,) separator embeddings.

    Returns:
        One (L_b, H) tensor per sample: :func:`assemble_hd_sequence` for "slice" samples, the (M, H) tile
        tokens for "single" samples.
    """
    counts = batch.tiles_per_sample
    if tile_features.ndim != 3 or tile_features.shape[0] != sum(counts):
        raise ValueError(
            f"batch has {sum(counts)} crops (grids {list(batch.grids)}), "
            f"got features {tuple(tile_features.shape)}"
        )
    num_tiles, tokens_per_tile, hidden = tile_features.shape
    is_newline = torch.cat([_separator_flags(rows, cols) for rows, cols in batch.grids]).to(
        tile_features.device
    )
    separators = torch.where(is_newline[:, None], newline_embed, comma_embed).to(tile_features.dtype)
    tokens = torch.cat([tile_features, separators[:, None]], dim=1)  # (sum T_b, M+1, H)
    keep = torch.ones(num_tiles, tokens_per_tile + 1, dtype=torch.bool, device=tile_features.device)
    single = torch.tensor([m == "single" for m in batch.modes]).repeat_interleave(torch.tensor(counts))
    keep[single.to(keep.device), tokens_per_tile] = False  # "single" crops carry no separator
    return list(tokens[keep].split(batch.num_visual_tokens(tokens_per_tile)))


def separator_token_ids(tokenizer: Any, newline: NewlineMode = "official") -> tuple[int, int]:
    """Token ids of the ',' and '\\n' separators of TokenPacker-HD.

    Args:
        tokenizer: any tokenizer with ``convert_tokens_to_ids`` (e.g. a transformers tokenizer).
        newline: ``"official"`` looks up the string ``'\\n'`` as a token, exactly as the official code; with
            the LLaMA tokenizer that gives ``<unk>`` (reproduce this to use the released checkpoints).
            ``"byte"`` looks up the sentencepiece byte piece ``<0x0A>``, the real newline.

    Returns:
        ``(comma_id, newline_id)``.

    Raises:
        ValueError: if ',' is missing from the vocabulary, if ``"byte"`` finds no ``<0x0A>`` piece, or for
            an unknown ``newline`` mode.
    """
    if newline not in ("official", "byte"):
        raise ValueError(f"newline must be 'official' or 'byte', got {newline!r}")
    unk = getattr(tokenizer, "unk_token_id", None)
    comma_id = tokenizer.convert_tokens_to_ids(",")
    if comma_id is None or comma_id == unk:
        raise ValueError("the tokenizer has no ',' token: cannot build the TokenPacker-HD tile separator")
    newline_id = tokenizer.convert_tokens_to_ids("\n" if newline == "official" else "<0x0A>")
    if newline_id is None or (newline == "byte" and newline_id == unk):
        raise ValueError(
            f"newline={newline!r}: the tokenizer has no "
            f"{'newline' if newline == 'official' else '<0x0A>'} token"
        )
    return int(comma_id), int(newline_id)
