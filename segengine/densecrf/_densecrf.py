"""DenseCRF / DenseCRF2D with pydensecrf's interface (see the package docstring)."""

from __future__ import annotations

import enum
import numbers

import numpy as np
import torch

from segengine._codes import Normalization
from segengine.ops._common import op_threads, run_threads
from segengine.ops._crf_norm import normalizers
from segengine.ops.crf import compat_array
from segengine.ops.lattice import MAX_DIM, check_positive_finite


class NormalizationType(enum.IntEnum):
    """pydensecrf's names of the ``segengine._codes.Normalization`` codes."""
    NO_NORMALIZATION = int(Normalization.NONE)
    NORMALIZE_BEFORE = int(Normalization.BEFORE)
    NORMALIZE_AFTER = int(Normalization.AFTER)
    NORMALIZE_SYMMETRIC = int(Normalization.SYMMETRIC)


class KernelType(enum.IntEnum):
    """pydensecrf's kernel types; accepted by ``addPairwise*`` and unused (they matter only
    for learning, which is not supported)."""
    CONST_KERNEL = 0
    DIAG_KERNEL = 1
    FULL_KERNEL = 2


NO_NORMALIZATION = NormalizationType.NO_NORMALIZATION
NORMALIZE_BEFORE = NormalizationType.NORMALIZE_BEFORE
NORMALIZE_AFTER = NormalizationType.NORMALIZE_AFTER
NORMALIZE_SYMMETRIC = NormalizationType.NORMALIZE_SYMMETRIC
CONST_KERNEL = KernelType.CONST_KERNEL
DIAG_KERNEL = KernelType.DIAG_KERNEL
FULL_KERNEL = KernelType.FULL_KERNEL


def _float32_2d(a, name, shape=None):
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    if not isinstance(a, np.ndarray):
        try:
            a = np.asarray(a)
        except Exception:
            raise TypeError(f"{name} must be a float32 array, got {type(a).__name__}") from None
    if a.dtype != np.float32:
        raise TypeError(f"{name} must be float32 (as in pydensecrf), got {a.dtype}")
    if a.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {a.shape}")
    if shape is not None and a.shape != shape:
        raise ValueError(f"Bad shape for {name} (Need {shape}, got {a.shape})")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be finite (found NaN or Inf)")
    return np.ascontiguousarray(a)


