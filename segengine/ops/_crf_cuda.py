"""CUDA kernel of ``segengine::dense_crf``: lattices built on the GPU, mean field with the
lattice kernels and torch pointwise ops.

Registered for the "cuda" dispatch key (imported by :mod:`segengine.ops.crf` once the op is
defined). The lattice launches go through :mod:`segengine.ops._lattice_cuda` and so through
:func:`segengine._cuda.launch`: tests run :func:`dense_crf_cuda` on CPU tensors under the
emulated launcher. The numerics are those of the C++ mean field (``csrc/cpu/crf.cpp``): the
same unary (:func:`unary_energy`), normalisation (:mod:`segengine.ops._crf_norm`) and
compatibility; only the order of float additions differs.
"""

from __future__ import annotations

import torch

from segengine._codes import Normalization, UnaryKind
from segengine.ops import _lattice_cuda
from segengine.ops._crf_norm import normalizers
from segengine.ops._library import register_kernel

__all__ = ["PROB_CLIP", "unary_energy", "meanfield_torch", "dense_crf_cuda"]

PROB_CLIP = 1e-5   # pydensecrf's unary_from_softmax clip


def unary_energy(t: torch.Tensor, unary_kind: int) -> torch.Tensor:
    """The unary energies ``U`` of the op's input, with torch ops, as the C++ mean field
    computes them in its layout pass.

    Parameters
    ----------
    t : torch.Tensor, float32 ``[B, C, N]``
        Energies, logits or probabilities.
    unary_kind : int
        A :class:`segengine._codes.UnaryKind`: ``ENERGY`` (``U = t``), ``LOGITS``
        (``U = -log_softmax(t)`` over C) or ``PROBABILITIES`` (``U = -log(clip(t, 1e-5, 1))``).

    Returns
    -------
    torch.Tensor
        float32 ``[B, C, N]``.

    Raises
    ------
    ValueError
        For a non-finite energy or logit, or a probability outside ``[0, 1 + 1e-3]``.
    """
    kind = UnaryKind(unary_kind)
    if kind == UnaryKind.ENERGY:
        u = t
    elif kind == UnaryKind.PROBABILITIES:
        p = t.to(torch.float32)
        if p.numel():
            lo, hi = torch.aminmax(p)
            if bool(lo < 0) or bool(hi > 1 + 1e-3):
                raise ValueError("probabilities must lie in [0, 1]")
        u = -torch.log(torch.clamp(p, PROB_CLIP, 1.0))
    else:
        u = -torch.log_softmax(t.to(torch.float32), dim=1)
    if u.numel() and not bool(torch.isfinite(u).all()):
        raise ValueError("logits must be finite (found NaN or Inf)" if kind == UnaryKind.LOGITS
                         else "unary energies must be finite (found NaN or Inf)")
    return u


def meanfield_torch(unary, lattices, normalizations, compats, iterations, filt):
    """Mean field with torch pointwise ops over a lattice filter.

    Parameters
    ----------
    unary : torch.Tensor, float32 ``[P, C]``
        Unary energies, points-major.
    lattices : list
        One lattice per kernel, passed to ``filt`` as given.
    normalizations : list of int
        :class:`segengine._codes.Normalization` code per kernel.
    compats : list of torch.Tensor
        float32 ``[C]`` (diagonal) or ``[C, C]`` (symmetrised matrix) per kernel: the form
        that is added to the energy.
    iterations : int
    filt : callable
        ``filt(values [P, C'], lattice, pre [P] or None, post [P] or None) -> [P, C']``: the
        lattice filter with optional per-point factors before the splat / after the slice.

    Returns
    -------
    torch.Tensor
        float32 ``[P, C]`` marginals.
    """
    P, C = unary.shape
    pres, posts = [], []
    for lat, norm in zip(lattices, normalizations):
        n = None
        if norm != Normalization.NONE:
            ones = torch.ones((P, 1), dtype=torch.float32, device=unary.device)
            n = filt(ones, lat, None, None)[:, 0]
        pre, post = normalizers(n, norm, torch.float32)
        pres.append(None if pre is None else pre.contiguous())
        posts.append(None if post is None else post.contiguous())
    Q = torch.softmax(-unary, dim=1)
    for _ in range(iterations):
        e = -unary
        for lat, pre, post, comp in zip(lattices, pres, posts, compats):
            s = filt(Q.contiguous(), lat, pre, post)
            e = e - (s * comp if comp.dim() == 1 else s @ comp.t())
        Q = torch.softmax(e, dim=1)
    return Q


def _filter(values, lattice, pre, post):
    return _lattice_cuda.filter_values(values, *lattice[:6], False, pre=pre, post=post)


def dense_crf_cuda(unary, features, compats, normalizations, iterations, num_threads,
                   pydensecrf_padding=True, unary_kind=int(UnaryKind.ENERGY)):
    """The op on CUDA tensors (see :func:`segengine.ops.crf.dense_crf` for the arguments):
    ``unary`` float32 ``[B, C, N]`` -> marginals float32 ``[B, C, N]``. ``num_threads`` is
    unused on the GPU."""
    B, C, N = unary.shape
    ghost = bool(pydensecrf_padding) and N % 4 != 0
    u = unary_energy(unary, unary_kind)
    upm = u.transpose(1, 2).reshape(B * N, C).contiguous()
    lattices = [_lattice_cuda.build(f.contiguous(), ghost) for f in features]
    Q = meanfield_torch(upm, lattices, normalizations, compats, iterations, _filter)
    return Q.reshape(B, N, C).transpose(1, 2).contiguous()


register_kernel("dense_crf", "cuda")(dense_crf_cuda)
