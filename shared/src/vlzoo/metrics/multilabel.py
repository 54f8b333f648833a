"""Multi-label ranking metrics of the ML-ZSL / open-vocabulary protocol (LESA -> BiAM -> MKT -> QKS).

Spec: ``/work/shared/specs/multilabel.md`` §0.3 (metrics exactly as the BiAM / MKT / QKS code computes them).

Shape shorthand: ``N`` images, ``C`` labels. ``scores`` is ``(N, C)``, higher means more confident;
``targets`` is ``(N, C)`` with ``+1`` positive, ``-1`` negative and ``0`` unannotated (Open Images).

**mAP** is per-label AP over images, averaged over labels (never per image). For a label column ``c``
only its annotated images (``|y| = 1``) take part, and with ``N+_c`` positives::

    AP_c = (1 / N+_c) * sum over positive images i of  TP_c(s_ic) / R_c(s_ic)

where ``R_c(s)`` is the number of annotated images of column ``c`` scoring ``>= s`` and ``TP_c(s)`` the
positives among them (non-interpolated AP, no 11-point scheme).

*Ties* (our definition): images with equal scores form one tie group and every positive of the group
gets the precision at the *end* of the group (``>= s`` above). This is what scikit-learn's
``average_precision_score`` does, and it makes AP independent of the input order. The official QKS code
instead sorts and gives each positive the precision at its own sorted position, so its value on tied
scores depends on the sort's tie order; on untied scores the two agree exactly. (Deviation, for the
paper READMEs; ties appear in practice when sigmoid scores saturate in float32.)

Protocol flags (``mean_average_precision``), applied in the order QKS applies them:

1. ``require_positive_image``: keep only images with >= 1 positive among the evaluated columns (QKS
   evaluates its SEEN / ZSL / GZSL subsets this way; BiAM's OI script too).
2. ``drop_unannotated_columns``: drop columns without any nonzero entry among the kept images (BiAM,
   QKS). A column with only negative annotations stays and scores AP 0.
3. A column without positives has AP 0 and *still enters the mean* (BiAM, QKS), unless
   ``skip_columns_without_positive`` (then the mean runs over the columns with a positive).

**F1@K** is micro ("overall") over the whole set: the K top-scoring labels of each image are predicted,
``TP`` counts predicted (image, label) pairs with ``y = +1``, ``P = TP / (N * K)``,
``R = TP / #(y = +1)``, ``F1 = 2PR / (P + R)``. Ties at the K-th score are broken by ``torch.topk``.

NaN scores at annotated entries are an error; unannotated entries are never read by the AP functions.

Implementation (why it is fast): AP only needs, for each positive, how many annotated images score at or
above it. Per chunk of columns the data is transposed to one column per row (tile by tile, so it stays
in cache), the negatives are sorted (everything else replaced by a filler below every score), and the
few positives per column are sorted too; one batched ``torch.searchsorted`` of the positives in the
sorted negatives gives the negatives at or above each positive, and run starts of the sorted positives
give the positives at or above it (tie groups included). On CPU the sort is numpy's SIMD sort, several
times faster there than ``torch.sort``; when every score of the chunk is non-negative (probabilities)
it sorts the scores' bit patterns as integers, which orders identically and is faster still. No Python
loop runs over labels; chunks run in a small thread pool (numpy releases the GIL while it works).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

__all__ = [
    "per_label_average_precision",
    "mean_average_precision",
    "f1_at_k",
    "evaluation_subset",
    "qks_subsets",
]

_CHUNK_ELEMENTS = 1 << 22  # elements of one column chunk (16 MB per 4-byte temporary)
_MAX_WORKERS = 8
_TILE_ROWS = 1024  # rows per tile of the cache-friendly transpose


# ----------------------------------------------------------------------------------------------------
# input checks
# ----------------------------------------------------------------------------------------------------
def _as_tensor(x, name: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach()
    try:
        array = np.asarray(x)
        if any(stride < 0 for stride in array.strides):  # torch cannot view reversed numpy arrays
            array = array.copy()
        return torch.as_tensor(array)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be a torch tensor or an array, got {type(x).__name__}") from err


def _check_scores_targets(scores, targets, *, nan_anywhere: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate ``(N, C)`` scores and ``{-1, 0, +1}`` targets; return them as tensors (no copy if possible).

    ``nan_anywhere=False`` skips the NaN scan: the AP path checks annotated entries itself, for free.
    """
    scores = _as_tensor(scores, "scores")
    targets = _as_tensor(targets, "targets")
    if scores.dim() != 2:
        raise ValueError(f"scores must be (N images, C labels), got shape {tuple(scores.shape)}")
    if targets.shape != scores.shape:
        raise ValueError(f"targets shape {tuple(targets.shape)} != scores shape {tuple(scores.shape)}")
    if scores.numel() == 0:
        raise ValueError(f"scores is empty (shape {tuple(scores.shape)}): nothing to evaluate")
    if scores.is_complex() or targets.is_complex():
        raise TypeError("scores and targets must be real-valued")
    if targets.device != scores.device:
        raise ValueError(f"scores are on {scores.device} but targets on {targets.device}")
    if scores.dtype in (torch.float16, torch.bfloat16):
        scores = scores.float()  # exact; numpy cannot sort bfloat16
    elif not scores.is_floating_point():
        scores = scores.double()  # integer / bool scores: exact up to 2**53
    if targets.dtype == torch.bool:
        raise TypeError("targets must hold +1 / -1 / 0, not booleans (use 2 * y - 1 for 0/1 labels)")
    if targets.is_floating_point():
        valid = not bool(((targets != 1) & (targets != 0) & (targets != -1)).any())  # NaN is invalid too
    else:
        lowest, highest = torch.aminmax(targets)  # integers in [-1, 1] are exactly {-1, 0, 1}
        valid = bool(lowest >= -1) and bool(highest <= 1)
    if not valid:
        i, j = ((targets != 1) & (targets != 0) & (targets != -1)).nonzero()[0].tolist()
        raise ValueError(
            f"targets must hold only +1 (positive), -1 (negative) and 0 (unannotated); "
            f"found {targets[i, j].item()} at image {i}, label {j}"
        )
    if nan_anywhere:
        has_nan = np.isnan(scores.numpy()).any() if scores.device.type == "cpu" else torch.isnan(scores).any()
        if has_nan:
            raise _nan_error(scores)
    return scores, targets