class DenseCRF:
    """Fully connected CRF over ``nvar`` variables with ``nlabels`` labels (pydensecrf.densecrf.DenseCRF).

    Parameters
    ----------
    nvar : int
        Number of variables (pixels) N.
    nlabels : int
        Number of labels C (>= 2).
    num_threads : int, optional
        CPU threads (None: ``torch.get_num_threads()``); a segengine extension.
    """

    def __init__(self, nvar, nlabels, *_, num_threads=None, **__):
        if isinstance(nvar, bool) or not isinstance(nvar, numbers.Integral) or nvar < 1:
            raise ValueError(f"nvar must be a positive integer, got {nvar!r}")
        if isinstance(nlabels, bool) or not isinstance(nlabels, numbers.Integral) or nlabels < 2:
            raise ValueError(f"nlabels must be an integer >= 2, got {nlabels!r}")
        self._nvar = int(nvar)
        self._nlabel = int(nlabels)
        self._unary = None
        self._kernels = []  # (lattice arrays (6), normalization code, compat array)
        self._num_threads = op_threads(num_threads)   # 0: torch.get_num_threads() at each call

    # -------------------------------------------------------------- setup
    def setUnaryEnergy(self, u, f=None):
        """Set the unary energies.

        Parameters
        ----------
        u : numpy.ndarray or torch.Tensor, float32 ``[nlabels, nvar]``
            Unary energies (negative log-probabilities, e.g. from
            :func:`~segengine.densecrf.utils.unary_from_softmax`); finite.
        f : None
            pydensecrf's logistic unary (features ``f``) is not supported.

        Raises
        ------
        TypeError
            ``u`` is not float32.
        ValueError
            Wrong shape or non-finite values.
        NotImplementedError
            ``f`` is given.
        """
        if f is not None:
            raise NotImplementedError("segengine.densecrf: the logistic unary (setUnaryEnergy(u, f)) "
                                      "is not supported")
        self._unary = _float32_2d(u, "unary energy", (self._nlabel, self._nvar))

    def addPairwiseEnergy(self, features, compat, kernel=DIAG_KERNEL, normalization=NORMALIZE_SYMMETRIC):
        """Add a Gaussian pairwise kernel on arbitrary features.

        Parameters
        ----------
        features : numpy.ndarray or torch.Tensor, float32 ``[d, nvar]``
            Point positions divided by their bandwidths (1 <= d <= 16), e.g. from
            :func:`~segengine.densecrf.utils.create_pairwise_bilateral`.
        compat : float, array ``[nlabels]`` or ``[nlabels, nlabels]``
            Label compatibility as pydensecrf: a number is Potts (``-w K Q``), a vector is
            used as ``+diag(v) K Q`` (positive entries push labels apart), a matrix as
            ``+(M + M^T)/2 K Q``.
        kernel : KernelType
            Accepted and unused (it only matters for learning).
        normalization : NormalizationType
            Kernel normalisation (default ``NORMALIZE_SYMMETRIC``).
        """
        feats = _float32_2d(features, "features")
        if feats.shape[1] != self._nvar:
            raise ValueError(f"Bad shape for pairwise energy (Need (?, {self._nvar}), got {feats.shape})")
        if not 1 <= feats.shape[0] <= MAX_DIM:
            raise ValueError(f"features must have 1..{MAX_DIM} rows, got {feats.shape[0]}")
        norm = NormalizationType(int(normalization))
        KernelType(int(kernel))
        c = compat_array(compat, self._nlabel, "compat")
        if c is None:  # Potts weight 0: no contribution
            c = np.zeros(self._nlabel, np.float32)
        from segengine._cy import _lattice
        lat = _lattice.build(np.ascontiguousarray(feats[None]), run_threads(self._num_threads),
                             self._nvar % 4 != 0)
        self._kernels.append((tuple(lat[:6]), int(norm), c))

    # -------------------------------------------------------------- inference
    def _unary_points(self):
        if self._unary is None:
            return np.zeros((self._nvar, self._nlabel), np.float32)
        return np.ascontiguousarray(self._unary.T)

    def inference(self, niter):
        """Run mean-field inference.

        Parameters
        ----------
        niter : int
            Mean-field iterations (>= 0; 0 returns ``softmax(-U)``).

        Returns
        -------
        numpy.ndarray
            Marginals float32 ``[nlabels, nvar]`` (pydensecrf returns an Eigen matrix;
            ``np.array(...)`` converts either).
        """
        if isinstance(niter, bool) or not isinstance(niter, numbers.Integral) or niter < 0:
            raise ValueError(f"niter must be a non-negative integer, got {niter!r}")
        from segengine._cy import _lattice
        if self._unary is None:
            U = np.zeros((1, self._nlabel, self._nvar), np.float32)
        else:
            U = self._unary[None]
        Q = np.empty_like(U)
        _lattice.meanfield(U, Q, [lat[:3] + (norm, c) for lat, norm, c in self._kernels], int(niter),
                           run_threads(self._num_threads))
        return Q[0]

    def _pairwise(self, Q_pc):
        """Sum of the pairwise terms for marginals ``Q_pc`` ``[nvar, nlabels]``."""
        from segengine._cy import _lattice
        total = np.zeros_like(Q_pc)
        threads = run_threads(self._num_threads)
        for lat, norm, c in self._kernels:
            n = None
            if norm != Normalization.NONE:
                ones = np.ones((self._nvar, 1), np.float32)
                n = np.empty_like(ones)
                _lattice.filter_values(ones, n, *lat, False, threads)
                n = n[:, 0]
            pre, post = normalizers(n, norm, np.float32)
            v = np.ascontiguousarray(Q_pc if pre is None else Q_pc * pre[:, None])
            s = np.empty_like(v)
            _lattice.filter_values(v, s, *lat, False, threads)
            if post is not None:
                s = s * post[:, None]
            total += s * c[None, :] if c.ndim == 1 else s @ c.T
        return total

    def startInference(self):
        """``(Q, tmp1, tmp2)`` with ``Q = softmax(-U)`` float32 ``[nlabels, nvar]``."""
        Q = self.inference(0)
        return Q, np.empty(0, np.float32), np.empty(0, np.float32)

    def stepInference(self, Q, tmp1=None, tmp2=None):
        """One mean-field update of ``Q``, in place.

        Parameters
        ----------
        Q : numpy.ndarray, float32 ``[nlabels, nvar]``
            Current marginals (from :meth:`startInference`); overwritten.
        tmp1, tmp2 : optional
            pydensecrf's work buffers; accepted and unused.
        """
        Qa = _float32_2d(Q, "Q", (self._nlabel, self._nvar))
        e = -self._unary_points() - self._pairwise(np.ascontiguousarray(Qa.T))
        e = e - e.max(axis=1, keepdims=True)
        x = np.exp(e)
        Q[...] = (x / x.sum(axis=1, keepdims=True)).T

    def klDivergence(self, Q):
        """pydensecrf's KL-divergence of marginals ``Q`` (up to a constant).

        Parameters
        ----------
        Q : numpy.ndarray, float32 ``[nlabels, nvar]``
            Marginals.

        Returns
        -------
        float
            ``sum Q log Q + sum Q U + sum Q (pairwise terms of Q)``, computed in float64.
        """
        Qa = _float32_2d(Q, "Q", (self._nlabel, self._nvar)).astype(np.float64)
        kl = float((Qa * np.log(np.maximum(Qa, 1e-20))).sum())
        if self._unary is not None:
            kl += float((self._unary.astype(np.float64) * Qa).sum())
        pw = self._pairwise(np.ascontiguousarray(Qa.T.astype(np.float32)))
        kl += float((Qa.T * pw).sum())
        return kl


