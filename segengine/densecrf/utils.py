"""pydensecrf.utils equivalents: unaries and pairwise features, same signatures and layouts."""

from __future__ import annotations

import math
from numbers import Integral, Number

import numpy as np

__all__ = ["unary_from_labels", "unary_from_softmax", "create_pairwise_gaussian",
           "create_pairwise_bilateral"]


def unary_from_labels(labels, n_labels, gt_prob, zero_unsure=True):
    """Unary float32 ``[n_labels, N]`` from a label map believed with probability ``gt_prob``.

    Parameters
    ----------
    labels : array of int, any shape (flattened to N)
        Label per variable. With ``zero_unsure`` label 0 means "unknown" (uniform) and labels
        1..n_labels map to classes 0..n_labels-1; otherwise labels are 0..n_labels-1.
    n_labels : int
        Number of classes.
    gt_prob : float
        Probability of the given label, in (0, 1); the rest is spread over the other classes.
    zero_unsure : bool

    Raises
    ------
    ValueError
        ``n_labels`` < 2 (pydensecrf raises ZeroDivisionError for 1) or ``gt_prob`` outside (0, 1).
    """
    if isinstance(n_labels, bool) or not isinstance(n_labels, Integral):
        raise TypeError(f"n_labels must be an integer, got {n_labels!r}")
    if n_labels < 2:
        raise ValueError(f"n_labels must be >= 2 (the other classes share 1 - gt_prob), got {n_labels!r}")
    if not 0 < gt_prob < 1:
        raise ValueError(f"gt_prob must be in (0, 1), got {gt_prob!r}")
    flat = np.asarray(labels).reshape(-1)
    cls = flat - 1 if zero_unsure else flat
    known = flat != 0 if zero_unsure else np.ones(flat.shape, bool)
    if np.any(cls[known] < 0) or np.any(cls[known] >= n_labels):
        raise ValueError(f"labels must lie in {'1' if zero_unsure else '0'}..{n_labels if zero_unsure else n_labels - 1}")
    other = -np.log((1.0 - gt_prob) / (n_labels - 1))
    hit = -np.log(gt_prob)
    U = np.full((n_labels, flat.size), other, dtype=np.float32)
    cols = np.arange(flat.size)
    U[cls[known], cols[known]] = hit
    if zero_unsure:
        U[:, ~known] = -np.log(1.0 / n_labels)
    return U


def unary_from_softmax(sm, scale=None, clip=1e-5):
    """Unary energies ``-log(clip(p))`` of class probabilities (pydensecrf's function).

    Parameters
    ----------
    sm : array_like, shape ``[n_classes, ...]``
        Class probabilities (e.g. a softmax ``[n_classes, H, W]``).
    scale : float in (0, 1], optional
        Mix in the uniform distribution first: ``scale * sm + (1 - scale) / n_classes``.
    clip : float or None
        Probability floor (default 1e-5); None: no clipping.

    Returns
    -------
    numpy.ndarray
        float32 ``[n_classes, N]``, N the product of the other axes (the layout of
        ``DenseCRF.setUnaryEnergy``).

    Notes
    -----
    ``clip`` must be None or a finite number > 0: unlike pydensecrf, which returns inf or
    NaN unaries (with numpy warnings only) for ``clip <= 0``, this raises ValueError.
    """
    if clip is not None:
        _check_bandwidth(clip, "clip")
    sm = np.asarray(sm)
    if clip is not None and sm.dtype.kind == "f" and sm.dtype.type(clip) == 0:
        sm = sm.astype(np.float32)   # the floor would round to 0 in sm's dtype: inf unaries
    n = sm.shape[0]
    if scale is not None:
        if not 0 < scale <= 1:
            raise ValueError(f"scale must be in (0, 1], got {scale!r}")
        sm = scale * sm + (1 - scale) * (np.ones(sm.shape) / n)
    if clip is not None:
        sm = np.clip(sm, clip, 1.0)
    return (-np.log(sm)).reshape([n, -1]).astype(np.float32)


def _check_bandwidth(value, name: str) -> None:
    """A divisor (or clip floor): a finite number > 0, else ValueError (TypeError if no number)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {value!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be finite and > 0, got {value!r}")


def _check_bandwidths(values, name: str) -> None:
    if isinstance(values, Number):
        _check_bandwidth(values, name)
        return
    for i, v in enumerate(values):
        _check_bandwidth(v, f"{name}[{i}]")


def _mesh(shape, sdims):
    grids = np.meshgrid(*[np.arange(s) for s in shape], indexing="ij")
    mesh = np.array(grids, dtype=np.float32)
    for i, s in enumerate(sdims):
        mesh[i] /= s
    return mesh


def create_pairwise_gaussian(sdims, shape):
    """Features of a Gaussian (smoothness) kernel: the index along each axis divided by ``sdims``.

    Parameters
    ----------
    sdims : sequence of float
        Standard deviation along each axis, in the order of ``shape`` (e.g. ``(sy, sx)``);
        finite and > 0.
    shape : sequence of int
        Image shape (e.g. ``(H, W)``).

    Returns
    -------
    numpy.ndarray
        float32 ``[len(shape), N]`` with N = ``prod(shape)``, for
        ``DenseCRF.addPairwiseEnergy``.

    Notes
    -----
    Unlike pydensecrf, which returns inf/NaN features (with numpy warnings only) for a zero
    ``sdims`` entry, this raises ValueError.
    """
    _check_bandwidths(sdims, "sdims")
    mesh = _mesh(shape, sdims)
    return mesh.reshape([len(sdims), -1])


def create_pairwise_bilateral(sdims, schan, img, chdim=-1):
    """Features of a bilateral (appearance) kernel: coordinates / ``sdims``, then channels / ``schan``.

    Parameters
    ----------
    sdims : sequence of float
        Spatial standard deviation along each spatial axis (e.g. ``(sy, sx)``); finite, > 0.
    schan : float or sequence of float
        Standard deviation of the channels, one number or one per channel; finite, > 0.
    img : array_like
        The image, e.g. ``[H, W, 3]`` with ``chdim=2``, or ``[H, W]`` with ``chdim=-1``.
    chdim : int
        The image's channel axis; -1: no channel axis (one channel).

    Returns
    -------
    numpy.ndarray
        float32 ``[len(sdims) + channels, N]``, N the number of pixels, for
        ``DenseCRF.addPairwiseEnergy``.

    Notes
    -----
    Unlike pydensecrf, which returns inf/NaN features (with numpy warnings only) for a zero
    bandwidth, this raises ValueError.
    """
    _check_bandwidths(sdims, "sdims")
    _check_bandwidths(schan, "schan")
    img = np.asarray(img)
    if chdim == -1:
        chans = img[np.newaxis].astype(np.float32)
    else:
        chans = np.moveaxis(img, chdim, 0).astype(np.float32)
    if isinstance(schan, Number):
        chans /= schan
    else:
        for i, s in enumerate(schan):
            chans[i] /= s
    mesh = _mesh(chans.shape[1:], sdims)
    feats = np.concatenate([mesh, chans])
    return feats.reshape([feats.shape[0], -1])
