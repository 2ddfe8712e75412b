"""Pure-PyTorch reference of the DenseCRF layer (CRF-as-RNN), self-contained: its own
features, its own lattice (vectorised NumPy/torch, pydensecrf's float32 numerics), and
splat, blur and slice written as ``index_add`` / gather so that autograd differentiates them.

It is the oracle for the values and gradients of :class:`segengine.nn.DenseCRF` (whose
backward uses the compiled adjoint filter instead). Nothing of the library is used: the
layer is only read for its settings and parameters.
"""

from __future__ import annotations

import numpy as np
import torch

from segengine._reference.crf import reference_dense_crf_features
from segengine._reference.lattice import simplex, vertex_keys

__all__ = ["build_lattice", "lattice_filter_torch", "dense_crf_layer_reference"]


def build_lattice(features, ghost_origin: bool = False):
    """The permutohedral lattice of a batch of points, numbered by sorted vertex key.

    Parameters
    ----------
    features : array or torch.Tensor, float32 ``[B, d, N]``
        Point positions (already divided by the bandwidths).
    ghost_origin : bool
        Also create, per image, the vertices of an all-zero feature point that splats
        nothing (pydensecrf's SSE padding, used when N is not a multiple of 4).

    Returns
    -------
    offsets : torch.Tensor, int64 ``[B*N, d+1]``
        Vertex of each (point, simplex corner); vertices never mix images.
    weights : torch.Tensor, float32 ``[B*N, d+1]``
        Barycentric weights.
    neighbors : torch.Tensor, int64 ``[d+1, M, 2]``
        Blur neighbours of each vertex along each axis (-1: none).
    """
    f = np.asarray(features.detach().cpu() if isinstance(features, torch.Tensor) else features,
                   dtype=np.float32)
    B, d, N = f.shape
    D1 = d + 1
    keys, weights = [], []
    for b in range(B):
        fb = np.concatenate([f[b], np.zeros((d, 1), np.float32)], axis=1) if ghost_origin else f[b]
        rem0, rank, w = simplex(fb)
        k = vertex_keys(rem0, rank)                                  # [N', D1, d]
        keys.append(np.concatenate([np.full(k.shape[:2] + (1,), b), k], axis=2).reshape(-1, D1))
        weights.append(w[:N])
    allkeys = np.concatenate(keys)                                   # [B*N'*D1, 1+d] int64
    Np = N + (1 if ghost_origin else 0)
    # each key as one int64 (mixed radix over the coordinates' ranges, widened by d+1 on each
    # side so that neighbour keys fit too): an exact, order-preserving code for the lookups
    lo = allkeys.min(axis=0) - D1
    span = allkeys.max(axis=0) + D1 - lo + 1
    if float(np.prod(span.astype(np.float64))) >= 2.0**62:
        raise ValueError("build_lattice: vertex keys span too wide a range to pack into int64")
    stride = np.ones(D1, np.int64)
    for i in range(D1 - 2, -1, -1):
        stride[i] = stride[i + 1] * span[i + 1]
    packed = torch.from_numpy((allkeys - lo) @ stride)
    ukeys, inverse = torch.unique(packed, sorted=True, return_inverse=True)
    offsets = inverse.reshape(B, Np, D1)[:, :N].reshape(B * N, D1)
    M = ukeys.shape[0]
    # blur neighbours along axis j: n1 = key - 1 with coordinate j + d, n2 = key + 1 with
    # coordinate j - d (j < d; axis d moves every coordinate by 1); found by binary search
    sorted_keys = ukeys.numpy()
    neighbors = np.full((D1, M, 2), -1, dtype=np.int64)
    for j in range(D1):
        for s, step in enumerate((-1, 1)):
            delta = step * stride[1:].copy()
            if j < d:
                delta[j] = -step * d * stride[1 + j]
            q = sorted_keys + delta.sum()      # sorted queries: numpy's search reuses its bounds
            pos = np.minimum(np.searchsorted(sorted_keys, q), max(M - 1, 0))
            found = sorted_keys[pos] == q if M else np.zeros(0, bool)
            neighbors[j, found, s] = pos[found]
    neighbors = torch.from_numpy(neighbors)
    return offsets, torch.from_numpy(np.concatenate(weights)), neighbors


