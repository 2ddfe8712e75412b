"""Fused bilinear upsampling: argmax and cross-entropy without full-resolution logits.

``upsample_argmax(logits, ...)`` equals
``F.interpolate(logits, ..., mode="bilinear", align_corners=...).argmax(1)`` and
``upsample_cross_entropy(logits, target, ...)`` equals
``F.cross_entropy(F.interpolate(logits, size=target.shape[-2:], mode="bilinear", ...), target, ...)``,
but neither ever holds a ``[B, C, H, W]`` tensor: each output row is interpolated,
reduced over the classes and dropped.

Arithmetic: float32 and float64 logits are interpolated with PyTorch's own source-index
formula and operation order, fused multiply-adds included where PyTorch's kernels use
them (its AVX2/AVX512 CPU builds and CUDA), so labels are identical to the composite.
float16 and bfloat16 logits are computed in float32: the result equals the composite run
on ``logits.float()``. ``torch.autocast`` needs no special handling for the same reason.
"""

from __future__ import annotations

import math
import platform
from typing import Callable, NamedTuple, Optional

import numpy as np
import torch

from segengine._codes import Reduction
from segengine.ops._common import (as_tensor, check_float, check_ndim, check_nonempty,
                                   op_threads, run_threads, to_output)
from segengine.ops._library import define, register_autograd, register_fake, register_kernel
from segengine.ops._memory import check_working_set

__all__ = ["upsample_argmax", "upsample_cross_entropy"]

# the ``reduction`` argument -> the code handed to the op (csrc/common/seg_codes.h)
_REDUCTIONS = {"none": Reduction.NONE, "mean": Reduction.MEAN, "sum": Reduction.SUM}
_INT64_MIN, _INT64_MAX = -2**63, 2**63 - 1


def _cy():
    from segengine._cy import _upsample
    return _upsample


def _np(t: Optional[torch.Tensor]) -> Optional[np.ndarray]:
    """numpy view of a contiguous CPU tensor for the binding (None stays None)."""
    return None if t is None else t.detach().numpy()


def torch_uses_fma_cpu() -> bool:
    """Whether PyTorch's bilinear CPU kernel contracts its products into FMAs (its CUDA
    kernel always does, as csrc/cuda/upsample.cu)."""
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64", "i686", "x86"):
        return torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512")
    return machine in ("aarch64", "arm64")


# --------------------------------------------------------------------------- sizes

def _pair(value, name):
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise ValueError(f"{name} must be a number or a pair (H, W), got {value!r}")
        return tuple(value)
    return (value, value)


def output_size(h: int, w: int, size, scale_factor) -> tuple[int, int, float, float]:
    """Output ``(H, W)`` and the scale factors handed to the kernel (-1: size given).

    Follows ``F.interpolate``: exactly one of ``size`` / ``scale_factor``; with a scale
    factor the size is ``floor(in * scale)`` and the scale itself drives the source index.
    """
    if (size is None) == (scale_factor is None):
        raise ValueError("give exactly one of size or scale_factor")
    if size is not None:
        H, W = _pair(size, "size")
        for v in (H, W):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer, torch.SymInt)) or v < 1:
                raise ValueError(f"size must hold positive ints, got {size!r}")
            if v > _INT64_MAX:
                raise ValueError(f"size must hold ints below 2**63, got {size!r}")
        # a SymInt (a traced size, e.g. x.shape[-2:] under torch.export with dynamic shapes)
        # stays symbolic: int() would specialise the graph to the example's size
        return tuple(v if isinstance(v, torch.SymInt) else int(v) for v in (H, W)) + (-1.0, -1.0)
    sh, sw = _pair(scale_factor, "scale_factor")
    for v in (sh, sw):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) \
                or not math.isfinite(v) or v <= 0:
            raise ValueError(f"scale_factor must hold positive finite numbers, got {scale_factor!r}")
    H, W = math.floor(float(h * sh)), math.floor(float(w * sw))
    if H < 1 or W < 1:
        raise ValueError(f"scale_factor {scale_factor!r} gives an empty output ({H}x{W}) "
                         f"for an input of {h}x{w}")
    if H > _INT64_MAX or W > _INT64_MAX:
        raise ValueError(f"scale_factor {scale_factor!r} gives an output of {H}x{W} for an input "
                         f"of {h}x{w}; H and W must stay below 2**63")
    return H, W, float(sh), float(sw)


