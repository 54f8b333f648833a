import numpy as np
import pytest
from PIL import Image

from vlzoo.data import ImageError, ImageSize, image_size, load_image


def _pixels(h=6, w=9):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_rgb_png_is_loaded_exactly(tmp_path):
    pixels = _pixels()
    Image.fromarray(pixels).save(tmp_path / "a.png")
    img = load_image(tmp_path / "a.png")
    assert img.mode == "RGB" and img.size == (9, 6)
    np.testing.assert_array_equal(np.asarray(img), pixels)


def test_palette_grey_and_rgba_become_rgb(tmp_path):
    palette_img = Image.fromarray(np.array([[0, 1], [2, 1]], dtype=np.uint8))
    palette_img.putpalette([0, 0, 0, 200, 10, 20, 5, 250, 7] + [0] * (253 * 3))
    palette_img.save(tmp_path / "p.png")
    np.testing.assert_array_equal(np.asarray(load_image(tmp_path / "p.png"))[0, 1], [200, 10, 20])

    Image.fromarray(np.full((3, 4), 77, dtype=np.uint8)).save(tmp_path / "l.png")
    assert np.asarray(load_image(tmp_path / "l.png")).tolist() == [[[77] * 3] * 4] * 3

    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[..., :3] = (10, 20, 30)
    rgba[..., 3] = 0  # fully transparent: alpha is dropped, colours kept (the references' convert("RGB"))
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    out = load_image(tmp_path / "rgba.png")
    assert out.mode == "RGB" and np.asarray(out)[1, 1].tolist() == [10, 20, 30]


def test_loaded_image_is_detached_from_the_file(tmp_path):
    Image.fromarray(_pixels()).save(tmp_path / "a.jpg", quality=95)
    img = load_image(tmp_path / "a.jpg")
    (tmp_path / "a.jpg").unlink()
    assert np.asarray(img).shape == (6, 9, 3)


def test_image_size_reads_the_header_only(tmp_path):
    Image.fromarray(_pixels(40, 30)).save(tmp_path / "a.jpg", quality=95)
    data = (tmp_path / "a.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    assert image_size(tmp_path / "a.jpg") == ImageSize(height=40, width=30)
    # The header survives truncation, so the size is still known although decoding fails.
    assert image_size(tmp_path / "cut.jpg") == (40, 30)
    with pytest.raises(ImageError):
        load_image(tmp_path / "cut.jpg")


@pytest.mark.parametrize(
    ("name", "make", "problem"),
    [
        ("missing.png", None, "image file not found"),
        ("empty.jpg", lambda p: p.write_bytes(b""), "not a recognised image"),
        ("noise.png", lambda p: p.write_bytes(np.random.default_rng(1).bytes(300)), "not a recognised image"),
        ("cut.png", "truncate", "corrupt or truncated"),
        ("deep.png", lambda p: Image.fromarray(np.full((4, 4), 40000, dtype=np.uint16)).save(p), "unsupported image mode"),
        ("float.tiff", lambda p: Image.fromarray(np.ones((4, 4), dtype=np.float32)).save(p), "unsupported image mode"),
        ("folder.png", lambda p: p.mkdir(), "not a regular file"),
    ],
)
def test_bad_images_raise_image_error_naming_the_file(tmp_path, expect_error, name, make, problem):
    path = tmp_path / name
    if make == "truncate":
        Image.fromarray(_pixels(64, 64)).save(path)
        path.write_bytes(path.read_bytes()[:200])
    elif make is not None:
        make(path)
    with expect_error(path, None, problem, kind=ImageError):
        load_image(path)


def test_image_size_errors(tmp_path, expect_error):
    with expect_error(tmp_path / "nope.jpg", None, "image file not found", kind=ImageError):
        image_size(tmp_path / "nope.jpg")
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    with expect_error(tmp_path / "bad.jpg", None, "not a recognised image", kind=ImageError):
        image_size(tmp_path / "bad.jpg")


def test_decompression_bombs_are_refused(tmp_path, monkeypatch, expect_error):
    Image.fromarray(_pixels(20, 20)).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50)  # 400 pixels > 2 x 50: Pillow's hard limit
    with expect_error(tmp_path / "big.png", None, "refusing to decode an image this large", kind=ImageError):
        load_image(tmp_path / "big.png")


def test_palette_with_transparency(tmp_path, recwarn):
    img = Image.fromarray(np.array([[0, 1]], dtype=np.uint8))
    img.putpalette([9, 8, 7, 1, 2, 3] + [0] * 762)
    img.info["transparency"] = 0
    img.save(tmp_path / "t.png", transparency=0)
    assert np.asarray(load_image(tmp_path / "t.png")).tolist() == [[[9, 8, 7], [1, 2, 3]]]
    assert not [w for w in recwarn if "Transparency" in str(w.message)]
