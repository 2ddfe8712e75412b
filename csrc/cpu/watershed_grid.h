// The pixel grid of one watershed item: shape, strides, raveled neighbour offsets, and the
// per-pixel flags (inside the mask, on the border) every flooding mode reads.
//
// Internal to the watershed kernel (csrc/cpu/watershed*.{h,cpp}); see watershed.h for the
// contract with the caller.
#pragma once

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "watershed.h"

namespace seg {
namespace ws {
namespace detail {

constexpr int kMaxDim = 64;

constexpr uint8_t kInside = 1;  // in the mask and not (yet) a watershed-line pixel
constexpr uint8_t kBorder = 2;  // some neighbour offset leaves the image

struct Grid {
    int ndim = 0;
    int64_t n = 1;
    int64_t shape[kMaxDim];
    int64_t stride[kMaxDim];
    int64_t lo[kMaxDim];  // coordinate c is on the border when c < lo or c >= hi
    int64_t hi[kMaxDim];
    int nn = 0;
    std::vector<int64_t> off;  // raveled neighbour offsets
    std::vector<int64_t> vec;  // [nn * ndim]

    explicit Grid(const Geometry& g) {
        if (g.ndim < 1 || g.ndim > kMaxDim) throw std::invalid_argument("watershed: ndim must be in [1, 64]");
        if (g.nneighbors < 0) throw std::invalid_argument("watershed: negative neighbour count");
        ndim = g.ndim;
        for (int d = 0; d < ndim; ++d) {
            if (g.shape[d] < 0) throw std::invalid_argument("watershed: negative shape");
            shape[d] = g.shape[d];
            n *= shape[d];
        }
        int64_t s = 1;
        for (int d = ndim - 1; d >= 0; --d) {
            stride[d] = s;
            s *= shape[d];
        }
        nn = g.nneighbors;
        vec.assign(g.neighbors, g.neighbors + static_cast<int64_t>(nn) * ndim);
        off.assign(nn, 0);
        for (int d = 0; d < ndim; ++d) {
            lo[d] = 0;
            hi[d] = shape[d];
        }
        for (int k = 0; k < nn; ++k) {
            for (int d = 0; d < ndim; ++d) {
                int64_t v = vec[static_cast<size_t>(k) * ndim + d];
                off[k] += v * stride[d];
                if (-v > lo[d]) lo[d] = -v;
                if (shape[d] - v < hi[d]) hi[d] = shape[d] - v;
            }
        }
    }

    // Whether row r (the pixels [r * W, (r + 1) * W), W the last axis's length) lies on the
    // border through a coordinate of the other axes.
    bool row_on_border(int64_t r) const {
        const int last = ndim - 1;
        const int64_t p0 = r * shape[last];
        bool border = false;
        for (int d = 0; d < last; ++d) {
            const int64_t c = (p0 / stride[d]) % shape[d];
            border |= (c < lo[d] || c >= hi[d]);
        }
        return border;
    }

    void coords(int64_t p, int64_t* c) const {
        for (int d = 0; d < ndim; ++d) {
            c[d] = p / stride[d];
            p -= c[d] * stride[d];
        }
    }

    // Calls f(q) for every neighbour q of p inside the image, in neighbour order.
    template <class F>
    inline void for_neighbors(int64_t p, const uint8_t* flags, F&& f) const {
        if (!(flags[p] & kBorder)) {
            for (int k = 0; k < nn; ++k) f(p + off[k]);
            return;
        }
        int64_t c[kMaxDim];
        coords(p, c);
        for (int k = 0; k < nn; ++k) {
            const int64_t* v = &vec[static_cast<size_t>(k) * ndim];
            bool ok = true;
            for (int d = 0; d < ndim; ++d) {
                int64_t x = c[d] + v[d];
                if (x < 0 || x >= shape[d]) {
                    ok = false;
                    break;
                }
            }
            if (ok) f(p + off[k]);
        }
    }

    // True when some neighbour offset of the border pixel p leaves the image.
    bool leaves_image(int64_t p) const {
        int64_t c[kMaxDim];
        coords(p, c);
        for (int k = 0; k < nn; ++k) {
            const int64_t* v = &vec[static_cast<size_t>(k) * ndim];
            for (int d = 0; d < ndim; ++d) {
                int64_t x = c[d] + v[d];
                if (x < 0 || x >= shape[d]) return true;
            }
        }
        return false;
    }

    // Euclidean distance between raveled points, computed like scikit-image's _euclid_dist.
    double euclid(int64_t a, int64_t b) const {
        double r = 0.0;
        for (int d = 0; d < ndim; ++d) {
            double cur = static_cast<double>(a / stride[d] - b / stride[d]);
            r += cur * cur;
            a %= stride[d];
            b %= stride[d];
        }
        return std::sqrt(r);
    }
};

// flags = kInside where mask (or everywhere), | kBorder on border pixels; NaN check for floats.
template <class S>
void build_flags(const S* img, const uint8_t* mask, uint8_t* flags, const Grid& g) {
    const int64_t n = g.n;
    if (n == 0) return;
    if constexpr (std::is_floating_point<S>::value) {
        bool bad = false;
        for (int64_t p = 0; p < n; ++p) bad |= (img[p] != img[p]);
        if (bad) throw std::invalid_argument("watershed: `image` contains NaN");
    }
    const int last = g.ndim - 1;
    const int64_t W = g.shape[last];
    const int64_t rows = n / W;
    int64_t c[kMaxDim] = {0};
    for (int64_t r = 0; r < rows; ++r) {
        bool row_border = false;
        for (int d = 0; d < last; ++d) row_border |= (c[d] < g.lo[d] || c[d] >= g.hi[d]);
        uint8_t* f = flags + r * W;
        const uint8_t* m = mask ? mask + r * W : nullptr;
        for (int64_t x = 0; x < W; ++x) {
            uint8_t v = m ? (m[x] ? kInside : 0) : kInside;
            if (row_border || x < g.lo[last] || x >= g.hi[last]) v |= kBorder;
            f[x] = v;
        }
        for (int d = last - 1; d >= 0; --d) {  // advance the row counter
            if (++c[d] < g.shape[d]) break;
            c[d] = 0;
        }
    }
}

}  // namespace detail
}  // namespace ws
}  // namespace seg
