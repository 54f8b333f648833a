"""COCO segmentations: validate, decode to boolean masks, encode masks as JSON-safe compressed RLE.

A COCO ``segmentation`` is one of three things, decoded with the pycocotools rule (the one the COCO API's
``annToRLE`` and Osprey's loaders use):

- polygons, ``[[x1, y1, x2, y2, ...], ...]`` in pixel coordinates: ``frPyObjects`` + ``merge`` (union);
- uncompressed RLE, ``{"size": [H, W], "counts": [n0, n1, ...]}`` (run lengths of 0s and 1s in column-major
  order, starting with 0s): ``frPyObjects``;
- compressed RLE, ``{"size": [H, W], "counts": "<LEB128-like string>"}`` (``str`` or ``bytes``): as is.

pycocotools does not check its input: a count string whose runs do not add up to H*W decodes to whatever
memory follows the buffer. :func:`check_segmentation` therefore parses compressed counts itself (vectorised,
see :func:`rle_string_to_counts`) and requires every RLE to cover exactly H*W pixels.

Shapes: masks are ``bool`` arrays ``(H, W)``; stacks of masks ``(R, H, W)``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pycocotools.mask as mask_utils

from vlzoo.data._common import is_int, is_number_list, short, type_name
from vlzoo.data.errors import DataError

__all__ = [
    "check_segmentation",
    "decode_segmentation",
    "decode_segmentations",
    "encode_mask_rle",
    "rle_string_to_counts",
    "segmentation_runs",
    "segmentation_to_rle",
]

_MAX_GROUP_CHARS = 7
"""Longest run-length code accepted: 7 characters carry 35 bits, more than any image's pixel count."""


def rle_string_to_counts(counts: str | bytes) -> np.ndarray:
    """Parse a compressed COCO RLE string into its run lengths.

    The format (pycocotools ``rleToString``): each run length is stored as the difference to the run two
    places back (from the fourth run on), written in 5-bit groups, least significant first, as characters
    ``48 + group``; bit 0x20 of a character means "more groups follow", bit 0x10 of the last group is the sign.

    Args:
        counts: the ``counts`` string of a compressed RLE (``str`` or ASCII ``bytes``).

    Returns:
        ``int64`` array (K,) of run lengths (negative values mean the string is corrupt).

    Raises:
        ValueError: a character outside the code range or a string cut inside a run length.
    """
    try:
        raw = counts.encode("ascii") if isinstance(counts, str) else bytes(counts)
    except UnicodeEncodeError as exc:
        raise ValueError(f"non-ASCII character {counts[exc.start]!r} at position {exc.start}") from exc
    codes = np.frombuffer(raw, dtype=np.uint8).astype(np.int64) - 48
    if codes.size == 0:
        return np.zeros(0, dtype=np.int64)
    if codes.min() < 0 or codes.max() > 63:
        bad = int(np.flatnonzero((codes < 0) | (codes > 63))[0])
        raise ValueError(f"character {chr(raw[bad])!r} at position {bad} is not a valid RLE code")
    more = (codes & 0x20) != 0
    if more[-1]:
        raise ValueError("the count string ends in the middle of a run length")
    ends = np.flatnonzero(~more)
    starts = np.concatenate(([0], ends[:-1] + 1))
    lengths = ends - starts + 1
    if lengths.max() > _MAX_GROUP_CHARS:
        raise ValueError(f"a run length spans more than {_MAX_GROUP_CHARS} characters")
    position = np.arange(codes.size) - np.repeat(starts, lengths)  # index of each 5-bit group in its number
    values = np.add.reduceat((codes & 0x1F) << (5 * position), starts)
    negative = (codes[ends] & 0x10) != 0
    values = values - (negative.astype(np.int64) << (5 * lengths))
    # Undo the delta coding: from the 4th value on, value[m] += value[m - 2] (two interleaved cumsums).
    runs = values.copy()
    runs[1::2] = np.cumsum(values[1::2])
    runs[2::2] = np.cumsum(values[2::2])
    return runs


