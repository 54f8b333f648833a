"""Run tooling shared by every paper: seeding, run folders, atomic checkpoints with exact resume,
a JSONL metrics log with a plot of its curves, and tqdm progress.

A training script typically does::

    run = RunDir.create(cfg.output_dir, cfg)           # saves config.yaml into the folder
    seed_everything(cfg.seed)
    ckpt = Checkpointer(run.path / "checkpoints")
    state = ckpt.resume(model, optimizer, scheduler)   # {} on a fresh run
    log = MetricsLog(run.path / "metrics.jsonl")
    for step in progress(range(state.get("step", 0), cfg.steps)):
        ...
        log.write(step=step, loss=loss)
        if (step + 1) % cfg.save_every == 0:
            ckpt.save(step + 1, model, optimizer, scheduler)
    log.plot()
"""

from vlzoo.run.checkpoint import (
    Checkpointer,
    atomic_save,
    atomic_write_bytes,
    atomic_write_text,
    load_checkpoint,
)
from vlzoo.run.loop import TrainLoop
from vlzoo.run.metrics_log import MetricsLog, plot_metrics
from vlzoo.run.progress import progress
from vlzoo.run.rundir import RunDir
from vlzoo.run.seed import capture_rng_state, epoch_permutation, restore_rng_state, seed_everything

__all__ = [
    "Checkpointer",
    "MetricsLog",
    "RunDir",
    "TrainLoop",
    "atomic_save",
    "atomic_write_bytes",
    "atomic_write_text",
    "capture_rng_state",
    "epoch_permutation",
    "load_checkpoint",
    "plot_metrics",
    "progress",
    "restore_rng_state",
    "seed_everything",
]
