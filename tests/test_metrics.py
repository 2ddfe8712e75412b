"""segengine.metrics against plain NumPy loops."""

import numpy as np
import pytest
import torch

from segengine import metrics
from segengine._reference import metrics as ref


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("ignore_index", [None, 255, 0])
def test_metrics_match_reference(device, seed, ignore_index):
    rng = np.random.default_rng(seed)
    C = int(rng.integers(2, 9))
    shape = tuple(rng.integers(1, 17, size=int(rng.integers(1, 4))))
    target = rng.integers(0, C, size=shape)
    pred = np.where(rng.random(shape) < 0.6, target, rng.integers(0, C - 1, size=shape))
    if ignore_index == 255:
        target = np.where(rng.random(shape) < 0.2, 255, target)
    args = (pred, target, C, ignore_index)
    np.testing.assert_array_equal(metrics.confusion_matrix(*args), ref.confusion_matrix(*args))
    np.testing.assert_allclose(metrics.iou(*args), ref.iou(*args), equal_nan=True)
    np.testing.assert_allclose(metrics.mean_iou(*args), ref.mean_iou(*args), equal_nan=True)
    np.testing.assert_allclose(metrics.pixel_accuracy(*args), ref.pixel_accuracy(*args), equal_nan=True)
    tp, tt = torch.from_numpy(pred).to(device), torch.from_numpy(target).to(device)
    cm = metrics.confusion_matrix(tp, tt, C, ignore_index)
    assert isinstance(cm, torch.Tensor) and cm.device == tp.device and cm.dtype == torch.int64
    np.testing.assert_array_equal(cm.cpu().numpy(), ref.confusion_matrix(*args))


def test_rows_are_target_columns_prediction():
    cm = metrics.confusion_matrix(np.array([1, 1, 0]), np.array([0, 1, 1]), 2)
    np.testing.assert_array_equal(cm, [[0, 1], [1, 1]])


def test_absent_classes_excluded_from_mean():
    pred = np.array([0, 0, 1, 1])
    target = np.array([0, 0, 1, 0])
    v = metrics.iou(pred, target, 4)
    assert np.isnan(v[2]) and np.isnan(v[3])
    assert metrics.mean_iou(pred, target, 4) == pytest.approx((2 / 3 + 1 / 2) / 2)


def test_streaming_equals_one_shot(device):
    rng = np.random.default_rng(0)
    cmx = metrics.ConfusionMatrix(5, ignore_index=255)
    preds, targets = [], []
    for _ in range(4):
        p = rng.integers(0, 5, (2, 8, 9))
        t = np.where(rng.random((2, 8, 9)) < 0.1, 255, rng.integers(0, 5, (2, 8, 9)))
        preds.append(p)
        targets.append(t)
        cmx.update(torch.from_numpy(p).to(device), torch.from_numpy(t).to(device))
    allp, allt = np.concatenate(preds), np.concatenate(targets)
    np.testing.assert_array_equal(cmx.compute().cpu().numpy(), ref.confusion_matrix(allp, allt, 5, 255))
    assert float(cmx.mean_iou()) == pytest.approx(ref.mean_iou(allp, allt, 5, 255))
    assert float(cmx.pixel_accuracy()) == pytest.approx(ref.pixel_accuracy(allp, allt, 5, 255))
    cmx.reset()
    assert int(cmx.compute().sum()) == 0


@pytest.mark.parametrize("pred, target, n, err", [
    (np.array([0, 5]), np.array([0, 1]), 3, "pred holds label 5"),
    (np.array([0, 1]), np.array([0, -1]), 3, "target holds label -1"),
    (np.array([0, 1]), np.array([0, 1, 1]), 3, "does not match"),
    (np.array([0.0, 1.0]), np.array([0, 1]), 3, "integer"),
    (np.array([0, 1]), np.array([0, 1]), 0, "num_classes"),
])
def test_bad_input(pred, target, n, err):
    with pytest.raises((ValueError, TypeError), match=err):
        metrics.confusion_matrix(pred, target, n)
