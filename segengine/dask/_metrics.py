"""Dataset- and volume-scale scores: the confusion matrix as a tree reduction over blocks,
and mean IoU from it."""

from __future__ import annotations

import functools
import numbers

import numpy as np

from segengine.dask._common import as_dask_array, match_chunks

__all__ = ["confusion_matrix", "mean_iou"]


def _block_confusion(pred, target, *, num_classes, ignore_index):
    """``[1, ..., 1, n, n]`` int64 counts of one block (one leading 1 per input axis)."""
    from segengine.metrics import confusion_matrix as cm
    out = cm(np.asarray(pred), np.asarray(target), num_classes, ignore_index)
    return out.reshape((1,) * pred.ndim + out.shape)


def _mean_iou_block(cm):
    """0-d float64 mean IoU of a ``[n, n]`` count matrix, by segengine.metrics' own rule."""
    import torch

    from segengine.metrics import _iou_from_cm, _mean_present
    return np.asarray(float(_mean_present(_iou_from_cm(torch.from_numpy(np.asarray(cm))))),
                      dtype=np.float64)


def confusion_matrix(pred, target, num_classes: int, ignore_index=None, split_every=None):
    """Confusion matrix of label arrays of any size (:func:`segengine.metrics.confusion_matrix`).

    Parameters
    ----------
    pred, target : dask.array.Array or numpy.ndarray, integer labels, same shape (any ndim)
        ``target`` is rechunked to ``pred``'s chunks.
    num_classes : int
    ignore_index : int, optional
        Target value to leave out.
    split_every : int or None
        Fan-in of the tree that sums the per-block matrices (dask's reduction default when
        None).

    Returns
    -------
    dask.array.Array
        Lazy ``[num_classes, num_classes]`` int64 counts, rows the target class, columns the
        predicted class: equal to :func:`segengine.metrics.confusion_matrix` on the whole
        arrays.

    Raises
    ------
    TypeError
        ``pred``/``target`` neither dask nor numpy arrays, or not integer dtypes;
        ``ignore_index`` not None or an int.
    ValueError
        Mismatched shapes or a bad ``num_classes`` (at once). A label outside
        ``[0, num_classes)`` (other than ``ignore_index`` in ``target``) raises ValueError
        **when computed**, from the block that holds it.

    Notes
    -----
    Each block's matrix is computed by :func:`segengine.metrics.confusion_matrix` on numpy
    and laid out as one cell of a ``[*numblocks, n, n]`` array; ``sum`` over the block axes
    is dask's tree reduction (``split_every`` blocks summed per task), so no task holds more
    than a few ``[n, n]`` matrices.
    """
    from segengine.metrics import _check_num_classes
    pred = as_dask_array(pred, "pred")
    target = as_dask_array(target, "target")
    for name, x in (("pred", pred), ("target", target)):
        if x.dtype.kind not in "iu":
            raise TypeError(f"`{name}` must hold integer labels, got {x.dtype}")
    n = _check_num_classes(num_classes)
    if ignore_index is not None and (isinstance(ignore_index, bool)
                                     or not isinstance(ignore_index, numbers.Integral)):
        raise TypeError(f"`ignore_index` must be None or an int, got {ignore_index!r}")
    target = match_chunks(target, pred, "target", "pred")
    if pred.ndim == 0:
        pred, target = pred.reshape(1), target.reshape(1)
    d = pred.ndim
    block = functools.partial(_block_confusion, num_classes=n,
                              ignore_index=None if ignore_index is None else int(ignore_index))
    chunks = tuple((1,) * nb for nb in pred.numblocks) + ((n,), (n,))
    per_block = pred.map_blocks(block, target, chunks=chunks, new_axis=[d, d + 1], dtype=np.int64,
                                meta=np.empty((0,) * (d + 2), dtype=np.int64))
    return per_block.sum(axis=tuple(range(d)), dtype=np.int64, split_every=split_every)


def mean_iou(pred, target, num_classes: int, ignore_index=None, split_every=None):
    """Mean IoU of label arrays of any size (:func:`segengine.metrics.mean_iou`).

    Parameters
    ----------
    pred, target, num_classes, ignore_index, split_every
        As in :func:`confusion_matrix`.

    Returns
    -------
    dask.array.Array
        Lazy 0-d float64: the mean over the classes present in the prediction or the target
        of ``|pred == c and target == c| / |pred == c or target == c|``; NaN when no pixel
        is counted. Equal to :func:`segengine.metrics.mean_iou` on the whole arrays.

    Raises
    ------
    TypeError, ValueError
        As :func:`confusion_matrix`.
    """
    import dask.array as da
    cm = confusion_matrix(pred, target, num_classes, ignore_index, split_every)
    return da.blockwise(_mean_iou_block, "", cm, "ij", dtype=np.float64,
                        meta=np.empty((), dtype=np.float64), concatenate=True)
