"""vlzoo.metrics.multilabel: AP / mAP / F1@K / QKS subsets vs brute-force loops and scikit-learn."""

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, f1_score, precision_score, recall_score

from vlzoo.metrics import (
    evaluation_subset,
    f1_at_k,
    mean_average_precision,
    per_label_average_precision,
    qks_subsets,
)

BACKENDS = ["numpy", "torch"]


# ---------------------------------------------------------------------------------------------------
# brute-force references: the definitions of spec §0.3 written as plain loops
# ---------------------------------------------------------------------------------------------------
def brute_ap(scores, targets):
    """AP_c = (1/N+) sum over positives i of TP(>= s_i) / #annotated(>= s_i); NaN without positives."""
    scores, targets = np.asarray(scores, dtype=np.float64), np.asarray(targets)
    out = []
    for c in range(scores.shape[1]):
        annotated = [(scores[i, c], targets[i, c]) for i in range(scores.shape[0]) if targets[i, c] != 0]
        positives = [s for s, y in annotated if y == 1]
        if not positives:
            out.append(math.nan)
            continue
        total = 0.0
        for s in positives:
            at_or_above = [y for t, y in annotated if t >= s]
            total += sum(1 for y in at_or_above if y == 1) / len(at_or_above)
        out.append(total / len(positives))
    return np.array(out)


def brute_map(scores, targets, drop_unannotated_columns=True, skip=False, require_positive_image=False):
    scores, targets = np.asarray(scores, dtype=np.float64), np.asarray(targets)
    rows = [i for i in range(len(targets)) if not require_positive_image or any(v == 1 for v in targets[i])]
    scores, targets = scores[rows], targets[rows]
    cols = [c for c in range(targets.shape[1]) if not drop_unannotated_columns or any(targets[:, c] != 0)]
    ap = brute_ap(scores[:, cols], targets[:, cols])
    ap = ap[~np.isnan(ap)] if skip else np.nan_to_num(ap, nan=0.0)
    return 100.0 * ap.mean()


def brute_f1(scores, targets, k):
    tp = 0
    for i in range(len(scores)):
        top = sorted(range(scores.shape[1]), key=lambda c: -scores[i, c])[:k]
        tp += sum(1 for c in top if targets[i, c] == 1)
    p = tp / (len(scores) * k)
    r = tp / int((targets == 1).sum())
    return 100 * p, 100 * r, 100 * (2 * p * r / (p + r) if p + r else 0.0)


def random_problem(gen, n, c, ties=False, logits=False, pos=0.3, unannotated=0.2):
    if ties:
        scores = torch.randint(-3 if logits else 0, 4, (n, c), generator=gen).float()
    else:
        scores = torch.rand(n, c, generator=gen)
        if logits:
            scores = scores * 8 - 4
    u = torch.rand(n, c, generator=gen)
    targets = torch.full((n, c), -1, dtype=torch.int8)
    targets[u < pos + unannotated] = 0
    targets[u < pos] = 1
    return scores, targets


# ---------------------------------------------------------------------------------------------------
# per-label AP
# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_ap_hand_worked_five_images(backend):
    # Ranked by score: +, -, +, -, +. Precision at each positive: 1/1, 2/3, 3/5.
    # AP = (1 + 2/3 + 3/5) / 3 = (15 + 10 + 9) / 45 = 34/45.
    scores = torch.tensor([[0.9], [0.8], [0.7], [0.6], [0.5]])
    targets = torch.tensor([[1], [-1], [1], [-1], [1]])
    ap = per_label_average_precision(scores, targets, backend=backend)
    assert ap.shape == (1,) and ap.dtype == torch.float64
    assert ap.item() == pytest.approx(34 / 45, abs=1e-15)


