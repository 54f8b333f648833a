"""Every mmdet / mmseg config of the package parses (inheritance from mmdet's / mmseg's shipped configs included)
and names only registered types; the full-size models build (slow)."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "apro_affinity" / "configs"
MMDET = sorted(p for p in (ROOT / "mmdet").rglob("*.py") if "_base_" not in p.parts)
MMSEG = sorted(p for p in (ROOT / "mmseg").rglob("*.py") if "_base_" not in p.parts)


def _types(node, found):
    if isinstance(node, dict):
        if isinstance(node.get("type"), str):
            found.add(node["type"])
        for value in node.values():
            _types(value, found)
    elif isinstance(node, (list, tuple)):
        for value in node:
            _types(value, found)
    return found


def _registries(module):
    from mmengine.registry import Registry

    return [v for v in vars(module).values() if isinstance(v, Registry)]


def _check(path, scope_module, plugin):
    import importlib

    from mmengine.config import Config

    importlib.import_module(plugin)
    cfg = Config.fromfile(str(path))
    assert cfg.custom_imports.imports == [plugin]
    registries = _registries(importlib.import_module(scope_module))
    missing = sorted(t for t in _types(cfg.to_dict(), set()) if all(r.get(t) is None for r in registries))
    assert not missing, f"{path.name}: unregistered types {missing}"
    return cfg


@pytest.mark.parametrize("path", MMDET, ids=lambda p: p.name)
def test_mmdet_config_parses_and_types_resolve(path):
    pytest.importorskip("mmdet")
    from mmdet.utils import register_all_modules

    register_all_modules(init_default_scope=True)
    cfg = _check(path, "mmdet.registry", "apro_affinity.mmdet")
    head = cfg.model.get("mask_head") or cfg.model.get("panoptic_head")
    assert head.type in ("BoxSOLOv2Head", "Box2MaskHead")
    pipeline = [t["type"] for t in cfg.train_dataloader.dataset.pipeline]
    assert pipeline[:3] == ["LoadImageFromFile", "LoadAnnotations", "GenerateBoxMask"]
    assert not any(t.get("with_mask") for t in cfg.train_dataloader.dataset.pipeline)  # boxes only


@pytest.mark.parametrize("path", MMSEG, ids=lambda p: p.name)
def test_mmseg_config_parses_and_types_resolve(path):
    pytest.importorskip("mmseg")
    from mmseg.utils import register_all_modules

    register_all_modules(init_default_scope=True)
    cfg = _check(path, "mmseg.registry", "apro_affinity.mmseg")
    assert cfg.model.type in ("AProEncoderDecoder", "MaskClipPlusEncoderDecoder")
    assert cfg.model.decode_head.loss_decode.avg_non_ignore  # partial CE: mean over labelled pixels


def test_official_hyper_parameters_are_kept():
    pytest.importorskip("mmdet")
    from mmengine.config import Config

    solo = Config.fromfile(str(ROOT / "mmdet/apro_boxsolov2/apro_boxsolov2_r50_fpn_36e_voc.py"))
    head = solo.model.mask_head
    assert (head.zeta_gl, head.zeta_gh, head.kernel_size, head.zeta_s, head.loss_mask.loss_weight) == (
        0.01, 0.07, 5, 0.15, 3.0)
    assert solo.optim_wrapper.optimizer.lr == 5e-5 and solo.model.test_cfg.mask_thr == 0.7
    coco = Config.fromfile(str(ROOT / "mmdet/apro_boxsolov2/apro_boxsolov2_r101_fpn_36e_coco.py"))
    assert coco.model.mask_head.kernel_size == 3 and coco.model.test_cfg.mask_thr == 0.55
    m2f = Config.fromfile(str(ROOT / "mmdet/apro_box2mask/apro_box2mask_r50_lsj_8x2_50e_voc.py"))
    head = m2f.model.panoptic_head
    assert (head.zeta_gl, head.zeta_gh, head.global_size, head.loss_box.loss_weight) == (0.02, 0.03, (96, 96), 5.0)
    costs = m2f.model.train_cfg.assigner.match_costs
    assert [c.type for c in costs] == ["ClassificationCost", "BoxMatchingCost"] and costs[1].eps == 1.0
    assert m2f.train_cfg.max_iters == 33065 and m2f.param_scheduler.milestones == [29390, 31840]


@pytest.mark.slow
@pytest.mark.parametrize("path", [p for p in MMDET + MMSEG if "toy" not in p.parts], ids=lambda p: p.name)
def test_full_size_model_builds(path):
    from mmengine.config import Config

    if "mmdet" in path.parts:
        from mmdet.registry import MODELS
        from mmdet.utils import register_all_modules
    else:
        from mmseg.registry import MODELS
        from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    cfg = Config.fromfile(str(path))
    cfg.model.pop("pretrained", None)
    if "clip_teacher" in cfg.model:
        cfg.model.clip_teacher.weights = None  # random teacher: the file is not on this machine
        cfg.model.clip_teacher.templates = "photo"  # 1 prompt per class instead of 80 (CPU time)
    model = MODELS.build(cfg.model)  # init_cfg / pretrained weights are not loaded (init_weights is not called)
    assert sum(p.numel() for p in model.parameters()) > 1_000_000
