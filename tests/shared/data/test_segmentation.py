import json

import numpy as np
import pycocotools.mask as mask_utils
import pytest
import torch

from vlzoo.data import (
    DataError,
    check_segmentation,
    decode_segmentation,
    decode_segmentations,
    encode_mask_rle,
)
from vlzoo.data.segmentation import rle_string_to_counts

# pycocotools' decode (used here only as the reference) warns under numpy 2; the warning is not ours.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")

H, W = 12, 17


def _runs(mask: np.ndarray) -> list[int]:
    """Brute-force column-major run lengths, starting with a run of 0s (possibly of length 0)."""
    flat = mask.flatten(order="F").astype(int)
    runs, current, length = [], 0, 0
    for value in flat:
        if value == current:
            length += 1
        else:
            runs.append(length)
            current, length = value, 1
    runs.append(length)
    return runs


def _random_masks(count=60):
    rng = np.random.default_rng(0)
    for k in range(count):
        h, w = rng.integers(1, 40, 2)
        if k % 3 == 0:  # large runs exercise the multi-character codes and negative deltas
            mask = np.zeros((h, w), dtype=bool)
            mask[rng.integers(0, h):, rng.integers(0, w):] = True
        else:
            mask = rng.random((h, w)) < rng.random()
        yield mask


def test_rle_string_parser_matches_brute_force_runs():
    for mask in _random_masks():
        rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        assert rle_string_to_counts(rle["counts"]).tolist() == _runs(mask)
        assert rle_string_to_counts(rle["counts"].decode()).tolist() == _runs(mask)


def test_large_runs_parse():
    mask = np.zeros((1000, 1200), dtype=bool)
    mask[1:, 1:] = True
    counts = encode_mask_rle(mask)["counts"]
    assert rle_string_to_counts(counts)[:4].tolist() == [1001, 999, 1, 999]


def test_polygon_decodes_like_pycocotools_and_unions_parts():
    polygons = [[1, 1, 8, 1, 8, 6, 1, 6], [10.5, 2, 15, 2, 12.5, 10]]
    expected = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(polygons, H, W))).astype(bool)
    mask = decode_segmentation(polygons, H, W)
    assert mask.dtype == bool and mask.shape == (H, W)
    np.testing.assert_array_equal(mask, expected)
    only_first = decode_segmentation(polygons[:1], H, W)
    only_second = decode_segmentation(polygons[1:], H, W)
    np.testing.assert_array_equal(mask, only_first | only_second)
    assert only_first[3, 4] and not only_first[0, 0]


def test_uncompressed_and_compressed_rle_round_trip():
    for mask in _random_masks(30):
        h, w = mask.shape
        uncompressed = {"size": [h, w], "counts": _runs(mask)}
        np.testing.assert_array_equal(decode_segmentation(uncompressed, h, w), mask)
        compressed = encode_mask_rle(mask)
        assert isinstance(compressed["counts"], str)
        assert json.loads(json.dumps(compressed)) == compressed
        np.testing.assert_array_equal(decode_segmentation(compressed, h, w), mask)
        as_bytes = {"size": [h, w], "counts": compressed["counts"].encode()}
        np.testing.assert_array_equal(decode_segmentation(as_bytes, h, w), mask)
        assert check_segmentation(compressed, h, w) == int(mask.sum())
        assert check_segmentation(uncompressed, h, w) == int(mask.sum())


def test_encode_accepts_tensors_and_01_arrays():
    mask = torch.zeros(4, 5, dtype=torch.bool)
    mask[1:3, 2:] = True
    rle = encode_mask_rle(mask)
    assert rle["size"] == [4, 5]
    np.testing.assert_array_equal(decode_segmentation(rle, 4, 5), mask.numpy())
    assert encode_mask_rle(mask.numpy().astype(np.uint8)) == rle
    with pytest.raises(ValueError, match="one \\(H, W\\) mask"):
        encode_mask_rle(np.zeros((2, 4, 5), dtype=bool))
    with pytest.raises(ValueError, match="binary"):
        encode_mask_rle(np.full((4, 5), 2))


def test_decode_many_stacks_in_order():
    a = np.zeros((H, W), dtype=bool)
    a[2:5, 3:9] = True
    b = np.zeros((H, W), dtype=bool)
    b[7:, :4] = True
    stack = decode_segmentations([encode_mask_rle(a), {"size": [H, W], "counts": _runs(b)},
                                  [[0, 0, 4, 0, 4, 4, 0, 4]]], H, W)
    assert stack.shape == (3, H, W) and stack.dtype == bool and stack.flags.c_contiguous
    np.testing.assert_array_equal(stack[0], a)
    np.testing.assert_array_equal(stack[1], b)
    assert decode_segmentations([], H, W).shape == (0, H, W)


def test_empty_polygon_list_is_an_empty_mask():
    assert check_segmentation([], H, W) == 0
    assert not decode_segmentation([], H, W).any()


@pytest.mark.parametrize(
    ("segmentation", "problem"),
    [
        ([[1, 1, 5, 1, 5]], "even number >= 6"),
        ([[1, 1, 5, 1]], "even number >= 6"),
        ([1, 1, 5, 1, 5, 5], "must be a list [x1, y1"),
        ([[1, 1, 5, "x", 5, 5]], "not a finite number"),
        ([[1, 1, 5, float("nan"), 5, 5]], "not a finite number"),
        ({"counts": [H * W]}, "lacks ['size']"),
        ({"size": [H, W + 1], "counts": [H * (W + 1)]}, "does not match the image size"),
        ({"size": [H, W], "counts": [5, 10]}, f"not H*W = {H * W}"),
        ({"size": [H, W], "counts": [5, -1, H * W - 4]}, "non-negative integers"),
        ({"size": [H, W], "counts": [5.0, H * W - 5]}, "non-negative integers"),
        ({"size": [H, W], "counts": [True, H * W - 1]}, "non-negative integers"),
        ({"size": [H, W], "counts": [2**70]}, "non-negative integers"),
        ({"size": [H, W], "counts": "0" * 3 + "\x7f"}, "not a valid RLE code"),
        ({"size": [H, W], "counts": "ab"}, "ends in the middle of a run length"),
        ({"size": [H, W], "counts": "Ol0"}, "negative run length"),
        ({"size": [H, W], "counts": encode_mask_rle(np.ones((3, 3), dtype=bool))["counts"]}, "add up to 9 pixels"),
        ({"size": [H, W], "counts": 12}, "must be a list (uncompressed) or a string"),
        ("polygon", "expected a list of polygons or an RLE object"),
    ],
)
def test_malformed_segmentations(segmentation, problem):
    with pytest.raises(DataError) as info:
        decode_segmentation(segmentation, H, W, file="x.json", record="annotations[4] (id 9)")
    assert problem in info.value.problem
    assert str(info.value).startswith("x.json: record annotations[4] (id 9): ")
