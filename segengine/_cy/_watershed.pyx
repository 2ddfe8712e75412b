# distutils: language = c++
# distutils: sources = csrc/cpu/watershed.cpp csrc/cpu/flood_levels.cpp
"""Thin binding of csrc/cpu/watershed.cpp: raw pointers of C-contiguous arrays, GIL released.

All checks (shapes, dtypes, contiguity, neighbour lists) are done by
segengine/ops/watershed.py; this module only forwards pointers.
"""

from libc.stdint cimport int64_t, int32_t, uint8_t, uintptr_t

import numpy as np

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
        const Geometry& geom, double compactness, bint watershed_line) except + nogil
    void c_watershed_levels "seg::ws::watershed_levels"(
        const void* image, int dtype, const uint8_t* mask, void* labels, int label_bytes,
        const Geometry& geom, const double* level_value, double* levels) except + nogil
    int64_t c_local_minima_markers "seg::ws::local_minima_markers"(
        const void* image, int dtype, const uint8_t* mask, int32_t* labels,
        const Geometry& geom) except + nogil
    void c_set_packed_limit "seg::ws::set_packed_limit"(int64_t n) nogil
    void c_watershed_batch "seg::ws::watershed_batch"(
        const void* images, int dtype, const uint8_t* masks, void* labels, int label_bytes,
        int64_t batch, const Geometry& geom, const Geometry* minima_geom, double compactness,
        bint watershed_line, int num_threads) except + nogil


DTYPE_CODES = {
    np.dtype(np.uint8): 0, np.dtype(np.int8): 1, np.dtype(np.uint16): 2, np.dtype(np.int16): 3,
    np.dtype(np.uint32): 4, np.dtype(np.int32): 5, np.dtype(np.uint64): 6, np.dtype(np.int64): 7,
    np.dtype(np.float32): 8, np.dtype(np.float64): 9,
}


cdef inline uintptr_t _addr(a):
    return 0 if a is None else <uintptr_t>a.ctypes.data


cdef Geometry _geometry(object shape, object neighbors):
    cdef Geometry g
    g.ndim = shape.shape[0]
    g.shape = <const int64_t*>_addr(shape)
    g.nneighbors = neighbors.shape[0]
    g.neighbors = <const int64_t*>_addr(neighbors)
    return g


def watershed(image, mask, labels, spatial_shape, neighbors, double compactness,
              bint watershed_line):
    """Flood ``image`` from the markers in ``labels`` (int32/int64, modified in place).

    ``spatial_shape``: int64 [ndim]; ``neighbors``: int64 [k, ndim] offsets in visit order;
    ``mask``: uint8 array or None. All arrays C-contiguous.
    """
    cdef int dtype = DTYPE_CODES[image.dtype]
    cdef int lbytes = labels.dtype.itemsize
    cdef Geometry g = _geometry(spatial_shape, neighbors)
    cdef const void* img = <const void*>_addr(image)
    cdef const uint8_t* m = <const uint8_t*>_addr(mask)
    cdef void* lab = <void*>_addr(labels)
    with nogil:
        c_watershed(img, dtype, m, lab, lbytes, g, compactness, watershed_line)


def watershed_levels(image, mask, labels, spatial_shape, neighbors, const double[::1] level_value,
                     double[::1] levels):
    """Standard-mode flood of ``image`` from ``labels`` (as :func:`watershed`) that also
    writes each pixel's flooding level under ``level_value`` into ``levels`` (raveled
    float64, one per pixel; see csrc/cpu/watershed.h)."""
    cdef int dtype = DTYPE_CODES[image.dtype]
    cdef int lbytes = labels.dtype.itemsize
    cdef Geometry g = _geometry(spatial_shape, neighbors)
    cdef const void* img = <const void*>_addr(image)
    cdef const uint8_t* m = <const uint8_t*>_addr(mask)
    cdef void* lab = <void*>_addr(labels)
    if level_value.shape[0] != image.size or levels.shape[0] != image.size:
        raise ValueError("watershed_levels: level arrays must have one element per pixel")
    if image.size == 0:
        return
    with nogil:
        c_watershed_levels(img, dtype, m, lab, lbytes, g, &level_value[0], &levels[0])


def local_minima_markers(image, mask, labels, spatial_shape, neighbors):
    """Write the labelled local minima of ``image`` (inside ``mask``) to int32 ``labels``;
    return their number."""
    cdef int dtype = DTYPE_CODES[image.dtype]
    cdef Geometry g = _geometry(spatial_shape, neighbors)
    cdef const void* img = <const void*>_addr(image)
    cdef const uint8_t* m = <const uint8_t*>_addr(mask)
    cdef int32_t* lab = <int32_t*>_addr(labels)
    cdef int64_t count
    with nogil:
        count = c_local_minima_markers(img, dtype, m, lab, g)
    return count


def watershed_batch(images, masks, labels, spatial_shape, neighbors, minima_neighbors,
                    double compactness, bint watershed_line, int num_threads):
    """Batched :func:`watershed` over the first axis (OpenMP over items).

    ``minima_neighbors`` not None: seed every item from its local minima (int32 labels).
    """
    cdef int dtype = DTYPE_CODES[images.dtype]
    cdef int lbytes = labels.dtype.itemsize
    cdef int64_t batch = images.shape[0]
    cdef Geometry g = _geometry(spatial_shape, neighbors)
    cdef Geometry gm
    cdef const Geometry* gmp = NULL
    if minima_neighbors is not None:
        gm = _geometry(spatial_shape, minima_neighbors)
        gmp = &gm
    cdef const void* img = <const void*>_addr(images)
    cdef const uint8_t* m = <const uint8_t*>_addr(masks)
    cdef void* lab = <void*>_addr(labels)
    with nogil:
        c_watershed_batch(img, dtype, m, lab, lbytes, batch, g, gmp, compactness,
                          watershed_line, num_threads)


def _set_packed_limit(int64_t n):
    """Testing hook: images of 32/64-bit dtypes with at least ``n`` pixels use the wide
    (24-byte) heap items; ``n < 0`` restores the default (2**32 - 4)."""
    c_set_packed_limit(n)


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
