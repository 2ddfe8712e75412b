// Fast tie order watershed: see watershed_fast.h for the rule. This file: the per-item entry
// points; value codes, flags and levels are in watershed_fast_setup.h (the sort of wider
// images in watershed_fast_levels.h), the flood in watershed_fast_flood.h.
#include "watershed_fast.h"

#include <algorithm>
#include <cstring>
#include <exception>
#include <limits>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "parallel.h"
#include "watershed_batch.h"
#include "watershed_dispatch.h"
#include "watershed_fast_flood.h"
#include "watershed_fast_levels.h"
#include "watershed_fast_setup.h"
#include "watershed_grid.h"
#include "watershed_minima.h"

namespace seg {
namespace ws {
namespace detail {
namespace {

// Images smaller than this run on one thread.
constexpr int64_t kParallelMin = int64_t(1) << 15;

// ---------------------------------------------------------------- flood

template <class S, class L, class I>
void fast_scan(const S* img, const uint8_t* mask, L* lab, const Grid& g, int nt) {
    big_ptr<I> cell_buf = big_array<I>(static_cast<size_t>(g.n));
    I* cell = cell_buf.get();
    BigVector<I> levstart;
    // (64-bit images keep their 64-bit codes: a CompactCode's extra pass over the image costs
    // more than the narrower sort saves)
    const int64_t own_max = prepare_cells<S, L, I>(img, mask, lab, g, nt, cell, levstart, PlainCode<S>{img});
    flood_levels_scan<I, L>(cell, lab, g, levstart.data(), static_cast<int64_t>(levstart.size()) - 1, own_max, nt);
}

template <class S, class L>
void fast_typed(const S* img, const uint8_t* mask, L* lab, const Grid& g, int nt) {
    const int64_t n = g.n;
    if (n == 0) return;
    if (n < kParallelMin) nt = 1;  // small images: thread start-up would cost more
    // int32 cells while level << kPosShift and pixel << 1 fit
    if (n < (int64_t(1) << (31 - kPosShift))) fast_scan<S, L, int32_t>(img, mask, lab, g, nt);
    else fast_scan<S, L, int64_t>(img, mask, lab, g, nt);
}

void fast_one(const void* image, int dtype, const uint8_t* mask, void* labels, int label_bytes, const Grid& g,
              int nt) {
    with_types(image, dtype, labels, label_bytes, [&](auto img, auto lab) { fast_typed(img, mask, lab, g, nt); });
}

}  // namespace
}  // namespace detail

void watershed_fast(const void* image, int dtype, const uint8_t* mask, void* labels, int label_bytes,
                    const Geometry& geom, int num_threads) {
    detail::Grid g(geom);
    detail::fast_one(image, dtype, mask, labels, label_bytes, g, resolve_threads(num_threads));
}

void watershed_fast_batch(const void* images, int dtype, const uint8_t* masks, void* labels, int label_bytes,
                          int64_t batch, const Geometry& geom, const Geometry* minima_geom, int num_threads) {
    detail::threaded_items(images, dtype, masks, labels, label_bytes, batch, geom, minima_geom, num_threads,
                           detail::fast_one);
}

}  // namespace ws
}  // namespace seg