def _uncompressed_runs(counts: list) -> np.ndarray | None:
    """The counts of an uncompressed RLE as ``int64``, or None unless all are non-negative integers.

    One set of types and one numpy conversion instead of a check per item: crowd RLEs hold thousands of counts.
    """
    if not {type(v) for v in counts} <= {int}:
        return None
    try:
        runs = np.asarray(counts, dtype=np.int64).reshape(-1)
    except OverflowError:
        return None
    return None if runs.size and runs.min() < 0 else runs


def _size_problem(size: Any, height: int, width: int) -> str | None:
    if not (isinstance(size, list | tuple) and len(size) == 2 and all(is_int(v) and v >= 0 for v in size)):
        return f"RLE size must be [height, width] non-negative integers, got {short(size)}"
    if (size[0], size[1]) != (height, width):
        return f"RLE size {list(size)} does not match the image size [{height}, {width}] (height, width)"
    return None


def check_segmentation(segmentation: Any, height: int, width: int, *, file: str | os.PathLike = "<segmentation>",
                       record: int | str | None = None, compute_area: bool = True) -> int | None:
    """Validate a COCO segmentation for an image of ``height`` x ``width`` and return its area in pixels.

    Args:
        segmentation: polygons, uncompressed RLE or compressed RLE (see the module docstring).
        height: image height H.
        width: image width W.
        file: the file the segmentation comes from, for the error message.
        record: the record it belongs to, for the error message.
        compute_area: when False, polygons are checked but not rasterised (the costly part of reading a
            polygon-heavy file) and None is returned for them.

    Returns:
        The number of foreground pixels of the decoded mask (0 for an empty mask), or None (see above).

    Raises:
        DataError: the segmentation is malformed or its RLE size is not (H, W).
    """
    def fail(problem: str) -> DataError:
        return DataError(file, f"malformed segmentation: {problem}", record)

    if isinstance(segmentation, list):
        if not segmentation:
            return 0
        for k, polygon in enumerate(segmentation):
            if not isinstance(polygon, list):
                raise fail(f"polygon {k} must be a list [x1, y1, x2, y2, ...], got {type_name(polygon)} "
                           "(a flat list of numbers is not a COCO polygon list)")
            if len(polygon) < 6 or len(polygon) % 2:
                raise fail(f"polygon {k} has {len(polygon)} coordinates; a polygon needs an even number >= 6")
            if not is_number_list(polygon):
                raise fail(f"polygon {k} holds a value that is not a finite number: {short(polygon)}")
        if not compute_area:
            return None
        rles = mask_utils.frPyObjects(segmentation, height, width)
        return int(mask_utils.area(rles[0] if len(rles) == 1 else mask_utils.merge(rles)))
    if isinstance(segmentation, dict):
        missing = [k for k in ("size", "counts") if k not in segmentation]
        if missing:
            raise fail(f"RLE object lacks {missing} (keys: {sorted(segmentation)})")
        problem = _size_problem(segmentation["size"], height, width)
        if problem:
            raise DataError(file, problem, record)
        counts = segmentation["counts"]
        if isinstance(counts, list):
            runs = _uncompressed_runs(counts)
            if runs is None:
                raise fail("uncompressed RLE counts must be non-negative integers")
        elif isinstance(counts, str | bytes):
            try:
                runs = rle_string_to_counts(counts)
            except ValueError as exc:
                raise fail(f"compressed RLE counts: {exc}") from exc
            if runs.size and runs.min() < 0:
                raise fail("compressed RLE counts decode to a negative run length")
        else:
            raise fail(f"RLE counts must be a list (uncompressed) or a string (compressed), got {type_name(counts)}")
        if int(runs.sum()) != height * width:
            raise fail(f"RLE run lengths add up to {int(runs.sum())} pixels, not H*W = {height * width}")
        return int(runs[1::2].sum())
    raise fail(f"expected a list of polygons or an RLE object, got {type_name(segmentation)}")


