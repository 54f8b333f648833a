"""MultimodalCollator: padding, attention mask, images per sample, extras carried untouched."""

import pytest
import torch

from vlzoo.mllm import IGNORE_INDEX, MultimodalCollator, pad_sequences


def sample(ids, labels=None, pixels=None, **extras):
    out = {"input_ids": torch.tensor(ids)}
    if labels is not None:
        out["labels"] = torch.tensor(labels)
    if pixels is not None:
        out["pixel_values"] = pixels
    out.update(extras)
    return out


def test_right_padding_and_mask():
    collate = MultimodalCollator(pad_token_id=0)
    batch = collate([sample([1, 5, 0, 7], [-100, 5, 0, 7]), sample([1, 8], [-100, 8])])
    # a real <unk> (id 0 = pad) inside sample 0 stays attended: the mask comes from lengths
    assert batch["input_ids"].tolist() == [[1, 5, 0, 7], [1, 8, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]
    assert batch["labels"].tolist() == [[-100, 5, 0, 7], [-100, 8, IGNORE_INDEX, IGNORE_INDEX]]
    assert "pixel_values" not in batch


def test_left_padding_for_generation():
    batch = MultimodalCollator(pad_token_id=0, padding_side="left")([sample([1, 5, 6]), sample([1, 8])])
    assert batch["input_ids"].tolist() == [[1, 5, 6], [0, 1, 8]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [0, 1, 1]]
    ids, mask = pad_sequences([torch.tensor([4]), torch.tensor([5, 6, 7])], -1, "left")
    assert ids.tolist() == [[-1, -1, 4], [5, 6, 7]] and mask.sum().item() == 4


def test_images_tiles_and_text_only_samples():
    single = torch.full((3, 8, 8), 1.0)
    tiles = torch.stack([torch.full((3, 8, 8), 2.0), torch.full((3, 8, 8), 3.0)])
    batch = MultimodalCollator(pad_token_id=0)([
        sample([1, 2], pixels=tiles), sample([1]), sample([1, 2, 3], pixels=single)
    ])
    assert batch["pixel_values"].shape == (3, 3, 8, 8)
    assert batch["pixel_values"][:, 0, 0, 0].tolist() == [2.0, 3.0, 1.0]  # sample order, then tile order
    assert batch["images_per_sample"].tolist() == [2, 0, 1]


def test_dummy_image_for_text_only_samples():
    dummy = torch.zeros(3, 8, 8)
    collate = MultimodalCollator(pad_token_id=0, dummy_image=dummy)
    batch = collate([sample([1]), sample([1, 2], pixels=torch.ones(3, 8, 8))])
    assert batch["pixel_values"].shape == (2, 3, 8, 8) and batch["pixel_values"][1].abs().sum() == 0
    assert batch["images_per_sample"].tolist() == [0, 1]  # the dummy row belongs to no sample
    only_text = collate([sample([1]), sample([2])])
    assert only_text["pixel_values"].shape == (1, 3, 8, 8) and only_text["images_per_sample"].tolist() == [0, 0]
    no_dummy = MultimodalCollator(pad_token_id=0)([sample([1, 2], pixels=torch.ones(3, 8, 8))])
    assert no_dummy["pixel_values"].shape == (1, 3, 8, 8)


def test_extras_are_carried_per_sample_untouched():
    masks = torch.ones(2, 5, 5)
    batch = MultimodalCollator(pad_token_id=0)([
        sample([1, 2], pixels=torch.ones(3, 4, 4), image_grids=(2, 3), region_masks=masks),
        sample([1], pixels=torch.ones(3, 4, 4), image_grids=(1, 1)),
    ])
    assert batch["image_grids"] == [(2, 3), (1, 1)]
    assert batch["region_masks"][0] is masks and batch["region_masks"][1] is None


def test_different_image_sizes_stay_a_list():
    batch = MultimodalCollator(pad_token_id=0)([
        sample([1], pixels=torch.ones(3, 4, 4)), sample([1], pixels=torch.ones(3, 6, 6))
    ])
    assert isinstance(batch["pixel_values"], list) and [p.shape[-1] for p in batch["pixel_values"]] == [4, 6]


def test_bad_samples_raise_clear_errors():
    collate = MultimodalCollator(pad_token_id=0)
    with pytest.raises(ValueError, match=r"sample 1: unknown keys \['mode'\]"):
        collate([sample([1]), sample([1], mode="slice")])
    with pytest.raises(ValueError, match="sample 0: labels have 1 entries but input_ids have 2"):
        collate([sample([1, 2], [1])])
    with pytest.raises(ValueError, match=r"samples \[1\] have no 'labels'"):
        collate([sample([1], [1]), sample([2])])
    with pytest.raises(ValueError, match=r"sample 0: pixel_values must be \(3, H, W\)"):
        collate([sample([1], pixels=torch.ones(4, 4))])
    assert MultimodalCollator(pad_token_id=0, extra_keys=("mode",))([sample([1], mode="slice")])["mode"] == ["slice"]
