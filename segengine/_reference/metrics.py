"""Plain NumPy loops for the segmentation metrics (the oracle of tests/test_metrics.py)."""

import numpy as np


def confusion_matrix(pred, target, num_classes, ignore_index=None):
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    for p, t in zip(np.asarray(pred).ravel(), np.asarray(target).ravel()):
        if ignore_index is not None and t == ignore_index:
            continue
        cm[t, p] += 1
    return cm


def iou(pred, target, num_classes, ignore_index=None):
    cm = confusion_matrix(pred, target, num_classes, ignore_index)
    out = np.full(num_classes, np.nan)
    for c in range(num_classes):
        inter = cm[c, c]
        union = cm[c, :].sum() + cm[:, c].sum() - inter
        if union > 0:
            out[c] = inter / union
    return out


def mean_iou(pred, target, num_classes, ignore_index=None):
    v = iou(pred, target, num_classes, ignore_index)
    return float(np.nanmean(v)) if np.any(~np.isnan(v)) else float("nan")


def pixel_accuracy(pred, target, num_classes, ignore_index=None):
    cm = confusion_matrix(pred, target, num_classes, ignore_index)
    return float(np.trace(cm) / cm.sum()) if cm.sum() else float("nan")
