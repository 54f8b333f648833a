"""``torchrun --nproc_per_node=2 -m tokenpacker.train`` with DeepSpeed ZeRO-2 on two CPU processes (gloo)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tokenpacker.engine import load_trained


@pytest.mark.slow
def test_two_process_zero2_cpu_training_of_both_stages(tiny_overrides, tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "DS_ACCELERATOR": "cpu", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "VLZOO_NO_PROGRESS": "1"}
    args = [*tiny_overrides, "threads=1"]
    for stage in ("stage1", "stage2"):
        args += [f"{stage}.deepspeed=zero2", f"{stage}.deepspeed_torch_adam=true", f"{stage}.max_steps=3",
                 f"{stage}.per_device_batch_size=2", f"{stage}.warmup_ratio=0", f"{stage}.lr_scheduler=constant",
                 f"{stage}.learning_rate=5e-3", f"{stage}.max_samples=4"]
    proc = subprocess.run(
        [str(torchrun), "--nproc_per_node=2", "--master_port=29581", "-m", "tokenpacker.train", *args],
        env=env, capture_output=True, text=True, timeout=1200,
    )
    first_error = proc.stderr.find("Traceback")
    assert proc.returncode == 0, proc.stderr[first_error : first_error + 6000] + proc.stderr[-2000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    for stage in ("stage1", "stage2"):
        losses = summary[stage]["losses"]
        assert summary[stage]["steps"] == 3 and all(loss == loss for loss in losses)  # finite
        assert losses[-1] < losses[0], (stage, losses)
    model, tokenizer = load_trained(tmp_path / "run" / "stage2")
    assert model.config.projector_type == "tokenpacker" and "<image>" in tokenizer.get_vocab()
