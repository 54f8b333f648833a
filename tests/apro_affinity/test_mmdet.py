"""The mmdet 3.x plugin: toy SOLOv2 and Mask2Former with APro train two iterations through mmengine's Runner (what
mmdet's tools/train.py does), their checkpoints reload under torch's weights-only loading, and the matching cost
works inside mmdet's Hungarian assigner."""

from pathlib import Path

import pytest
import torch

pytest.importorskip("mmdet")

CONFIGS = Path(__file__).resolve().parents[2] / "apro_affinity" / "configs" / "mmdet"


def _two_iteration_runner(config: Path, toy_world: Path, work_dir: Path):
    from mmengine.config import Config
    from mmengine.runner import Runner

    cfg = Config.fromfile(str(config))
    for loader in ("train_dataloader", "val_dataloader", "test_dataloader"):
        cfg[loader].dataset.data_root = f"{toy_world}/"
    cfg.val_evaluator.ann_file = f"{toy_world}/val/instances.json"
    cfg.test_evaluator = cfg.val_evaluator
    cfg.train_dataloader.batch_size = 2
    cfg.train_cfg.max_iters = 2
    cfg.train_cfg.val_interval = 2
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint.interval = 2
    cfg.default_hooks.visualization = dict(type="DetVisualizationHook", draw=False)
    cfg.work_dir = str(work_dir)
    cfg.launcher = "none"
    return Runner.from_cfg(cfg)


@pytest.mark.parametrize("name", ["toy/apro_boxsolov2_r18_fpn_toy.py", "toy/apro_box2mask_r18_lsj_toy.py"])
def test_toy_config_trains_two_iterations_and_reloads(name, toy_world, tmp_path):
    from mmengine.runner import load_checkpoint

    runner = _two_iteration_runner(CONFIGS / name, toy_world, tmp_path)
    losses = []

    class Record:  # collect the loss dict of each iteration through the message hub
        def __call__(self, *args, **kwargs):
            losses.append(runner.message_hub.get_scalar("train/loss").current())

    from mmengine.hooks import Hook

    hook = Hook()
    hook.after_train_iter = lambda *a, **k: Record()()
    runner.register_hook(hook)
    model = runner.train()  # 2 iterations, then the val loop once (COCO segm metric on the toy val split)
    assert len(losses) == 2 and all(torch.isfinite(torch.tensor(v)) for v in losses)
    hub = runner.message_hub
    names = set(hub.log_scalars)
    expected = {"train/loss_global", "train/loss_local"}
    assert expected <= names, names
    ckpt = tmp_path / "iter_2.pth"
    assert ckpt.is_file()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for p in model.parameters():
        p.data.zero_()
    load_checkpoint(model, str(ckpt), map_location="cpu")  # weights-only torch.load with the safe globals
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    state = torch.load(ckpt, map_location="cpu", weights_only=True)  # the message hub's HistoryBuffers too
    assert state["meta"]["iter"] == 2 and "log_scalars" in state["message_hub"]


def test_box_matching_cost_in_the_hungarian_assigner():
    from mmdet.registry import TASK_UTILS
    from mmengine.structures import InstanceData

    import apro_affinity.mmdet  # noqa: F401  registers BoxMatchingCost
    from apro_affinity.box_masks import boxes_to_masks

    boxes = torch.tensor([[2.0, 2.0, 10.0, 10.0], [12.0, 4.0, 20.0, 16.0]])
    gt_masks = boxes_to_masks(boxes, 24, 24, inclusive_end=False).float()
    # query 0 predicts the second box, query 1 a blob inside the first box, query 2 nothing
    logits = torch.full((3, 24, 24), -8.0)
    logits[0][gt_masks[1] > 0] = 8.0
    logits[1, 3:9, 3:9] = 8.0
    assigner = TASK_UTILS.build(dict(type="HungarianAssigner", match_costs=[
        dict(type="ClassificationCost", weight=2.0), dict(type="BoxMatchingCost", weight=5.0, pred_act=True, eps=1.0)]))
    result = assigner.assign(InstanceData(scores=torch.zeros(3, 3), masks=logits),
                             InstanceData(labels=torch.tensor([0, 1]), masks=gt_masks))
    assert result.gt_inds.tolist() == [2, 1, 0]  # 1-based gt index per query, 0 = background
