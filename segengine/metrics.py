"""Semantic-segmentation metrics: confusion matrix, IoU, mean IoU, pixel accuracy.

Every function takes label maps ``pred`` and ``target`` of the same shape (any number of
dimensions, e.g. ``[B, H, W]``), torch tensors (computed on their device with
``torch.bincount``) or numpy arrays (numpy out). Pixels whose target equals
``ignore_index`` are left out; any other label outside ``[0, num_classes)`` raises
ValueError. Classes absent from both prediction and target have IoU NaN and are excluded
from the mean.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from segengine.ops._common import as_tensor
from segengine.ops._memory import check_working_set

__all__ = ["confusion_matrix", "iou", "mean_iou", "pixel_accuracy", "ConfusionMatrix"]


# the [n, n] int64 counts (bincount's minlength n**2) must have a byte size below 2**63
MAX_CLASSES = 2**30


def _check_num_classes(num_classes) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    if num_classes > MAX_CLASSES:
        raise ValueError(f"num_classes must be at most 2**30 (its [num_classes, num_classes] int64 "
                         f"matrix must stay below 2**63 bytes), got {num_classes!r}")
    return int(num_classes)


def _check_memory(pred: torch.Tensor, num_classes: int) -> None:
    """Working-set guard: per label the int64 copies of pred and target, the kept copies
    and the bincount index (33 bytes at the peak), and the [n, n] int64 counts with their
    float64 copy for IoU."""
    if pred.device.type != "cpu" or torch.compiler.is_compiling():
        return   # host memory only; data-free while torch.compile traces
    check_working_set(34.0 * pred.numel() + 16.0 * num_classes * num_classes,
                      f"confusion matrix of {num_classes} classes on labels of shape {tuple(pred.shape)}")


def _confusion(pred: torch.Tensor, target: torch.Tensor, num_classes: int,
               ignore_index: Optional[int]) -> torch.Tensor:
    if pred.shape != target.shape:
        raise ValueError(f"pred shape {tuple(pred.shape)} does not match target shape {tuple(target.shape)}")
    if pred.device != target.device:
        raise ValueError(f"pred is on {pred.device} but target is on {target.device}")
    for name, t in (("pred", pred), ("target", target)):
        if t.dtype.is_floating_point or t.dtype.is_complex or t.dtype == torch.bool:
            raise TypeError(f"{name} must hold integer labels, got {t.dtype}")
    _check_memory(pred, num_classes)
    p = pred.reshape(-1).to(torch.int64)
    t = target.reshape(-1).to(torch.int64)
    if ignore_index is not None:
        keep = t != ignore_index
        p, t = p[keep], t[keep]
    for name, v in (("target", t), ("pred", p)):
        if v.numel() and (bool((v < 0).any()) or bool((v >= num_classes).any())):
            bad = v[(v < 0) | (v >= num_classes)][0].item()
            raise ValueError(f"{name} holds label {bad}, outside [0, {num_classes})"
                             + ("" if name == "pred" or ignore_index is None else
                                f" and not ignore_index={ignore_index}"))
    counts = torch.bincount(t * num_classes + p, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def _confusion_of_inputs(pred, target, num_classes, ignore_index):
    """Checked inputs of a metric function -> (confusion matrix, whether the input was numpy)."""
    n = _check_num_classes(num_classes)
    p, was_numpy = as_tensor(pred, "pred")
    t, _ = as_tensor(target, "target")
    return _confusion(p, t, n, ignore_index), was_numpy


def confusion_matrix(pred, target, num_classes: int, ignore_index: Optional[int] = None):
    """Confusion matrix ``[num_classes, num_classes]`` (int64): rows are the target class,
    columns the predicted class.

    Parameters
    ----------
    pred, target : integer tensors or arrays of the same shape
        Predicted and true labels, any number of dimensions (e.g. ``[B, H, W]``), on one
        device.
    num_classes : int
        Number of classes n (1 <= n <= 2**30).
    ignore_index : int, optional
        Target value to leave out.

    Returns
    -------
    torch.Tensor or numpy.ndarray
        int64 ``[n, n]`` counts; a tensor on the labels' device, or numpy for numpy input.

    Raises
    ------
    ValueError
        Shapes or devices differ, a bad ``num_classes``, or a label outside ``[0, n)`` (other
        than ``ignore_index`` in ``target``).
    TypeError
        Labels that are not integers.
    """
    cm, was_numpy = _confusion_of_inputs(pred, target, num_classes, ignore_index)
    return cm.cpu().numpy() if was_numpy else cm


def _iou_from_cm(cm: torch.Tensor) -> torch.Tensor:
    cm = cm.to(torch.float64)
    inter = cm.diagonal()
    union = cm.sum(0) + cm.sum(1) - inter
    return torch.where(union > 0, inter / union.clamp_min(1), torch.full_like(inter, float("nan")))


def _mean_present(values: torch.Tensor) -> torch.Tensor:
    present = ~torch.isnan(values)
    if not bool(present.any()):
        return torch.tensor(float("nan"), dtype=torch.float64, device=values.device)
    return values[present].mean()


def _accuracy_from_cm(cm: torch.Tensor) -> torch.Tensor:
    total = cm.sum()
    if int(total) == 0:
        return torch.tensor(float("nan"), dtype=torch.float64, device=cm.device)
    return cm.diagonal().sum().to(torch.float64) / total.to(torch.float64)


def _out(value: torch.Tensor, was_numpy: bool):
    if not was_numpy:
        return value
    return value.cpu().numpy() if value.dim() else float(value)


def iou(pred, target, num_classes: int, ignore_index: Optional[int] = None):
    """Per-class intersection over union ``[num_classes]`` (float64); NaN for a class
    absent from both prediction and target.

    Parameters
    ----------
    pred, target : integer tensors or arrays of the same shape
        Predicted and true labels (see :func:`confusion_matrix`).
    num_classes : int
        Number of classes.
    ignore_index : int, optional
        Target value to leave out.

    Returns
    -------
    torch.Tensor or numpy.ndarray
        float64 ``[num_classes]``: ``TP / (TP + FP + FN)`` per class.
    """
    cm, was_numpy = _confusion_of_inputs(pred, target, num_classes, ignore_index)
    return _out(_iou_from_cm(cm), was_numpy)


def mean_iou(pred, target, num_classes: int, ignore_index: Optional[int] = None):
    """Mean IoU over the classes present in the prediction or the target (0-D float64).

    Parameters
    ----------
    pred, target : integer tensors or arrays of the same shape
        Predicted and true labels (see :func:`confusion_matrix`).
    num_classes : int
        Number of classes.
    ignore_index : int, optional
        Target value to leave out.

    Returns
    -------
    torch.Tensor or float
        0-D float64 tensor (a float for numpy input); NaN when no class is present.
    """
    cm, was_numpy = _confusion_of_inputs(pred, target, num_classes, ignore_index)
    return _out(_mean_present(_iou_from_cm(cm)), was_numpy)


def pixel_accuracy(pred, target, num_classes: int, ignore_index: Optional[int] = None):
    """Fraction of the non-ignored pixels predicted correctly (0-D float64; NaN if none).

    Parameters
    ----------
    pred, target : integer tensors or arrays of the same shape
        Predicted and true labels (see :func:`confusion_matrix`).
    num_classes : int
        Number of classes.
    ignore_index : int, optional
        Target value to leave out.

    Returns
    -------
    torch.Tensor or float
        0-D float64 tensor (a float for numpy input).
    """
    cm, was_numpy = _confusion_of_inputs(pred, target, num_classes, ignore_index)
    return _out(_accuracy_from_cm(cm), was_numpy)


class ConfusionMatrix:
    """Streaming confusion matrix: ``update(pred, target)`` per batch, then ``compute()``.

    The running matrix lives on the device of the first update.

    Parameters
    ----------
    num_classes : int
        Number of classes n.
    ignore_index : int, optional
        Target value to leave out.

    Examples
    --------
    >>> cm = segengine.metrics.ConfusionMatrix(21, ignore_index=255)
    >>> for pred, target in batches:
    ...     cm.update(pred, target)
    >>> cm.mean_iou()
    """

    def __init__(self, num_classes: int, ignore_index: Optional[int] = None):
        self.num_classes = _check_num_classes(num_classes)
        self.ignore_index = ignore_index
        self.matrix: Optional[torch.Tensor] = None

    def reset(self) -> None:
        """Forget every update."""
        self.matrix = None

    def update(self, pred, target) -> None:
        """Add the counts of one batch.

        Parameters
        ----------
        pred, target : integer tensors or arrays of the same shape
            As in :func:`confusion_matrix`; the counts are added on the device of the first
            update.
        """
        p, _ = as_tensor(pred, "pred")
        t, _ = as_tensor(target, "target")
        cm = _confusion(p, t, self.num_classes, self.ignore_index)
        self.matrix = cm if self.matrix is None else self.matrix + cm.to(self.matrix.device)

    def compute(self) -> torch.Tensor:
        """The accumulated ``[num_classes, num_classes]`` int64 matrix (rows: target)."""
        if self.matrix is None:
            check_working_set(8.0 * self.num_classes * self.num_classes,
                              f"ConfusionMatrix({self.num_classes}).compute()")
            return torch.zeros(self.num_classes, self.num_classes, dtype=torch.int64)
        return self.matrix

    def iou(self) -> torch.Tensor:
        """Per-class IoU ``[num_classes]`` float64 of the accumulated counts (NaN: absent class)."""
        return _iou_from_cm(self.compute())

    def mean_iou(self) -> torch.Tensor:
        """Mean IoU (0-D float64) over the classes present in the accumulated counts."""
        return _mean_present(self.iou())

    def pixel_accuracy(self) -> torch.Tensor:
        """Fraction of the counted pixels predicted correctly (0-D float64; NaN if none)."""
        return _accuracy_from_cm(self.compute())
