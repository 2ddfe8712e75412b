"""Pure-PyTorch reference of the DenseCRF layer: the same lattice tensors, with splat,
blur and slice written as ``index_add`` / gather so that autograd differentiates them.

It is the oracle for the gradients of :class:`segengine.nn.DenseCRF` (whose backward
uses the compiled adjoint filter instead).
"""

from __future__ import annotations

import torch

from segengine.nn import DenseCRF


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


def _filter_image(lattice, q: torch.Tensor, reverse: bool = False) -> torch.Tensor:
    B, C = q.shape[:2]
    pm = q.reshape(B, C, -1).transpose(1, 2).reshape(-1, C)
    out = lattice_filter_torch(pm, lattice.offsets, lattice.weights, lattice.neighbors, reverse)
    return out.reshape(B, -1, C).transpose(1, 2).reshape(q.shape)


def dense_crf_layer_reference(layer: DenseCRF, logits: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """``layer(logits, image)`` recomputed with :func:`lattice_filter_torch` on the layer's lattices."""
    kernels = layer.kernels(image, logits.dtype)
    mats = (layer.gaussian_compat.to(logits.dtype), layer.bilateral_compat.to(logits.dtype))
    kw = layer.kernel_weights.to(logits.dtype)

    def apply(kernel, q):
        if layer.normalization == "none":
            return _filter_image(kernel.lattice, q)
        ones = torch.ones_like(q[:, :1])
        k1 = _filter_image(kernel.lattice, ones)
        if layer.normalization == "symmetric":
            n = 1.0 / torch.sqrt(k1 + 1e-20)
            return n * _filter_image(kernel.lattice, n * q)
        return _filter_image(kernel.lattice, q) / k1

    neg_unary = torch.log_softmax(logits, dim=1)
    z = neg_unary
    for _ in range(layer.iterations):
        q = torch.softmax(z, dim=1)
        msg = sum(kw[k] * torch.einsum("ij,bj...->bi...", mats[k], apply(kernels[k], q)) for k in range(2))
        z = neg_unary - msg
    return z
