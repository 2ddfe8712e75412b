# distutils: language = c++
# distutils: sources = csrc/cpu/upsample.cpp csrc/cpu/upsample_fma.cpp
# cython: embedsignature=True
"""Cython binding of csrc/cpu/upsample.h: typed memoryviews in, GIL released around every
C++ call, C++ exceptions raised as Python exceptions.

Callers pass C-contiguous arrays (numpy views of contiguous CPU tensors, ``t.numpy()``);
the element type picks the float or double kernel (``real``: float32 or float64, the same
for every ``real`` argument of one call). Optional buffers are None.
"""

from libc.stdint cimport int64_t
from libcpp.vector cimport vector

import numpy as np

ctypedef fused real:
    float
    double

cdef extern from "upsample.h" namespace "seg" nogil:
    void c_argmax "seg::upsample_argmax"[T](
        const T*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
        bint, double, double, bint, int64_t*, float*, int) except +

    cdef cppclass CrossEntropyArgs:
        const int64_t* target
        const void* weight
        int64_t ignore_index
        double coef_nll
        double coef_smooth
        double pixel_nll
        double pixel_smooth
        const void* grad_pixel
        double* row_nll
        double* row_smooth
        void* loss_pixel
        void* grad_logits

    void c_cross_entropy "seg::upsample_cross_entropy"[T](
        const T*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, bint, bint,
        const CrossEntropyArgs&, int) except +

    int64_t c_target_histogram "seg::target_histogram"(
        const int64_t*, int64_t, int64_t, int64_t, int64_t*) except +

    cdef cppclass AxisTaps "seg::AxisTaps"[T]:
        vector[int64_t] i0, i1
        vector[T] l0, l1
    AxisTaps[T] c_axis_taps "seg::axis_taps"[T](int64_t, int64_t, bint, double) except +


cdef inline bint _is_shape3(Py_ssize_t* shape, int64_t a, int64_t b, int64_t c) noexcept:
    return shape[0] == a and shape[1] == b and shape[2] == c


def upsample_argmax(const real[:, :, :, ::1] logits, int64_t H, int64_t W, bint align_corners,
                    double scale_h, double scale_w, bint use_fma, int64_t[:, :, ::1] labels,
                    float[:, :, ::1] confidence, int num_threads):
    """Fill ``labels`` and, unless None, ``confidence`` from bilinearly upsampled logits.

    Parameters
    ----------
    logits : float32 or float64 array, shape ``[B, C, h, w]``, C-contiguous
    H, W : int
        Output size.
    align_corners : bool
    scale_h, scale_w : float
        User scale factors (-1 when a size was given).
    use_fma : bool
        Contract the interpolation into fused multiply-adds (as PyTorch's kernel does).
    labels : int64 array, shape ``[B, H, W]``, C-contiguous (written)
    confidence : float32 array, shape ``[B, H, W]``, C-contiguous (written), or None
    num_threads : int
        OpenMP threads (>= 1).
    """
    cdef int64_t B = logits.shape[0], C = logits.shape[1]
    cdef int64_t h = logits.shape[2], w = logits.shape[3]
    if not _is_shape3(labels.shape, B, H, W):
        raise ValueError("labels must have shape [B, H, W]")
    if confidence is not None and not _is_shape3(confidence.shape, B, H, W):
        raise ValueError("confidence must have shape [B, H, W]")
    cdef const real* x = &logits[0, 0, 0, 0]
    cdef int64_t* lab = &labels[0, 0, 0]
    cdef float* conf = NULL
    if confidence is not None:
        conf = &confidence[0, 0, 0]
    with nogil:
        c_argmax(x, B, C, h, w, H, W, align_corners, scale_h, scale_w, use_fma, lab, conf,
                       num_threads)