@pytest.mark.parametrize("backend", BACKENDS)
def test_ap_ties_share_precision_at_end_of_group(backend):
    # Scores 0.9(-), 0.5(+), 0.5(-), 0.1(+). The tie group {0.5, 0.5} ends at rank 3 with 1 positive:
    # precision 1/3 for its positive. The last positive: 2 positives among 4 -> 1/2. AP = (1/3 + 1/2) / 2.
    scores = torch.tensor([[0.9], [0.5], [0.5], [0.1]])
    targets = torch.tensor([[-1], [1], [-1], [1]])
    expected = (1 / 3 + 1 / 2) / 2
    for perm in ([0, 1, 2, 3], [0, 2, 1, 3], [3, 2, 1, 0]):  # input order must not matter
        ap = per_label_average_precision(scores[perm], targets[perm], backend=backend)
        assert ap.item() == pytest.approx(expected, abs=1e-15)
    assert expected == pytest.approx(
        average_precision_score(np.array([0, 1, 0, 1]), np.array([0.9, 0.5, 0.5, 0.1])), abs=1e-15
    )


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("ties", [False, True])
def test_ap_matches_sklearn(backend, ties):
    gen = torch.Generator().manual_seed(1 + ties)
    scores, targets = random_problem(gen, 300, 17, ties=ties, pos=0.1)
    ap = per_label_average_precision(scores, targets, backend=backend).numpy()
    for c in range(scores.shape[1]):
        annotated = targets[:, c] != 0
        y = (targets[annotated, c] == 1).numpy()
        assert y.any()
        assert ap[c] == pytest.approx(average_precision_score(y, scores[annotated, c].numpy()), abs=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", ["uniform", "ties", "logits", "logit_ties"])
def test_ap_matches_brute_force(backend, case):
    gen = torch.Generator().manual_seed(hash(case) % 1000)
    for trial in range(6):
        n, c = int(torch.randint(1, 40, (1,), generator=gen)), int(torch.randint(1, 9, (1,), generator=gen))
        scores, targets = random_problem(gen, n, c, ties="ties" in case, logits="logit" in case)
        expected = brute_ap(scores.numpy(), targets.numpy())
        for chunk in (1, 5, 1 << 20):  # one column per chunk, a few, all at once
            got = per_label_average_precision(scores, targets, backend=backend, chunk_elements=chunk).numpy()
            np.testing.assert_allclose(got, expected, atol=1e-12, equal_nan=True, err_msg=f"trial {trial}")


@pytest.mark.parametrize("backend", BACKENDS)
def test_ap_signed_zero_and_infinities(backend):
    # -0.0 == +0.0 must tie; -inf and +inf are ordinary extreme scores (not fillers).
    scores = torch.tensor(
        [[0.0, -math.inf], [-0.0, 1.0], [0.0, -math.inf], [1.0, math.inf], [-0.0, -math.inf]]
    )
    targets = torch.tensor([[1, 1], [-1, -1], [-1, 1], [-1, 1], [1, -1]])
    expected = brute_ap(scores.numpy(), targets.numpy())
    got = per_label_average_precision(scores, targets, backend=backend).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-15)
    # Column 0: a negative at 1.0, then four tied zeros (two of them -0.0) holding 2 positives: both
    # positives get the precision at the end of the tie group, 2/5 -> AP 0.4 (0.5 or 1/3 if -0 split off).
    assert got[0] == pytest.approx(0.4)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16, torch.int64])
@pytest.mark.parametrize("logits", [False, True])  # non-negative scores take the integer-bit sort
def test_ap_score_dtypes(dtype, logits):
    gen = torch.Generator().manual_seed(3)
    scores, targets = random_problem(gen, 50, 6, ties=True, logits=logits)
    scores = scores.to(dtype)
    expected = brute_ap(scores.double().numpy(), targets.numpy())
    for backend in BACKENDS:
        got = per_label_average_precision(scores, targets, backend=backend).numpy()
        np.testing.assert_allclose(got, expected, atol=1e-12)


def test_ap_accepts_numpy_and_float_targets():
    gen = torch.Generator().manual_seed(4)
    scores, targets = random_problem(gen, 40, 5)
    expected = per_label_average_precision(scores, targets)
    got = per_label_average_precision(scores.numpy(), targets.numpy().astype(np.float32))
    np.testing.assert_array_equal(got.numpy(), expected.numpy())


def test_ap_accepts_non_contiguous_layouts():
    gen = torch.Generator().manual_seed(14)
    scores, targets = random_problem(gen, 30, 7)
    expected = per_label_average_precision(scores, targets).numpy()
    transposed = per_label_average_precision(scores.t().contiguous().t(), targets.t().contiguous().t())
    reversed_rows = per_label_average_precision(scores.numpy()[::-1], targets.numpy()[::-1])
    np.testing.assert_array_equal(transposed.numpy(), expected)
    np.testing.assert_allclose(reversed_rows.numpy(), expected, atol=1e-15)  # row order does not matter


