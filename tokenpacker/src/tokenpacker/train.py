"""``tokenpacker-train``: the two-stage TokenPacker recipe with HF Trainer (and DeepSpeed when configured).

    tokenpacker-train                                   # toy run: toy CLIP + toy LM, stages 1 and 2, CPU
    tokenpacker-train --config tokenpacker/configs/stage1_vitl14-336_vicuna7b.yaml
    torchrun --nproc_per_node=8 -m tokenpacker.train --config tokenpacker/configs/stage2_vitl14-336_vicuna7b.yaml
    make train-tokenpacker NGPU=8 CONFIG=stage2_vitl14-336_vicuna7b ARGS='stage2.lora=true'

The resolved config is saved as ``<output_dir>/config.yaml``; stage 1 writes ``stage1/projector.safetensors``,
stage 2 the HF model folder ``stage2/``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

from tokenpacker.cli import config_parser, parse_config
from tokenpacker.engine import fit

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = config_parser("tokenpacker-train", "Train TokenPacker (stage 1: projector; stage 2: LLM + projector).")
    args = parser.parse_args(argv)
    cfg = parse_config(args)
    summary = fit(cfg)
    brief = {
        stage: {"steps": summary[stage]["steps"], "first_loss": summary[stage]["losses"][0],
                "last_loss": summary[stage]["losses"][-1], "seconds": round(summary[stage]["seconds"], 1)}
        for stage in ("stage1", "stage2") if stage in summary and summary[stage]["losses"]
    }
    print(json.dumps({"output_dir": cfg.output_dir, "model_dir": summary["model_dir"], **brief}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
