// Flooding levels of a priority flood (CPU kernel), used by segengine.dask's seam repair.
//
// level[p] = the smallest h such that p is joined to a seed by a path of inside pixels whose
// priorities are all <= h (the path includes the seed and p): the running maximum of the
// popped priorities at the moment a priority flood (scikit-image's watershed order) pops p.
// It depends only on the seeds, not on their labels or on tie order.
//
// What the kernel assumes (checked by segengine/dask/_watershed.py):
//   * arrays are C-contiguous with n elements; the caller pads the grid with a border of
//     outside pixels (inside == 0) at least as wide as the largest neighbour step, so
//     `offsets` (raveled neighbour steps) never leave the array from an inside pixel;
//   * seeds are inside pixels; priorities of inside pixels are not NaN.
// Output: level[p] for pixels reached from a seed, +inf for the others (outside included).
// Errors: std::invalid_argument (bad arguments), std::bad_alloc.
#pragma once

#include <cstdint>

namespace seg {
namespace ws {

void flood_levels(const double* priority, const uint8_t* seeds, const uint8_t* inside, double* level,
                  int64_t n, const int64_t* offsets, int noffsets);

}  // namespace ws
}  // namespace seg
