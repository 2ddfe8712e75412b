"""CUDA launches of csrc/cuda/upsample.cu for segengine/ops/upsample.py.

Validation and target range checks happen in upsample.py before anything here runs.
"""

from __future__ import annotations

import numpy as np
import torch

from segengine import _cuda

_BLOCK = 256


def taps(size_in: int, size_out: int, align_corners: bool, scale: float, dtype: torch.dtype,
         device: torch.device):
    """Per-axis tap tables (i0, i1, l0, l1) on ``device``, from the CPU implementation."""
    from segengine._cy import _upsample
    arrays = _upsample.axis_taps(size_in, size_out, align_corners, scale, dtype == torch.float64)
    return [torch.from_numpy(a).to(device) for a in arrays]


def support(i0: torch.Tensor, i1: torch.Tensor, size_in: int):
    """For each input index, the range [lo, hi) of output indices whose taps reach it."""
    idx = torch.arange(size_in, device=i0.device)
    lo = torch.searchsorted(i1, idx, right=False)
    hi = torch.searchsorted(i0, idx, right=True)
    return lo.contiguous(), hi.contiguous()


def _suffix(x: torch.Tensor) -> str:
    return "f64" if x.dtype == torch.float64 else "f32"


def _scalar(x: torch.Tensor, v: float):
    return np.float64(v) if x.dtype == torch.float64 else np.float32(v)


def argmax(x, labels, conf, align_corners, scale_h, scale_w):
    B, C, h, w = x.shape
    H, W = labels.shape[1:]
    ty = taps(h, H, align_corners, scale_h, x.dtype, x.device)
    tx = taps(w, W, align_corners, scale_w, x.dtype, x.device)
    k = _cuda.get_kernel(x.device, "upsample", f"upsample_argmax_{_suffix(x)}")
    n = B * H * W
    args = [_cuda.ptr(x), *map(np.int64, (B, C, h, w, H, W)), *map(_cuda.ptr, ty), *map(_cuda.ptr, tx),
            _cuda.ptr(labels), _cuda.ptr(conf)]
    _cuda.launch(k, x.device, _cuda.grid_for(n, _BLOCK), (_BLOCK,), args)


def cross_entropy(x, target, weight, ignore_index, reduction, label_smoothing, align_corners,
                  want_loss, want_grad, grad_pixel, coef_nll, coef_smooth, pix_nll, pix_smooth,
                  norm_nll, norm_smooth):
    """Loss (reduced per ``reduction``) and/or low-resolution gradient on the GPU."""
    from segengine.ops.upsample import _REDUCTIONS, combine_loss
    B, C, h, w = x.shape
    H, W = target.shape[1:]
    ty = taps(h, H, align_corners, -1.0, x.dtype, x.device)
    tx = taps(w, W, align_corners, -1.0, x.dtype, x.device)
    sfx = _suffix(x)
    dims = list(map(np.int64, (B, C, h, w, H, W)))
    loss = grad = None
    if want_loss:
        nll = torch.empty((B, H, W), dtype=x.dtype, device=x.device)
        smooth = torch.empty_like(nll)
        per_pixel = torch.empty_like(nll) if reduction == _REDUCTIONS["none"] else None
        k = _cuda.get_kernel(x.device, "upsample", f"upsample_ce_forward_{sfx}")
        args = [_cuda.ptr(x), _cuda.ptr(target), _cuda.ptr(weight), *dims, *map(_cuda.ptr, ty),
                *map(_cuda.ptr, tx), np.int64(ignore_index), _scalar(x, pix_nll),
                _scalar(x, pix_smooth), _cuda.ptr(nll), _cuda.ptr(smooth), _cuda.ptr(per_pixel)]
        _cuda.launch(k, x.device, _cuda.grid_for(B * H * W, _BLOCK), (_BLOCK,), args)
        if per_pixel is not None:
            loss = per_pixel
        else:
            loss = combine_loss(nll.sum(dtype=torch.float64), smooth.sum(dtype=torch.float64),
                                reduction, label_smoothing, C, norm_nll, norm_smooth).to(x.dtype)
    if want_grad:
        grad = torch.empty_like(x)
        ylo, yhi = support(ty[0], ty[1], h)
        xlo, xhi = support(tx[0], tx[1], w)
        k = _cuda.get_kernel(x.device, "upsample", f"upsample_ce_backward_{sfx}")
        args = [_cuda.ptr(x), _cuda.ptr(target), _cuda.ptr(weight), _cuda.ptr(grad_pixel), *dims,
                *map(_cuda.ptr, ty), *map(_cuda.ptr, tx), _cuda.ptr(ylo), _cuda.ptr(yhi),
                _cuda.ptr(xlo), _cuda.ptr(xhi), np.int64(ignore_index), _scalar(x, coef_nll),
                _scalar(x, coef_smooth), _cuda.ptr(grad)]
        _cuda.launch(k, x.device, _cuda.grid_for(B * h * w, _BLOCK), (_BLOCK,), args)
    return loss, grad