@pytest.mark.parametrize("backend", BACKENDS)
def test_unannotated_entries_are_ignored(backend):
    gen = torch.Generator().manual_seed(5)
    scores, targets = random_problem(gen, 60, 4, unannotated=0.0)
    base = per_label_average_precision(scores, targets, backend=backend)
    # Append 30 images whose entries are all unannotated, with extreme scores: nothing may change.
    extra_scores = torch.cat([torch.full((15, 4), 10.0), torch.full((15, 4), -10.0)])
    got = per_label_average_precision(
        torch.cat([scores, extra_scores]),
        torch.cat([targets, torch.zeros(30, 4, dtype=targets.dtype)]),
        backend=backend,
    )
    np.testing.assert_allclose(got.numpy(), base.numpy(), rtol=0, atol=1e-15)


def test_column_without_positive_is_nan_per_label():
    scores = torch.tensor([[0.3, 0.1], [0.2, 0.9]])
    targets = torch.tensor([[1, -1], [-1, -1]])
    ap = per_label_average_precision(scores, targets)
    assert ap[0].item() == 1.0 and math.isnan(ap[1].item())


# ---------------------------------------------------------------------------------------------------
# mAP and its protocol flags
# ---------------------------------------------------------------------------------------------------
def test_map_flags_change_the_result_exactly_as_described():
    # Columns: 0 and 1 have positives; 2 only negatives; 3 is entirely unannotated.
    scores = torch.tensor([[0.9, 0.2, 0.5, 0.1], [0.8, 0.7, 0.4, 0.3], [0.1, 0.6, 0.3, 0.2]])
    targets = torch.tensor([[1, -1, -1, 0], [-1, 1, -1, 0], [-1, -1, -1, 0]])
    # Column 0: 0.9(+) ranks first -> AP 1. Column 1: 0.7(+) > 0.6(-) > 0.2(-) -> AP 1.
    ap0, ap1 = 1.0, 1.0
    # default (QKS): drop column 3, keep column 2 at AP 0 -> (1 + 1 + 0) / 3
    assert mean_average_precision(scores, targets) == pytest.approx(100 * (ap0 + ap1 + 0) / 3)
    # keep the unannotated column too (MKT): it has no positive -> another 0 -> (1 + 1 + 0 + 0) / 4
    assert mean_average_precision(scores, targets, drop_unannotated_columns=False) == pytest.approx(50.0)
    # skip columns without a positive: only columns 0 and 1
    assert mean_average_precision(scores, targets, skip_columns_without_positive=True) == pytest.approx(100.0)


def test_map_require_positive_image_filters_rows_then_columns():
    scores = torch.tensor([[0.9, 0.2, 0.6], [0.3, 0.8, 0.1], [0.7, 0.1, 0.9], [0.95, 0.5, 0.2]])
    targets = torch.tensor([[1, -1, 0], [-1, 1, 0], [-1, -1, 1], [-1, -1, 0]])
    # Image 3 has no positive. With it: column 0 ranks 0.95(-) above 0.9(+): AP 1/2.
    # Without it: AP 1. Column 2 is annotated only on image 2, which has a positive, so it stays.
    plain = mean_average_precision(scores, targets)
    filtered = mean_average_precision(scores, targets, require_positive_image=True)
    assert plain == pytest.approx(brute_map(scores, targets))
    assert filtered == pytest.approx(brute_map(scores, targets, require_positive_image=True))
    assert plain == pytest.approx(100 * (0.5 + 1 + 1) / 3)
    assert filtered == pytest.approx(100.0)
    # A column annotated only on a dropped image is dropped after the image filter (QKS order).
    targets2 = targets.clone()
    targets2[:, 2] = torch.tensor([0, 0, 0, -1])
    s, t = evaluation_subset(scores, targets2, require_positive_image=True)
    assert s.shape == (2, 2) and t.shape == (2, 2)  # image 2 lost its positive -> images 0, 1; columns 0, 1


@pytest.mark.parametrize(
    "flags",
    [
        (True, False, False),
        (False, False, False),
        (True, True, False),
        (True, False, True),
        (False, True, True),
    ],
)
def test_map_matches_brute_force_on_random_data(flags):
    drop, skip, require = flags
    gen = torch.Generator().manual_seed(7)
    scores, targets = random_problem(gen, 45, 9, ties=True, pos=0.08, unannotated=0.3)
    targets[:, 4] = 0  # an unannotated column
    targets[:, 5] = torch.where(targets[:, 5] == 1, -1, targets[:, 5])  # a column without positives
    got = mean_average_precision(scores, targets, drop, skip, require)
    assert got == pytest.approx(brute_map(scores, targets, drop, skip, require), abs=1e-10)


