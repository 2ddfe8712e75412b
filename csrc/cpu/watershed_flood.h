// One watershed item: pick the flooding mode and the key layout for the image's dtype, and
// flood (the entry point shared by watershed, watershed_levels and watershed_batch).
//
// Internal to the watershed kernel; see watershed.h for the contract.
#pragma once

#include <cstdint>
#include <limits>

#include "watershed_grid.h"

namespace seg {
namespace ws {
namespace detail {


// Optional output of the standard mode: the flooding level of every pixel, the maximum of
// `value` along the path by which the flood reached it (markers: their own value; pixels
// never reached and pixels outside the mask: +inf). Computed at push time, like the label.
struct Levels {
    const double* value = nullptr;
    double* out = nullptr;

    template <class L>
    void seed(const L* lab, const uint8_t* flags, int64_t n) const {
        if (!out) return;
        for (int64_t p = 0; p < n; ++p)
            out[p] = (lab[p] && (flags[p] & kInside)) ? value[p] : std::numeric_limits<double>::infinity();
    }
    void push(int64_t from, int64_t to) const {
        if (out) out[to] = value[to] > out[from] ? value[to] : out[from];
    }
};

// Flood one item of `g.n` pixels (see watershed.h: watershed). `dtype` is a
// seg::codes::ImageDType; `label_bytes` 4 or 8; `packed_limit` as in watershed.h (< 0: the
// default kPackedLimit); `lv_out` with non-null arrays asks for the flooding levels
// (standard mode only).
void watershed_one(const void* image, int dtype, const uint8_t* mask, void* labels, int label_bytes,
                   const Grid& g, double compactness, bool wsl, int64_t packed_limit,
                   const Levels& lv_out = Levels{});

}  // namespace detail
}  // namespace ws
}  // namespace seg
