"""Tensor preprocessing: exact normalisation, the three resize modes, clear errors; the PIL transform."""

import numpy as np
import pytest
import torch
from PIL import Image

import vlzoo.clip as vc


def _image(h: int, w: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def test_normalisation_is_exact_and_dtype_independent():
    img = _image(4, 5)
    expected = (img.float() / 255 - torch.tensor(vc.CLIP_MEAN).view(3, 1, 1)) / torch.tensor(
        vc.CLIP_STD
    ).view(3, 1, 1)
    torch.testing.assert_close(vc.normalize_images(img), expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(vc.normalize_images(img.float() / 255), expected, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="3 channels"):
        vc.normalize_images(torch.zeros(4, 5, 5))
    with pytest.raises(TypeError, match="uint8 or floating"):
        vc.normalize_images(torch.zeros(3, 4, 4, dtype=torch.int32))


@pytest.mark.parametrize("mode", ["shortest", "squash", "longest"])
def test_output_shape_for_every_mode(mode):
    out = vc.preprocess_images(torch.stack([_image(60, 90), _image(60, 90, 1)]), 32, mode=mode)
    assert out.shape == (2, 3, 32, 32) and out.dtype == torch.float32


def test_shortest_center_crops_without_resizing_when_the_short_side_fits():
    img = _image(32, 48)
    out = vc.preprocess_images(img, 32, mode="shortest")
    torch.testing.assert_close(out[0], vc.normalize_images(img[:, :, 8:40]), rtol=0, atol=1e-6)


def test_longest_pads_with_the_mean_colour_which_normalises_to_zero():
    img = _image(16, 32)
    out = vc.preprocess_images(img, 32, mode="longest")[0]
    assert torch.equal(out[:, :8], torch.zeros(3, 8, 32)) and torch.equal(out[:, 24:], torch.zeros(3, 8, 32))
    torch.testing.assert_close(out[:, 8:24], vc.normalize_images(img), rtol=0, atol=1e-6)


def test_squash_is_plain_normalisation_at_the_target_size_and_resizes_otherwise():
    img = _image(32, 32)
    torch.testing.assert_close(vc.preprocess_images(img, 32, mode="squash")[0], vc.normalize_images(img))
    flat = torch.full((3, 40, 20), 0.25)
    out = vc.preprocess_images(flat, 16, mode="squash", interpolation="bilinear")
    expected = (0.25 - torch.tensor(vc.CLIP_MEAN)) / torch.tensor(vc.CLIP_STD)
    torch.testing.assert_close(
        out[0, :, 5, 7], expected, rtol=0, atol=1e-5
    )  # a constant image stays constant


def test_list_of_differently_sized_images():
    out = vc.preprocess_images([_image(20, 30), _image(50, 40)], 16, mode="squash")
    assert out.shape == (2, 3, 16, 16)
    with pytest.raises(ValueError, match=r"image 1: expected shape \(3, H, W\)"):
        vc.preprocess_images([_image(20, 30), torch.zeros(1, 8, 8)], 16)


def test_bad_arguments():
    with pytest.raises(ValueError, match="mode must be one of"):
        vc.preprocess_images(_image(8, 8), 8, mode="crop")
    with pytest.raises(ValueError, match="interpolation"):
        vc.preprocess_images(_image(8, 8), 8, interpolation="nearest")


def test_clip_model_preprocess_handles_pil_images(tiny_vit):
    pil = Image.fromarray(np.zeros((50, 70, 3), dtype=np.uint8))
    out = tiny_vit.preprocess(pil)
    assert out.shape == (3, 96, 96)
    expected = (0 - torch.tensor(vc.CLIP_MEAN)) / torch.tensor(vc.CLIP_STD)
    torch.testing.assert_close(out[:, 10, 10], expected, rtol=0, atol=1e-5)