class DenseCRF2D(DenseCRF):
    """Dense CRF on a ``w`` x ``h`` image (pydensecrf.densecrf.DenseCRF2D); pixel index ``y*w + x``."""

    def __init__(self, w, h, nlabels, *_, num_threads=None, **__):
        for name, v in (("w", w), ("h", h)):
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        super().__init__(int(w) * int(h), nlabels, num_threads=num_threads)
        self._w = int(w)
        self._h = int(h)

    def _xy(self, sxy):
        if isinstance(sxy, numbers.Number):
            sxy = (sxy, sxy)
        sx, sy = (check_positive_finite(s, "sxy") for s in tuple(sxy))
        ys, xs = np.mgrid[0:self._h, 0:self._w]
        return np.stack([xs.reshape(-1).astype(np.float32) / np.float32(sx),
                         ys.reshape(-1).astype(np.float32) / np.float32(sy)])

    def addPairwiseGaussian(self, sxy, compat, kernel=DIAG_KERNEL, normalization=NORMALIZE_SYMMETRIC):
        """Add the smoothness kernel on the features ``(x/sx, y/sy)``.

        Parameters
        ----------
        sxy : float or (float, float)
            Spatial standard deviation in pixels, one number or ``(sx, sy)``.
        compat, kernel, normalization
            As in :meth:`DenseCRF.addPairwiseEnergy`.
        """
        self.addPairwiseEnergy(self._xy(sxy), compat, kernel, normalization)

    def addPairwiseBilateral(self, sxy, srgb, rgbim, compat, kernel=DIAG_KERNEL,
                             normalization=NORMALIZE_SYMMETRIC):
        """Add the appearance kernel on the features ``(x/sx, y/sy, r/sr, g/sg, b/sb)``.

        Parameters
        ----------
        sxy : float or (float, float)
            Spatial standard deviation in pixels, one number or ``(sx, sy)``.
        srgb : float or (float, float, float)
            Colour standard deviation, one number or one per channel.
        rgbim : numpy.ndarray or torch.Tensor, uint8 ``[h, w, 3]``
            The image (other channel counts: build the features with
            :func:`~segengine.densecrf.utils.create_pairwise_bilateral` and call
            :meth:`DenseCRF.addPairwiseEnergy`).
        compat, kernel, normalization
            As in :meth:`DenseCRF.addPairwiseEnergy`.
        """
        if isinstance(rgbim, torch.Tensor):
            rgbim = rgbim.detach().cpu().numpy()
        rgbim = np.asarray(rgbim)
        if rgbim.dtype != np.uint8:
            raise TypeError(f"rgbim must be uint8 [h, w, 3] (as in pydensecrf), got dtype {rgbim.dtype}")
        if rgbim.ndim != 3 or rgbim.shape[0] != self._h or rgbim.shape[1] != self._w:
            raise ValueError(f"Bad shape for pairwise bilateral (Need {(self._h, self._w, 3)}, got {rgbim.shape})")
        if rgbim.shape[2] != 3:
            raise ValueError("addPairwiseBilateral only works for RGB images. For other types, use "
                             "`utils.create_pairwise_bilateral` to construct your own pairwise energy and "
                             "add it through `addPairwiseEnergy`.")
        if isinstance(srgb, numbers.Number):
            srgb = (srgb, srgb, srgb)
        srgb = tuple(check_positive_finite(s, "srgb") for s in tuple(srgb))
        if len(srgb) != 3:
            raise ValueError(f"srgb must be a number or 3 numbers, got {len(srgb)}")
        col = rgbim.reshape(-1, 3).T.astype(np.float32) / np.array(srgb, np.float32)[:, None]
        self.addPairwiseEnergy(np.concatenate([self._xy(sxy), col]), compat, kernel, normalization)
