"""The CUDA kernels of the fused upsampling ops: csrc/cuda/upsample.cu launched through
:func:`segengine._cuda.launch`.

Registered here with ``register_kernel(name, "cuda")`` for ``upsample_argmax``,
``upsample_cross_entropy`` and ``upsample_cross_entropy_backward`` (schemas, fake kernels and
autograd in :mod:`segengine.ops.upsample`, which imports this module). Validation happens in
the public functions before any op runs; the target range check runs here, on the device,
before any kernel launch. CuPy is imported only when a kernel is launched. Tests run these
functions on CPU tensors with the launcher swapped for the CPU emulation
(``_cuda.set_launcher``).
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from segengine import _cuda
from segengine._codes import Reduction
from segengine.ops._library import register_kernel
from segengine.ops.upsample import (_compute_logits, argmax_outputs, combine_loss,
                                    cross_entropy_backward, cross_entropy_forward,
                                    prepare_cross_entropy, target_error)

_SOURCE = "upsample"
_BLOCK = 256


def taps(size_in: int, size_out: int, align_corners: bool, scale: float, dtype: torch.dtype,
         device: torch.device) -> list[torch.Tensor]:
    """Per-axis tap tables ``[i0, i1, l0, l1]`` on ``device`` (each ``[size_out]``: int64,
    int64 and ``dtype``), from the CPU implementation of PyTorch's source-index formula.

    The tables depend on the sizes alone, so they are made once per (sizes, dtype, device) and
    kept (two host-to-device copies instead of four per call; none when a training loop
    repeats its shapes). They are views of two buffers, read-only to the kernels; each use
    records the current stream on them, so an entry dropped from the cache is not reused by
    the allocator before the kernels that read it have run.
    """
    index = device.index if device.type == "cuda" and device.index is not None else None
    if device.type == "cuda" and index is None:
        index = torch.cuda.current_device()
    ints, reals, n = _taps_cached(size_in, size_out, bool(align_corners), float(scale),
                                  dtype == torch.float64, device.type, index)
    if ints.is_cuda:
        stream = torch.cuda.current_stream(ints.device)
        ints.record_stream(stream)
        reals.record_stream(stream)
    return [ints[:n], ints[n:], reals[:n], reals[n:]]


@functools.lru_cache(maxsize=256)
def _taps_cached(size_in, size_out, align_corners, scale, double, device_type, index):
    from segengine._cy import _upsample
    i0, i1, l0, l1 = _upsample.axis_taps(size_in, size_out, align_corners, scale, double)
    device = torch.device(device_type, index) if index is not None else torch.device(device_type)
    ints = torch.from_numpy(np.concatenate([i0, i1])).to(device)
    reals = torch.from_numpy(np.concatenate([l0, l1])).to(device)
    return ints, reals, len(i0)


def support(i0: torch.Tensor, i1: torch.Tensor, size_in: int):
    """For each input index, the range ``[lo, hi)`` of output indices whose taps reach it
    (two int64 tensors ``[size_in]``)."""
    idx = torch.arange(size_in, device=i0.device)
    lo = torch.searchsorted(i1, idx, right=False)
    hi = torch.searchsorted(i0, idx, right=True)
    return lo.contiguous(), hi.contiguous()


def _suffix(x: torch.Tensor) -> str:
    return "f64" if x.dtype == torch.float64 else "f32"


def _scalar(x: torch.Tensor, v: float):
    return np.float64(v) if x.dtype == torch.float64 else np.float32(v)


# --------------------------------------------------------------------------- argmax

@register_kernel("upsample_argmax", "cuda")
def upsample_argmax(logits, out_h, out_w, scale_h, scale_w, align_corners, return_confidence,
                    num_threads):
    """The CUDA kernel of ``segengine::upsample_argmax`` (``num_threads`` is a CPU setting)."""
    x = _compute_logits(logits)
    B, C, h, w = x.shape
    labels, conf = argmax_outputs(x, out_h, out_w, return_confidence)
    ty = taps(h, out_h, align_corners, scale_h, x.dtype, x.device)
    tx = taps(w, out_w, align_corners, scale_w, x.dtype, x.device)
    args = [x, *map(np.int64, (B, C, h, w, out_h, out_w)), *ty, *tx, labels,
            conf if return_confidence else None]
    _cuda.launch(x.device, _SOURCE, f"upsample_argmax_{_suffix(x)}",
                 _cuda.grid_for(B * out_h * out_w, _BLOCK), (_BLOCK,), args)
    return labels, conf


# --------------------------------------------------------------------------- cross-entropy

def count_targets(target: torch.Tensor, C: int, ignore_index: int) -> torch.Tensor:
    """Class counts ``[C]`` (int64, on the CPU) of the non-ignored values of ``target``,
    computed on its device; ValueError on a value outside ``[0, C)``."""
    valid = target != ignore_index
    bad = valid & ((target < 0) | (target >= C))
    if bool(bad.any()):
        raise target_error(int(target[bad][0]), C, ignore_index)
    return torch.bincount(target[valid], minlength=C).cpu()


def _ce_run(logits, target, weight, ignore_index, reduction, label_smoothing, align_corners,
            want_loss, want_grad, grad_pixel, num_threads):
    """Run the CUDA kernels once; returns (loss or None, grad or None) in the compute dtype.

    The loss is reduced per ``reduction`` (per-pixel ``[B, H, W]`` for NONE); the gradient is
    the low-resolution ``[B, C, h, w]`` one, gathered per input pixel (no atomics)."""
    p = prepare_cross_entropy(count_targets, logits, target, weight, ignore_index, reduction,
                              label_smoothing, align_corners, want_loss, want_grad, grad_pixel)
    x = p.x
    B, C, h, w = x.shape
    H, W = p.target.shape[1:]
    ty = taps(h, H, align_corners, -1.0, x.dtype, x.device)
    tx = taps(w, W, align_corners, -1.0, x.dtype, x.device)
    sfx = _suffix(x)
    dims = list(map(np.int64, (B, C, h, w, H, W)))
    loss = grad = None
    if want_loss:
        nll = torch.empty((B, H, W), dtype=x.dtype, device=x.device)
        smooth = torch.empty_like(nll)
        per_pixel = torch.empty_like(nll) if reduction == Reduction.NONE else None
        args = [x, p.target, p.weight, *dims, *ty, *tx, np.int64(ignore_index),
                _scalar(x, p.pix_nll), _scalar(x, p.pix_smooth), nll, smooth, per_pixel]
        _cuda.launch(x.device, _SOURCE, f"upsample_ce_forward_{sfx}",
                     _cuda.grid_for(B * H * W, _BLOCK), (_BLOCK,), args)
        if per_pixel is not None:
            loss = per_pixel
        else:
            loss = combine_loss(nll.sum(dtype=torch.float64), smooth.sum(dtype=torch.float64),
                                reduction, label_smoothing, C, p.norm_nll,
                                p.norm_smooth).to(x.dtype)
    if want_grad:
        grad = torch.empty_like(x)
        ylo, yhi = support(ty[0], ty[1], h)
        xlo, xhi = support(tx[0], tx[1], w)
        args = [x, p.target, p.weight, p.grad_pixel, *dims, *ty, *tx, ylo, yhi, xlo, xhi,
                np.int64(ignore_index), _scalar(x, p.coef_nll), _scalar(x, p.coef_smooth), grad]
        _cuda.launch(x.device, _SOURCE, f"upsample_ce_backward_{sfx}",
                     _cuda.grid_for(B * h * w, _BLOCK), (_BLOCK,), args)
    return loss, grad


@register_kernel("upsample_cross_entropy", "cuda")
def upsample_cross_entropy(logits, target, weight, ignore_index, reduction, label_smoothing,
                           align_corners, need_grad, num_threads):
    """The CUDA kernel of ``segengine::upsample_cross_entropy``: (loss, gradient or empty)."""
    return cross_entropy_forward(_ce_run, logits, target, weight, ignore_index, reduction,
                                 label_smoothing, align_corners, need_grad, num_threads)


@register_kernel("upsample_cross_entropy_backward", "cuda")
def upsample_cross_entropy_backward(grad_loss, logits, target, weight, ignore_index, reduction,
                                    label_smoothing, align_corners, num_threads):
    """The CUDA kernel of ``segengine::upsample_cross_entropy_backward``."""
    return cross_entropy_backward(_ce_run, grad_loss, logits, target, weight, ignore_index,
                                  reduction, label_smoothing, align_corners, num_threads)
