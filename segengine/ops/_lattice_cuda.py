"""CUDA kernels of the permutohedral lattice ops (``csrc/cuda/permutohedral.cu``).

Registers the CUDA kernels of ``segengine::lattice_build`` and ``segengine::lattice_filter``
(imported by :mod:`segengine.ops.lattice` once the ops are defined). Every launch goes
through :func:`segengine._cuda.launch`, so tests run these drivers on CPU tensors with the
emulated launcher (``_cuda.set_launcher(emulate.launcher(...))``). CuPy is imported only at
the first launch.

The build is sort-based: ``lattice_keys`` writes one key row (image index, d coordinates)
per (point, simplex corner); ``torch.unique(dim=0)`` sorts and deduplicates them and its
inverse gives the vertex of every entry; a stable sort of the inverse gives the splat CSR;
``lattice_neighbors`` finds the blur neighbours by binary search in the sorted keys.
"""

from __future__ import annotations

import numpy as np
import torch

from segengine import _cuda
from segengine.ops._library import register_kernel

__all__ = ["build", "filter_values"]

SOURCE = "permutohedral"   # csrc/cuda/permutohedral.cu
BLOCK = 256


def _launch(device: torch.device, name: str, n: int, args) -> None:
    """Launch ``name`` over ``n`` work items (1-D grid, grid-stride loops)."""
    _cuda.launch(device, SOURCE, name, _cuda.grid_for(n, BLOCK), (BLOCK,), args)


def _suffix(dtype: torch.dtype) -> str:
    return "f32" if dtype == torch.float32 else "f64"


def _keys(features: torch.Tensor):
    """Barycentric weights float32 ``[P, d+1]``, vertex keys int32 ``[P*(d+1), d+1]`` and the
    status flag int32 ``[1]`` (1: a point too large or not finite) of features ``[B, d, N]``."""
    B, d, N = features.shape
    dev = features.device
    P = B * N
    weights = torch.empty((P, d + 1), dtype=torch.float32, device=dev)
    keys = torch.empty((P * (d + 1), d + 1), dtype=torch.int32, device=dev)
    status = torch.zeros(1, dtype=torch.int32, device=dev)
    if P:
        _launch(dev, "lattice_keys", P, [features, np.int64(B), np.int32(d), np.int64(N),
                                         weights, keys, status])
    return weights, keys, status


def build(features: torch.Tensor, ghost_origin: bool = False):
    """The lattice of float32 ``features`` ``[B, d, N]`` (contiguous, on a CUDA device or,
    under the emulated launcher, the CPU).

    Returns
    -------
    tuple of torch.Tensor
        ``(offsets, weights, neighbors, splat_ptr, splat_pt, splat_w, batch_vertices)`` as
        documented in :mod:`segengine.ops.lattice` (vertices numbered in sorted key order,
        not in first-occurrence order as on the CPU).

    Raises
    ------
    ValueError
        When an elevated coordinate reaches 2^22 (features too large for the keys).
    """
    B, d, N = features.shape
    dev = features.device
    P = B * N
    E = P * (d + 1)
    weights, keys, status = _keys(features)
    if ghost_origin and B:
        # the vertices of one all-zero feature point per image: they splat nothing
        _, gkeys, _ = _keys(torch.zeros((B, d, 1), dtype=torch.float32, device=dev))
        keys = torch.cat([keys, gkeys])
    if int(status.item()):
        raise ValueError("features too large for the lattice (an elevated coordinate reached 2^22); "
                         "use larger bandwidths")
    ukeys, inverse = torch.unique(keys, dim=0, sorted=True, return_inverse=True)
    ukeys = ukeys.contiguous()  # lexicographically sorted rows: binary search in lattice_neighbors
    M = ukeys.shape[0]
    inverse = inverse.reshape(-1)[:E]
    offsets = inverse.to(torch.int32).reshape(P, d + 1)
    neighbors = torch.empty((d + 1, M, 2), dtype=torch.int32, device=dev)
    if M:
        _launch(dev, "lattice_neighbors", (d + 1) * M, [ukeys, np.int64(M), np.int32(d), neighbors])
    order = torch.sort(inverse, stable=True).indices  # entries by vertex, in point order
    splat_pt = torch.div(order, d + 1, rounding_mode="floor").to(torch.int32)
    splat_w = weights.reshape(-1)[order].contiguous()
    counts = torch.bincount(inverse, minlength=M)
    splat_ptr = torch.zeros(M + 1, dtype=torch.int64, device=dev)
    splat_ptr[1:] = torch.cumsum(counts, 0)
    batch_vertices = torch.bincount(ukeys[:, 0].to(torch.int64), minlength=B)[:B]
    return offsets, weights, neighbors, splat_ptr, splat_pt, splat_w, batch_vertices


def filter_values(values, offsets, weights, neighbors, splat_ptr, splat_pt, splat_w, reverse: bool,
                  pre=None, post=None) -> torch.Tensor:
    """Filter points-major ``values`` ``[P, C]`` (float32 or float64, contiguous) on a lattice
    (the tensors of :func:`build`); ``reverse``: the adjoint. ``pre``/``post``: optional
    per-point factors ``[P]`` of the values' dtype applied before the splat / after the slice.
    """
    P, C = values.shape
    d = offsets.shape[1] - 1
    M = neighbors.shape[1]
    dev = values.device
    sfx = _suffix(values.dtype)
    out = torch.empty_like(values)
    if P == 0 or C == 0:
        return out
    V = torch.empty((M, C), dtype=values.dtype, device=dev)
    W = torch.empty_like(V)
    _launch(dev, f"lattice_splat_{sfx}", M * C, [values, pre, np.int64(M), np.int32(C), splat_ptr,
                                                splat_pt, splat_w, V])
    for step in range(d + 1):
        j = d - step if reverse else step
        _launch(dev, f"lattice_blur_{sfx}", M, [V, np.int64(M), np.int32(C), neighbors[j], W])
        V, W = W, V
    _launch(dev, f"lattice_slice_{sfx}", P, [V, np.int64(P), np.int32(C), np.int32(d), offsets,
                                            weights, post, out])
    return out


# ------------------------------------------------------------------ the registered kernels

@register_kernel("lattice_build", "cuda")
def _lattice_build_cuda(features, num_threads, ghost_origin=False):
    return build(features.contiguous(), ghost_origin)


@register_kernel("lattice_filter", "cuda")
def _lattice_filter_cuda(values, offsets, weights, neighbors, splat_ptr, splat_pt, splat_w, reverse,
                         num_threads):
    # contiguous here too: an exported graph may pass a strided view (see lattice.py)
    return filter_values(values.contiguous(), offsets, weights, neighbors, splat_ptr, splat_pt,
                         splat_w, reverse)
