"""TokenPacker-HD: grid choice (golden cases), resize/pad geometry, tiles, thumbnail, assembly, batching."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tokenpacker import hd
from tokenpacker.hd import (
    CANDIDATE_GRIDS,
    HDImage,
    assemble_hd_batch,
    assemble_hd_sequence,
    collate_hd_images,
    fitted_size,
    grid_scores,
    num_visual_tokens,
    resize_and_pad,
    select_grid,
    separator_token_ids,
    slice_image,
    split_tiles,
    thumbnail,
    to_normalized_tensor,
)

SPEC_9 = [
    (1, 1),
    (1, 2),
    (2, 1),
    (1, 3),
    (3, 1),
    (2, 2),
    (1, 4),
    (4, 1),
    (1, 5),
    (5, 1),
    (1, 6),
    (6, 1),
    (2, 3),
    (3, 2),
    (1, 7),
    (7, 1),
    (4, 2),
    (2, 4),
    (1, 8),
    (8, 1),
    (3, 3),
    (1, 9),
    (9, 1),
]
SPEC_16_EXTRA = [
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
]


def test_candidate_lists_in_official_order():
    assert list(CANDIDATE_GRIDS[9]) == SPEC_9
    assert list(CANDIDATE_GRIDS[16]) == SPEC_9 + SPEC_16_EXTRA
    grids_25 = CANDIDATE_GRIDS[25]
    assert list(grids_25[:36]) == SPEC_9 + SPEC_16_EXTRA and len(grids_25) == 57
    assert grids_25.count((4, 6)) == grids_25.count((6, 4)) == 2  # duplicates kept
    assert grids_25[-1] == (5, 5) and (1, 10) not in grids_25
    for patch_num, grids in CANDIDATE_GRIDS.items():
        assert all(rows * cols <= patch_num for rows, cols in grids)


# Spec §3 table (Ng = 9 and 16, s = 2 so M = 144), plus cases where the code's 1.4 factor decides.
GOLDEN = [
    (336, 336, 9, (1, 1), 145),
    (336, 336, 16, (1, 1), 145),
    (480, 640, 9, (2, 3), 1015),
    (480, 640, 16, (3, 4), 1885),
    (1080, 1920, 9, (2, 4), 1305),
    (1080, 1920, 16, (3, 5), 2320),
    (1000, 1000, 9, (3, 3), 1450),
    (1000, 1000, 16, (4, 4), 2465),
    (336, 3000, 9, (1, 9), 1450),
    (600, 600, 9, (3, 3), 1450),  # the paper's Eq. 3 (no 1.4) would pick (2, 2)
    (400, 800, 9, (2, 4), 1305),  # Eq. 3 would pick (1, 2)
    (1344, 2016, 25, (4, 6), num_visual_tokens(4, 6, 144)),
]


@pytest.mark.parametrize("height,width,patch_num,grid,tokens", GOLDEN)
def test_grid_selection_golden_cases(height, width, patch_num, grid, tokens):
    assert select_grid(height, width, patch_num) == grid
    assert num_visual_tokens(*grid, 144) == tokens


def test_score_worked_by_hand():
    # 480x640, candidate (2, 3): alpha = min(672/480, 1008/640) = 1.4 -> 672 x 896 content on a
    # 672 x 1008 canvas, coverage = 672*896 / (672*1008) = 8/9; the 1.4-scaled box is 672 x 896 too,
    # IoU = 8/9; score = 8/9 * 1.1.
    scores = grid_scores(480, 640, 9)
    assert scores.dtype == torch.float32 and scores.shape == (23,)
    assert scores[SPEC_9.index((2, 3))].item() == pytest.approx(8 / 9 * 1.1, abs=1e-5)
    # (1, 1): alpha = 336/640 -> round(252)*336 / 336^2 = 0.75; IoU = 336^2 / (672*896) = 0.1875.
    assert scores[0].item() == pytest.approx(0.75 + 0.1 * 0.1875, abs=1e-5)


def test_ties_go_to_the_first_candidate(monkeypatch):
    tied = torch.zeros(23)
    tied[[1, 2, 20]] = 1.0  # (1, 2), (2, 1) and (3, 3) tie
    monkeypatch.setattr(hd, "grid_scores", lambda *args, **kwargs: tied)
    assert select_grid(100, 100, 9) == (1, 2)


def test_grid_selection_errors():
    with pytest.raises(ValueError, match="patch_num must be one of"):
        select_grid(336, 336, patch_num=12)
    with pytest.raises(ValueError, match="positive integers"):
        select_grid(0, 336)


def test_fitted_size_uses_round_half_even_and_clamps():
    assert fitted_size(480, 640, 672, 1008) == (672, 896)
    assert fitted_size(4, 1, 10, 10) == (10, 2)  # 1 * 2.5 = 2.5 rounds to 2 (Python round)
    assert fitted_size(4, 3, 10, 10) == (10, 8)  # 7.5 rounds to 8
    assert fitted_size(640, 480, 1008, 672) == (896, 672)
    assert fitted_size(336, 3000, 336, 3024) == (336, 3000)  # h fits first: w = round(3000 * 1.0)


def test_resize_and_pad_geometry():
    gen = torch.Generator().manual_seed(0)
    image = torch.randn(3, 48, 64, generator=gen)
    canvas = resize_and_pad(
        image, 2, 3, tile=24
    )  # h_ratio 1.0 <= w_ratio 1.125: 48 x 64 kept, padded to 48 x 72
    assert canvas.shape == (3, 48, 72)
    torch.testing.assert_close(canvas[:, :, :64], image)
    assert torch.count_nonzero(canvas[:, :, 64:]) == 0
    canvas = resize_and_pad(image, 3, 3, tile=24)  # h_ratio 1.5 > w_ratio 1.125: width fits, 54 x 72
    expected = F.interpolate(image[None], size=(54, 72), mode="bilinear", align_corners=False)[0]
    torch.testing.assert_close(canvas[:, :54], expected)
    assert torch.count_nonzero(canvas[:, 54:]) == 0  # padding at the bottom only: content is top-left


def test_split_tiles_is_row_major():
    rows, cols, tile = 2, 3, 4
    tile_id = torch.arange(rows * cols, dtype=torch.float32).reshape(rows, cols)
    canvas = tile_id.repeat_interleave(tile, 0).repeat_interleave(tile, 1)[None].expand(3, -1, -1)
    tiles = split_tiles(canvas, rows, cols, tile)
    assert tiles.shape == (6, 3, 4, 4)
    for t in range(6):
        assert torch.all(tiles[t] == t)
    with pytest.raises(ValueError, match="is not a 2x2 grid"):
        split_tiles(canvas, 2, 2, tile)


def test_thumbnail_resizes_the_padded_canvas():
    gen = torch.Generator().manual_seed(1)
    image = torch.randn(3, 30, 50, generator=gen)
    rows, cols = 2, 2
    canvas = resize_and_pad(image, rows, cols, tile=20)  # content 24 x 40 on 40 x 40
    thumb = thumbnail(canvas, 30, 50, tile=20)  # original aspect fitted in 20 x 20: 12 x 20
    assert thumb.shape == (3, 20, 20)
    expected = F.interpolate(canvas[None], size=(12, 20), mode="bilinear", align_corners=False)[0]
    torch.testing.assert_close(thumb[:, :12], expected)
    assert torch.count_nonzero(thumb[:, 12:]) == 0
    from_image = F.interpolate(image[None], size=(12, 20), mode="bilinear", align_corners=False)[0]
    assert (thumb[:, :12] - from_image).abs().max() > 0.1  # the quirk: not a thumbnail of the image itself


def test_slice_image_crops():
    single = slice_image(torch.zeros(3, 336, 336))
    assert (single.rows, single.cols, single.num_tiles, single.mode) == (1, 1, 1, "slice")
    image = torch.randn(3, 480, 640, generator=torch.Generator().manual_seed(2))
    sliced = slice_image(image, patch_num=9)
    assert (sliced.rows, sliced.cols) == (2, 3) and sliced.tiles.shape == (7, 3, 336, 336)
    canvas = resize_and_pad(image, 2, 3)
    torch.testing.assert_close(sliced.tiles[4], canvas[:, 336:, 336:672])
    torch.testing.assert_close(sliced.tiles[6], thumbnail(canvas, 480, 640))
    assert sliced.num_visual_tokens(144) == 1015


def test_num_visual_tokens_formula():
    for rows, cols in [(1, 1), (1, 9), (2, 3), (3, 3), (4, 4)]:
        for m in (144, 64, 36):
            tiles = rows * cols
            expected = tiles * m + rows * (cols - 1) + rows + (m + 1 if tiles > 1 else 0)
            assert num_visual_tokens(rows, cols, m) == expected
    assert num_visual_tokens(2, 3, 64) == 455
    with pytest.raises(ValueError):
        num_visual_tokens(0, 3, 144)


def reference_layout(rows, cols, tokens_per_tile):
    """Spec §3.7 in words: per row the tiles, ',' between them, '\\n' at the end; then thumbnail + '\\n'."""
    out, tile = [], 0
    for _ in range(rows):
        for c in range(cols):
            out += [("tile", tile, m) for m in range(tokens_per_tile)]
            tile += 1
            if c < cols - 1:
                out.append(",")
        out.append("\n")
    if rows * cols > 1:
        out += [("tile", tile, m) for m in range(tokens_per_tile)] + ["\n"]
    return out


def decode(sequence):
    """Read back a sequence built from features 1000*(tile+1) + m and separators -1 (',') / -2 ('\\n')."""
    out = []
    for value in sequence[:, 0].tolist():
        if value == -1:
            out.append(",")
        elif value == -2:
            out.append("\n")
        else:
            out.append(("tile", int(value) // 1000 - 1, int(value) % 1000))
    return out


def id_features(num_tiles, tokens_per_tile, hidden=3, offset=0):
    ids = 1000 * (torch.arange(num_tiles)[:, None] + 1 + offset) + torch.arange(tokens_per_tile)[None]
    return ids[..., None].float().expand(num_tiles, tokens_per_tile, hidden)


COMMA, NEWLINE = torch.full((3,), -1.0), torch.full((3,), -2.0)


@pytest.mark.parametrize("rows,cols", [(1, 1), (1, 3), (2, 3), (3, 2), (3, 3)])
def test_assemble_hd_sequence_order(rows, cols):
    m = 5
    tiles = rows * cols + (rows * cols > 1)
    sequence = assemble_hd_sequence(id_features(tiles, m), rows, cols, COMMA, NEWLINE)
    assert sequence.shape == (num_visual_tokens(rows, cols, m), 3)
    assert decode(sequence) == reference_layout(rows, cols, m)
    with pytest.raises(ValueError, match="needs"):
        assemble_hd_sequence(id_features(tiles + 1, m), rows, cols, COMMA, NEWLINE)


def test_mixed_batch_every_tile_lands_in_its_own_sequence():
    # Crop pixels carry (sample, crop) ids so that a fake "CLIP + projector" can be traced end to end.
    m, tile = 4, 8
    layouts = [(1, 1, "slice"), (2, 3, "slice"), (1, 1, "single"), (2, 3, "slice"), (1, 1, "slice")]
    images = []
    for sample, (rows, cols, mode) in enumerate(layouts):
        crops = rows * cols + (rows * cols > 1)
        crop_ids = 100 * sample + torch.arange(crops, dtype=torch.float32)
        images.append(
            HDImage(crop_ids[:, None, None, None].expand(crops, 3, tile, tile).clone(), rows, cols, mode)
        )
    batch = collate_hd_images(images)
    assert batch.pixel_values.shape == (1 + 7 + 1 + 7 + 1, 3, tile, tile)
    assert batch.grids == ((1, 1), (2, 3), (1, 1), (2, 3), (1, 1))
    assert batch.modes == ("slice", "slice", "single", "slice", "slice")

    crop_id = batch.pixel_values[:, 0, 0, 0]  # the fake encoder reads the id back from the pixels
    features = (crop_id[:, None, None] * 10 + torch.arange(m)[None, :, None]).expand(-1, m, 3).float()
    sequences = assemble_hd_batch(features, batch, COMMA, NEWLINE)
    assert [s.shape[0] for s in sequences] == batch.num_visual_tokens(m) == [5, 4 * 7 + 4 + 2 + 1, 4, 35, 5]
    for sample, ((rows, cols, mode), sequence) in enumerate(zip(layouts, sequences, strict=True)):
        expected = []
        for item in (
            reference_layout(rows, cols, m) if mode == "slice" else [("tile", 0, j) for j in range(m)]
        ):
            if isinstance(item, tuple):
                expected.append(float((100 * sample + item[1]) * 10 + item[2]))
            else:
                expected.append(-1.0 if item == "," else -2.0)
        assert sequence[:, 0].tolist() == expected, f"sample {sample} ({rows}x{cols}, {mode})"


def test_assemble_hd_batch_keeps_gradients_and_checks_counts():
    images = [HDImage(torch.zeros(1, 3, 4, 4), 1, 1), HDImage(torch.zeros(7, 3, 4, 4), 2, 3)]
    batch = collate_hd_images(images)
    features = torch.randn(8, 2, 3, requires_grad=True)
    comma = torch.randn(3, requires_grad=True)
    newline = torch.randn(3, requires_grad=True)
    torch.cat(assemble_hd_batch(features, batch, comma, newline)).sum().backward()
    assert torch.all(features.grad == 1)
    assert torch.all(comma.grad == 4) and torch.all(
        newline.grad == 1 + 3
    )  # 2x3: 4 commas; newlines 1 + 2 + 1
    with pytest.raises(ValueError, match="batch has 8 crops"):
        assemble_hd_batch(features[:7], batch, comma, newline)


def test_hd_image_validation():
    with pytest.raises(ValueError, match=r"needs \(7, C, t, t\) tiles"):
        HDImage(torch.zeros(6, 3, 4, 4), 2, 3)
    with pytest.raises(ValueError, match="'single' HDImage has a 1x1 grid"):
        HDImage(torch.zeros(7, 3, 4, 4), 2, 3, "single")
    with pytest.raises(ValueError, match="mode"):
        HDImage(torch.zeros(1, 3, 4, 4), 1, 1, "pad")
    with pytest.raises(ValueError, match="same"):
        collate_hd_images([HDImage(torch.zeros(1, 3, 4, 4), 1, 1), HDImage(torch.zeros(1, 3, 8, 8), 1, 1)])


def test_to_normalized_tensor():
    mean_colour = np.round(np.array(hd.CLIP_MEAN) * 255).astype(np.uint8)
    array = np.broadcast_to(mean_colour, (5, 7, 3)).copy()
    array[0, 0] = [255, 0, 128]
    image = to_normalized_tensor(array)
    assert image.shape == (3, 5, 7) and image.dtype == torch.float32
    assert image[:, 1:, 1:].abs().max() < 0.01  # the mean colour is ~0 after normalisation
    expected = (torch.tensor([255, 0, 128]) / 255 - torch.tensor(hd.CLIP_MEAN)) / torch.tensor(hd.CLIP_STD)
    torch.testing.assert_close(image[:, 0, 0], expected)
    with pytest.raises(ValueError, match="uint8"):
        to_normalized_tensor(np.zeros((5, 7, 3), dtype=np.float32))


def make_tokenizer(pieces):
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    vocab = {piece: i for i, piece in enumerate(["<unk>", *pieces])}
    return PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(WordLevel(vocab, unk_token="<unk>")), unk_token="<unk>"
    )


def test_separator_token_ids_official_vs_byte_newline():
    # A LLaMA-like vocabulary: ',' is a piece, newline exists only as the byte piece <0x0A>.
    tokenizer = make_tokenizer([",", "<0x0A>", "hello"])
    assert separator_token_ids(tokenizer, newline="official") == (1, 0)  # '\n' -> <unk>, as the official code
    assert separator_token_ids(tokenizer, newline="byte") == (1, 2)
    no_byte = make_tokenizer([",", "hello"])
    with pytest.raises(ValueError, match="<0x0A>"):
        separator_token_ids(no_byte, newline="byte")
    with pytest.raises(ValueError, match="no ','"):
        separator_token_ids(make_tokenizer(["hello"]))
    with pytest.raises(ValueError, match="newline must be"):
        separator_token_ids(tokenizer, newline="space")