def upsample_cross_entropy(const real[:, :, :, ::1] logits, const int64_t[:, :, ::1] target,
                           const real[::1] weight, bint align_corners, bint use_fma,
                           int64_t ignore_index, double coef_nll, double coef_smooth,
                           double pixel_nll, double pixel_smooth, const real[:, :, ::1] grad_pixel,
                           double[::1] row_nll, double[::1] row_smooth, real[:, :, ::1] loss_pixel,
                           real[:, :, :, ::1] grad_logits, int num_threads):
    """Cross-entropy of bilinearly upsampled logits (see csrc/cpu/upsample.h for the terms).

    Parameters
    ----------
    logits : float32 or float64 array, shape ``[B, C, h, w]``, C-contiguous
    target : int64 array, shape ``[B, H, W]``, C-contiguous
        Values in ``[0, C)`` or ``ignore_index`` (checked by the caller).
    weight : array of the logits' dtype, shape ``[C]``, or None
    align_corners, use_fma : bool
    ignore_index : int
    coef_nll, coef_smooth : float
        Gradient coefficients of the NLL and label-smoothing terms.
    pixel_nll, pixel_smooth : float
        Per-pixel loss = ``pixel_nll * nll + pixel_smooth * smooth``.
    grad_pixel : array of the logits' dtype, shape ``[B, H, W]``, or None (upstream gradient 1)
    row_nll, row_smooth : float64 arrays, shape ``[B * H]`` (written), or None
        Per output row sums of the NLL and smoothing terms.
    loss_pixel : array of the logits' dtype, shape ``[B, H, W]`` (written), or None
    grad_logits : array of the logits' dtype, shape ``[B, C, h, w]`` (written), or None
    num_threads : int
        OpenMP threads (>= 1).
    """
    cdef int64_t B = logits.shape[0], C = logits.shape[1]
    cdef int64_t h = logits.shape[2], w = logits.shape[3]
    cdef int64_t H = target.shape[1], W = target.shape[2]
    if target.shape[0] != B:
        raise ValueError("target must have shape [B, H, W]")
    if weight is not None and weight.shape[0] != C:
        raise ValueError("weight must have shape [C]")
    if grad_pixel is not None and not _is_shape3(grad_pixel.shape, B, H, W):
        raise ValueError("grad_pixel must have shape [B, H, W]")
    if loss_pixel is not None and not _is_shape3(loss_pixel.shape, B, H, W):
        raise ValueError("loss_pixel must have shape [B, H, W]")
    if row_nll is not None and row_nll.shape[0] != B * H:
        raise ValueError("row_nll must have shape [B * H]")
    if row_smooth is not None and row_smooth.shape[0] != B * H:
        raise ValueError("row_smooth must have shape [B * H]")
    if grad_logits is not None and not (_is_shape3(grad_logits.shape, B, C, h)
                                        and grad_logits.shape[3] == w):
        raise ValueError("grad_logits must have shape [B, C, h, w]")
    cdef CrossEntropyArgs a
    a.target = &target[0, 0, 0]
    a.weight = NULL
    a.grad_pixel = NULL
    a.row_nll = NULL
    a.row_smooth = NULL
    a.loss_pixel = NULL
    a.grad_logits = NULL
    a.ignore_index = ignore_index
    a.coef_nll = coef_nll
    a.coef_smooth = coef_smooth
    a.pixel_nll = pixel_nll
    a.pixel_smooth = pixel_smooth
    if weight is not None:
        a.weight = &weight[0]
    if grad_pixel is not None:
        a.grad_pixel = &grad_pixel[0, 0, 0]
    if row_nll is not None:
        a.row_nll = &row_nll[0]
    if row_smooth is not None:
        a.row_smooth = &row_smooth[0]
    if loss_pixel is not None:
        a.loss_pixel = &loss_pixel[0, 0, 0]
    if grad_logits is not None:
        a.grad_logits = &grad_logits[0, 0, 0, 0]
    cdef const real* x = &logits[0, 0, 0, 0]
    with nogil:
        c_cross_entropy(x, B, C, h, w, H, W, align_corners, use_fma, a, num_threads)


def target_histogram(const int64_t[::1] target, int64_t C, int64_t ignore_index,
                     int64_t[::1] counts):
    """Count each class of ``target`` (int64, flat) into ``counts`` (int64 ``[C]``, written).

    Returns the flat index of the first value outside ``[0, C)`` that is not
    ``ignore_index``, or -1.
    """
    if counts.shape[0] != C:
        raise ValueError("counts must have shape [C]")
    cdef int64_t n = target.shape[0]
    cdef const int64_t* t = NULL
    cdef int64_t* out = NULL
    if n > 0:
        t = &target[0]
    if C > 0:
        out = &counts[0]
    cdef int64_t bad
    with nogil:
        bad = c_target_histogram(t, n, C, ignore_index, out)
    return bad


def axis_taps(int64_t size_in, int64_t size_out, bint align_corners, double scale, bint is_double):
    """Source taps of every output index along one axis, PyTorch's bilinear formula.

    Returns
    -------
    i0, i1 : int64 arrays, shape ``[size_out]``
        The two source indices.
    l0, l1 : float32 (float64 when ``is_double``) arrays, shape ``[size_out]``
        Their weights.
    """
    cdef AxisTaps[float] tf
    cdef AxisTaps[double] td
    if is_double:
        with nogil:
            td = c_axis_taps[double](size_in, size_out, align_corners, scale)
        return (np.asarray(td.i0, dtype=np.int64), np.asarray(td.i1, dtype=np.int64),
                np.asarray(td.l0, dtype=np.float64), np.asarray(td.l1, dtype=np.float64))
    with nogil:
        tf = c_axis_taps[float](size_in, size_out, align_corners, scale)
    return (np.asarray(tf.i0, dtype=np.int64), np.asarray(tf.i1, dtype=np.int64),
            np.asarray(tf.l0, dtype=np.float32), np.asarray(tf.l1, dtype=np.float32))
