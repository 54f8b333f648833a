import numpy as np
import pytest
import torch
from PIL import Image

from vlzoo.data import DataError, ImageError, read_label_png, voc_colormap, write_label_png


def _labels(h=7, w=11, num_classes=21):
    labels = np.random.default_rng(0).integers(0, num_classes, (h, w)).astype(np.uint8)
    labels[0, :3] = 255  # VOC boundary / unlabelled pixels
    return labels


def test_voc_colormap_known_entries():
    colors = voc_colormap()
    assert colors.shape == (256, 3) and colors.dtype == np.uint8
    # Entries of the published VOC palette: background, aeroplane, bicycle, person (15), boundary (255).
    assert colors[0].tolist() == [0, 0, 0]
    assert colors[1].tolist() == [128, 0, 0]
    assert colors[2].tolist() == [0, 128, 0]
    assert colors[15].tolist() == [192, 128, 128]
    assert colors[20].tolist() == [0, 64, 128]
    assert colors[255].tolist() == [224, 224, 192]
    assert len({tuple(c) for c in colors.tolist()}) == 256
    np.testing.assert_array_equal(voc_colormap(21), colors[:21])


def test_palette_round_trip(tmp_path):
    labels = _labels()
    path = write_label_png(tmp_path / "sub" / "a.png", labels)
    assert path == tmp_path / "sub" / "a.png"
    with Image.open(path) as img:
        assert img.mode == "P"
        palette = np.array(img.getpalette()[: 256 * 3]).reshape(256, 3)
    np.testing.assert_array_equal(palette, voc_colormap())
    out = read_label_png(path, num_classes=21, expected_size=(7, 11))
    assert out.dtype == np.uint8 and out.flags.writeable
    np.testing.assert_array_equal(out, labels)
    assert read_label_png(path, dtype=np.int64).dtype == np.int64
    assert not list(path.parent.glob(".*tmp"))  # atomic write leaves no temp file


def test_greyscale_and_custom_palette_and_tensor_input(tmp_path):
    labels = torch.from_numpy(_labels().astype(np.int64))
    grey = write_label_png(tmp_path / "l.png", labels, palette=None)
    with Image.open(grey) as img:
        assert img.mode == "L"
    np.testing.assert_array_equal(read_label_png(grey, 21), labels.numpy())
    custom = write_label_png(tmp_path / "c.png", labels, palette=np.array([[1, 2, 3], [4, 5, 6]]))
    np.testing.assert_array_equal(read_label_png(custom, 21), labels.numpy())


def test_scribble_and_point_labels(tmp_path):
    """Sparse labels: almost everything is ignore (255), a few pixels carry classes."""
    scribble = np.full((16, 16), 255, dtype=np.uint8)
    scribble[3, 2:9] = 4
    scribble[10, 5] = 0
    path = write_label_png(tmp_path / "s.png", scribble)
    out = read_label_png(path, num_classes=5)
    assert (out == 255).sum() == 16 * 16 - 8 and out[3, 4] == 4 and out[10, 5] == 0


def test_write_rejects_bad_labels(tmp_path):
    with pytest.raises(ValueError, match="2-D"):
        write_label_png(tmp_path / "a.png", np.zeros((2, 3, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"\[0, 255\]"):
        write_label_png(tmp_path / "a.png", np.array([[0, 256]]))
    with pytest.raises(ValueError, match="integer"):
        write_label_png(tmp_path / "a.png", np.zeros((2, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="palette"):
        write_label_png(tmp_path / "a.png", np.zeros((2, 2), dtype=np.uint8), palette="ade")
    assert not (tmp_path / "a.png").exists()


def test_rgb_rendered_mask_is_rejected(tmp_path, expect_error):
    colours = voc_colormap()[_labels()]
    Image.fromarray(colours).save(tmp_path / "rendered.png")
    with expect_error(tmp_path / "rendered.png", None, "colour-rendered mask", kind=ImageError):
        read_label_png(tmp_path / "rendered.png", num_classes=21)


def test_values_outside_the_classes(tmp_path, expect_error):
    labels = _labels()
    labels[2, 5] = 21
    labels[4, 1] = 40
    path = write_label_png(tmp_path / "a.png", labels)
    with expect_error(path, None, "2 pixels hold values [21, 40] that are not class indices 0..20 or the ignore "
                                  "index 255 (first at row 2, column 5)"):
        read_label_png(path, num_classes=21)
    np.testing.assert_array_equal(read_label_png(path), labels)  # without num_classes nothing is checked
    with expect_error(path, None, "values [21, 40, 255]"):
        read_label_png(path, num_classes=21, ignore_index=None)


@pytest.mark.parametrize(
    ("make", "kind", "problem"),
    [
        (None, ImageError, "image file not found"),
        (lambda p: p.write_bytes(b"\x89PNG garbage"), ImageError, "not a recognised image"),
        ("truncate", ImageError, "corrupt or truncated"),
        (lambda p: Image.fromarray(np.full((4, 4), 300, dtype=np.uint16)).save(p), ImageError,
         "unsupported label PNG mode"),
        (lambda p: Image.fromarray(np.zeros((4, 4, 4), dtype=np.uint8)).save(p), ImageError, "colour image"),
        (lambda p: write_label_png(p, np.zeros((5, 6), dtype=np.uint8)), DataError,
         "label size (H, W) = (5, 6) does not match the expected (7, 11)"),
    ],
)
def test_bad_label_files(tmp_path, expect_error, make, kind, problem):
    path = tmp_path / "label.png"
    if make == "truncate":
        write_label_png(path, np.random.default_rng(0).integers(0, 21, (64, 64)))
        path.write_bytes(path.read_bytes()[:120])
    elif make is not None:
        make(path)
    with expect_error(path, None, problem, kind=kind):
        read_label_png(path, num_classes=21, expected_size=(7, 11))