def test_map_is_mean_of_per_label_ap():
    gen = torch.Generator().manual_seed(8)
    scores, targets = random_problem(gen, 80, 12)
    ap = per_label_average_precision(scores, targets)
    assert mean_average_precision(scores, targets) == pytest.approx(100 * ap.mean().item(), abs=1e-12)
    assert 0.0 <= mean_average_precision(scores, targets) <= 100.0


# ---------------------------------------------------------------------------------------------------
# F1@K
# ---------------------------------------------------------------------------------------------------
def test_f1_hand_worked():
    # Image 0 top-2: labels 0 (+), 1 (-) -> 1 hit. Image 1 top-2: labels 2 (+), 0 (0 = unannotated) -> 1 hit.
    # TP = 2, P = 2 / (2 * 2) = 0.5, positives = 3 -> R = 2/3, F1 = 2 * 0.5 * 2/3 / (0.5 + 2/3) = 4/7.
    scores = torch.tensor([[0.9, 0.8, 0.1], [0.5, 0.2, 0.7]])
    targets = torch.tensor([[1, -1, 1], [0, -1, 1]])
    got = f1_at_k(scores, targets, 2)
    assert got["precision"] == pytest.approx(50.0)
    assert got["recall"] == pytest.approx(200 / 3)
    assert got["f1"] == pytest.approx(400 / 7)


@pytest.mark.parametrize("k", [1, 3, 5])
def test_f1_matches_brute_force_and_sklearn(k):
    gen = torch.Generator().manual_seed(10 + k)
    scores, targets = random_problem(gen, 70, 11, pos=0.2)
    got = f1_at_k(scores, targets, k)
    p, r, f = brute_f1(scores.numpy(), targets.numpy(), k)
    assert (got["precision"], got["recall"], got["f1"]) == pytest.approx((p, r, f), abs=1e-10)
    predicted = torch.zeros_like(scores, dtype=torch.int64).scatter_(1, scores.topk(k, dim=1).indices, 1)
    y_true, y_pred = (targets == 1).long().ravel().numpy(), predicted.ravel().numpy()
    assert got["precision"] == pytest.approx(100 * precision_score(y_true, y_pred), abs=1e-10)
    assert got["recall"] == pytest.approx(100 * recall_score(y_true, y_pred), abs=1e-10)
    assert got["f1"] == pytest.approx(100 * f1_score(y_true, y_pred), abs=1e-10)


def test_f1_without_positives_is_zero():
    got = f1_at_k(torch.rand(3, 4), -torch.ones(3, 4), 2)
    assert got == {"precision": 0.0, "recall": 0.0, "f1": 0.0}


# ---------------------------------------------------------------------------------------------------
# QKS SEEN / ZSL / GZSL
# ---------------------------------------------------------------------------------------------------
def test_qks_subsets_follow_the_protocol():
    gen = torch.Generator().manual_seed(12)
    num_seen, num_unseen = 7, 5
    scores, targets = random_problem(gen, 60, num_seen + num_unseen, pos=0.06, unannotated=0.2)
    targets[:, 9] = 0  # an unannotated unseen column: dropped from ZSL and GZSL
    got = qks_subsets(scores, targets, num_seen, ks=(1, 3))
    assert set(got) == {"SEEN", "ZSL", "GZSL"}
    for name, cols in {"SEEN": slice(0, 7), "ZSL": slice(7, 12), "GZSL": slice(0, 12)}.items():
        s, t = scores[:, cols].numpy(), targets[:, cols].numpy()
        rows = (t == 1).any(1)
        s, t = s[rows], t[rows]
        keep = (t != 0).any(0)
        s, t = s[:, keep], t[:, keep]
        assert got[name]["num_images"] == rows.sum() and got[name]["num_labels"] == keep.sum()
        assert got[name]["mAP"] == pytest.approx(100 * np.nan_to_num(brute_ap(s, t)).mean(), abs=1e-10)
        for k in (1, 3):
            p, r, f = brute_f1(s, t, k)
            assert (got[name][f"P@{k}"], got[name][f"R@{k}"], got[name][f"F1@{k}"]) == pytest.approx(
                (p, r, f)
            )
    assert got["ZSL"]["num_labels"] == num_unseen - 1
    # ZSL is the GZSL pass sliced to the unseen columns: a score change on a seen column leaves it alone.
    scores2 = scores.clone()
    scores2[:, :num_seen] += 5.0
    assert (
        qks_subsets(scores2, targets, num_seen, ks=(1,))["ZSL"]
        == qks_subsets(scores, targets, num_seen, ks=(1,))["ZSL"]
    )


