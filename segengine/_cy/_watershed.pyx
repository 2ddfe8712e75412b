# distutils: language = c++
# distutils: sources = csrc/cpu/watershed.cpp csrc/cpu/watershed_flood.cpp csrc/cpu/watershed_minima.cpp csrc/cpu/watershed_fast.cpp csrc/cpu/watershed_parallel.cpp csrc/cpu/flood_levels.cpp
"""Thin binding of csrc/cpu/watershed.h, watershed_fast.h, watershed_parallel.h and flood_levels.h: typed memoryviews, GIL released.

All checks (shapes, dtypes, contiguity, neighbour lists) are done by
segengine/ops/watershed.py; this module only forwards buffers. Arrays of several dtypes
(images, labels) cross as byte views of their C-contiguous data, with the element type
given by a ``seg::codes::ImageDType`` code (segengine._codes.ImageDType) or a byte width.
"""

from libc.stdint cimport int64_t, int32_t, uint8_t

import numpy as np

from segengine._codes import ImageDType

cdef extern from "flood_levels.h" namespace "seg::ws":
    void c_flood_levels "seg::ws::flood_levels"(
        const double* priority, const uint8_t* seeds, const uint8_t* inside, double* level,
        int64_t n, const int64_t* offsets, int noffsets) except + nogil

cdef extern from "watershed.h" namespace "seg::ws":
    cdef struct Geometry:
        int ndim
        const int64_t* shape
        int nneighbors
        const int64_t* neighbors

    void c_watershed "seg::ws::watershed"(
        const void* image, int dtype, const uint8_t* mask, void* labels, int label_bytes,
        const Geometry& geom, double compactness, bint watershed_line,
        int64_t packed_limit) except + nogil
    void c_watershed_levels "seg::ws::watershed_levels"(
        const void* image, int dtype, const uint8_t* mask, void* labels, int label_bytes,
        const Geometry& geom, const double* level_value, double* levels) except + nogil
    int64_t c_local_minima_markers "seg::ws::local_minima_markers"(
        const void* image, int dtype, const uint8_t* mask, int32_t* labels,
        const Geometry& geom) except + nogil
    void c_watershed_batch "seg::ws::watershed_batch"(
        const void* images, int dtype, const uint8_t* masks, void* labels, int label_bytes,
        int64_t batch, const Geometry& geom, const Geometry* minima_geom, double compactness,
        bint watershed_line, int num_threads) except + nogil

cdef extern from "watershed_fast.h" namespace "seg::ws":
    void c_watershed_fast "seg::ws::watershed_fast"(
        const void* image, int dtype, const uint8_t* mask, void* labels, int label_bytes,
        const Geometry& geom, int num_threads) except + nogil
    void c_watershed_fast_batch "seg::ws::watershed_fast_batch"(
        const void* images, int dtype, const uint8_t* masks, void* labels, int label_bytes,
        int64_t batch, const Geometry& geom, const Geometry* minima_geom,
        int num_threads) except + nogil

cdef extern from "watershed_parallel.h" namespace "seg::ws":
    void c_watershed_parallel "seg::ws::watershed_parallel"(
        const void* image, int dtype, const uint8_t* mask, void* labels, int label_bytes,
        const Geometry& geom, int num_threads) except + nogil
    void c_watershed_parallel_batch "seg::ws::watershed_parallel_batch"(
        const void* images, int dtype, const uint8_t* masks, void* labels, int label_bytes,
        int64_t batch, const Geometry& geom, const Geometry* minima_geom,
        int num_threads) except + nogil


# numpy dtype -> seg::codes::ImageDType (segengine._codes mirrors csrc/common/seg_codes.h)
DTYPE_CODES = {np.dtype(name): int(ImageDType[code]) for name, code in [
    ("uint8", "U8"), ("int8", "I8"), ("uint16", "U16"), ("int16", "I16"), ("uint32", "U32"),
    ("int32", "I32"), ("uint64", "U64"), ("int64", "I64"), ("float32", "F32"),
    ("float64", "F64")]}


