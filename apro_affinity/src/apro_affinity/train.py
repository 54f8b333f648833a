"""Train one miniature run and evaluate it: ``python -m apro_affinity.train --config CFG.yaml [key=value ...]``.

``make train-apro CONFIG=toy_box ARGS='method=apro train.steps=100'`` runs
``python -m apro_affinity.train --config apro_affinity/configs/toy_box.yaml method=apro train.steps=100``. The run
folder (``output_dir``) gets ``config.yaml``, ``metrics.jsonl`` (+ a plot), ``checkpoints/`` and ``eval.json``; an
interrupted run resumes from its latest checkpoint. The mmdet / mmseg experiments run through mmdet's and
mmseg's own ``tools/train.py`` with the configs in ``apro_affinity/configs/mmdet`` and ``configs/mmseg``.
"""

from __future__ import annotations

import argparse
import json

from apro_affinity import engine
from apro_affinity.config import ExperimentConfig
from vlzoo.config import load_config

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m apro_affinity.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=None, help="YAML delta over the ExperimentConfig defaults")
    parser.add_argument("--no-eval", action="store_true", help="train only")
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. method=tel train.steps=50")
    args = parser.parse_args(argv)
    cfg = load_config(ExperimentConfig, args.config, args.overrides)
    train, val = engine.load_data(cfg)
    result = engine.fit(cfg, train)
    print(f"trained {cfg.task}/{cfg.method}: {result['step']} steps, last loss {result['loss']:.4f}, "
          f"{result['wall_time_s']:.1f} s -> {result['run_dir']}")
    if not args.no_eval:
        metrics = engine.evaluate(cfg, result["model"], val)
        print(json.dumps(metrics, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