def _compute_logits(logits: torch.Tensor) -> torch.Tensor:
    """Contiguous NCHW float32/float64 copy-or-view of the logits (half types -> float32)."""
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()
    return logits.contiguous()


def _check_output_numel(B: int, H: int, W: int, what: str) -> None:
    """ValueError when the int64 output ``[B, H, W]`` has a byte size beyond int64."""
    if 8 * B * H * W > _INT64_MAX:
        raise ValueError(f"{what}: the output [B, H, W] = [{B}, {H}, {W}] is too large "
                         f"(8*B*H*W bytes must stay below 2**63)")


def _logits_copy_bytes(logits: torch.Tensor) -> int:
    """Bytes of the copy :func:`_compute_logits` makes (0 when it is a view)."""
    if logits.dtype in (torch.float16, torch.bfloat16):
        return 4 * logits.numel()
    return 0 if logits.is_contiguous() else logits.element_size() * logits.numel()


def _check_ignore_index(ignore_index) -> int:
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, (int, np.integer)):
        raise TypeError(f"ignore_index must be an int, got {ignore_index!r}")
    if not _INT64_MIN <= ignore_index <= _INT64_MAX:
        raise ValueError(f"ignore_index must lie in the int64 range [-2**63, 2**63), got {ignore_index!r}")
    return int(ignore_index)


# --------------------------------------------------------------------------- argmax op

_upsample_argmax_op = define(
    "upsample_argmax(Tensor logits, SymInt out_h, SymInt out_w, float scale_h, float scale_w, "
    "bool align_corners, bool return_confidence, int num_threads) -> (Tensor, Tensor)")


def argmax_outputs(x: torch.Tensor, out_h: int, out_w: int, return_confidence: bool):
    """Empty ``labels`` (int64 ``[B, H, W]``) and ``confidence`` (float32 ``[B, H, W]``, or
    ``[0]`` without confidence) on the device of ``x``."""
    B = x.shape[0]
    labels = torch.empty((B, out_h, out_w), dtype=torch.int64, device=x.device)
    conf = torch.empty((B, out_h, out_w) if return_confidence else (0,), dtype=torch.float32,
                       device=x.device)
    return labels, conf


@register_kernel("upsample_argmax", "cpu")
def _upsample_argmax_cpu(logits, out_h, out_w, scale_h, scale_w, align_corners,
                         return_confidence, num_threads):
    """The CPU kernel: csrc/cpu/upsample.cpp through segengine._cy._upsample."""
    x = _compute_logits(logits)
    labels, conf = argmax_outputs(x, out_h, out_w, return_confidence)
    _cy().upsample_argmax(_np(x), out_h, out_w, align_corners, scale_h, scale_w,
                          torch_uses_fma_cpu(), _np(labels),
                          _np(conf) if return_confidence else None, run_threads(num_threads))
    return labels, conf


@register_fake("upsample_argmax")
def _(logits, out_h, out_w, scale_h, scale_w, align_corners, return_confidence, num_threads):
    B = logits.shape[0]
    labels = logits.new_empty((B, out_h, out_w), dtype=torch.int64)
    conf = logits.new_empty((B, out_h, out_w) if return_confidence else (0,), dtype=torch.float32)
    return labels, conf


