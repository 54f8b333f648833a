"""vlzoo.metrics.segmentation: confusion matrix vs scikit-learn, IoU vs a loop, the streaming meter."""

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import confusion_matrix as sk_confusion_matrix

from vlzoo.metrics import SegmentationMeter, confusion_matrix, mean_iou


def random_maps(gen, shape, num_classes, ignore_rate=0.1, ignore_index=255):
    pred = torch.randint(0, num_classes, shape, generator=gen)
    gt = torch.randint(0, num_classes, shape, generator=gen)
    gt[torch.rand(shape, generator=gen) < ignore_rate] = ignore_index
    return pred, gt


def brute_iou(pred, gt, num_classes, ignore_index=255):
    """Per-class IoU by counting pixels one by one (NaN when a class is in neither map)."""
    pred, gt = pred.reshape(-1).tolist(), gt.reshape(-1).tolist()
    out = []
    for k in range(num_classes):
        inter = union = 0
        for p, g in zip(pred, gt):
            if g == ignore_index:
                continue
            inter += p == k and g == k
            union += p == k or g == k
        out.append(inter / union if union else math.nan)
    return np.array(out)


def test_confusion_matches_sklearn():
    gen = torch.Generator().manual_seed(0)
    pred, gt = random_maps(gen, (3, 17, 23), 6)
    got = confusion_matrix(pred, gt, 6)
    labelled = gt != 255
    expected = sk_confusion_matrix(gt[labelled].numpy(), pred[labelled].numpy(), labels=list(range(6)))
    assert got.dtype == torch.int64 and got.shape == (6, 6)
    np.testing.assert_array_equal(got.numpy(), expected)  # rows = ground truth, columns = prediction


def test_confusion_batched_equals_sum_of_images_and_accepts_numpy():
    gen = torch.Generator().manual_seed(1)
    pred, gt = random_maps(gen, (4, 9, 9), 5)
    whole = confusion_matrix(pred, gt, 5)
    per_image = sum(confusion_matrix(p, g, 5) for p, g in zip(pred, gt))
    np.testing.assert_array_equal(whole.numpy(), per_image.numpy())
    np.testing.assert_array_equal(
        confusion_matrix(pred.numpy(), gt.numpy().astype(np.uint8), 5).numpy(), whole.numpy()
    )


def test_ignore_index_inside_class_range_and_none():
    pred = torch.tensor([[0, 1], [1, 1]])
    gt = torch.tensor([[0, 0], [1, 1]])
    assert confusion_matrix(pred, gt, 2, ignore_index=0).tolist() == [[0, 0], [0, 2]]
    assert confusion_matrix(pred, gt, 2, ignore_index=None).tolist() == [[1, 1], [0, 2]]


def test_mean_iou_hand_worked():
    # gt:   0 0 1 1 255 ;  pred: 0 1 1 1 2   (class 2 only predicted on the ignored pixel, class 3 absent)
    # class 0: TP 1, FP 0, FN 1 -> IoU 1/2;  class 1: TP 2, FP 1, FN 0 -> 2/3;
    # class 2: appears nowhere on labelled pixels -> NaN;  class 3: NaN.  mIoU = (1/2 + 2/3) / 2 = 7/12.
    # pixel accuracy = 3 / 4; class accuracy: 1/2, 1, NaN, NaN -> mAcc 3/4.
    gt = torch.tensor([0, 0, 1, 1, 255])
    pred = torch.tensor([0, 1, 1, 1, 2])
    out = mean_iou(pred, gt, num_classes=4)
    assert out["miou"] == pytest.approx(100 * 7 / 12)
    np.testing.assert_allclose(out["iou"].numpy(), [50.0, 200 / 3, math.nan, math.nan])
    assert out["pixel_accuracy"] == pytest.approx(75.0)
    assert out["macc"] == pytest.approx(75.0)
    np.testing.assert_allclose(out["class_accuracy"].numpy(), [50.0, 100.0, math.nan, math.nan])


def test_class_predicted_but_absent_from_gt_counts_as_zero():
    gt = torch.tensor([0, 0, 0])
    pred = torch.tensor([0, 0, 1])  # class 1 is a false positive only: IoU 0, and it enters the mean
    out = mean_iou(pred, gt, num_classes=2)
    np.testing.assert_allclose(out["iou"].numpy(), [200 / 3, 0.0])
    assert out["miou"] == pytest.approx(100 / 3)


def test_mean_iou_matches_brute_force_and_confusion_form():
    gen = torch.Generator().manual_seed(2)
    pred, gt = random_maps(gen, (2, 11, 13), 7)
    gt[gt == 6] = 5  # class 6 absent from gt: IoU 0 where predicted
    pred[pred == 6] = 4  # ... and from pred: NaN
    out = mean_iou(pred, gt, num_classes=7)
    expected = brute_iou(pred, gt, 7)
    np.testing.assert_allclose(out["iou"].numpy(), 100 * expected, atol=1e-12)
    assert math.isnan(out["iou"][6].item())
    assert out["miou"] == pytest.approx(100 * np.nanmean(expected))
    from_confusion = mean_iou(confusion_matrix(pred, gt, 7))
    assert from_confusion["miou"] == out["miou"]
    assert from_confusion["pixel_accuracy"] == out["pixel_accuracy"]


def test_meter_streaming_equals_one_shot_and_resets():
    gen = torch.Generator().manual_seed(3)
    batches = [random_maps(gen, (2, 8, 8), 4) for _ in range(5)]
    meter = SegmentationMeter(num_classes=4)
    with pytest.raises(RuntimeError, match="before any update"):
        meter.compute()
    for pred, gt in batches:
        meter.update(pred, gt)
    pred_all = torch.cat([b[0] for b in batches])
    gt_all = torch.cat([b[1] for b in batches])
    one_shot = mean_iou(pred_all, gt_all, num_classes=4)
    streamed = meter.compute()
    assert streamed["miou"] == pytest.approx(one_shot["miou"], abs=1e-12)
    np.testing.assert_array_equal(meter.confusion.numpy(), confusion_matrix(pred_all, gt_all, 4).numpy())
    assert meter.num_updates == 5
    meter.reset()
    assert meter.confusion.sum() == 0 and meter.num_updates == 0


def test_no_labelled_pixel_gives_nan():
    out = mean_iou(torch.tensor([1, 2]), torch.tensor([255, 255]), num_classes=3)
    assert math.isnan(out["miou"]) and math.isnan(out["pixel_accuracy"])


def test_clear_errors():
    with pytest.raises(ValueError, match=r"gt holds values outside \[0, 3\).*: \[7\]"):
        confusion_matrix(torch.tensor([0, 1]), torch.tensor([0, 7]), 3)
    with pytest.raises(ValueError, match=r"pred holds values outside \[0, 3\).*\[-1\]"):
        confusion_matrix(torch.tensor([0, -1]), torch.tensor([0, 1]), 3)
    with pytest.raises(ValueError, match="shape"):
        confusion_matrix(torch.zeros(2, 2, dtype=torch.long), torch.zeros(4, dtype=torch.long), 3)
    with pytest.raises(TypeError, match="integer class indices"):
        confusion_matrix(torch.rand(2, 2), torch.zeros(2, 2, dtype=torch.long), 3)
    with pytest.raises(ValueError, match="num_classes is required"):
        mean_iou(torch.zeros(2, dtype=torch.long), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(K, K\) confusion"):
        mean_iou(torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="num_classes=4"):
        mean_iou(torch.zeros(3, 3, dtype=torch.long), num_classes=4)
