# distutils: language = c++
# distutils: sources = csrc/cpu/permutohedral.cpp csrc/cpu/crf.cpp
"""Thin binding of the CPU permutohedral lattice and dense-CRF mean field (csrc/cpu).

All validation happens in :mod:`segengine.ops.lattice` / :mod:`segengine.ops.crf`; these
functions assume C-contiguous arrays of the documented dtypes and shapes.
"""

from libc.stdint cimport int32_t, int64_t
from libc.string cimport memcpy
from libcpp cimport bool as cbool
from libcpp.vector cimport vector

import numpy as np


cdef extern from "../../csrc/common/seg_codes.h" namespace "seg::codes" nogil:
    cdef enum:
        UNARY_ENERGY "seg::codes::UNARY_ENERGY"


cdef extern from "../../csrc/cpu/big_alloc.h" namespace "seg" nogil:
    cdef cppclass BigVector[T]:
        T* data() except +
        size_t size() except +


cdef extern from "../../csrc/cpu/permutohedral.h" namespace "seg" nogil:
    cdef cppclass LatticeData:
        int d
        int64_t num_points
        int64_t num_vertices
        BigVector[int32_t] offsets
        BigVector[float] weights
        BigVector[int32_t] neighbors
        vector[int64_t] splat_ptr
        BigVector[int32_t] splat_pt
        BigVector[float] splat_w
        vector[int64_t] batch_vertices

    void c_lattice_build "seg::lattice_build"(const float* features, int64_t B, int d, int64_t N,
                                              cbool ghost_origin, int num_threads,
                                              LatticeData& out, cbool with_csr) except +
    void c_lattice_filter "seg::lattice_filter"[T](const T* inp, T* out, int64_t P, int C, int d,
                                                   int64_t M, const int32_t* offsets,
                                                   const float* weights, const int32_t* neighbors,
                                                   const int64_t* splat_ptr, const int32_t* splat_pt,
                                                   const float* splat_w, cbool reverse,
                                                   int num_threads) except +


cdef extern from "../../csrc/cpu/crf.h" namespace "seg" nogil:
    cdef enum:
        COMPAT_DIAG "seg::COMPAT_DIAG"
        COMPAT_FULL "seg::COMPAT_FULL"

    cdef cppclass CrfKernel:
        int d
        int64_t M
        const int32_t* offsets
        const float* weights
        const int32_t* neighbors
        int normalization
        int compat_kind
        const float* compat

    void c_crf_meanfield "seg::crf_meanfield"(const float* input, int unary_kind, float* Q, int64_t B,
                                              int64_t N, int C, const CrfKernel* kernels,
                                              int num_kernels, int iterations, int num_threads) except +
    int64_t c_crf_chunk_images "seg::crf_chunk_images"(int64_t N, int num_threads) except +
    void c_crf_dense "seg::crf_dense"(const float* input, int unary_kind, float* Q, int64_t B, int64_t N,
                                      int C, const float* const* features, const int* dims,
                                      const int* normalizations, const int* compat_kinds,
                                      const float* const* compats, int num_kernels, cbool ghost_origin,
                                      int iterations, int num_threads) except +


cdef object _array(const void* src, size_t nbytes, shape, dtype):
    """A new numpy array of ``shape`` and ``dtype`` holding the ``nbytes`` bytes at ``src``."""
    out = np.empty(shape, dtype)
    cdef unsigned char[::1] dst = out.reshape(-1).view(np.uint8)
    if nbytes:
        with nogil:
            memcpy(&dst[0], src, nbytes)
    return out


def build(const float[:, :, ::1] features not None, int num_threads=0, bint ghost_origin=False):
    """Build the lattice of ``features`` float32 ``[B, d, N]``; ``ghost_origin`` adds the vertices
    of an all-zero feature point per image (pydensecrf's SSE padding when N % 4 != 0).

    Returns ``(offsets int32 [B*N, d+1], weights float32 [B*N, d+1], neighbors int32
    [d+1, M, 2], splat_ptr int64 [M+1], splat_pt int32 [B*N*(d+1)], splat_w float32
    [B*N*(d+1)], batch_vertices int64 [B])``.
    """
    cdef LatticeData data
    cdef int64_t B = features.shape[0]
    cdef int d = <int>features.shape[1]
    cdef int64_t N = features.shape[2]
    cdef const float* fp = &features[0, 0, 0] if features.size else NULL
    with nogil:
        c_lattice_build(fp, B, d, N, ghost_origin, num_threads, data, True)
    cdef int64_t P = data.num_points, M = data.num_vertices
    offsets = _array(data.offsets.data(), data.offsets.size() * 4, (P, d + 1), np.int32)
    weights = _array(data.weights.data(), data.weights.size() * 4, (P, d + 1), np.float32)
    neighbors = _array(data.neighbors.data(), data.neighbors.size() * 4, (d + 1, M, 2), np.int32)
    splat_ptr = _array(data.splat_ptr.data(), data.splat_ptr.size() * 8, (M + 1,), np.int64)
    splat_pt = _array(data.splat_pt.data(), data.splat_pt.size() * 4, (P * (d + 1),), np.int32)
    splat_w = _array(data.splat_w.data(), data.splat_w.size() * 4, (P * (d + 1),), np.float32)
    batch_vertices = _array(data.batch_vertices.data(), data.batch_vertices.size() * 8, (B,), np.int64)
    return offsets, weights, neighbors, splat_ptr, splat_pt, splat_w, batch_vertices


ctypedef fused real:
    float
    double