def upsample_argmax(logits, size=None, scale_factor=None, align_corners: bool = False,
                    return_confidence: bool = False, num_threads: Optional[int] = None):
    """Bilinear upsampling fused with argmax over the classes.

    Parameters
    ----------
    logits : torch.Tensor or numpy.ndarray, shape ``[B, C, h, w]``
        float16, bfloat16, float32 or float64; any strides (channels-last included).
    size : int or (int, int), optional
        Output ``(H, W)``. Give exactly one of ``size`` and ``scale_factor``.
    scale_factor : float or (float, float), optional
        As in ``F.interpolate``: ``H = floor(h * scale)`` and the scale drives the
        source-index formula (``recompute_scale_factor=None``).
    align_corners : bool
        As in ``F.interpolate``.
    return_confidence : bool
        Also return the softmax probability of the winning class.
    num_threads : int, optional
        CPU threads; None means ``torch.get_num_threads()``.

    Returns
    -------
    labels : int64, shape ``[B, H, W]``
        ``F.interpolate(logits, ..., mode="bilinear").argmax(1)``: lowest index on ties,
        the first NaN wins as in ``torch.argmax``.
    confidence : float32, shape ``[B, H, W]``
        Only with ``return_confidence=True``.

    Notes
    -----
    Numpy in gives numpy out; a tensor in gives tensors on its device. Not differentiable.
    """
    t, was_numpy = as_tensor(logits, "logits")
    check_ndim(t, "logits", 4, "[B, C, h, w]")
    check_float(t, "logits")
    check_nonempty(t, "logits")
    H, W, sh, sw = output_size(t.shape[2], t.shape[3], size, scale_factor)
    B = t.shape[0]
    _check_output_numel(B, H, W, "upsample_argmax")
    # the working-set guard (host memory: CPU tensors), before any conversion
    if t.device.type == "cpu" and not torch.compiler.is_compiling():
        check_working_set(_logits_copy_bytes(t) + B * H * W * (12 if return_confidence else 8),
                          f"upsample_argmax of logits {tuple(t.shape)} to {H}x{W}")
    labels, conf = _upsample_argmax_op(t, H, W, sh, sw, bool(align_corners),
                                       bool(return_confidence), op_threads(num_threads))
    if return_confidence:
        return to_output(labels, was_numpy), to_output(conf, was_numpy)
    return to_output(labels, was_numpy)


# --------------------------------------------------------------------------- cross-entropy

def target_error(value: int, C: int, ignore_index: int) -> ValueError:
    """The error of a target value outside ``[0, C)`` that is not ``ignore_index``."""
    return ValueError(f"target holds {value}, outside [0, {C}) and not ignore_index={ignore_index}")


def _count_targets_cpu(target: torch.Tensor, C: int, ignore_index: int) -> torch.Tensor:
    """Class counts ``[C]`` (int64) of the non-ignored values of the contiguous int64 CPU
    ``target``; ValueError on a value outside ``[0, C)``. Runs before any kernel."""
    counts = torch.zeros(C, dtype=torch.int64)
    bad = _cy().target_histogram(_np(target).reshape(-1), C, ignore_index, _np(counts))
    if bad >= 0:
        raise target_error(int(target.reshape(-1)[bad]), C, ignore_index)
    return counts


def _normalizers(counts, weight, reduction, label_smoothing, C):
    """(coef_nll, coef_smooth, norm_nll, norm_smooth) as F.cross_entropy weighs its terms."""
    eps = float(label_smoothing)
    if reduction == Reduction.MEAN:
        if weight is None:
            norm_nll = float(counts.sum())
            norm_smooth = norm_nll
        else:
            norm_nll = float((counts.double() * weight.detach().double().cpu()).sum())
            norm_smooth = norm_nll
    else:
        norm_nll = norm_smooth = 1.0
    coef_nll = (1.0 - eps) / norm_nll if norm_nll != 0 else math.nan
    coef_smooth = (eps / C) / norm_smooth if norm_smooth != 0 else math.nan
    if eps == 0.0:
        coef_smooth = 0.0
    return coef_nll, coef_smooth, norm_nll, norm_smooth


def combine_loss(sum_nll, sum_smooth, reduction, label_smoothing, C, norm_nll, norm_smooth):
    """Reduced loss from the sums of the NLL and smoothing terms (float64 tensors)."""
    eps = float(label_smoothing)
    if reduction == Reduction.MEAN:
        nll = sum_nll / norm_nll
        smooth = sum_smooth / norm_smooth
    else:
        nll, smooth = sum_nll, sum_smooth
    return nll if eps == 0.0 else (1.0 - eps) * nll + (eps / C) * smooth


class CrossEntropyCall(NamedTuple):
    """One run of a device's cross-entropy kernels, prepared by :func:`prepare_cross_entropy`.

    ``x``: contiguous float32/float64 ``[B, C, h, w]`` (the compute dtype); ``target``:
    contiguous int64 ``[B, H, W]``, range-checked; ``weight``: contiguous ``[C]`` of ``x.dtype``
    or None; ``grad_pixel``: contiguous ``[B, H, W]`` of ``x.dtype`` (upstream gradient of the
    per-pixel loss) or None; ``coef_*``: gradient coefficients; ``pix_*``: per-pixel loss
    coefficients; ``norm_*``: the normalisers of the reduced loss.
    """
    x: torch.Tensor
    target: torch.Tensor
    weight: Optional[torch.Tensor]
    ignore_index: int
    reduction: int
    label_smoothing: float
    align_corners: bool
    want_loss: bool
    want_grad: bool
    grad_pixel: Optional[torch.Tensor]
    coef_nll: float
    coef_smooth: float
    pix_nll: float
    pix_smooth: float
    norm_nll: float
    norm_smooth: float


