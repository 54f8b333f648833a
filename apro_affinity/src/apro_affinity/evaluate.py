"""Evaluate a trained miniature run: ``python -m apro_affinity.evaluate --run-dir DIR [--checkpoint PATH]``.

Reads the run's resolved ``config.yaml``, loads its latest (or the given) checkpoint, evaluates on the val split,
prints the metrics and writes ``eval.json`` into the run folder. ``--config CFG.yaml [overrides]`` (what
``make eval-apro CONFIG=toy_box ARGS=...`` passes) evaluates the run folder that config trains into.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from apro_affinity import engine
from apro_affinity.config import ExperimentConfig
from apro_affinity.data import load_split, resolve_world
from vlzoo.config import load_config

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m apro_affinity.evaluate", description=__doc__)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--run-dir", type=Path, help="a run folder written by apro_affinity.train")
    where.add_argument("--config", type=Path, help="the training config (its output_dir is the run folder)")
    parser.add_argument("--checkpoint", default=None, help="a checkpoint file (default: the run's latest)")
    parser.add_argument("overrides", nargs="*", help="dotted overrides (e.g. world.val_images=0 for all)")
    args = parser.parse_args(argv)
    if args.config is not None:
        args.run_dir = Path(load_config(ExperimentConfig, args.config, args.overrides).output_dir)
    config = args.run_dir / "config.yaml"
    if not config.is_file():
        parser.error(f"{config} not found: --run-dir must be a folder written by apro_affinity.train")
    cfg = load_config(ExperimentConfig, config, [*args.overrides, f"output_dir={args.run_dir}"])
    val = load_split(resolve_world(cfg.world) / "val", cfg.world.val_images)
    model = engine.load_trained(cfg, val.num_classes, args.checkpoint)
    print(json.dumps(engine.evaluate(cfg, model, val), indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
