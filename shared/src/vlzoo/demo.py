"""The shared part of ``make demo``: the toy world and the toy CLIPs (both cached), then their report.

    python -m vlzoo.demo

First run: generates the default toy world (about a minute) and pretrains the two toy CLIPs (about a
quarter of an hour on 2 CPU cores); later runs reuse both and only print the report.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Generate (or reuse) the toy world and the toy CLIPs, print the zero-shot report; returns 0."""
    del argv
    from vlzoo.toyworld import default_world
    from vlzoo.toyworld.pretrain import pretrain_toy_clips

    start = time.perf_counter()
    world = default_world()
    print(f"toy world: {world} ({time.perf_counter() - start:.1f} s)")
    start = time.perf_counter()
    folder = pretrain_toy_clips(world=world)
    print(f"toy CLIPs: {folder} ({time.perf_counter() - start:.1f} s)\n")
    print((folder / "report.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
