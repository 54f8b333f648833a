"""Run folders: one per run, holding the resolved config, the metrics log, plots and checkpoints."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["RunDir"]


@dataclass
class RunDir:
    path: Path

    @classmethod
    def create(cls, path: str | os.PathLike, config: Any | None = None) -> RunDir:
        """Create (or reuse, for resume) ``path`` and save the resolved ``config`` as ``config.yaml`` in it."""
        from vlzoo.config import save_config

        p = Path(path)
        p.mkdir(parents=True, exist_ok=True)
        if config is not None:
            save_config(config, p / "config.yaml")
        return cls(p)

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.jsonl"