def _nan_error(scores: torch.Tensor, targets: torch.Tensor | None = None) -> ValueError:
    """The error for the first NaN score (at an annotated entry when ``targets`` is given)."""
    nan = torch.isnan(scores)
    if targets is not None:
        nan &= targets != 0
    i, j = nan.nonzero()[0].tolist()
    where = " at an annotated entry" if targets is not None else ""
    return ValueError(f"scores contain NaN{where} (first at image {i}, label {j})")


def _rows_with_positive(targets: torch.Tensor) -> torch.Tensor:
    if targets.device.type == "cpu":  # numpy's reductions are several times faster than torch's here
        return torch.from_numpy((targets.numpy() == 1).any(axis=1))
    return (targets == 1).any(dim=1)


def _annotated_columns(targets: torch.Tensor) -> torch.Tensor:
    if targets.device.type == "cpu":
        return torch.from_numpy((targets.numpy() != 0).any(axis=0))
    return (targets != 0).any(dim=0)


# ----------------------------------------------------------------------------------------------------
# per-chunk AP: the hot path
# ----------------------------------------------------------------------------------------------------
class _NaNInChunk(Exception):
    """A chunk met a NaN score at an annotated entry (the caller locates it for the message)."""


def _columns_as_rows(x: np.ndarray) -> np.ndarray:
    """(N, c) -> (c, N) contiguous, copied tile by tile so reads and writes stay in cache."""
    out = np.empty(x.shape[::-1], dtype=x.dtype)
    for r0 in range(0, x.shape[0], _TILE_ROWS):
        out[:, r0 : r0 + _TILE_ROWS] = x[r0 : r0 + _TILE_ROWS].T
    return out


