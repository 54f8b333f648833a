"""Rerun the miniature reproduction from scratch: ``make reproduce-apro_affinity`` (``python -m apro_affinity.reproduce``).

For every task (box, scribble, point), method and seed it trains a fresh run (fixed seeds, equal steps for every
method of a task), evaluates it on the val split, and then writes

- ``apro_affinity/results/toy.json``: ``{"methods": {NAME: {METRIC: mean, METRIC_std: std}}, "per_seed": ...,
  "seeds": [...], "steps": N, "wall_time_s": T, ...}`` (names in :mod:`apro_affinity.report`);
- the tables of ``apro_affinity/README.md`` (between the generated-table markers), from that file only;
- ``apro_affinity/results/toy_pseudo_labels.png``: images, sparse labels, predictions and APro pseudo labels of
  the seed-0 APro models.

Runs are spread over ``--jobs`` worker processes with one torch thread each: a run's numbers do not depend on how
many runs share the machine, and the same command gives the same table. ``--quick`` is the short version used by
``python -m apro_affinity.demo`` (fewer images and steps, one seed, nothing written outside ``--runs-dir``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from apro_affinity import report
from apro_affinity.config import BOX_METHODS, REFERENCE_METHODS, SEMANTIC_METHODS, ExperimentConfig
from vlzoo.config import load_config
from vlzoo.run import atomic_write_text

__all__ = ["main", "plan_runs", "run_one", "QUICK_OVERRIDES"]

PACKAGE_ROOT = Path(__file__).resolve().parents[2]
"""The ``apro_affinity/`` distribution folder (configs/, results/, README.md)."""

TASK_CONFIGS = {"box": "toy_box.yaml", "scribble": "toy_scribble.yaml", "point": "toy_point.yaml"}

QUICK_OVERRIDES = ("train.steps=40", "world.train_images=200", "world.val_images=100", "train.save_every=1000")
"""The demo's settings: the same pipeline, a few minutes in all."""

_DATA_CACHE: dict = {}


def plan_runs(tasks: list[str], seeds: list[int]) -> list[tuple[str, str, int]]:
    """(task, method, seed) of every run, in table order; the dense-label reference runs once (scribble task)."""
    runs = []
    for task in tasks:
        methods = BOX_METHODS if task == "box" else SEMANTIC_METHODS
        if task == "scribble":
            methods = methods + REFERENCE_METHODS
        runs += [(task, method, seed) for method in methods for seed in seeds]
    return runs


def _config(task: str, method: str, seed: int, runs_dir: Path, overrides: list[str]) -> ExperimentConfig:
    out = runs_dir / f"{task}_{method}_s{seed}"
    return load_config(ExperimentConfig, PACKAGE_ROOT / "configs" / TASK_CONFIGS[task],
                       [f"method={method}", f"train.seed={seed}", f"output_dir={out}", *overrides])


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)
    os.environ.setdefault("VLZOO_NO_PROGRESS", "1")


def run_one(task: str, method: str, seed: int, runs_dir: str, overrides: list[str]) -> dict:
    """Train and evaluate one run from scratch (its folder is emptied first); returns metrics + wall time."""
    from apro_affinity import engine

    cfg = _config(task, method, seed, Path(runs_dir), overrides)
    shutil.rmtree(cfg.output_dir, ignore_errors=True)
    key = (cfg.world.root, cfg.world.n_train, cfg.world.n_val, cfg.world.image_size, cfg.world.world_seed,
           cfg.world.train_images, cfg.world.val_images)
    if key not in _DATA_CACHE:
        _DATA_CACHE.clear()
        _DATA_CACHE[key] = engine.load_data(cfg)
    train, val = _DATA_CACHE[key]
    start = time.perf_counter()
    fitted = engine.fit(cfg, train)
    metrics = engine.evaluate(cfg, fitted["model"], val)
    metrics["wall_time_s"] = time.perf_counter() - start
    return {"task": task, "method": method, "seed": seed, "metrics": metrics, "steps": cfg.train.steps}


