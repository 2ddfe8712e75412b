// The batch loop shared by the exact, fast and parallel watersheds: items in parallel (OpenMP,
// dynamic schedule), each optionally seeded from its local minima, the first exception of
// any item rethrown after the loop.
#pragma once

#include <cstdint>
#include <exception>
#include <stdexcept>
#include <type_traits>

#include "parallel.h"
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

// Calls typed(img, lab) with the image as `const S*` (S the element type of `dtype`) and the
// labels as int32_t* or int64_t* (`label_bytes` 4 or 8).
template <class Typed>
void with_types(const void* image, int dtype, void* labels, int label_bytes, Typed&& typed) {
    if (label_bytes != 4 && label_bytes != 8) throw std::invalid_argument("watershed: labels must be int32 or int64");
    dispatch(dtype, [&](auto tag) {
        using S = std::remove_const_t<std::remove_pointer_t<decltype(tag)>>;
        const S* img = static_cast<const S*>(image);
        if (label_bytes == 4) typed(img, static_cast<int32_t*>(labels));
        else typed(img, static_cast<int64_t*>(labels));
    });
}

// for_each_item for the threaded tie orders: flood_one(image, dtype, mask, labels,
// label_bytes, grid, threads);
// a batch of one item gets the threads, larger batches run items in parallel, one thread
// each.
template <class FloodOne>
void threaded_items(const void* images, int dtype, const uint8_t* masks, void* labels, int label_bytes,
                    int64_t batch, const Geometry& geom, const Geometry* minima_geom, int num_threads,
                    FloodOne flood_one) {
    const int nt = resolve_threads(num_threads);
    const int inner = batch == 1 ? nt : 1;
    for_each_item(images, dtype, masks, labels, label_bytes, batch, geom, minima_geom, batch == 1 ? 1 : nt,
                  [&](const void* img, const uint8_t* m, void* lab, const Grid& g) {
                      flood_one(img, dtype, m, lab, label_bytes, g, inner);
                  });
}

}  // namespace detail
}  // namespace ws
}  // namespace seg
