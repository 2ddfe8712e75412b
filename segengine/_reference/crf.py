"""Slow, obviously-correct NumPy dense-CRF mean field (oracle of segengine.dense_crf).

pydensecrf's model, written out: per kernel ``K_k`` (a :class:`ReferenceLattice`), the
normaliser ``n = K_k 1``; per iteration the pairwise term ``sum_k compat_k(norm(K_k, Q))``
and ``Q = softmax(-U - pairwise)``. float32 throughout, like the library.
"""

from __future__ import annotations

import numpy as np

from segengine._reference.lattice import ReferenceLattice

__all__ = ["reference_meanfield", "reference_dense_crf_features"]


def _softmax(e: np.ndarray) -> np.ndarray:
    e = e - e.max(axis=1, keepdims=True)
    x = np.exp(e)
    return (x / x.sum(axis=1, keepdims=True)).astype(np.float32)


def reference_meanfield(unary, kernels, iterations: int, pydensecrf_padding: bool = True) -> np.ndarray:
    """Mean field for one image.

    Parameters
    ----------
    unary : array ``[N, C]``
        Unary energies.
    kernels : list of (features ``[d, N]``, compat, normalization)
        ``compat``: float32 ``[C]`` (added as ``diag``; Potts ``w`` is ``[-w]*C``) or ``[C, C]``
        (added as the matrix, already symmetrised); normalization in
        {"none", "before", "after", "symmetric"}.
    iterations : int
    pydensecrf_padding : bool
        Add the ghost origin vertices when N is not a multiple of 4 (pydensecrf's SSE padding).

    Returns
    -------
    numpy.ndarray
        float32 ``[N, C]`` marginals.
    """
    U = np.asarray(unary, dtype=np.float32)
    N, C = U.shape
    prepared = []
    for feats, compat, norm in kernels:
        lat = ReferenceLattice(feats, ghost_origin=pydensecrf_padding and N % 4 != 0)
        n = lat.filter(np.ones((N, 1), np.float32))[:, 0].astype(np.float64)
        if norm == "symmetric":
            s = (1.0 / np.sqrt(n + 1e-20)).astype(np.float32)
            pre, post = s, s
        elif norm == "after":
            pre, post = None, (1.0 / (n + 1e-20)).astype(np.float32)
        elif norm == "before":
            pre, post = (1.0 / (n + 1e-20)).astype(np.float32), None
        else:
            pre = post = None
        prepared.append((lat, np.asarray(compat, np.float32), pre, post))
    Q = _softmax(-U)
    for _ in range(iterations):
        e = -U
        for lat, compat, pre, post in prepared:
            v = Q if pre is None else Q * pre[:, None]
            s = lat.filter(v)
            if post is not None:
                s = s * post[:, None]
            e = e - (s * compat[None, :] if compat.ndim == 1 else s @ compat.T)
        Q = _softmax(e)
    return Q


def reference_dense_crf_features(image_hwk, gaussian_sxy, bilateral_sxy, bilateral_srgb):
    """pydensecrf's features for an ``[H, W, K]`` image: (x/s, y/s) and (x/s, y/s, I/srgb)."""
    img = np.asarray(image_hwk)
    H, W, K = img.shape
    ys, xs = np.mgrid[0:H, 0:W]
    xs = xs.reshape(-1).astype(np.float32)
    ys = ys.reshape(-1).astype(np.float32)
    g = np.stack([xs / np.float32(gaussian_sxy), ys / np.float32(gaussian_sxy)])
    col = img.reshape(-1, K).T.astype(np.float32) / np.float32(bilateral_srgb)
    b = np.concatenate([np.stack([xs / np.float32(bilateral_sxy), ys / np.float32(bilateral_sxy)]), col])
    return g, b
