"""Slow, obviously-correct references for the fused upsampling ops.

``bilinear_numpy`` is an independent per-pixel NumPy implementation of bilinear
resampling (PyTorch's source-index convention, written from the formula, in float64);
the ``*_composite`` functions are the PyTorch compositions the fused ops must equal.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def source_index(o: int, size_in: int, size_out: int, align_corners: bool, scale=None) -> float:
    """Continuous source coordinate of output index ``o`` (float64)."""
    if size_in == size_out:
        return float(o)
    if align_corners:
        return o * (size_in - 1) / (size_out - 1) if size_out > 1 else 0.0
    ratio = 1.0 / scale if scale else size_in / size_out
    return max(ratio * (o + 0.5) - 0.5, 0.0)


def bilinear_numpy(x: np.ndarray, size, align_corners=False, scale=None) -> np.ndarray:
    """Bilinear resampling of ``x`` ``[B, C, h, w]`` to ``size`` ``(H, W)``, in float64."""
    B, C, h, w = x.shape
    H, W = size
    sh, sw = (scale, scale) if not isinstance(scale, (tuple, list)) else scale
    out = np.empty((B, C, H, W), dtype=np.float64)
    for Y in range(H):
        sy = source_index(Y, h, H, align_corners, sh)
        y0 = min(int(math.floor(sy)), h - 1)
        y1 = min(y0 + 1, h - 1)
        ly = min(max(sy - y0, 0.0), 1.0)
        for X in range(W):
            sx = source_index(X, w, W, align_corners, sw)
            x0 = min(int(math.floor(sx)), w - 1)
            x1 = min(x0 + 1, w - 1)
            lx = min(max(sx - x0, 0.0), 1.0)
            top = x[:, :, y0, x0] * (1 - lx) + x[:, :, y0, x1] * lx
            bottom = x[:, :, y1, x0] * (1 - lx) + x[:, :, y1, x1] * lx
            out[:, :, Y, X] = top * (1 - ly) + bottom * ly
    return out


def upsample_argmax_composite(logits: torch.Tensor, size=None, scale_factor=None,
                              align_corners=False, return_confidence=False):
    """``F.interpolate(...).argmax(1)`` (half types upcast to float32 first)."""
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()
    up = F.interpolate(logits, size=size, scale_factor=scale_factor, mode="bilinear",
                       align_corners=align_corners)
    labels = up.argmax(1)
    if return_confidence:
        return labels, up.softmax(1).amax(1).float()
    return labels


def upsample_cross_entropy_composite(logits, target, weight=None, ignore_index=-100,
                                     reduction="mean", label_smoothing=0.0, align_corners=False):
    """``F.cross_entropy(F.interpolate(logits, size=target.shape[-2:]), target, ...)``."""
    up = F.interpolate(logits, size=tuple(target.shape[-2:]), mode="bilinear",
                       align_corners=align_corners)
    return F.cross_entropy(up, target, weight=weight, ignore_index=ignore_index,
                           reduction=reduction, label_smoothing=label_smoothing)
