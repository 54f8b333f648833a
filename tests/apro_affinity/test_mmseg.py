"""The mmseg 1.x plugin: the toy scribble (APro), point, TEL and CLIP-guided configs train two iterations through
mmengine's Runner; the sparse-label pieces (unlabelled region, MaskCLIP+ labels, VOC rasterisers) on small cases."""

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("mmseg")

CONFIGS = Path(__file__).resolve().parents[2] / "apro_affinity" / "configs" / "mmseg"


def _train_two_iterations(config: Path, toy_world: Path, work_dir: Path) -> dict:
    from mmengine.config import Config
    from mmengine.runner import Runner

    cfg = Config.fromfile(str(config))
    for loader in ("train_dataloader", "val_dataloader", "test_dataloader"):
        cfg[loader].dataset.data_root = f"{toy_world}/"
    cfg.train_dataloader.batch_size = 2
    cfg.train_cfg.max_iters = 2
    cfg.train_cfg.val_interval = 2
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint.interval = 2
    cfg.default_hooks.visualization = dict(type="SegVisualizationHook", draw=False)
    cfg.work_dir = str(work_dir)
    runner = Runner.from_cfg(cfg)
    runner.train()  # 2 iterations, then the val loop (mIoU on the toy val split)
    assert (work_dir / "iter_2.pth").is_file()
    return {k: v.current() for k, v in runner.message_hub.log_scalars.items()}


@pytest.mark.parametrize("name,expected", [
    ("toy/apro_fcn_r18-d8_toy-scribble.py", {"train/decode.loss_apro_global", "train/decode.loss_apro_local"}),
    ("toy/apro_fcn_r18-d8_toy-point.py", {"train/decode.loss_apro_global"}),
    ("toy/tel_fcn_r18-d8_toy-scribble.py", {"train/decode.loss_tel"}),
    ("toy/apro_maskclip-plus_deeplabv2_r18-d8_toy.py", {"train/decode.loss_apro_local"}),
])
def test_toy_config_trains_two_iterations(name, expected, toy_world, tmp_path):
    scalars = _train_two_iterations(CONFIGS / name, toy_world, tmp_path)
    assert expected <= set(scalars), sorted(scalars)
    assert np.isfinite(scalars["train/loss"]) and "val/mIoU" in scalars
    for key in expected:
        assert scalars[key] >= 0


def test_unlabeled_region_excludes_labels_and_padding():
    from apro_affinity.mmseg.heads import unlabeled_inside_image

    labels = torch.full((2, 4, 5), 255)
    labels[0, 1, 1] = 3
    region = unlabeled_inside_image(labels, [(4, 5), (2, 3)])
    assert region[0].sum() == 19 and not region[0, 1, 1]
    assert region[1].sum() == 6 and region[1, :2, :3].all()  # image 1 is 2x3 before padding


def test_maskclip_teacher_labels_and_thresholds():
    from apro_affinity.maskclip import MaskClipTeacher, maskclip_dense_features
    from vlzoo.clip import create_clip

    torch.manual_seed(0)
    clip = create_clip("vlzoo-tiny-vit")
    feats = maskclip_dense_features(clip, torch.randn(2, 3, 96, 96))
    assert feats.shape == (2, clip.embed_dim, 12, 12)
    assert torch.allclose(feats.norm(dim=1), torch.ones(2, 12, 12), atol=1e-5)
    teacher = MaskClipTeacher(clip, ["circle", "square", "star"], templates="photo")
    labels = teacher.pseudo_labels(torch.randn(2, 3, 40, 50), (40, 50))
    assert labels.shape == (2, 40, 50) and labels.dtype == torch.long and labels.max() < 3
    cos = teacher.cosine_maps(torch.randn(1, 3, 96, 96))
    strict = MaskClipTeacher(clip, ["circle", "square", "star"], templates="photo", conf_thresh=2.0)
    assert (strict.pseudo_labels(torch.randn(1, 3, 96, 96), (8, 8)) == 255).all()  # cosines never reach 2
    assert cos.shape == (1, 3, 12, 12) and cos.abs().max() <= 1 + 1e-5
    assert not any(p.requires_grad for p in teacher.parameters())


def test_resolve_class_names():
    import apro_affinity.mmseg  # noqa: F401  registers ToyWorldSegDataset
    from apro_affinity.mmseg.segmentors import resolve_class_names

    names = resolve_class_names(dict(dataset="PascalVOCDataset", exclude=["background"]))
    assert len(names) == 20 and "background" not in names
    assert resolve_class_names(dict(dataset="ToyWorldSegDataset"))[:2] == ["background", "circle"]
    with pytest.raises(ValueError, match="unknown mmseg dataset"):
        resolve_class_names(dict(dataset="NoSuchDataset"))


def test_voc_sparse_rasterisers_and_converters(tmp_path):
    from apro_affinity.mmseg.convert_voc_sparse import (
        convert_points,
        convert_scribbles,
        parse_scribble_xml,
        rasterize_clicks,
    )
    from vlzoo.data import DataError, read_label_png

    # a click is a 3 px disc: the centre and its 4-neighbours at least, nothing 3 px away
    label = rasterize_clicks([(7, (5, 4))], 10, 8)
    assert label[4, 5] == 7 and label[4, 4] == 7 and label[3, 5] == 7 and label[4, 8] == 255
    xml = (b"<annotation><size><width>12</width><height>10</height></size>"
           b"<polygon><tag>cat</tag><point><X>2</X><Y>2</Y></point><point><X>9</X><Y>2</Y></point></polygon>"
           b"<polygon><tag>background</tag><point><X>5</X><Y>8</Y></point></polygon></annotation>")
    width, height, lines = parse_scribble_xml(xml, "a")
    assert (width, height) == (12, 10) and lines[0][0] == 8 and lines[1] == (0, [(5, 8)])
    with pytest.raises(DataError, match="unknown class tag"):
        parse_scribble_xml(xml.replace(b">cat<", b">kitten<"), "b")
    archive = tmp_path / "voc_scribbles.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("2007_000032.xml", xml)
    assert convert_scribbles(archive, tmp_path / "scribbles") == 1
    png = read_label_png(tmp_path / "scribbles" / "2007_000032.png", num_classes=21)
    assert png.shape == (10, 12) and (png[2, 2:10] == 8).all() and png[8, 5] == 0
    from PIL import Image

    (tmp_path / "img").mkdir()
    Image.new("RGB", (12, 10)).save(tmp_path / "img" / "2007_000032.jpg")
    (tmp_path / "fg.json").write_text(json.dumps({"2007_000032": [{"cls": 8, "x": 3, "y": 3}]}))
    (tmp_path / "bg.json").write_text(json.dumps({"2007_000032": [{"cls": 0, "x": 9, "y": 7}]}))
    assert convert_points(tmp_path / "fg.json", tmp_path / "bg.json", tmp_path / "img", tmp_path / "points") == 1
    points = read_label_png(tmp_path / "points" / "2007_000032.png", num_classes=21)
    assert points[3, 3] == 8 and points[7, 9] == 0 and (points == 255).sum() > 90  # 120 px, two small discs
