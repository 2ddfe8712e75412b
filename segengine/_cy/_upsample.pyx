# distutils: language = c++
# distutils: sources = csrc/cpu/upsample.cpp csrc/cpu/upsample_fma.cpp
"""Cython binding of csrc/cpu/upsample.h: raw pointers in, GIL released."""

from libc.stdint cimport int64_t, uintptr_t
from libcpp.vector cimport vector

import numpy as np

cdef extern from "upsample.h" namespace "seg" nogil:
    void c_argmax_f "seg::upsample_argmax<float>"(
        const float*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
        bint, double, double, bint, int64_t*, float*, int) except +
    void c_argmax_d "seg::upsample_argmax<double>"(
        const double*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
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

    void c_ce_f "seg::upsample_cross_entropy<float>"(
        const float*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, bint, bint,
        const CrossEntropyArgs&, int) except +
    void c_ce_d "seg::upsample_cross_entropy<double>"(
        const double*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, bint, bint,
        const CrossEntropyArgs&, int) except +


def upsample_argmax(uintptr_t logits, bint is_double, int64_t B, int64_t C, int64_t h, int64_t w,
                    int64_t H, int64_t W, bint align_corners, double scale_h, double scale_w,
                    bint use_fma, uintptr_t labels, uintptr_t confidence, int num_threads):
    """Fill ``labels`` (int64 [B, H, W]) and optionally ``confidence`` (float32 [B, H, W], 0 = none)
    from contiguous logits [B, C, h, w] (float32, or float64 when ``is_double``)."""
    with nogil:
        if is_double:
            c_argmax_d(<const double*>logits, B, C, h, w, H, W, align_corners, scale_h, scale_w,
                       use_fma, <int64_t*>labels, <float*>confidence, num_threads)
        else:
            c_argmax_f(<const float*>logits, B, C, h, w, H, W, align_corners, scale_h, scale_w,
                       use_fma, <int64_t*>labels, <float*>confidence, num_threads)


def upsample_cross_entropy(uintptr_t logits, bint is_double, int64_t B, int64_t C, int64_t h,
                           int64_t w, int64_t H, int64_t W, bint align_corners, bint use_fma,
                           uintptr_t target, uintptr_t weight, int64_t ignore_index,
                           double coef_nll, double coef_smooth, double pixel_nll, double pixel_smooth,
                           uintptr_t grad_pixel, uintptr_t row_nll, uintptr_t row_smooth,
                           uintptr_t loss_pixel, uintptr_t grad_logits, int num_threads):
    """Cross-entropy of bilinearly upsampled logits; see csrc/cpu/upsample.h for the buffers
    (every pointer may be 0 except ``logits`` and ``target``)."""
    cdef CrossEntropyArgs a
    a.target = <const int64_t*>target
    a.weight = <const void*>weight
    a.ignore_index = ignore_index
    a.coef_nll = coef_nll
    a.coef_smooth = coef_smooth
    a.pixel_nll = pixel_nll
    a.pixel_smooth = pixel_smooth
    a.grad_pixel = <const void*>grad_pixel
    a.row_nll = <double*>row_nll
    a.row_smooth = <double*>row_smooth
    a.loss_pixel = <void*>loss_pixel
    a.grad_logits = <void*>grad_logits
    with nogil:
        if is_double:
            c_ce_d(<const double*>logits, B, C, h, w, H, W, align_corners, use_fma, a, num_threads)
        else:
            c_ce_f(<const float*>logits, B, C, h, w, H, W, align_corners, use_fma, a, num_threads)


cdef extern from "upsample.h" namespace "seg" nogil:
    int64_t c_target_histogram "seg::target_histogram"(const int64_t*, int64_t, int64_t, int64_t, int64_t*)


def target_histogram(uintptr_t target, int64_t n, int64_t C, int64_t ignore_index, uintptr_t counts):
    """Count each class of contiguous int64 ``target`` (n values) into ``counts`` (int64 [C]);
    return the flat index of the first out-of-range value (not ``ignore_index``) or -1."""
    cdef int64_t bad
    with nogil:
        bad = c_target_histogram(<const int64_t*>target, n, C, ignore_index, <int64_t*>counts)
    return bad


cdef extern from "upsample.h" namespace "seg" nogil:
    cdef cppclass AxisTapsF "seg::AxisTaps<float>":
        vector[int64_t] i0, i1
        vector[float] l0, l1
    cdef cppclass AxisTapsD "seg::AxisTaps<double>":
        vector[int64_t] i0, i1
        vector[double] l0, l1
    AxisTapsF c_axis_taps_f "seg::axis_taps<float>"(int64_t, int64_t, bint, double) except +
    AxisTapsD c_axis_taps_d "seg::axis_taps<double>"(int64_t, int64_t, bint, double) except +


def axis_taps(int64_t size_in, int64_t size_out, bint align_corners, double scale, bint is_double):
    """Source taps of every output index along one axis: (i0, i1, l0, l1) numpy arrays
    (int64, int64, and float32 or float64), PyTorch's bilinear formula."""
    cdef AxisTapsF tf
    cdef AxisTapsD td
    if is_double:
        td = c_axis_taps_d(size_in, size_out, align_corners, scale)
        return (np.asarray(td.i0, dtype=np.int64), np.asarray(td.i1, dtype=np.int64),
                np.asarray(td.l0, dtype=np.float64), np.asarray(td.l1, dtype=np.float64))
    tf = c_axis_taps_f(size_in, size_out, align_corners, scale)
    return (np.asarray(tf.i0, dtype=np.int64), np.asarray(tf.i1, dtype=np.int64),
            np.asarray(tf.l0, dtype=np.float32), np.asarray(tf.l1, dtype=np.float32))