def prepare_cross_entropy(count_targets: Callable, logits, target, weight, ignore_index, reduction,
                          label_smoothing, align_corners, want_loss, want_grad,
                          grad_pixel) -> CrossEntropyCall:
    """Compute-dtype inputs, the target check and the loss coefficients of one run.

    ``count_targets(target, C, ignore_index)`` is the device's target check: class counts
    ``[C]`` (int64, CPU) of the non-ignored values, ValueError on a value outside ``[0, C)``.
    """
    x = _compute_logits(logits)
    C = x.shape[1]
    tgt = target.contiguous()
    wt = None if weight is None else weight.to(x.dtype).contiguous()
    counts = count_targets(tgt, C, ignore_index)
    coef_nll, coef_smooth, norm_nll, norm_smooth = _normalizers(
        counts, wt, reduction, label_smoothing, C)
    if reduction == Reduction.NONE:
        coef_nll, coef_smooth = 1.0 - label_smoothing, (label_smoothing / C if label_smoothing else 0.0)
    pix_nll, pix_smooth = 1.0 - label_smoothing, label_smoothing / C
    gp = None if grad_pixel is None else grad_pixel.to(x.dtype).contiguous()
    return CrossEntropyCall(x, tgt, wt, ignore_index, reduction, label_smoothing, align_corners,
                            want_loss, want_grad, gp, coef_nll, coef_smooth, pix_nll, pix_smooth,
                            norm_nll, norm_smooth)


def _ce_run_cpu(logits, target, weight, ignore_index, reduction, label_smoothing, align_corners,
                want_loss, want_grad, grad_pixel, num_threads):
    """Run the CPU kernel once; returns (loss or None, grad or None) in the compute dtype."""
    p = prepare_cross_entropy(_count_targets_cpu, logits, target, weight, ignore_index, reduction,
                              label_smoothing, align_corners, want_loss, want_grad, grad_pixel)
    B, C, h, w = p.x.shape
    H, W = p.target.shape[-2:]
    loss = None
    row_nll = row_smooth = loss_pixel = grad = None
    if want_loss:
        if reduction == Reduction.NONE:
            loss_pixel = torch.empty((B, H, W), dtype=p.x.dtype)
        else:
            row_nll = torch.zeros(B * H, dtype=torch.float64)
            row_smooth = torch.zeros(B * H, dtype=torch.float64)
    if want_grad:
        grad = torch.empty_like(p.x)
    _cy().upsample_cross_entropy(
        _np(p.x), _np(p.target), _np(p.weight), align_corners, torch_uses_fma_cpu(), ignore_index,
        p.coef_nll, p.coef_smooth, p.pix_nll, p.pix_smooth, _np(p.grad_pixel), _np(row_nll),
        _np(row_smooth), _np(loss_pixel), _np(grad), run_threads(num_threads))
    if want_loss:
        if reduction == Reduction.NONE:
            loss = loss_pixel
        else:
            loss = combine_loss(row_nll.sum(), row_smooth.sum(), reduction, label_smoothing, C,
                                p.norm_nll, p.norm_smooth).to(p.x.dtype)
    return loss, grad


def cross_entropy_forward(run: Callable, logits, target, weight, ignore_index, reduction,
                          label_smoothing, align_corners, need_grad, num_threads):
    """Body of the ``upsample_cross_entropy`` op on a device whose kernel runner is ``run``
    (:func:`_ce_run_cpu` or ``_upsample_cuda._ce_run``): (loss, low-resolution gradient or an
    empty tensor), both of ``logits.dtype``."""
    loss, grad = run(logits, target, weight, ignore_index, reduction, label_smoothing,
                     align_corners, True, need_grad and reduction != Reduction.NONE, None,
                     num_threads)
    if grad is None:
        grad = logits.new_empty((0,))
    return loss.to(logits.dtype), grad.to(logits.dtype)


