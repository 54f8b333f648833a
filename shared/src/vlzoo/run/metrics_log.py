"""A JSONL metrics log (one JSON object per line, flushed per write) and a matplotlib plot of its curves."""

from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from pathlib import Path

__all__ = ["MetricsLog", "plot_metrics", "read_metrics"]


class MetricsLog:
    """Append-only JSONL log. ``write(step=3, loss=0.5)`` adds ``{"step": 3, "loss": 0.5}``.

    On resume, pass ``truncate_after=step`` so records past the resumed step (written after the last
    checkpoint of the interrupted run) are dropped and the log matches an uninterrupted run.
    """

    def __init__(self, path: str | os.PathLike, truncate_after: int | None = None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if truncate_after is not None and self.path.exists():
            kept = [r for r in read_metrics(self.path) if r.get("step", -1) < truncate_after]
            from vlzoo.run.checkpoint import atomic_write_text

            atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))

    def write(self, **record) -> None:
        clean = {k: (float(v) if hasattr(v, "item") else v) for k, v in record.items()}
        with open(self.path, "a") as f:
            f.write(json.dumps(clean) + "\n")
            f.flush()

    def plot(self, out: str | os.PathLike | None = None) -> Path | None:
        return plot_metrics(self.path, out)


def read_metrics(path: str | os.PathLike) -> list[dict]:
    records = []
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: not a JSON object: {exc}") from exc
    return records


def plot_metrics(jsonl: str | os.PathLike, out: str | os.PathLike | None = None, x: str = "step") -> Path | None:
    """Plot every numeric series of a metrics log against ``x`` into a PNG beside it (one panel per series)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    jsonl = Path(jsonl)
    records = read_metrics(jsonl) if jsonl.exists() else []
    series: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for i, r in enumerate(records):
        xv = r.get(x, i)
        for k, v in r.items():
            if k != x and isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                series[k].append((xv, v))
    if not series:
        return None
    out = Path(out) if out is not None else jsonl.with_suffix(".png")
    n = len(series)
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 3.2 * rows), squeeze=False)
    for ax, (name, pts) in zip(axes.flat, sorted(series.items())):
        xs, ys = zip(*pts)
        ax.plot(xs, ys, marker="." if len(xs) < 50 else None)
        ax.set_title(name)
        ax.set_xlabel(x)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
