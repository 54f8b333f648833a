"""Two CPU processes of DeepSpeed ZeRO-2 / ZeRO-3 (gloo) train the tiny MLLM for a few HF Trainer steps."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors import safe_open

WORKER = Path(__file__).with_name("ds_worker.py")


def run_two_ranks(tmp_path, config_name, port):
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "DS_ACCELERATOR": "cpu", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(
        [str(torchrun), "--nproc_per_node=2", f"--master_port={port}", str(WORKER), str(tmp_path), config_name],
        env=env, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return json.loads((tmp_path / "result.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize(("config_name", "stage", "port"), [("zero2", 2, 29571), ("zero3", 3, 29572)])
def test_two_cpu_processes(config_name, stage, port, tmp_path):
    result = run_two_ranks(tmp_path, config_name, port)
    assert result["world_size"] == 2 and result["zero_stage"] == stage
    losses = result["losses"]
    assert len(losses) == 4 and all(loss == loss and loss < 1e4 for loss in losses), losses
    assert losses[-1] < losses[0], losses
    first, second = result["projector_checksums"]
    assert abs(first - second) < 1e-6 * max(1.0, abs(first))  # both ranks see the same trained projector
    assert result["projector_numel"] == 2 * (64 * 64 + 64)  # full tensors, not a rank's ZeRO-3 shard
    with safe_open(str(tmp_path / "checkpoint-4" / "projector.safetensors"), "pt") as f:
        assert f.get_slice("linear_1.weight").get_shape() == [64, 64]
