"""The miniature trainer: 2-step smokes with a finite loss, a checkpoint that reloads, the CLIs, config checks."""

import json
import math

import pytest
import torch

from apro_affinity import engine
from apro_affinity.config import ExperimentConfig
from apro_affinity.data import batch_image_indices, load_split
from apro_affinity.modeling import crop_instances, paste_masks
from vlzoo.config import ConfigError, load_config


def _cfg(toy_world, tmp_path, task, method, *extra):
    return load_config(ExperimentConfig, None, [f"task={task}", f"method={method}", f"world.root={toy_world}",
                                                "world.train_images=0", "world.val_images=0", "train.steps=2",
                                                "train.images_per_step=2", "train.warmup_steps=1",
                                                f"output_dir={tmp_path / (task + '_' + method)}", *extra])


@pytest.mark.parametrize("task,method", [("box", "apro"), ("box", "boxinst_pairwise"), ("box", "tel"),
                                         ("scribble", "pce_apro"), ("point", "pce_tel")])
def test_two_steps_finite_loss_and_reloadable_checkpoint(toy_world, tmp_path, task, method):
    cfg = _cfg(toy_world, tmp_path, task, method)
    train = load_split(toy_world / "train")
    val = load_split(toy_world / "val")
    out = engine.fit(cfg, train)
    assert out["step"] == 2 and math.isfinite(out["loss"])
    records = [json.loads(line) for line in (out["run_dir"] / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [0, 1] and all(math.isfinite(r["loss"]) for r in records)
    metrics = engine.evaluate(cfg, out["model"], val)
    assert 0.0 <= metrics["miou"] <= 100.0
    assert json.loads((out["run_dir"] / "eval.json").read_text()) == metrics
    reloaded = engine.load_trained(cfg, train.num_classes)
    trained = out["model"].eval()
    for a, b in zip(trained.state_dict().values(), reloaded.state_dict().values()):
        assert torch.equal(a, b)
    assert engine.evaluate(cfg, reloaded, val, write=False) == metrics


def test_train_and_evaluate_clis(toy_world, tmp_path, capsys):
    from apro_affinity import evaluate, train

    run = tmp_path / "cli"
    assert train.main(["task=box", "method=projection", f"world.root={toy_world}", "train.steps=1",
                       "train.images_per_step=2", "world.val_images=2", f"output_dir={run}"]) == 0
    assert (run / "config.yaml").is_file() and (run / "checkpoints" / "step_00000001.pt").is_file()
    assert evaluate.main(["--run-dir", str(run)]) == 0
    printed = capsys.readouterr().out
    assert '"mask_ap"' in printed and '"miou"' in printed
    # `make eval-apro CONFIG=...` passes the training config: its output_dir names the run
    delta = tmp_path / "delta.yaml"
    delta.write_text(f"task: box\nmethod: projection\noutput_dir: {run}\n")
    assert evaluate.main(["--config", str(delta)]) == 0
    assert '"mask_ap"' in capsys.readouterr().out
    with pytest.raises(SystemExit):
        evaluate.main(["--run-dir", str(tmp_path / "nothing")])


def test_config_rejects_unknown_methods_and_keys():
    with pytest.raises(ConfigError, match="not one of"):
        load_config(ExperimentConfig, None, ["task=box", "method=pce"])
    with pytest.raises(ConfigError, match="unknown key"):
        load_config(ExperimentConfig, None, ["train.stepz=3"])


def test_batches_depend_only_on_seed_and_step():
    a = batch_image_indices(10, 3, seed=5, step=7)
    assert torch.equal(a, batch_image_indices(10, 3, seed=5, step=7))
    assert not torch.equal(a, batch_image_indices(10, 3, seed=6, step=7))
    # the slots of one epoch are disjoint
    epoch = torch.cat([batch_image_indices(9, 3, 0, s) for s in range(3)])
    assert sorted(epoch.tolist()) == list(range(9))


def test_crop_and_paste_round_trip_a_box_mask():
    from apro_affinity.box_masks import boxes_to_masks

    boxes = torch.tensor([[20.0, 30.0, 50.0, 44.0], [0.0, 0.0, 10.0, 30.0]])
    masks = boxes_to_masks(boxes, 64, 64, inclusive_end=False)
    images = torch.zeros(1, 3, 64, 64)
    _, crops, theta = crop_instances(images, torch.tensor([0, 0]), boxes, 32, 1.5, masks.float())
    back = paste_masks(crops, theta, 64, 64) > 0.5
    assert torch.equal(back, masks)  # the crop holds the whole box, and the box comes back where it was