def test_qks_subset_errors():
    scores, targets = torch.rand(4, 5), torch.tensor([[1, -1, -1, -1, -1]] * 4)
    with pytest.raises(ValueError, match="num_seen"):
        qks_subsets(scores, targets, 5)
    with pytest.raises(ValueError, match="ZSL subset: no image has a positive"):
        qks_subsets(scores, targets, 2, ks=(1,))
    targets[0, 4] = 1
    with pytest.raises(ValueError, match="F1@5 needs >= 5 labels"):
        qks_subsets(scores, targets, 2, ks=(5,))


# ---------------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------------
def test_clear_errors():
    scores, targets = torch.rand(3, 2), torch.tensor([[1, -1], [-1, 1], [0, 1]])
    bad = scores.clone()
    bad[2, 1] = math.nan
    with pytest.raises(ValueError, match=r"NaN at an annotated entry \(first at image 2, label 1\)"):
        mean_average_precision(bad, targets)
    wrong = targets.clone()
    wrong[1, 0] = 2
    with pytest.raises(ValueError, match="found 2 at image 1, label 0"):
        mean_average_precision(scores, wrong)
    with pytest.raises(ValueError, match="found 0.5 at image 0, label 1"):
        per_label_average_precision(scores, torch.tensor([[1.0, 0.5], [-1, 1], [0, 1]]))
    with pytest.raises(TypeError, match="not booleans"):
        mean_average_precision(scores, targets == 1)
    with pytest.raises(ValueError, match="shape"):
        mean_average_precision(scores, targets[:2])
    with pytest.raises(ValueError, match=r"\(N images, C labels\)"):
        mean_average_precision(scores[0], targets[0])
    with pytest.raises(ValueError, match=r"k must be an int in \[1, 2\]"):
        f1_at_k(scores, targets, 3)
    with pytest.raises(ValueError, match="every column is unannotated"):
        mean_average_precision(scores, torch.zeros(3, 2))
    with pytest.raises(ValueError, match="no image left"):
        mean_average_precision(scores, -torch.ones(3, 2), require_positive_image=True)
    with pytest.raises(ValueError, match="no label column has a positive"):
        mean_average_precision(scores, -torch.ones(3, 2), skip_columns_without_positive=True)
    with pytest.raises(ValueError, match="backend"):
        per_label_average_precision(scores, targets, backend="jax")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("logits", [False, True])  # integer-bit path / float path
@pytest.mark.parametrize("where", [(0, 0), (3, 1)])  # a positive / a negative entry
def test_nan_at_annotated_entry_is_an_error(backend, dtype, logits, where):
    scores = torch.tensor([[0.5, 0.2], [0.4, 0.9], [0.3, 0.1], [0.2, 0.6], [0.1, 0.3]], dtype=dtype)
    if logits:
        scores = scores - 0.45
    targets = torch.tensor([[1, -1], [-1, 1], [0, 0], [-1, -1], [1, 1]])
    for sign in (1.0, -1.0):  # the sign bit of NaN matters to the integer path
        bad = scores.clone()
        bad[where] = sign * math.nan
        with pytest.raises(ValueError, match=rf"first at image {where[0]}, label {where[1]}"):
            per_label_average_precision(bad, targets, backend=backend)


def test_nan_at_unannotated_entry_is_ignored_by_ap_but_not_by_f1():
    scores = torch.tensor([[0.5, 0.2], [0.4, 0.9], [math.nan, 0.1]])
    targets = torch.tensor([[1, -1], [-1, 1], [0, -1]])
    for backend in BACKENDS:
        assert per_label_average_precision(scores, targets, backend=backend).tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match=r"scores contain NaN \(first at image 2, label 0\)"):
        f1_at_k(scores, targets, 1)


@pytest.mark.gpu
def test_cuda_matches_cpu():
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    gen = torch.Generator().manual_seed(13)
    scores, targets = random_problem(gen, 5000, 64, ties=True, logits=True, pos=0.02)
    cpu = per_label_average_precision(scores, targets)
    gpu = per_label_average_precision(scores.cuda(), targets.cuda())
    torch.testing.assert_close(gpu, cpu, rtol=0, atol=1e-12, equal_nan=True)
