"""Atomic checkpoint writes and exact resume.

Every write goes to a temporary file in the destination folder, is fsync'ed, then renamed over the target:
a crash mid-write leaves the previous checkpoint intact, never a truncated one. Loading uses
``torch.load(weights_only=True)``: a checkpoint holds tensors and plain containers only, so a file from
elsewhere cannot execute code.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import torch

from vlzoo.run.seed import capture_rng_state, restore_rng_state

__all__ = ["atomic_write_bytes", "atomic_write_text", "atomic_save", "load_checkpoint", "Checkpointer"]


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temp file + fsync + rename (atomic on POSIX)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` made atomic."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    return atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint written by :func:`atomic_save` with ``weights_only=True``; clear error when missing."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # corrupt or foreign file: say which
        raise RuntimeError(f"could not load checkpoint {path}: {exc}") from exc


_STEP_RE = re.compile(r"^step_(\d+)\.pt$")


class Checkpointer:
    """Numbered checkpoints ``step_XXXXXXXX.pt`` in one folder, keeping the newest ``keep``.

    A checkpoint stores the model, optimizer and scheduler state dicts, the step, every RNG state and any
    ``extra`` plain data, so :meth:`resume` continues bit-for-bit where the run stopped.
    """

    def __init__(self, folder: str | os.PathLike, keep: int = 2):
        if keep < 1:
            raise ValueError("keep must be >= 1")
        self.folder = Path(folder)
        self.keep = keep

    def path_for(self, step: int) -> Path:
        return self.folder / f"step_{step:08d}.pt"

    def all(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.folder.iterdir() if (m := _STEP_RE.match(p.name))]
        return [p for _, p in sorted(found)]

    def latest(self) -> Path | None:
        found = self.all()
        return found[-1] if found else None

    def save(self, step: int, model: torch.nn.Module, optimizer=None, scheduler=None, extra: dict | None = None) -> Path:
        state = {
            "step": int(step),
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict() if optimizer is not None else None,
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "rng": capture_rng_state(),
            "extra": extra or {},
        }
        path = atomic_save(state, self.path_for(step))
        for old in self.all()[: -self.keep]:
            old.unlink(missing_ok=True)
        return path

    def load(self, path: str | os.PathLike, model: torch.nn.Module, optimizer=None, scheduler=None,
             restore_rng: bool = True) -> dict:
        state = load_checkpoint(path)
        model.load_state_dict(state["model"])
        if optimizer is not None and state.get("optimizer") is not None:
            optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None and state.get("scheduler") is not None:
            scheduler.load_state_dict(state["scheduler"])
        if restore_rng and state.get("rng") is not None:
            restore_rng_state(state["rng"])
        return {"step": state["step"], "extra": state.get("extra", {}), "path": Path(path)}

    def resume(self, model: torch.nn.Module, optimizer=None, scheduler=None) -> dict:
        """Load the newest checkpoint if there is one; ``{}`` otherwise."""
        latest = self.latest()
        if latest is None:
            return {}
        return self.load(latest, model, optimizer, scheduler)