def cross_entropy_backward(run: Callable, grad_loss, logits, target, weight, ignore_index,
                           reduction, label_smoothing, align_corners, num_threads):
    """Body of the ``upsample_cross_entropy_backward`` op on a device whose kernel runner is
    ``run``: the gradient with respect to ``logits`` (``logits.dtype``)."""
    if reduction == Reduction.NONE:
        _, grad = run(logits, target, weight, ignore_index, reduction, label_smoothing,
                      align_corners, False, True, grad_loss, num_threads)
    else:
        _, grad = run(logits, target, weight, ignore_index, reduction, label_smoothing,
                      align_corners, False, True, None, num_threads)
        grad = grad * grad_loss.to(grad.dtype)
    return grad.to(logits.dtype)


_upsample_ce_op = define(
    "upsample_cross_entropy(Tensor logits, Tensor target, Tensor? weight, int ignore_index, "
    "int reduction, float label_smoothing, bool align_corners, bool need_grad, "
    "int num_threads) -> (Tensor, Tensor)")


@register_kernel("upsample_cross_entropy", "cpu")
def _upsample_ce_cpu(logits, target, weight, ignore_index, reduction, label_smoothing,
                     align_corners, need_grad, num_threads):
    """The CPU kernel of the loss (and, for a reduced loss that needs it, the gradient)."""
    return cross_entropy_forward(_ce_run_cpu, logits, target, weight, ignore_index, reduction,
                                 label_smoothing, align_corners, need_grad, num_threads)


@register_fake("upsample_cross_entropy")
def _(logits, target, weight, ignore_index, reduction, label_smoothing, align_corners,
      need_grad, num_threads):
    if reduction == Reduction.NONE:
        loss = logits.new_empty(target.shape)
    else:
        loss = logits.new_empty(())
    grad = logits.new_empty(logits.shape if need_grad and reduction != Reduction.NONE else (0,))
    return loss, grad


_upsample_ce_backward_op = define(
    "upsample_cross_entropy_backward(Tensor grad_loss, Tensor logits, Tensor target, "
    "Tensor? weight, int ignore_index, int reduction, float label_smoothing, "
    "bool align_corners, int num_threads) -> Tensor")


@register_kernel("upsample_cross_entropy_backward", "cpu")
def _upsample_ce_backward_cpu(grad_loss, logits, target, weight, ignore_index, reduction,
                              label_smoothing, align_corners, num_threads):
    """The CPU kernel of the gradient with respect to the logits."""
    return cross_entropy_backward(_ce_run_cpu, grad_loss, logits, target, weight, ignore_index,
                                  reduction, label_smoothing, align_corners, num_threads)


@register_fake("upsample_cross_entropy_backward")
def _(grad_loss, logits, target, weight, ignore_index, reduction, label_smoothing,
      align_corners, num_threads):
    return torch.empty_like(logits)


def _ce_setup_context(ctx, inputs, output):
    logits, target, weight, ignore_index, reduction, label_smoothing, align_corners, _, nt = inputs
    _, grad = output
    ctx.mark_non_differentiable(grad)
    ctx.save_for_backward(logits, target, weight, grad)
    ctx.args = (ignore_index, reduction, label_smoothing, align_corners, nt)


def _ce_backward(ctx, grad_loss, _grad_of_grad):
    logits, target, weight, grad = ctx.saved_tensors
    ignore_index, reduction, label_smoothing, align_corners, nt = ctx.args
    if reduction != Reduction.NONE and grad.numel() > 0:
        g = grad * grad_loss.to(grad.dtype)
    else:
        g = _upsample_ce_backward_op(grad_loss, logits, target, weight, ignore_index, reduction,
                                     label_smoothing, align_corners, nt)
    return g, None, None, None, None, None, None, None, None


register_autograd("upsample_cross_entropy", _ce_backward, setup_context=_ce_setup_context)


def _check_ce_memory(logits: torch.Tensor, target: torch.Tensor, reduction: int,
                     need_grad: bool) -> None:
    """Working-set guard of :func:`upsample_cross_entropy`: the logits' compute copy, the
    int64 copy of the target, the per-row sums, and the per-pixel loss (reduction "none",
    with its cast back) or the low-resolution gradient (with its cast back)."""
    B, C, h, w = logits.shape
    H, W = target.shape[-2:]
    item = 8 if logits.dtype == torch.float64 else 4
    nbytes = _logits_copy_bytes(logits) + 16 * B * H
    if target.dtype != torch.int64 or not target.is_contiguous():
        nbytes += 8 * target.numel()
    if reduction == Reduction.NONE:
        nbytes += (item + logits.element_size()) * B * H * W
    elif need_grad:
        nbytes += (item + logits.element_size()) * logits.numel()
    check_working_set(nbytes, f"upsample_cross_entropy of logits {tuple(logits.shape)} "
                              f"and target {tuple(target.shape)}")


