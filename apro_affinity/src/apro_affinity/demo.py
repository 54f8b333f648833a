"""The short version of the miniature reproduction: ``python -m apro_affinity.demo`` (what ``make demo`` runs).

The same pipeline as ``make reproduce-apro_affinity`` (train every method of the three toy tasks, evaluate,
print the table and draw the pseudo-label figure) with 200 training images, 100 val images, 40 steps and one
seed, in a few minutes on 2 CPU cores. Everything goes to ``runs/apro_affinity/demo`` (the committed results in
``apro_affinity/results/`` are left alone). Extra arguments are passed to :mod:`apro_affinity.reproduce`.
"""

from __future__ import annotations

from apro_affinity import reproduce

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    args = ["--quick", "--seeds", "0", "--runs-dir", "runs/apro_affinity/demo", *(argv or [])]
    return reproduce.main(args)


if __name__ == "__main__":
    raise SystemExit(main())
