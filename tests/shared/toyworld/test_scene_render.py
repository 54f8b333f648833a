"""Scene sampling constraints, exact painting, colour truth, and the PNG encoder."""

import io

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from vlzoo.toyworld import (
    COLORS,
    SIZES,
    layout_scene,
    render_background,
    render_scene,
    scene_for,
    visible_objects,
)
from vlzoo.toyworld.png import VOC_PALETTE, encode_png
from vlzoo.toyworld.render import OBJECT_MAX_DEVIATION
from vlzoo.toyworld.scene import image_rng

SCENES = [scene_for(7, "train", i, 96) for i in range(60)]
PALETTE_NAMES = list(COLORS)
PALETTE = np.array([COLORS[c] for c in PALETTE_NAMES], dtype=np.float64)


def test_scene_is_a_function_of_seed_split_index():
    again = scene_for(7, "train", 5, 96)
    assert again == SCENES[5]
    assert scene_for(7, "val", 5, 96) != SCENES[5]
    assert scene_for(8, "train", 5, 96) != SCENES[5]
    assert np.array_equal(render_scene(again), render_scene(SCENES[5]))


def test_streams_are_independent():
    a = image_rng(1, "train", 3, 0).random(4)
    assert not np.allclose(a, image_rng(1, "train", 3, 1).random(4))
    assert not np.allclose(a, image_rng(1, "train", 4, 0).random(4))
    with pytest.raises(ValueError, match="seed and index must be >= 0"):
        image_rng(-1, "train", 0, 0)


def test_sampling_constraints():
    counts = set()
    for scene in SCENES:
        layout = layout_scene(scene)
        views = visible_objects(scene, layout)
        counts.add(len(views))
        assert 1 <= len(views) <= 5
        for view in views:
            obj = view.obj
            lo, hi = SIZES[obj.size]
            assert lo / 2 <= obj.radius <= hi / 2
            assert obj.radius + 1 <= obj.center[0] <= 96 - obj.radius - 1
            assert view.area >= 0.6 * view.full_area and view.area >= 20
    assert counts == {1, 2, 3, 4, 5}


def test_same_coloured_objects_never_touch():
    pairs = 0
    for i in range(250):
        scene = scene_for(9, "val", i, 64)  # small images: crowded scenes
        views = visible_objects(scene, layout_scene(scene))
        for a in views:
            grown = ndimage.binary_dilation(a.mask, iterations=2)
            for b in views:
                if a.index < b.index and a.obj.color == b.obj.color:
                    pairs += 1
                    assert not (grown & b.mask).any(), "same-coloured objects within 2 px"
    assert pairs > 20


@pytest.mark.parametrize("size", [32, 512])
def test_extreme_image_sizes(size):
    scene = scene_for(0, "train", 0, size)
    image = render_scene(scene)
    assert image.shape == (size, size, 3) and image.dtype == np.uint8
    assert scene.objects


@pytest.mark.parametrize("size", [31, 513, 96.5])
def test_bad_image_size(size):
    with pytest.raises(ValueError, match="image size"):
        scene_for(0, "train", 0, size)


def test_masks_are_exactly_the_painted_pixels():
    """Outside every mask the image is the bare background; inside mask k it is object k's colour field."""
    for scene in SCENES[:30]:
        layout = layout_scene(scene)
        views = visible_objects(scene, layout)
        image = render_scene(scene, layout).astype(np.int16)
        background = render_background(scene).astype(np.int16)
        union = np.zeros((96, 96), dtype=bool)
        for view in views:
            diff = np.abs(image[view.mask] - np.array(view.obj.rgb)).max()
            assert diff <= OBJECT_MAX_DEVIATION
            union |= view.mask
        assert np.array_equal(image[~union], background[~union])
        # The painted pixels differ from the background (painting really happened where the masks are).
        assert (np.abs(image[union] - background[union]).max(axis=1) > 0).mean() > 0.95


def test_named_colour_is_the_nearest_palette_colour_of_the_pixels():
    checked = 0
    for scene in SCENES:
        layout = layout_scene(scene)
        image = render_scene(scene, layout).astype(np.float64)
        for view in visible_objects(scene, layout):
            mean = image[view.mask].mean(axis=0)
            nearest = PALETTE_NAMES[int(np.argmin(np.linalg.norm(PALETTE - mean, axis=1)))]
            assert nearest == view.obj.color
            checked += 1
    assert checked > 100


def test_background_keeps_away_from_object_colours():
    for scene in SCENES:
        bg = np.array(scene.background.colors, dtype=float)
        for obj in scene.objects:
            assert np.linalg.norm(bg - np.array(obj.rgb), axis=1).min() >= 70 - 1e-6 or tuple(bg[0]) == (
                70,
                70,
                70,
            )


def test_png_round_trip_and_voc_palette():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(17, 23, 3), dtype=np.uint8)
    data = encode_png(rgb)
    assert data == encode_png(rgb)
    assert np.array_equal(np.array(Image.open(io.BytesIO(data))), rgb)
    labels = rng.integers(0, 17, size=(9, 11), dtype=np.uint8)
    labels[0, 0] = 255
    image = Image.open(io.BytesIO(encode_png(labels, palette=VOC_PALETTE)))
    assert image.mode == "P"
    assert np.array_equal(np.array(image), labels)
    palette = np.array(image.getpalette()[: 256 * 3]).reshape(256, 3)
    assert palette[0].tolist() == [0, 0, 0]
    assert palette[1].tolist() == [128, 0, 0]
    assert palette[3].tolist() == [128, 128, 0]
    assert palette[15].tolist() == [192, 128, 128]  # VOC "person"
    assert palette[255].tolist() == [224, 224, 192]
    with pytest.raises(ValueError, match="uint8"):
        encode_png(rgb.astype(np.float32))
