"""Binary graph-cut segmentation as a differentiable PyTorch op.

``segengine.graphcut`` solves, per batch item, the exact minimiser of

    E(y) = sum_p unary[1, p] * y_p + unary[0, p] * (1 - y_p) + sum_(p,q) w_pq [y_p != y_q]

over y in {0, 1} on a 2D/3D grid with segengine's own max-flow solver (implicit grid:
neighbours computed, not stored).  Its backward is blackbox differentiation of the solver.

References
----------
Y. Boykov, V. Kolmogorov, "An experimental comparison of min-cut/max-flow algorithms for
energy minimization in vision", TPAMI 2004.
M. Vlastelica, A. Paulus, V. Musil, G. Martius, M. Rolinek, "Differentiation of Blackbox
Combinatorial Solvers", ICLR 2020.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from segengine.ops._common import as_tensor, op_threads, run_threads, to_output
from segengine.ops._grid import check_connectivity, num_offsets, offsets
from segengine.ops._library import define, register_autograd, register_fake, register_kernel
from segengine.ops._memory import check_working_set

__all__ = ["graphcut", "contrast_weights"]


# --------------------------------------------------------------------------- the custom op

_graphcut_op = define("graphcut(Tensor unary, Tensor weights, int connectivity, "
                      "float blackbox_lambda, int num_threads) -> Tensor")


@register_kernel("graphcut", "cpu")
def graphcut_cpu(unary: torch.Tensor, weights: torch.Tensor, connectivity: int,
                 blackbox_lambda: float, num_threads: int) -> torch.Tensor:
    """The CPU kernel: labels ``[B, *S]`` (unary's dtype, values 0/1) of the batch.

    Parameters
    ----------
    unary : Tensor ``[B, 2, *S]``, floating point, on the CPU
    weights : Tensor ``[B, K, *S]`` or ``[1]`` (one weight for every pair), unary's dtype
    connectivity : int
        A connectivity checked by :func:`segengine.ops._grid.check_connectivity`.
    blackbox_lambda : float
        Unused here (the backward's interpolation strength, saved by the autograd setup).
    num_threads : int
        0: ``torch.get_num_threads()``, resolved now.

    Notes
    -----
    Solved in float64 for float64 input, in float32 otherwise (float16/bfloat16 included).
    """
    from segengine._cy import _maxflow as _cy
    B = unary.shape[0]
    spatial = tuple(unary.shape[2:])
    N = math.prod(spatial)
    cdtype = torch.float64 if unary.dtype == torch.float64 else torch.float32
    un = unary.detach().to(cdtype).contiguous().numpy().reshape(-1)
    wn = weights.detach().to(cdtype).contiguous().numpy().reshape(-1)
    seg = np.zeros(B * N, dtype=np.uint8)
    if B and N:
        w_bs, w_sk, w_sp = (0, 0, 0) if wn.size == 1 else (weights.shape[1] * N, N, 1)
        # label 1 <-> sink side: its cost unary[:, 1] is paid by cutting the source arc
        _cy.grid_solve_batch(un[N:], un, 2 * N, wn, w_bs, w_sk, w_sp, spatial, connectivity, B, seg,
                             run_threads(num_threads))
    return torch.from_numpy(seg.reshape((B,) + spatial)).to(unary.dtype)


@register_fake("graphcut")
def _(unary, weights, connectivity, blackbox_lambda, num_threads):
    return unary.new_empty((unary.shape[0],) + tuple(unary.shape[2:]))


def _setup_context(ctx, inputs, output):
    unary, weights, connectivity, lam, num_threads = inputs
    ctx.save_for_backward(unary, weights, output)
    ctx.connectivity = connectivity
    ctx.lam = lam
    ctx.num_threads = num_threads


def _backward(ctx, grad):
    unary, weights, y = ctx.saved_tensors
    lam = ctx.lam
    # Vlastelica et al.: perturb the cost of the solution by lambda * dL/dy and solve again;
    # dL/dcost = -(y - y_lambda) / lambda for a cost-minimising solver.  The cost of y_p = 1
    # relative to y_p = 0 is unary[:, 1] - unary[:, 0]; perturbing channel 1 shifts it.
    perturbed = unary.detach().clone()
    perturbed[:, 1] = perturbed[:, 1] + lam * grad.to(unary.dtype)
    y_lam = _graphcut_op(perturbed, weights.detach(), ctx.connectivity, lam, ctx.num_threads)
    g = -(y - y_lam) / lam
    grad_unary = torch.stack([-g, g], dim=1).to(unary.dtype)
    return grad_unary, None, None, None, None


register_autograd("graphcut", _backward, setup_context=_setup_context)

# the CUDA kernel (a copy to the CPU and back until a GPU solver exists) registers on import
from segengine.ops import _graphcut_cuda  # noqa: E402,F401


# --------------------------------------------------------------------------- the public op

def _check_memory(unary, pairwise, image, spatial, K, B, num_threads):
    """MemoryError before any allocation when the batch's working set cannot fit: one grid
    solve (slot capacities + node state) per thread at once, and per item the weights,
    labels and, with an image, the contrast weights."""
    N = math.prod(spatial)
    size = 8 if unary.dtype == torch.float64 else 4
    solves = min(B, run_threads(num_threads))
    per_solve = N * (2 * K * size + (16 if size == 8 else 12))
    per_item = N * (2 * size + 1 + unary.element_size())
    if isinstance(pairwise, torch.Tensor) and pairwise.dim() > 0:
        per_item += K * N * size
    if image is not None:
        per_item += K * N * (size + 17)
    check_working_set(float(solves) * per_solve + float(B) * per_item,
                      f"graphcut on unary of shape {tuple(unary.shape)}")


def _shift_pairs(spatial, off):
    """Slices (src, dst) selecting p and p + off for all p with both inside the grid."""
    sp, sq = [], []
    for S, o in zip(spatial, off):
        o = int(o)
        start, stop = max(0, -o), S - max(0, o)
        if stop <= start:
            return None
        sp.append(slice(start, stop))
        sq.append(slice(start + o, stop + o))
    return tuple(sp), tuple(sq)


def contrast_weights(image: torch.Tensor, connectivity: int, beta=None) -> torch.Tensor:
    """exp(-beta * ||I_p - I_q||^2) for every forward neighbour pair: ``[B, K, *S]``.

    Parameters
    ----------
    image : Tensor ``[B, C', *S]`` (float)
    connectivity : int
        4/8 (2D) or 6/18/26 (3D); the K offsets of ``segengine.ops._grid.offsets`` (the table there).
    beta : float or None
        None: per batch item, beta = 1 / (2 * mean ||I_p - I_q||^2) over all neighbour pairs
        (0 when the image is constant).

    Returns
    -------
    Tensor ``[B, K, *S]``; entries whose neighbour lies outside the grid are 1 (unused).
    """
    spatial = tuple(image.shape[2:])
    offs = offsets(len(spatial), connectivity)
    B = image.shape[0]
    img = image.detach().to(torch.float64)
    d2 = torch.zeros((B, len(offs)) + spatial, dtype=torch.float64, device=image.device)
    valid = torch.zeros((len(offs),) + spatial, dtype=torch.bool, device=image.device)
    for k, o in enumerate(offs):
        sl = _shift_pairs(spatial, o)
        if sl is None:
            continue
        sp, sq = sl
        diff = img[(slice(None), slice(None)) + sp] - img[(slice(None), slice(None)) + sq]
        d2[(slice(None), k) + sp] = (diff * diff).sum(dim=1)
        valid[(k,) + sp] = True
    if beta is None:
        cnt = valid.sum()
        mean = (d2 * valid).flatten(1).sum(dim=1) / cnt.clamp(min=1)
        b = torch.where(mean > 0, 1.0 / (2.0 * mean.clamp(min=1e-300)), torch.zeros_like(mean))
    else:
        b = torch.full((B,), float(beta), dtype=torch.float64, device=image.device)
    shape = (B,) + (1,) * (d2.dim() - 1)
    return torch.exp(-b.reshape(shape) * d2).to(image.dtype if image.dtype.is_floating_point else torch.float32)


def graphcut(unary, pairwise=1.0, image=None, beta=None, connectivity=None,
             blackbox_lambda: float = 20.0, num_threads=None):
    """Binary graph-cut segmentation of a batch of 2D images or 3D volumes.

    Minimises, for each batch item, ``sum_p unary[k_p, p] + sum_(p,q) w_pq [k_p != k_q]``
    exactly (min-cut/max-flow).  Batch items are solved in parallel threads.

    Parameters
    ----------
    unary : Tensor or ndarray ``[B, 2, H, W]`` or ``[B, 2, D, H, W]`` (floating point)
        ``unary[b, k, p]``: cost of giving pixel p the label k (any sign, finite).  The batch
        axis comes first, the labels second (the layout of :func:`segengine.alpha_expansion`
        with ``batched=True``).
    pairwise : float or Tensor/ndarray ``[B, K, *spatial]``
        Potts weight: a scalar, or one non-negative weight per forward neighbour pair, K being
        2, 4 (2D connectivity 4, 8) or 3, 9, 13 (3D 6, 18, 26), in the order of
        ``segengine.ops._grid.offsets`` (2D 4: right (0, 1), down (1, 0);
        2D 8: (0, 1), (1, -1), (1, 0), (1, 1); 3D 6: (0, 0, 1), (0, 1, 0), (1, 0, 0)).
        ``pairwise[b, k, p]`` weights the pair (p, p + o_k).
    image : Tensor or ndarray ``[B, C', *spatial]``, optional
        Makes the weights contrast-sensitive: ``pairwise * exp(-beta * ||I_p - I_q||^2)``.
    beta : float, optional
        Contrast parameter; None: ``1 / (2 * mean ||I_p - I_q||^2)`` per image.
    connectivity : int, optional
        4 (default) or 8 in 2D; 6 (default), 18 or 26 in 3D.
    blackbox_lambda : float
        Interpolation strength lambda > 0 of the blackbox backward.
    num_threads : int, optional
        Threads for the batch (None: ``torch.get_num_threads()``).

    Returns
    -------
    labels : Tensor or ndarray ``[B, *spatial]``
        dtype of ``unary``, values in {0, 1}, on ``unary``'s device (CUDA inputs are solved
        on the CPU); an ndarray when ``unary`` is one.

    Notes
    -----
    Differentiable with respect to ``unary`` through blackbox differentiation (Vlastelica
    et al. 2020): the backward solves again with ``unary[:, 1] + lambda * grad`` and returns
    ``-(y - y_lambda) / lambda`` on channel 1 and its negative on channel 0.  ``pairwise``
    and ``image`` receive no gradient.

    Examples
    --------
    >>> unary = torch.randn(2, 2, 64, 64, requires_grad=True)
    >>> labels = segengine.graphcut(unary, pairwise=0.5)
    """
    unary, was_numpy = as_tensor(unary, "unary")
    if isinstance(pairwise, np.ndarray) and pairwise.ndim > 0:
        pairwise = as_tensor(pairwise, "pairwise")[0]
    if isinstance(image, np.ndarray):
        image = as_tensor(image, "image")[0]
    if unary.dim() not in (4, 5) or unary.shape[1] != 2:
        raise ValueError(f"unary must have shape [B, 2, H, W] or [B, 2, D, H, W], got {tuple(unary.shape)}")
    if not unary.dtype.is_floating_point:
        raise TypeError(f"unary must be a floating-point tensor, got {unary.dtype}")
    spatial = tuple(unary.shape[2:])
    ndim = len(spatial)
    conn = check_connectivity(ndim, connectivity)
    K = num_offsets(ndim, conn)
    B = unary.shape[0]
    # value checks need the data: skipped while torch.compile traces (shapes are still checked)
    checking = not torch.compiler.is_compiling()
    if checking:   # the working-set guard, before the first pass over the data
        _check_memory(unary, pairwise, image, spatial, K, B, op_threads(num_threads))
    if checking and not bool(torch.isfinite(unary.detach()).all()):
        raise ValueError("unary contains NaN or infinity")
    if not (isinstance(blackbox_lambda, (int, float)) and blackbox_lambda > 0 and math.isfinite(blackbox_lambda)):
        raise ValueError(f"blackbox_lambda must be a positive finite number, got {blackbox_lambda!r}")
    num_threads = op_threads(num_threads)   # 0: torch.get_num_threads() when the op runs
    if isinstance(pairwise, torch.Tensor) and pairwise.dim() > 0:
        if pairwise.shape != (B, K) + spatial:
            raise ValueError(f"pairwise must be a scalar or have shape {(B, K) + spatial} "
                             f"(K={K} for connectivity {conn}), got {tuple(pairwise.shape)}")
        weights = pairwise.detach().to(unary.device, unary.dtype)
    else:
        pw = float(pairwise)
        if math.isfinite(pw) and abs(pw) > torch.finfo(unary.dtype).max:
            raise ValueError(f"pairwise must be representable in the unary's dtype {unary.dtype} "
                             f"(|pairwise| <= {torch.finfo(unary.dtype).max:.6g}), got {pw!r}")
        weights = torch.full((1,), pw, dtype=unary.dtype, device=unary.device)
    if checking and not bool(torch.isfinite(weights).all()):
        raise ValueError("pairwise contains NaN or infinity")
    if checking and weights.numel() and float(weights.min()) < 0:
        raise ValueError(f"pairwise weights must be non-negative, got minimum {float(weights.min())}")
    if image is not None:
        if not isinstance(image, torch.Tensor):
            raise TypeError(f"image must be a torch.Tensor, got {type(image).__name__}")
        if image.dim() != unary.dim() or image.shape[0] != B or tuple(image.shape[2:]) != spatial:
            raise ValueError(f"image must have shape [B, C', *spatial] = [{B}, C', {', '.join(map(str, spatial))}], "
                             f"got {tuple(image.shape)}")
        if checking and not bool(torch.isfinite(image.detach().float()).all()):
            raise ValueError("image contains NaN or infinity")
        if beta is not None and (not math.isfinite(beta) or beta < 0):
            raise ValueError(f"beta must be a non-negative finite number, got {beta!r}")
        cw = contrast_weights(image.to(unary.device), conn, beta).to(unary.dtype)
        weights = (weights.reshape(-1, *([1] * (ndim + 1))) if weights.numel() == 1 else weights) * cw
        weights = weights.expand((B, K) + spatial)
    labels = _graphcut_op(unary.contiguous(), weights.contiguous(), int(conn), float(blackbox_lambda),
                          int(num_threads))
    return to_output(labels, was_numpy)