def filter_values(const real[:, ::1] values not None, real[:, ::1] out not None,
                  const int32_t[:, ::1] offsets not None, const float[:, ::1] weights not None,
                  const int32_t[:, :, ::1] neighbors not None, const int64_t[::1] splat_ptr not None,
                  const int32_t[::1] splat_pt not None, const float[::1] splat_w not None,
                  bint reverse=False, int num_threads=0):
    """Lattice filter float32 or float64 ``values`` ``[P, C]`` into ``out`` ``[P, C]`` (same
    dtype; the adjoint when ``reverse``)."""
    cdef int64_t P = values.shape[0]
    cdef int C = <int>values.shape[1]
    cdef int d = <int>offsets.shape[1] - 1
    cdef int64_t M = neighbors.shape[1]
    if P == 0 or C == 0:
        return
    cdef const int32_t* nb = &neighbors[0, 0, 0] if M else NULL
    with nogil:
        if real is float:
            c_lattice_filter[float](&values[0, 0], &out[0, 0], P, C, d, M, &offsets[0, 0],
                                    &weights[0, 0], nb, &splat_ptr[0], &splat_pt[0], &splat_w[0],
                                    reverse, num_threads)
        else:
            c_lattice_filter[double](&values[0, 0], &out[0, 0], P, C, d, M, &offsets[0, 0],
                                     &weights[0, 0], nb, &splat_ptr[0], &splat_pt[0], &splat_w[0],
                                     reverse, num_threads)


def meanfield(const float[:, :, ::1] unary not None, float[:, :, ::1] Q not None, list kernels,
              int iterations, int num_threads=0):
    """Mean field on unary energies float32 ``[B, C, N]`` into ``Q`` (same shape); a non-finite
    energy raises ValueError.

    ``kernels``: list of ``(offsets, weights, neighbors, normalization, compat)`` (the first three
    as returned by :func:`build`; normalization a ``segengine._codes.Normalization``) with
    ``compat`` float32 ``[C]`` (diagonal) or ``[C, C]`` (full, symmetrised).
    """
    cdef int64_t B = unary.shape[0], N = unary.shape[2]
    cdef int C = <int>unary.shape[1]
    if Q.shape[0] != B or Q.shape[1] != C or Q.shape[2] != N:
        raise ValueError("meanfield: Q must have the shape of unary")
    if B * N == 0:
        return
    cdef vector[CrfKernel] ks
    cdef CrfKernel k
    cdef const int32_t[:, ::1] off
    cdef const float[:, ::1] w
    cdef const int32_t[:, :, ::1] nb
    cdef const float[::1] cflat
    keep = []
    for item in kernels:
        off, w, nb, norm, compat = item
        compat = np.ascontiguousarray(compat, dtype=np.float32)
        keep.append(compat)
        cflat = compat.reshape(-1)
        k.d = <int>off.shape[1] - 1
        k.M = nb.shape[1]
        k.offsets = &off[0, 0]
        k.weights = &w[0, 0]
        k.neighbors = &nb[0, 0, 0] if k.M else NULL
        k.normalization = int(norm)
        k.compat_kind = COMPAT_DIAG if compat.ndim == 1 else COMPAT_FULL
        k.compat = &cflat[0]
        ks.push_back(k)
    with nogil:
        c_crf_meanfield(&unary[0, 0, 0], UNARY_ENERGY, &Q[0, 0, 0], B, N, C, ks.data(), <int>ks.size(),
                        iterations, num_threads)


def crf_chunk_images(int64_t N, int num_threads=0):
    """Images per chunk of a batch of images of ``N`` points (``num_threads`` <= 0: all): enough
    for every thread to have a part (segengine.dense_crf runs :func:`dense_crf` on one chunk at
    a time)."""
    return c_crf_chunk_images(N, num_threads)


def dense_crf(const float[:, :, ::1] inp not None, int unary_kind, float[:, :, ::1] Q not None,
              list features, list normalizations, list compats, bint ghost_origin, int iterations,
              int num_threads=0):
    """Dense CRF in one call: build the lattices of ``features`` (float32 ``[B, d_k, N]`` each,
    C-contiguous) and run the mean field on ``inp`` ``[B, C, N]`` (``unary_kind``) into ``Q``
    (same shape). ``compats[k]``: float32 ``[C]`` (diagonal) or ``[C, C]`` (symmetrised)."""
    cdef int64_t B = inp.shape[0], N = inp.shape[2]
    cdef int C = <int>inp.shape[1]
    cdef int K = len(features)
    if len(normalizations) != K or len(compats) != K:
        raise ValueError("dense_crf: one normalization and one compat per kernel")
    if Q.shape[0] != B or Q.shape[1] != C or Q.shape[2] != N:
        raise ValueError("dense_crf: Q must have the shape of the input")
    if B * N == 0:
        return
    cdef vector[const float*] fptr, cptr
    cdef vector[int] dims, norms, kinds
    cdef int kind
    cdef const float[:, :, ::1] f
    cdef const float[::1] cflat
    keep = []
    for k in range(K):
        f = features[k]
        if f.shape[0] != B or f.shape[2] != N:
            raise ValueError("dense_crf: features must be [B, d, N] like the input")
        c = np.ascontiguousarray(compats[k], dtype=np.float32)
        keep.append(c)
        cflat = c.reshape(-1)
        fptr.push_back(&f[0, 0, 0])
        cptr.push_back(&cflat[0])
        dims.push_back(<int>f.shape[1])
        norms.push_back(<int>normalizations[k])
        kind = COMPAT_DIAG if c.ndim == 1 else COMPAT_FULL
        kinds.push_back(kind)
    with nogil:
        c_crf_dense(&inp[0, 0, 0], unary_kind, &Q[0, 0, 0], B, N, C, fptr.data(), dims.data(),
                    norms.data(), kinds.data(), cptr.data(), K, ghost_origin, iterations, num_threads)