def _figure(runs_dir: Path, overrides: list[str], out: Path, seed: int, tasks: list[str]) -> Path | None:
    if "box" not in tasks or not ({"scribble", "point"} & set(tasks)):
        return None
    from apro_affinity import engine
    from apro_affinity.data import load_split, resolve_world

    seg_task = "scribble" if "scribble" in tasks else "point"
    box_cfg = _config("box", "apro", seed, runs_dir, overrides)
    seg_cfg = _config(seg_task, "pce_apro", seed, runs_dir, overrides)
    root = resolve_world(box_cfg.world)
    val = load_split(root / "val", 8)
    return report.pseudo_label_figure(out, engine.load_trained(box_cfg, val.num_classes), box_cfg,
                                      engine.load_trained(seg_cfg, val.num_classes), seg_cfg, val, val,
                                      box_images=(0, 3), seg_images=(1, 2))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m apro_affinity.reproduce", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--tasks", nargs="+", default=["box", "scribble", "point"], choices=list(TASK_CONFIGS))
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (one torch thread each)")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs/apro_affinity/reproduce"))
    parser.add_argument("--out", type=Path, default=PACKAGE_ROOT / "results" / "toy.json")
    parser.add_argument("--readme", type=Path, default=PACKAGE_ROOT / "README.md")
    parser.add_argument("--figure", type=Path, default=PACKAGE_ROOT / "results" / "toy_pseudo_labels.png")
    parser.add_argument("--no-readme", action="store_true", help="do not rewrite the README tables")
    parser.add_argument("--quick", action="store_true", help="the demo's short settings (writes under --runs-dir)")
    parser.add_argument("--set", dest="overrides", nargs="*", default=[], help="overrides for every run")
    args = parser.parse_args(argv)
    overrides = [*(QUICK_OVERRIDES if args.quick else ()), *args.overrides]
    if args.quick:
        args.out, args.figure = args.runs_dir / "toy.json", args.runs_dir / "toy_pseudo_labels.png"
        args.no_readme = True

    start = time.perf_counter()
    from apro_affinity.data import resolve_world

    resolve_world(_config("box", "apro", 0, args.runs_dir, overrides).world)  # generate the world once, here
    runs = plan_runs(args.tasks, args.seeds)
    print(f"{len(runs)} runs on {args.jobs} worker(s): tasks {args.tasks}, seeds {args.seeds}", flush=True)
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=get_context("spawn"), initializer=_init_worker) as pool:
        futures = [pool.submit(run_one, task, method, seed, str(args.runs_dir), overrides)
                   for task, method, seed in runs]
        records = []
        for future in futures:
            record = future.result()
            records.append(record)
            m = record["metrics"]
            shown = ", ".join(f"{k} {v:.1f}" for k, v in m.items() if k in ("miou", "mask_ap", "fg_miou"))
            print(f"  {record['task']:>8} {record['method']:<17} seed {record['seed']}: {shown} "
                  f"({m['wall_time_s']:.0f} s)", flush=True)

    steps = sorted({r["steps"] for r in records})
    per_seed: dict[str, dict[int, dict]] = {}
    run_times: dict[str, list[float]] = {}
    for r in records:
        name = report.result_name(r["task"], r["method"])
        metrics = {k: v for k, v in r["metrics"].items() if k not in ("wall_time_s", "instances")}
        per_seed.setdefault(name, {})[r["seed"]] = metrics
        run_times.setdefault(name, []).append(r["metrics"]["wall_time_s"])
    figure = _figure(args.runs_dir, overrides, args.figure, args.seeds[0], args.tasks)
    results = {
        "methods": report.aggregate(per_seed),
        "per_seed": {name: {str(s): v for s, v in seeds.items()} for name, seeds in per_seed.items()},
        "seeds": list(args.seeds),
        "steps": steps[0] if len(steps) == 1 else steps,
        "wall_time_s": time.perf_counter() - start,
        "run_wall_time_s": {name: sum(t) / len(t) for name, t in run_times.items()},
        "jobs": args.jobs,
        "overrides": list(overrides),
        "machine": f"{os.cpu_count()} CPU cores ({platform.machine()}), {args.jobs} worker(s) x 1 thread",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, json.dumps(results, indent=2, sort_keys=True) + "\n")
    tables = report.render_tables(results)
    print(tables)
    print(f"results: {args.out}" + (f"; figure: {figure}" if figure else ""))
    if not args.no_readme:
        if report.update_readme(args.readme, tables):
            print(f"updated the tables of {args.readme}")
        else:
            print(f"{args.readme} has no generated-table markers; tables not written")
    print(f"wall time {results['wall_time_s'] / 60:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