cdef struct Flood:
    # Pointers of one flood's arrays (into buffers the caller keeps alive).
    const void* image
    int dtype
    const uint8_t* mask
    void* labels
    int label_bytes
    Geometry geom


cdef const uint8_t* _const_bytes(a) except? NULL:
    """Address of the data of C-contiguous array ``a`` (None or empty: NULL), read through a
    typed byte view."""
    if a is None or a.size == 0:
        return NULL
    if not a.flags.c_contiguous:
        raise ValueError("watershed binding: arrays must be C-contiguous")
    cdef const uint8_t[::1] v = a.reshape(-1).view(np.uint8)
    return &v[0]


cdef uint8_t* _bytes(a) except? NULL:
    """As :func:`_const_bytes`, for an array the kernel writes."""
    if a is None or a.size == 0:
        return NULL
    if not a.flags.c_contiguous:
        raise ValueError("watershed binding: arrays must be C-contiguous")
    cdef uint8_t[::1] v = a.reshape(-1).view(np.uint8)
    return &v[0]


cdef Geometry _geometry(const int64_t[::1] shape, const int64_t[:, ::1] neighbors):
    cdef Geometry g
    g.ndim = <int>shape.shape[0]
    g.shape = &shape[0] if shape.shape[0] else NULL
    g.nneighbors = <int>neighbors.shape[0]
    g.neighbors = &neighbors[0, 0] if neighbors.shape[0] and neighbors.shape[1] else NULL
    return g


cdef Flood _flood(image, mask, labels, spatial_shape, neighbors) except *:
    """The pointer setup shared by every entry point: ``image`` (C-contiguous, a dtype of
    DTYPE_CODES), ``mask`` (uint8 or None), ``labels`` (int32/int64, written), spatial shape
    (int64 [ndim]) and neighbour offsets (int64 [k, ndim])."""
    cdef Flood f
    f.dtype = DTYPE_CODES[image.dtype]
    f.image = <const void*>_const_bytes(image)
    f.mask = _const_bytes(mask)
    f.labels = <void*>_bytes(labels)
    f.label_bytes = labels.dtype.itemsize
    f.geom = _geometry(spatial_shape, neighbors)
    return f


def watershed(image, mask, labels, spatial_shape, neighbors, double compactness,
              bint watershed_line, int64_t packed_limit=-1):
    """Flood ``image`` from the markers in ``labels`` (int32/int64, modified in place).

    ``spatial_shape``: int64 [ndim]; ``neighbors``: int64 [k, ndim] offsets in visit order;
    ``mask``: uint8 array or None. All arrays C-contiguous. ``packed_limit``: see
    csrc/cpu/watershed.h (-1: the default; tests pass 0 to cover the wide heap items).
    """
    if image.size == 0:
        return
    cdef Flood f = _flood(image, mask, labels, spatial_shape, neighbors)
    with nogil:
        c_watershed(f.image, f.dtype, f.mask, f.labels, f.label_bytes, f.geom, compactness,
                    watershed_line, packed_limit)


def watershed_fast(image, mask, labels, spatial_shape, neighbors, int num_threads,
                   bint parallel=False):
    """:func:`watershed` (standard mode) with the fast tie order of csrc/cpu/watershed_fast.h
    (``parallel``: the parallel one of csrc/cpu/watershed_parallel.h) on ``num_threads``
    threads (resolved by the caller; the result does not depend on it)."""
    if image.size == 0:
        return
    cdef Flood f = _flood(image, mask, labels, spatial_shape, neighbors)
    with nogil:
        if parallel:
            c_watershed_parallel(f.image, f.dtype, f.mask, f.labels, f.label_bytes, f.geom,
                                 num_threads)
        else:
            c_watershed_fast(f.image, f.dtype, f.mask, f.labels, f.label_bytes, f.geom,
                             num_threads)


