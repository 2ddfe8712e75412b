"""The one definition of the kernel normalisation of a dense CRF / permutohedral filter.

pydensecrf's ``NormalizationType``: with ``n = K 1`` (the filtered ones of a kernel ``K``)

==============  ======================================  =====================================
``"none"``      ``K v``                                  pre = post = None
``"before"``    ``K (v / (n + 1e-20))``                  pre = ``1 / (n + 1e-20)``
``"after"``     ``K v / (n + 1e-20)``                    post = ``1 / (n + 1e-20)``
``"symmetric"`` ``s * K (s * v)``                        pre = post = ``s = 1 / sqrt(n + 1e-20)``
==============  ======================================  =====================================

The factors are computed in float64 from ``n`` and rounded once to the working dtype, exactly
as ``csrc/common/crf.h`` (``seg::crf::norm_symmetric`` / ``norm_inverse``) does in the C++ mean
field; tests/test_crf.py checks the two against each other. The integer codes passed to the
kernels are :class:`segengine._codes.Normalization` (``seg::codes::NORM_*``).
"""

from __future__ import annotations

import numpy as np
import torch

from segengine._codes import Normalization

__all__ = ["NORMALIZATIONS", "normalization_code", "normalization_factor", "normalizers"]

# the accepted names, in code order (Normalization.NONE, BEFORE, AFTER, SYMMETRIC)
NORMALIZATIONS = ("none", "before", "after", "symmetric")

_EPS = 1e-20


def normalization_code(normalization) -> Normalization:
    """The :class:`Normalization` code of a name (``"symmetric"``, ...) or of a code/IntEnum
    (pydensecrf's ``NORMALIZE_SYMMETRIC``, ...).

    Raises
    ------
    ValueError
        For an unknown name or code.
    """
    if isinstance(normalization, str):
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
        return Normalization(NORMALIZATIONS.index(normalization))
    try:
        return Normalization(int(normalization))
    except (TypeError, ValueError):
        raise ValueError(f"normalization must be one of {NORMALIZATIONS} or a code "
                         f"{[int(c) for c in Normalization]}, got {normalization!r}") from None


def normalization_factor(n, code: Normalization, dtype=None):
    """The per-point factor of a normalisation: ``1/sqrt(n + 1e-20)`` (symmetric) or
    ``1/(n + 1e-20)`` (before, after), computed in float64 and rounded to ``dtype``.

    Parameters
    ----------
    n : torch.Tensor or numpy.ndarray, any shape, float
        The filtered ones ``K 1``.
    code : Normalization
        Not ``NONE``.
    dtype : torch.dtype or numpy dtype, optional
        Dtype of the result (default: that of ``n``).

    Returns
    -------
    torch.Tensor or numpy.ndarray
        Same kind and shape as ``n``.
    """
    if code == Normalization.NONE:
        raise ValueError("normalization 'none' has no factor")
    symmetric = code == Normalization.SYMMETRIC
    if isinstance(n, np.ndarray):
        n64 = n.astype(np.float64) + _EPS
        f = 1.0 / np.sqrt(n64) if symmetric else 1.0 / n64
        return f.astype(n.dtype if dtype is None else dtype)
    n64 = n.double() + _EPS
    f = 1.0 / torch.sqrt(n64) if symmetric else 1.0 / n64
    return f.to(n.dtype if dtype is None else dtype)


def normalizers(n, normalization, dtype=None):
    """``(pre, post)``: the factors that scale the values before the filter and its output
    after it (None where the normalisation has none).

    Parameters
    ----------
    n : torch.Tensor or numpy.ndarray, float
        The filtered ones ``K 1`` (unused for ``"none"``; may then be None).
    normalization : str or int
        A name of :data:`NORMALIZATIONS` or a :class:`Normalization` code.
    dtype : optional
        Dtype of the factors (default: that of ``n``).
    """
    code = normalization_code(normalization)
    if code == Normalization.NONE:
        return None, None
    f = normalization_factor(n, code, dtype)
    pre = f if code in (Normalization.BEFORE, Normalization.SYMMETRIC) else None
    post = f if code in (Normalization.AFTER, Normalization.SYMMETRIC) else None
    return pre, post
