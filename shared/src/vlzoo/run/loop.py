"""A small step-based training loop with checkpointing and exact resume.

Papers whose training is a plain optimiser loop (the classifiers, the toy segmentation runs) use it; the MLLMs
go through HF Trainer + DeepSpeed instead. Determinism contract: ``batch_fn(step)`` must return the batch of
that step from (seed, step) alone (see :func:`vlzoo.run.epoch_permutation`), so a run resumed from step k
sees exactly the batches, RNG draws and optimiser state an uninterrupted run had at step k.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from vlzoo.run.checkpoint import Checkpointer
from vlzoo.run.metrics_log import MetricsLog
from vlzoo.run.progress import progress

__all__ = ["TrainLoop"]


class TrainLoop:
    """Run ``total_steps`` optimiser steps of ``step_fn``.

    Args:
        model: the module being trained (its state dict is checkpointed).
        optimizer: a torch optimiser.
        step_fn: ``step_fn(model, batch, step) -> dict`` with a scalar ``"loss"`` tensor (other entries
            are logged as floats).
        batch_fn: ``batch_fn(step) -> batch``, deterministic in ``step``.
        total_steps: number of optimiser steps.
        run_dir: folder for ``checkpoints/`` and ``metrics.jsonl``.
        scheduler: optional LR scheduler stepped once per step.
        save_every: checkpoint period in steps (a final checkpoint is always written).
        grad_clip: clip the global grad norm to this value when > 0.
        desc: progress-bar label.
    """

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                 step_fn: Callable[[torch.nn.Module, Any, int], dict], batch_fn: Callable[[int], Any],
                 total_steps: int, run_dir: str | os.PathLike, scheduler=None, save_every: int = 100,
                 grad_clip: float = 0.0, desc: str = "train", keep: int = 2):
        if total_steps < 0:
            raise ValueError("total_steps must be >= 0")
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.step_fn, self.batch_fn = step_fn, batch_fn
        self.total_steps, self.save_every, self.grad_clip, self.desc = total_steps, max(1, save_every), grad_clip, desc
        self.run_dir = Path(run_dir)
        self.checkpointer = Checkpointer(self.run_dir / "checkpoints", keep=keep)

    def run(self, stop_after: int | None = None) -> dict:
        """Train from the latest checkpoint (or from scratch) to ``total_steps``.

        ``stop_after`` ends the run early after that many global steps without a final checkpoint beyond the
        periodic ones, which is how tests simulate an interruption. Returns ``{"step": last_step,
        "loss": last_loss}``.
        """
        resumed = self.checkpointer.resume(self.model, self.optimizer, self.scheduler)
        start = resumed.get("step", 0)
        log = MetricsLog(self.run_dir / "metrics.jsonl", truncate_after=start)
        end = self.total_steps if stop_after is None else min(self.total_steps, stop_after)
        last_loss = math.nan
        self.model.train()
        step = start
        for step in progress(range(start, end), desc=self.desc, total=end - start):
            batch = self.batch_fn(step)
            out = self.step_fn(self.model, batch, step)
            loss = out["loss"]
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite loss {loss.item()} at step {step}")
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if self.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
            self.optimizer.step()
            if self.scheduler is not None:
                self.scheduler.step()
            last_loss = float(loss.detach())
            record = {"step": step, "loss": last_loss}
            record.update({k: float(v) for k, v in out.items() if k != "loss"})
            record["lr"] = float(self.optimizer.param_groups[0]["lr"])
            log.write(**record)
            done = step + 1
            if done % self.save_every == 0 or (stop_after is None and done == self.total_steps):
                self.checkpointer.save(done, self.model, self.optimizer, self.scheduler)
            step = done
        if stop_after is None:
            log.plot()
        return {"step": step, "loss": last_loss}