def watershed_levels(image, mask, labels, spatial_shape, neighbors, const double[::1] level_value,
                     double[::1] levels):
    """Standard-mode flood of ``image`` from ``labels`` (as :func:`watershed`) that also
    writes each pixel's flooding level under ``level_value`` into ``levels`` (raveled
    float64, one per pixel; see csrc/cpu/watershed.h)."""
    if level_value.shape[0] != image.size or levels.shape[0] != image.size:
        raise ValueError("watershed_levels: level arrays must have one element per pixel")
    if image.size == 0:
        return
    cdef Flood f = _flood(image, mask, labels, spatial_shape, neighbors)
    with nogil:
        c_watershed_levels(f.image, f.dtype, f.mask, f.labels, f.label_bytes, f.geom,
                           &level_value[0], &levels[0])


def local_minima_markers(image, mask, labels, spatial_shape, neighbors):
    """Write the labelled local minima of ``image`` (inside ``mask``) to int32 ``labels``;
    return their number."""
    if labels.dtype != np.int32:
        raise TypeError(f"local_minima_markers: labels must be int32, got {labels.dtype}")
    if image.size == 0:
        return 0
    cdef Flood f = _flood(image, mask, labels, spatial_shape, neighbors)
    cdef int64_t count
    with nogil:
        count = c_local_minima_markers(f.image, f.dtype, f.mask, <int32_t*>f.labels, f.geom)
    return count


def watershed_batch(images, masks, labels, spatial_shape, neighbors, minima_neighbors,
                    double compactness, bint watershed_line, int tie, int num_threads):
    """Batched :func:`watershed` over the first axis, items in parallel (``num_threads``
    resolved by the caller). ``tie``: 0 the exact tie order, 1 the fast one, 2 the parallel
    one (:func:`watershed_fast`; neither takes compactness or lines, and both give a batch of
    one item the threads).

    ``minima_neighbors`` not None: seed every item from its local minima (int32 labels).
    """
    if images.size == 0:
        return
    cdef Flood f = _flood(images, masks, labels, spatial_shape, neighbors)
    cdef int64_t batch = images.shape[0]
    cdef Geometry gm
    cdef const Geometry* gmp = NULL
    if minima_neighbors is not None:
        gm = _geometry(spatial_shape, minima_neighbors)
        gmp = &gm
    with nogil:
        if tie == 1:
            c_watershed_fast_batch(f.image, f.dtype, f.mask, f.labels, f.label_bytes, batch,
                                   f.geom, gmp, num_threads)
        elif tie == 2:
            c_watershed_parallel_batch(f.image, f.dtype, f.mask, f.labels, f.label_bytes, batch,
                                       f.geom, gmp, num_threads)
        else:
            c_watershed_batch(f.image, f.dtype, f.mask, f.labels, f.label_bytes, batch, f.geom,
                              gmp, compactness, watershed_line, num_threads)


def flood_levels(const double[::1] priority, const uint8_t[::1] seeds, const uint8_t[::1] inside,
                 double[::1] level, const int64_t[::1] offsets):
    """Flooding level of every pixel of a padded, raveled grid (see csrc/cpu/flood_levels.h).

    ``priority``, ``seeds``, ``inside`` and ``level`` have one element per pixel of a grid
    padded with outside pixels; ``offsets`` are the raveled neighbour steps.
    """
    cdef int64_t n = priority.shape[0]
    if seeds.shape[0] != n or inside.shape[0] != n or level.shape[0] != n:
        raise ValueError("flood_levels: arrays of different lengths")
    with nogil:
        c_flood_levels(&priority[0] if n else NULL, &seeds[0] if n else NULL,
                       &inside[0] if n else NULL, &level[0] if n else NULL, n,
                       &offsets[0] if offsets.shape[0] else NULL, <int>offsets.shape[0])
