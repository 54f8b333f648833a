"""Benchmark: vectorised ``mean_average_precision`` against a per-label scikit-learn loop, same run.

    python -m vlzoo.metrics.bench                      # 100,000 images x 1,000 labels (sklearn: tens of s)
    python -m vlzoo.metrics.bench --sklearn-labels 100 # time sklearn on 100 labels, extrapolate linearly

Data: uniform random float32 scores; targets +1 with ``--positive-rate``, 0 (unannotated) with
``--unannotated-rate``, -1 otherwise. Our call is timed once per round, each round followed by a slice
of the sklearn loop, so both see the same machine load. Prints both timings, their ratio (sklearn total
over our mean) and the largest per-label AP difference. Exit code 1 if the two disagree by more than ``--tolerance`` (or the ratio misses
``--min-speedup`` when given).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from vlzoo.metrics.multilabel import mean_average_precision, per_label_average_precision

__all__ = ["main"]


def _random_problem(
    num_images: int, num_labels: int, positive_rate: float, unannotated_rate: float, seed: int
):
    g = torch.Generator().manual_seed(seed)
    scores = torch.rand(num_images, num_labels, generator=g)
    u = torch.rand(num_images, num_labels, generator=g)
    targets = torch.full((num_images, num_labels), -1, dtype=torch.int8)
    targets[u < positive_rate + unannotated_rate] = 0
    targets[u < positive_rate] = 1
    return scores, targets


def _sklearn_per_label(scores: np.ndarray, targets: np.ndarray, labels: np.ndarray) -> np.ndarray:
    from sklearn.metrics import average_precision_score

    out = np.empty(len(labels))
    for i, c in enumerate(labels):
        annotated = targets[:, c] != 0
        out[i] = average_precision_score(targets[annotated, c] == 1, scores[annotated, c])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vlzoo.metrics.bench", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--num-images", type=int, default=100_000)
    parser.add_argument("--num-labels", type=int, default=1_000)
    parser.add_argument("--positive-rate", type=float, default=0.02)
    parser.add_argument("--unannotated-rate", type=float, default=0.10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="ours is timed once per round, interleaved with 1/rounds of the sklearn loop (same load)",
    )
    parser.add_argument(
        "--sklearn-labels",
        type=int,
        default=None,
        help="labels timed with sklearn (default all; fewer = extrapolated)",
    )
    parser.add_argument("--tolerance", type=float, default=1e-9, help="max allowed per-label AP difference")
    parser.add_argument("--min-speedup", type=float, default=None, help="fail below this ratio")
    args = parser.parse_args(argv)
    if not (0 < args.positive_rate and args.positive_rate + args.unannotated_rate <= 1):
        parser.error("need 0 < positive-rate and positive-rate + unannotated-rate <= 1")

    scores, targets = _random_problem(
        args.num_images, args.num_labels, args.positive_rate, args.unannotated_rate, args.seed
    )
    print(
        f"problem: {args.num_images:,} images x {args.num_labels:,} labels, "
        f"{args.positive_rate:.1%} positive, {args.unannotated_rate:.1%} unannotated; "
        f"torch threads {torch.get_num_threads()}"
    )
    labels = (
        args.num_labels if args.sklearn_labels is None else max(1, min(args.sklearn_labels, args.num_labels))
    )
    rounds = max(1, min(args.rounds, labels))
    # Interleaving makes both timings see the same machine load (it matters on a shared machine).
    ours_times, sklearn_time, reference = [], 0.0, []
    for block in np.array_split(np.arange(labels), rounds):
        t0 = time.perf_counter()
        ours_map = mean_average_precision(scores, targets)
        ours_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        reference.append(_sklearn_per_label(scores.numpy(), targets.numpy(), block))
        sklearn_time += time.perf_counter() - t0
    reference = np.concatenate(reference)
    ours = sum(ours_times) / len(ours_times)
    print(
        f"vlzoo mean_average_precision: {ours:.3f} s (mean of {rounds}; "
        f"{', '.join(f'{t:.3f}' for t in ours_times)})"
    )
    sklearn = sklearn_time * args.num_labels / labels
    note = (
        ""
        if labels == args.num_labels
        else f" (measured {sklearn_time:.2f} s on {labels} labels, extrapolated)"
    )
    print(f"sklearn average_precision_score loop: {sklearn:.2f} s{note}")

    ap = per_label_average_precision(scores[:, :labels], targets[:, :labels]).numpy()
    diff = float(np.max(np.abs(ap - reference)))
    print(f"max |AP_vlzoo - AP_sklearn| over {labels} labels: {diff:.3e}")
    if labels == args.num_labels:
        print(f"mAP vlzoo {ours_map:.6f} vs sklearn {100 * reference.mean():.6f}")
    ratio = sklearn / ours
    print(
        f"speed-up: {ratio:.1f}x (vs our fastest round {sklearn / min(ours_times):.1f}x; "
        f"goal >= 20x: {'met' if ratio >= 20 else 'NOT met'})"
    )

    failed = diff > args.tolerance
    if args.min_speedup is not None and ratio < args.min_speedup:
        failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