def upsample_cross_entropy(logits, target, weight=None, ignore_index: int = -100,
                           reduction: str = "mean", label_smoothing: float = 0.0,
                           align_corners: bool = False, num_threads: Optional[int] = None):
    """Cross-entropy of bilinearly upsampled logits, without full-resolution tensors.

    Equals ``F.cross_entropy(F.interpolate(logits, size=target.shape[-2:], mode="bilinear",
    align_corners=align_corners), target, weight=weight, ignore_index=ignore_index,
    reduction=reduction, label_smoothing=label_smoothing)``, with its gradient with
    respect to ``logits``. Forward and backward never materialise ``[B, C, H, W]``
    logits, probabilities or gradients; with ``reduction`` "mean" or "sum" the forward
    also forms the (low-resolution) gradient in the same pass when ``logits`` requires it.

    Parameters
    ----------
    logits : torch.Tensor or numpy.ndarray, shape ``[B, C, h, w]``
        float16, bfloat16 (computed in float32), float32 or float64.
    target : integer tensor or array, shape ``[B, H, W]``
        Class indices in ``[0, C)`` or ``ignore_index``; other values raise ValueError
        (checked before any kernel runs).
    weight : tensor, shape ``[C]``, optional
        Per-class weights, as in ``F.cross_entropy``.
    ignore_index : int
        Target value that contributes neither to the loss nor to the gradient.
    reduction : {"mean", "sum", "none"}
        "none" gives the per-pixel loss ``[B, H, W]``.
    label_smoothing : float in [0, 1]
        As in ``F.cross_entropy``.
    align_corners : bool
        As in ``F.interpolate``.
    num_threads : int, optional
        CPU threads; None means ``torch.get_num_threads()``. The CPU result does not
        depend on it (deterministic, gather-based backward).

    Returns
    -------
    loss : torch.Tensor or numpy.ndarray
        ``logits.dtype``, 0-D, or ``[B, H, W]`` for reduction "none".
    """
    t, was_numpy = as_tensor(logits, "logits")
    tgt, _ = as_tensor(target, "target")
    check_ndim(t, "logits", 4, "[B, C, h, w]")
    check_float(t, "logits")
    check_nonempty(t, "logits")
    check_ndim(tgt, "target", 3, "[B, H, W]")
    if tgt.dtype.is_floating_point or tgt.dtype == torch.bool or tgt.dtype.is_complex:
        raise TypeError(f"target must hold integer class indices, got {tgt.dtype}")
    if tgt.shape[0] != t.shape[0]:
        raise ValueError(f"target batch {tgt.shape[0]} does not match logits batch {t.shape[0]}")
    if tgt.numel() == 0:
        raise ValueError(f"target must not be empty, got shape {tuple(tgt.shape)}")
    if tgt.device != t.device:
        raise ValueError(f"target is on {tgt.device} but logits are on {t.device}")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    if not (0.0 <= float(label_smoothing) <= 1.0):
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing!r}")
    C = t.shape[1]
    w = None
    if weight is not None:
        w, _ = as_tensor(weight, "weight")
        if w.dim() != 1 or w.shape[0] != C:
            raise ValueError(f"weight must have shape [{C}], got {tuple(w.shape)}")
        if not w.dtype.is_floating_point:
            raise TypeError(f"weight must be floating point, got {w.dtype}")
        if w.device != t.device:
            raise ValueError(f"weight is on {w.device} but logits are on {t.device}")
    red = _REDUCTIONS[reduction]
    ignore_index = _check_ignore_index(ignore_index)
    need_grad = torch.is_grad_enabled() and t.requires_grad
    # the working-set guard (host memory: CPU tensors), before any conversion
    if t.device.type == "cpu" and not torch.compiler.is_compiling():
        _check_ce_memory(t, tgt, red, need_grad)
    loss, _ = _upsample_ce_op(t, tgt.to(torch.int64), w, ignore_index, int(red),
                              float(label_smoothing), bool(align_corners), need_grad,
                              op_threads(num_threads))
    return to_output(loss, was_numpy)


# the CUDA kernels register themselves on import (cupy is imported only at launch)
from segengine.ops import _upsample_cuda  # noqa: E402,F401
