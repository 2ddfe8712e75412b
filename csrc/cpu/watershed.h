// Marker-based watershed with scikit-image 0.26 semantics (CPU kernel).
//
// What the kernel assumes (all checked by segengine/ops/watershed.py):
//   * every array is C-contiguous, raveled in C order, with `n = prod(shape)` elements;
//   * `labels` holds the markers on entry (int32 or int64, nonzero = seed) and the
//     result on exit; pixels outside `mask` are set to 0;
//   * `mask` is NULL (everything inside) or one byte per pixel (nonzero = inside);
//   * `neighbors` lists `nneighbors` offset vectors of `ndim` components each, in the
//     order scikit-image visits them (sorted by distance, then C order of the footprint);
//     neighbours that fall outside the image are skipped (scikit-image pads with a
//     masked-out border of width `offset`, which is the same thing for footprints that
//     do not reach beyond their offset);
//   * `dtype` is a seg::codes::ImageDType (csrc/common/seg_codes.h, DTYPE_U8 .. DTYPE_F64);
//     64-bit integers are compared after conversion to double, exactly like scikit-image's
//     float64 copy.
// The implementation, one job per file: watershed_grid.h (grid, flags), watershed_keys.h
// (heap keys), watershed_queues.h (the three queues), watershed_exact.h (compact and
// watershed-line modes), watershed_standard.h (standard mode), watershed_flood.cpp (mode
// and key-layout choice for one item), watershed_minima.cpp (local-minima markers),
// watershed_dispatch.h (dtype codes), watershed.cpp (these entry points, batch loop).
// Errors: std::invalid_argument (NaN in a float image, bad arguments), std::bad_alloc.
#pragma once

#include <cstdint>

#include "seg_codes.h"

namespace seg {
namespace ws {

struct Geometry {
    int ndim;
    const int64_t* shape;      // [ndim]
    int nneighbors;
    const int64_t* neighbors;  // [nneighbors * ndim], offset vectors
};

// Flood `image` from the markers in `labels` (in place). `label_bytes` is 4 or 8.
// compactness > 0 selects the compact watershed; watershed_line adds 0-valued lines.
// `packed_limit`: pixel count from which 32/64-bit images use 24-byte heap items instead of
// 16-byte ones in the standard mode; < 0 (normal use) means the default, 2**32 - 4 (the
// largest the 16-byte items can index); tests pass 0 to cover the wide items on small
// images. The result is the same for every limit.
void watershed(const void* image, int dtype, const uint8_t* mask, void* labels, int label_bytes,
               const Geometry& geom, double compactness, bool watershed_line,
               int64_t packed_limit = -1);

// Standard mode (no compactness, no lines) that also writes the flooding level of every
// pixel: the maximum of `level_value` along the path by which the flood reached it (seeds:
// their own level_value; unreached and masked-out pixels: +inf). With level_value equal to
// the image, that is the water level at which the pixel was flooded. Used by
// segengine.dask's seam repair, where seeds from neighbouring blocks enter at their level.
void watershed_levels(const void* image, int dtype, const uint8_t* mask, void* labels, int label_bytes,
                      const Geometry& geom, const double* level_value, double* levels);

// Markers = connected components (numbered in raster order of their first pixel, like
// scipy.ndimage.label) of the local minima of `image` (plateaus with no lower neighbour;
// a plateau at the image's global maximum that touches the border is not a minimum, as
// in skimage.morphology.local_minima) that lie inside `mask`. Writes int32 labels,
// returns the number of markers. `geom` must be the full footprint of the connectivity.
int64_t local_minima_markers(const void* image, int dtype, const uint8_t* mask, int32_t* labels,
                             const Geometry& geom);

// Batch of `batch` items of `n` pixels each (item b at offset b*n in every array).
// minima_geom != NULL: ignore the content of `labels` and seed each item from its local
// minima under that footprint (labels must then be int32). masks may be NULL.
// OpenMP over items with `num_threads` (<= 0: all); the first error is rethrown.
void watershed_batch(const void* images, int dtype, const uint8_t* masks, void* labels,
                     int label_bytes, int64_t batch, const Geometry& geom,
                     const Geometry* minima_geom, double compactness, bool watershed_line,
                     int num_threads);

}  // namespace ws
}  // namespace seg