def segmentation_to_rle(segmentation: Any, height: int, width: int) -> dict:
    """A pycocotools RLE (``counts`` as ``bytes``) for an already validated segmentation."""
    if isinstance(segmentation, list):
        if not segmentation:  # an empty mask
            return mask_utils.frPyObjects({"size": [height, width], "counts": [height * width]}, height, width)
        return mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    counts = segmentation["counts"]
    if isinstance(counts, list):
        return mask_utils.frPyObjects(segmentation, height, width)
    if isinstance(counts, str):
        counts = counts.encode("ascii")
    return {"size": [height, width], "counts": counts}


def segmentation_runs(segmentation: Any, height: int, width: int) -> np.ndarray:
    """Column-major run lengths (0s first) of an already validated segmentation, ``int64`` (K,)."""
    if isinstance(segmentation, list) and not segmentation:
        return np.array([height * width], dtype=np.int64)
    if isinstance(segmentation, dict) and isinstance(segmentation["counts"], list):
        return np.asarray(segmentation["counts"], dtype=np.int64).reshape(-1)
    return rle_string_to_counts(segmentation_to_rle(segmentation, height, width)["counts"])


def _paint(runs: np.ndarray, height: int, width: int) -> np.ndarray:
    """Expand run lengths into a ``bool`` (H, W) mask (a view on a column-major buffer)."""
    values = np.zeros(runs.size, dtype=bool)
    values[1::2] = True
    return np.repeat(values, runs).reshape(width, height).T


def decode_segmentation(segmentation: Any, height: int, width: int, *, file: str | os.PathLike = "<segmentation>",
                        record: int | str | None = None) -> np.ndarray:
    """Validate and decode one COCO segmentation.

    Args:
        segmentation: polygons, uncompressed RLE or compressed RLE (counts as ``str`` or ``bytes``).
        height: image height H.
        width: image width W.
        file: source file named in errors.
        record: source record named in errors.

    Returns:
        ``bool`` array (H, W), C-contiguous.

    Raises:
        DataError: malformed segmentation or RLE size not (H, W).
    """
    check_segmentation(segmentation, height, width, file=file, record=record)
    return np.ascontiguousarray(_paint(segmentation_runs(segmentation, height, width), height, width))


def decode_segmentations(segmentations: Sequence[Any], height: int, width: int) -> np.ndarray:
    """Decode already validated segmentations of one image into a stack.

    Polygons are rasterised by pycocotools (``frPyObjects`` + ``merge``); run lengths are expanded with
    ``np.repeat`` (pycocotools' own ``decode`` gives the same pixels but warns under numpy 2).

    Returns:
        ``bool`` array (R, H, W); (0, H, W) when ``segmentations`` is empty.
    """
    masks = np.empty((len(segmentations), height, width), dtype=bool)
    for k, segmentation in enumerate(segmentations):
        masks[k] = _paint(segmentation_runs(segmentation, height, width), height, width)
    return masks


def encode_mask_rle(mask: Any) -> dict:
    """Encode a binary mask as a JSON-safe compressed COCO RLE.

    Args:
        mask: array-like (H, W) of bool or 0/1 values (numpy array or CPU tensor).

    Returns:
        ``{"size": [H, W], "counts": str}``; ``json.dumps`` writes it and :func:`decode_segmentation` reads
        it back to the same mask.

    Raises:
        ValueError: not 2-D, or values other than 0/1.
    """
    array = np.asarray(mask)
    if array.ndim != 2:
        raise ValueError(f"encode_mask_rle expects one (H, W) mask, got shape {array.shape}")
    if array.dtype != bool:
        if array.size and not np.isin(array, (0, 1)).all():
            raise ValueError("encode_mask_rle expects a binary mask (bool or 0/1 values)")
    rle = mask_utils.encode(np.asfortranarray(array.astype(np.uint8)))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}