def lattice_filter_torch(values: torch.Tensor, offsets: torch.Tensor, weights: torch.Tensor,
                         neighbors: torch.Tensor, reverse: bool = False) -> torch.Tensor:
    """Filter points-major ``values`` ``[P, C]`` on a lattice given as tensors
    (``offsets``/``weights`` ``[P, d+1]``, ``neighbors`` ``[d+1, M, 2]``)."""
    P, C = values.shape
    d1 = offsets.shape[1]
    M = neighbors.shape[1]
    idx = offsets.reshape(-1).long()
    w = weights.reshape(-1).to(values.dtype)
    alpha = torch.tensor(1.0, dtype=torch.float32) / (1.0 + torch.tensor(2.0, dtype=torch.float32) ** -(d1 - 1))
    alpha = alpha.to(values.dtype)
    zero = values.new_zeros(1, C)
    V = values.new_zeros(M, C).index_add(0, idx, values.repeat_interleave(d1, dim=0) * w[:, None])
    axes = range(d1 - 1, -1, -1) if reverse else range(d1)
    for j in axes:
        n1 = neighbors[j, :, 0].long()
        n2 = neighbors[j, :, 1].long()
        padded = torch.cat([V, zero])
        n1 = torch.where(n1 < 0, torch.full_like(n1, M), n1)
        n2 = torch.where(n2 < 0, torch.full_like(n2, M), n2)
        V = V + 0.5 * (padded[n1] + padded[n2])
    return (V[idx] * (w * alpha)[:, None]).reshape(P, d1, C).sum(1)


def _filter_image(lattice, q: torch.Tensor) -> torch.Tensor:
    B, C = q.shape[:2]
    pm = q.reshape(B, C, -1).transpose(1, 2).reshape(-1, C)
    out = lattice_filter_torch(pm, *lattice)
    return out.reshape(B, -1, C).transpose(1, 2).reshape(q.shape)


def _features(image: torch.Tensor, gaussian_sxy, bilateral_sxy, bilateral_srgb):
    """Gaussian ``[B, 2, N]`` and bilateral ``[B, 2+K, N]`` features of ``[B, K, H, W]``."""
    img = image.detach().cpu().to(torch.float32).numpy()
    pairs = [reference_dense_crf_features(img[b].transpose(1, 2, 0), gaussian_sxy, bilateral_sxy,
                                          bilateral_srgb) for b in range(img.shape[0])]
    return np.stack([g for g, _ in pairs]), np.stack([b for _, b in pairs])


def dense_crf_layer_reference(layer, logits: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """The layer's forward recomputed from scratch: refined logits ``[B, C, H, W]``.

    Parameters
    ----------
    layer
        Any object with the settings and parameters of ``segengine.nn.DenseCRF``:
        ``iterations``, ``gaussian_sxy``, ``bilateral_sxy``, ``bilateral_srgb``,
        ``normalization`` ("symmetric", "after" or "none"), ``gaussian_compat`` and
        ``bilateral_compat`` (``[C, C]``) and ``kernel_weights`` (``[2]``).
    logits : torch.Tensor, float ``[B, C, H, W]``
    image : torch.Tensor, ``[B, K, H, W]`` in 0..255 (no gradient).

    Returns
    -------
    torch.Tensor
        ``log_softmax(logits) - sum_k a_k M_k (norm K_k) Q`` after ``iterations`` updates,
        differentiable in ``logits`` and the parameters.
    """
    N = logits.shape[2] * logits.shape[3]
    feats = _features(image, layer.gaussian_sxy, layer.bilateral_sxy, layer.bilateral_srgb)
    lattices = [tuple(t.to(logits.device) for t in build_lattice(f, ghost_origin=N % 4 != 0))
                for f in feats]
    mats = (layer.gaussian_compat.to(logits.dtype), layer.bilateral_compat.to(logits.dtype))
    kw = layer.kernel_weights.to(logits.dtype)

    def apply(lattice, q):
        if layer.normalization == "none":
            return _filter_image(lattice, q)
        k1 = _filter_image(lattice, torch.ones_like(q[:, :1]))
        if layer.normalization == "symmetric":
            n = 1.0 / torch.sqrt(k1 + 1e-20)
            return n * _filter_image(lattice, n * q)
        return _filter_image(lattice, q) / (k1 + 1e-20)

    neg_unary = torch.log_softmax(logits, dim=1)
    z = neg_unary
    for _ in range(layer.iterations):
        q = torch.softmax(z, dim=1)
        msg = sum(kw[k] * torch.einsum("ij,bj...->bi...", mats[k], apply(lattices[k], q)) for k in range(2))
        z = neg_unary - msg
    return z
