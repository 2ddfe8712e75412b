// The batch loop shared by the exact and the fast watershed: items in parallel (OpenMP,
// dynamic schedule), each optionally seeded from its local minima, the first exception of
// any item rethrown after the loop.
#pragma once

#include <cstdint>
#include <exception>
#include <stdexcept>

#include "watershed.h"
#include "watershed_dispatch.h"
#include "watershed_grid.h"
#include "watershed_minima.h"

namespace seg {
namespace ws {
namespace detail {

// flood_one(image, mask, labels) floods one item in place; `threads` items run at once.
template <class FloodOne>
void for_each_item(const void* images, int dtype, const uint8_t* masks, void* labels,
                   int label_bytes, int64_t batch, const Geometry& geom,
                   const Geometry* minima_geom, int threads, FloodOne flood_one) {
    const Grid g(geom);
    const bool minima = minima_geom != nullptr;
    if (minima && label_bytes != 4) throw std::invalid_argument("watershed: minima markers need int32 labels");
    const Grid gm(minima ? *minima_geom : geom);
    const int64_t n = g.n;
    const size_t isz = dtype_size(dtype);
    std::exception_ptr error;
    (void)threads;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (int64_t b = 0; b < batch; ++b) {
        try {
            const void* img = static_cast<const char*>(images) + static_cast<size_t>(b * n) * isz;
            const uint8_t* m = masks ? masks + b * n : nullptr;
            void* lab = static_cast<char*>(labels) + static_cast<size_t>(b * n) * label_bytes;
            if (minima) minima_one(img, dtype, m, static_cast<int32_t*>(lab), gm);
            flood_one(img, m, lab, g);
        } catch (...) {
#pragma omp critical(seg_ws_batch_error)
            if (!error) error = std::current_exception();
        }
    }
    if (error) std::rethrow_exception(error);
}

}  // namespace detail
}  // namespace ws
}  // namespace seg
