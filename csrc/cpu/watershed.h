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
//   * image dtype codes are the DType values below; 64-bit integers are compared after
//     conversion to double, exactly like scikit-image's float64 copy.
// Errors: std::invalid_argument (NaN in a float image, bad arguments), std::bad_alloc.
#pragma once

#include <cstdint>

namespace seg {
namespace ws {

enum DType : int {
    U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, U64 = 6, I64 = 7, F32 = 8, F64 = 9
};

struct Geometry {
    int ndim;
    const int64_t* shape;      // [ndim]
    int nneighbors;
    const int64_t* neighbors;  // [nneighbors * ndim], offset vectors
};

// Flood `image` from the markers in `labels` (in place). `label_bytes` is 4 or 8.
// compactness > 0 selects the compact watershed; watershed_line adds 0-valued lines.
void watershed(const void* image, int dtype, const uint8_t* mask, void* labels, int label_bytes,
               const Geometry& geom, double compactness, bool watershed_line);

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

// Testing hook: pixel count from which 32/64-bit images use wide heap items (< 0: default).
// Not thread-safe; call only while no kernel runs.
void set_packed_limit(int64_t n);

}  // namespace ws
}  // namespace seg