def _ap_from_sorted(
    neg_sorted: torch.Tensor,
    pos_col: torch.Tensor,
    pos_score: torch.Tensor,
    num_neg: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """AP sums per column from sorted negatives and the positives sorted by (column, score).

    Args:
        neg_sorted: (c, N), each row ascending: the negative scores of one column and, for every other
            entry, a filler below all scores (``-inf``; or, integer dtype, the bit patterns of
            non-negative scores with filler ``-1``).
        pos_col: (P,) int64 column of each positive, non-decreasing.
        pos_score: (P,) score of each positive (same dtype as ``neg_sorted``), ascending within a column.
        num_neg: (c,) int64 negatives per column.

    Returns:
        ``(ap_sum, num_pos, num_neg)``, each (c,): ``ap_sum`` (float64) sums the positives' precisions.
    """
    device = neg_sorted.device
    num_columns, n = neg_sorted.shape
    num_pos = torch.bincount(pos_col, minlength=num_columns)
    if pos_col.numel() == 0:
        return torch.zeros(num_columns, dtype=torch.float64, device=device), num_pos, num_neg
    start = torch.cumsum(num_pos, 0) - num_pos
    column_start = start[pos_col]
    arange = torch.arange(pos_col.numel(), device=device)
    # Positives padded into a (c, Pmax) needle matrix for one batched search of all columns (flat
    # indices: 1-D indexing is much cheaper than 2-D advanced indexing in torch).
    width = int(num_pos.max())
    slot = pos_col * width + (arange - column_start)
    fill = float("inf") if neg_sorted.is_floating_point() else torch.iinfo(neg_sorted.dtype).max
    needles = torch.full((num_columns * width,), fill, dtype=neg_sorted.dtype, device=device)
    needles[slot] = pos_score
    below = torch.searchsorted(neg_sorted, needles.view(num_columns, width)).view(-1)[slot]  # entries < s
    neg_ge = n - below
    if neg_sorted.is_floating_point():
        # The -inf fillers are ">= -inf": a positive scored -inf has all its column's negatives at or above.
        is_ninf = pos_score == float("-inf")
        if bool(is_ninf.any()):
            neg_ge = torch.where(is_ninf, num_neg[pos_col], neg_ge)
    # Positives at or above s_j: the column's positives from the first one of s_j's tie run onwards.
    run_start = torch.ones_like(pos_col, dtype=torch.bool)
    run_start[1:] = (pos_col[1:] != pos_col[:-1]) | (pos_score[1:] != pos_score[:-1])
    first_of_run = torch.where(run_start, arange, 0).cummax(0).values
    pos_ge = column_start + num_pos[pos_col] - first_of_run
    precision = pos_ge.double() / (pos_ge + neg_ge).double()
    ap_sum = torch.zeros(num_columns, dtype=torch.float64, device=device).index_add_(0, pos_col, precision)
    return ap_sum, num_pos, num_neg


def _chunk_ap_numpy(
    scores: np.ndarray, targets: np.ndarray
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """CPU path for one (N, c) column chunk (strided views of the full matrices)."""
    n = scores.shape[0]
    t = _columns_as_rows(targets if targets.dtype == np.int8 else targets.astype(np.int8))  # (c, N)
    flat = np.flatnonzero(t == 1)  # positives, ordered by column then image
    pos_col = flat // n
    int_type = np.dtype(f"int{8 * scores.dtype.itemsize}")
    inf_bits = np.array(np.inf, dtype=scores.dtype).view(int_type)
    # Non-negative floats order exactly like their bit patterns read as signed integers, and numpy sorts
    # integers faster than floats. Filler -1 sits below every such pattern.
    keys = _columns_as_rows(scores.view(int_type))  # (c, N)
    pos_bits = keys.ravel()[flat]
    if not (pos_bits < 0).any():
        if (pos_bits > inf_bits).any():
            raise _NaNInChunk
        np.bitwise_or(keys, ~(t >> 7), out=keys)  # t = -1 -> | 0 (keeps the score); t = 0, 1 -> | -1 (filler)
        keys.sort(axis=1)
        # A negative with its sign bit set (score < 0, -0.0 or a negative NaN) sorts below the filler.
        if keys[:, 0].min() >= -1:
            if (keys[:, -1] > inf_bits).any():
                raise _NaNInChunk
            keys_t = torch.from_numpy(keys)
            fillers = torch.searchsorted(
                keys_t, torch.full((keys.shape[0], 1), -1, dtype=keys_t.dtype), right=True
            )
            if int_type.itemsize == 4:  # sort (column, score) pairs packed into one int64
                packed = np.sort((pos_col << 32) | pos_bits.astype(np.int64))
                pos_col, pos_bits = packed >> 32, (packed & 0xFFFFFFFF).astype(np.int32)
            else:
                order = np.lexsort((pos_bits, pos_col))
                pos_col, pos_bits = pos_col[order], pos_bits[order]
            return _ap_from_sorted(
                keys_t, torch.from_numpy(pos_col), torch.from_numpy(pos_bits), n - fillers[:, 0]
            )
    # Float path: some score of the chunk is negative (or -0.0).
    values = _columns_as_rows(scores)
    pos_vals = values.ravel()[flat]
    if np.isnan(pos_vals).any():
        raise _NaNInChunk
    is_neg = t == -1
    neg = np.where(is_neg, values, values.dtype.type(-np.inf))
    neg.sort(axis=1)
    if np.isnan(neg[:, -1]).any():  # numpy sorts NaN last
        raise _NaNInChunk
    order = np.lexsort((pos_vals, pos_col))
    return _ap_from_sorted(
        torch.from_numpy(neg),
        torch.from_numpy(pos_col[order]),
        torch.from_numpy(pos_vals[order]),
        torch.from_numpy(is_neg.sum(1, dtype=np.int64)),
    )


def _chunk_ap_torch(
    scores: torch.Tensor, targets: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Device-generic path for one (N, c) column chunk (used for CUDA tensors)."""
    is_neg = targets == -1
    if bool((torch.isnan(scores) & (targets != 0)).any()):
        raise _NaNInChunk
    neg = torch.where(is_neg, scores, torch.full((), float("-inf"), dtype=scores.dtype, device=scores.device))
    neg = neg.t().contiguous().sort(dim=1).values  # (c, N)
    cols_rows = (targets.t() == 1).nonzero()  # (P, 2) as (column, image), ordered by column
    cols, rows = cols_rows[:, 0], cols_rows[:, 1]
    vals = scores[rows, cols]
    order = torch.argsort(vals, stable=True)
    order = order[torch.argsort(cols[order], stable=True)]  # by column, then score
    return _ap_from_sorted(neg, cols[order], vals[order].contiguous(), is_neg.sum(0))


def _per_label_ap(
    scores: torch.Tensor, targets: torch.Tensor, chunk_elements: int = _CHUNK_ELEMENTS, backend: str = "auto"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per column: AP in [0, 1] (float64; NaN without positives), positives, negatives. On CPU.

    Inputs are pre-checked, except for NaN scores at annotated entries, which raise here.
    """
    n, num_labels = scores.shape
    if backend == "auto":
        backend = "numpy" if scores.device.type == "cpu" else "torch"
    if backend not in ("numpy", "torch"):
        raise ValueError(f"backend must be 'auto', 'numpy' or 'torch', got {backend!r}")
    if isinstance(chunk_elements, bool) or not isinstance(chunk_elements, int) or chunk_elements < 1:
        raise ValueError(f"chunk_elements must be a positive int, got {chunk_elements!r}")
    width = max(1, chunk_elements // n)
    starts = range(0, num_labels, width)
    try:
        if backend == "numpy":
            if scores.device.type != "cpu":
                raise ValueError("backend='numpy' needs CPU tensors")
            s_np, t_np = scores.numpy(), targets.numpy()

            def run(c0: int):
                return _chunk_ap_numpy(s_np[:, c0 : c0 + width], t_np[:, c0 : c0 + width])

            workers = max(1, min(torch.get_num_threads(), _MAX_WORKERS, len(starts)))
            if workers == 1:
                parts = [run(c0) for c0 in starts]
            else:
                with ThreadPoolExecutor(max_workers=workers) as pool:
                    parts = list(pool.map(run, starts))
        else:
            parts = [
                _chunk_ap_torch(scores[:, c0 : c0 + width], targets[:, c0 : c0 + width]) for c0 in starts
            ]
    except _NaNInChunk:
        raise _nan_error(scores, targets) from None
    ap_sum, num_pos, num_neg = (torch.cat([p[i] for p in parts]).cpu() for i in range(3))
    return ap_sum / num_pos.double(), num_pos, num_neg  # 0 / 0 -> NaN for columns without positives


# ----------------------------------------------------------------------------------------------------
# public API
# ----------------------------------------------------------------------------------------------------
def per_label_average_precision(
    scores, targets, *, chunk_elements: int = _CHUNK_ELEMENTS, backend: str = "auto"
) -> torch.Tensor:
    """Non-interpolated AP of every label column over its annotated images (module docstring: ties).

    Args:
        scores: (N, C) float scores, higher = more confident (tensor or array).
        targets: (N, C) with +1 positive, -1 negative, 0 unannotated (ignored).
        chunk_elements: columns are processed ``chunk_elements // N`` at a time (bounds peak memory).
        backend: ``"auto"`` (numpy sort on CPU, torch elsewhere), ``"numpy"`` or ``"torch"``.

    Returns:
        (C,) float64 CPU tensor of AP in [0, 1]; NaN for a column without any positive.

    Raises:
        ValueError: bad shapes, targets outside {-1, 0, +1}, NaN score at an annotated entry.
    """
    scores, targets = _check_scores_targets(scores, targets, nan_anywhere=False)
    return _per_label_ap(scores, targets, chunk_elements, backend)[0]


def evaluation_subset(
    scores, targets, *, drop_unannotated_columns: bool = True, require_positive_image: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """The images and columns the protocol evaluates (QKS order: image filter, then column filter).

    Args:
        scores: (N, C) scores.
        targets: (N, C) in {+1, -1, 0}.
        drop_unannotated_columns: drop columns with no nonzero entry among the kept images.
        require_positive_image: keep only images with at least one +1 among the columns.

    Returns:
        ``(scores, targets)`` restricted to (N', C'); the inputs themselves when nothing is dropped.
    """
    scores, targets = _check_scores_targets(scores, targets)
    return _subset(scores, targets, drop_unannotated_columns, require_positive_image)


def _subset(scores, targets, drop_unannotated_columns: bool, require_positive_image: bool):
    if require_positive_image:
        keep = _rows_with_positive(targets)
        if not bool(keep.all()):
            scores, targets = scores[keep], targets[keep]
    if drop_unannotated_columns and scores.shape[0]:
        keep = _annotated_columns(targets)
        if not bool(keep.all()):
            scores, targets = scores[:, keep], targets[:, keep]
    return scores, targets


def mean_average_precision(
    scores,
    targets,
    drop_unannotated_columns: bool = True,
    skip_columns_without_positive: bool = False,
    require_positive_image: bool = False,
    *,
    chunk_elements: int = _CHUNK_ELEMENTS,
    backend: str = "auto",
) -> float:
    """mAP in [0, 100]: the mean over label columns of the per-label AP (spec §0.3).

    Args:
        scores: (N, C) float scores.
        targets: (N, C) in {+1, -1, 0}; 0 entries are ignored.
        drop_unannotated_columns: drop columns without any nonzero entry (BiAM / QKS; MKT keeps all).
        skip_columns_without_positive: leave columns without a positive out of the mean instead of
            counting them as AP 0 (BiAM / QKS count them).
        require_positive_image: evaluate only images with >= 1 positive in the columns (QKS subsets,
            BiAM on OI); applied before the column filter.
        chunk_elements: see :func:`per_label_average_precision`.
        backend: see :func:`per_label_average_precision`.

    Returns:
        mAP in percent.

    Raises:
        ValueError: bad inputs, or no image / column left to evaluate after the filters.
    """
    scores, targets = _check_scores_targets(scores, targets, nan_anywhere=False)
    if require_positive_image:
        scores, targets = _subset(scores, targets, False, True)
        if scores.shape[0] == 0:
            raise ValueError("no image left to evaluate: none has a positive label (require_positive_image)")
    ap, num_pos, num_neg = _per_label_ap(scores, targets, chunk_elements, backend)
    if drop_unannotated_columns:  # AP is per column, so dropping a column only removes it from the mean
        ap = ap[(num_pos + num_neg) > 0]
        if ap.numel() == 0:
            raise ValueError("no label column left to evaluate: every column is unannotated")
    if skip_columns_without_positive:
        ap = ap[~torch.isnan(ap)]
        if ap.numel() == 0:
            raise ValueError("no label column has a positive (skip_columns_without_positive=True)")
    else:
        ap = torch.nan_to_num(ap, nan=0.0)
    return float(ap.mean()) * 100.0


def f1_at_k(scores, targets, k: int) -> dict[str, float]:
    """Micro ("overall") precision, recall and F1 of the top-K labels of each image (spec §0.3).

    Args:
        scores: (N, C) float scores (no NaN anywhere: top-K would rank NaN first).
        targets: (N, C) in {+1, -1, 0}; only +1 counts as a hit (0 and -1 are misses alike).
        k: labels predicted per image, 1 <= k <= C.

    Returns:
        ``{"precision", "recall", "f1"}`` in percent: ``P = TP / (N * k)``, ``R = TP / #(+1)``
        (0 when there is no positive), ``F1 = 2PR / (P + R)`` (0 when P + R = 0).
    """
    scores, targets = _check_scores_targets(scores, targets)
    return _f1_at_k(scores, targets, k)


def _f1_at_k(scores: torch.Tensor, targets: torch.Tensor, k: int) -> dict[str, float]:
    n, num_labels = scores.shape
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= num_labels:
        raise ValueError(f"k must be an int in [1, {num_labels}] (the number of labels), got {k!r}")
    top = scores.topk(k, dim=1).indices  # (N, k)
    tp = int((targets.gather(1, top) == 1).sum())
    num_positive = int((targets == 1).sum())
    precision = tp / (n * k)
    recall = tp / num_positive if num_positive else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {"precision": 100.0 * precision, "recall": 100.0 * recall, "f1": 100.0 * f1}


def qks_subsets(scores, targets, num_seen: int, ks: Sequence[int] = (3, 5)) -> dict[str, dict[str, float]]:
    """SEEN / ZSL / GZSL metrics from one GZSL forward pass, as QKS's ``evaluate.py`` computes them.

    The columns are seen labels first, then unseen (spec §0.1). Per subset (SEEN = columns
    ``[0, num_seen)``, ZSL = ``[num_seen, C)``, GZSL = all): keep the images with >= 1 positive in the
    subset, then drop the subset's columns with no annotation among them, then compute mAP (columns
    without positives count as 0) and F1@K on those same images and columns. ZSL scores are the GZSL
    scores sliced to the unseen columns, which is exact because each label is scored independently.

    Args:
        scores: (N, S + U) scores over seen + unseen labels.
        targets: (N, S + U) in {+1, -1, 0}.
        num_seen: S, with 0 < S < S + U.
        ks: the K of F1@K (NUS-WIDE 3 and 5, Open Images 10 and 20).

    Returns:
        ``{"SEEN": m, "ZSL": m, "GZSL": m}`` with ``m = {"mAP", "P@k", "R@k", "F1@k" for each k,
        "num_images", "num_labels"}``; metrics in percent, counts as floats (log-friendly).
    """
    scores, targets = _check_scores_targets(scores, targets)
    num_labels = scores.shape[1]
    if isinstance(num_seen, bool) or not isinstance(num_seen, int) or not 0 < num_seen < num_labels:
        raise ValueError(
            f"num_seen must be an int in [1, {num_labels - 1}] (seen first, then unseen), got {num_seen!r}"
        )
    subsets = {"SEEN": slice(0, num_seen), "ZSL": slice(num_seen, num_labels), "GZSL": slice(0, num_labels)}
    results: dict[str, dict[str, float]] = {}
    for name, columns in subsets.items():
        s, t = _subset(scores[:, columns], targets[:, columns], True, True)
        if s.shape[0] == 0:
            raise ValueError(f"{name} subset: no image has a positive label among its columns")
        ap = torch.nan_to_num(_per_label_ap(s, t)[0], nan=0.0)
        metrics = {"mAP": float(ap.mean()) * 100.0}
        for k in ks:
            if k > s.shape[1]:
                raise ValueError(f"{name} subset: F1@{k} needs >= {k} labels, the subset has {s.shape[1]}")
            f = _f1_at_k(s, t, k)
            metrics.update({f"P@{k}": f["precision"], f"R@{k}": f["recall"], f"F1@{k}": f["f1"]})
        metrics.update({"num_images": float(s.shape[0]), "num_labels": float(s.shape[1])})
        results[name] = metrics
    return results
