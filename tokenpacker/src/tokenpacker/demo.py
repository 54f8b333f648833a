"""``python -m tokenpacker.demo``: the short version of the miniature reproduction (``make demo``, at most ~4 min).

Three projectors (LLaVA's MLP on all 144 tokens, average pooling and TokenPacker on 36) go through the same
pipeline as ``make reproduce-tokenpacker``: stage 1, stage 2, greedy evaluation on the toy val questions,
TPS at batch 1; the table is printed, nothing is written to ``tokenpacker/results``. With so few steps the
accuracies sit near the answer priors: the demo shows the pipeline running, the reproduction holds the numbers.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

from tokenpacker.reproduce import QUICK, ReproduceConfig, render_table, run
from vlzoo.config import apply_overrides

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    began = time.perf_counter()
    rc = apply_overrides(ReproduceConfig(**QUICK), list(sys.argv[1:] if argv is None else argv))
    results = run(rc)
    print("TokenPacker demo (toy world; short schedules, see tokenpacker/README.md for the full run):")
    print(render_table(results))
    print(f"tokenpacker demo: {time.perf_counter() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
