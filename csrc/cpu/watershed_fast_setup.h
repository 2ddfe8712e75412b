// The steps of the fast and parallel tie orders (watershed_fast.h, watershed_parallel.h)
// before their floods: order-preserving value codes, the flags, the markers, and the levels
// of the in-mask pixels (8/16-bit images by a histogram here, wider ones in
// watershed_fast_levels.h).
//
// Internal to watershed_fast.cpp and watershed_parallel.cpp.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "big_alloc.h"
#include "parallel.h"
#include "watershed_fast_flood.h"
#include "watershed_fast_levels.h"
#include "watershed_grid.h"

namespace seg {
namespace ws {
namespace detail {

// ---------------------------------------------------------------- codes

// 8/16-bit images: the grey level is the priority (no ranks needed).
template <class S>
constexpr bool kNarrow = std::is_integral<S>::value && sizeof(S) <= 2;

// Order-preserving unsigned code of a value: uint32 for images of at most 32 bits, uint64
// for 64-bit ones (compared as double, like the exact mode). -0 and +0 share a code.
template <class S>
using CodeT = std::conditional_t<(sizeof(S) <= 4), uint32_t, uint64_t>;

template <class S>
inline CodeT<S> code_of(S v) {
    if constexpr (std::is_same<S, float>::value) {
        if (v == 0.0f) v = 0.0f;
        uint32_t u;
        std::memcpy(&u, &v, sizeof u);
        return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
    } else if constexpr (sizeof(S) == 8) {
        double d = static_cast<double>(v);
        if (d == 0.0) d = 0.0;
        uint64_t u;
        std::memcpy(&u, &d, sizeof u);
        return (u >> 63) ? ~u : (u | (uint64_t(1) << 63));
    } else if constexpr (std::is_signed<S>::value) {
        using U = std::make_unsigned_t<S>;
        return static_cast<uint32_t>(static_cast<U>(static_cast<U>(v) ^ (U(1) << (8 * sizeof(S) - 1))));
    } else {
        return static_cast<uint32_t>(v);
    }
}

// A pixel's code as the sort, the levels and the keys see it: code_of(img[p]) (PlainCode),
// or, for a 64-bit image (compared as float64) whose values' bits all end in `shift` zeros
// and whose codes span less than 2^32 above them (float32 values stored as float64, integers
// of up to about 21 bits, ...), (code >> shift) - base in 32 bits (CompactCode): the same
// order and the same ties in half the width (a negative value's code, ~bits, ends in as many
// ones, so the dropped bits never tell two codes apart). `at(o)`: the same code for the
// image starting at pixel o.
template <class S>
struct PlainCode {
    using C = CodeT<S>;
    const S* img;
    C operator()(int64_t p) const { return code_of(img[p]); }
    PlainCode at(int64_t o) const { return PlainCode{img + o}; }
};

template <class S>
struct CompactCode {
    using C = uint32_t;
    const S* img;
    CodeT<S> base;
    int shift;
    C operator()(int64_t p) const { return static_cast<C>((code_of(img[p]) >> shift) - base); }
    CompactCode at(int64_t o) const { return CompactCode{img + o, base, shift}; }
};

// Whether the codes of img[0, n) fit a CompactCode (64-bit images only); if so, `out` gets it.
// A genuine float64 image is told apart within its first few thousand pixels per thread.
template <class S>
bool compact_code(const S* img, int64_t n, int nt, CompactCode<S>& out) {
    using C = CodeT<S>;
    static_assert(sizeof(C) == 8, "32-bit codes are compact already");
    // the shift of the values' bits below the sign seen so far, or -1 if the span is too wide
    auto shift_of = [](C lo, C hi, C bits) {
        bits &= ~(C(1) << 63);
        const int shift = bits ? __builtin_ctzll(static_cast<unsigned long long>(bits)) : 63;
        return (hi >> shift) - (lo >> shift) > C(0xFFFFFFFFu) ? -1 : shift;
    };
    constexpr int64_t kChunk = 4096;
    C lo = ~C(0), hi = 0, bits = 0;
    int wide = 0;  // the span is too wide: every thread stops
#pragma omp parallel num_threads(nt) reduction(min : lo) reduction(max : hi) reduction(| : bits)
    {
        const int t = thread_id();
        const int T = team_size();
        const int64_t p0 = n * t / T, p1 = n * (t + 1) / T;
        for (int64_t a = p0; a < p1 && !__atomic_load_n(&wide, __ATOMIC_RELAXED); a += kChunk) {
            for (int64_t p = a; p < std::min(a + kChunk, p1); ++p) {
                const C c = code_of(img[p]);
                lo = c < lo ? c : lo;
                hi = c > hi ? c : hi;
                bits |= (c >> 63) ? c : ~c;  // the value's bits (a negative value's code is ~bits)
            }
            if (shift_of(lo, hi, bits) < 0) __atomic_store_n(&wide, 1, __ATOMIC_RELAXED);
        }
    }
    const int shift = n && !wide ? shift_of(lo, hi, bits) : -1;
    if (shift < 0) return false;
    out = CompactCode<S>{img, lo >> shift, shift};
    return true;
}

// flags = kInside where mask (or everywhere), | kBorder on border pixels, rows in parallel;
// NaN check for floats. Same flags as build_flags (watershed_grid.h).
template <class S>
void fast_flags(const S* img, const uint8_t* mask, uint8_t* flags, const Grid& g, int nt) {
    const int64_t n = g.n;
    const int last = g.ndim - 1;
    const int64_t W = g.shape[last];
    const int64_t rows = W ? n / W : 0;
    int bad = 0;
#pragma omp parallel for schedule(static) num_threads(nt) reduction(| : bad)
    for (int64_t r = 0; r < rows; ++r) {
        const bool row_border = g.row_on_border(r);
        uint8_t* f = flags + r * W;
        const uint8_t* m = mask ? mask + r * W : nullptr;
        const S* v = img + r * W;
        // separate loops without branches, so that each vectorises (one loop with the three
        // tests did not: 1.7 ns per pixel)
        if constexpr (std::is_floating_point<S>::value) {
            int b = 0;
            for (int64_t x = 0; x < W; ++x) b |= (v[x] != v[x]);
            bad |= b;
        }
        const uint8_t base = row_border ? kBorder : 0;
        static_assert(kInside == 1, "kInside is the mask's truth value");
        if (m) {
            for (int64_t x = 0; x < W; ++x) f[x] = static_cast<uint8_t>((m[x] != 0) | base);
        } else {
            std::memset(f, kInside | base, static_cast<size_t>(W));
        }
        if (!row_border) {
            for (int64_t x = 0; x < std::min(W, g.lo[last]); ++x) f[x] |= kBorder;
            for (int64_t x = std::max<int64_t>(0, g.hi[last]); x < W; ++x) f[x] |= kBorder;
        }
    }
    if (bad) throw std::invalid_argument("watershed: `image` contains NaN");
}

// ---------------------------------------------------------------- levels

// Levels of an 8/16-bit image: a histogram of the grey levels; table[code] = the cell bits of
// that grey level (its level start << kPosShift, kCounted when it holds more than one pixel:
// watershed_fast_flood.h); levstart: the level starts with the in-mask count appended;
// levcode: each level's code.
template <class S, class I>
void narrow_levels(const S* img, const uint8_t* flags, bool masked, int64_t n, std::vector<I>& table,
                   std::vector<I>& levstart, std::vector<CodeT<S>>& levcode, int nt) {
    constexpr int64_t K = int64_t(1) << (8 * sizeof(S));
    std::vector<int64_t> hist(static_cast<size_t>(K * nt), 0);
#pragma omp parallel num_threads(nt)
    {
        const int t = thread_id();
        const int T = team_size();
        const int64_t lo = n * t / T, hi = n * (t + 1) / T;
        int64_t* h = &hist[static_cast<size_t>(t * K)];
        if (masked) {
            for (int64_t p = lo; p < hi; ++p)
                if (flags[p] & kInside) ++h[code_of(img[p])];
        } else {
            for (int64_t p = lo; p < hi; ++p) ++h[code_of(img[p])];
        }
    }
    table.assign(static_cast<size_t>(K), I(0));
    levstart.clear();
    levcode.clear();
    int64_t s = 0;
    for (int64_t c = 0; c < K; ++c) {
        int64_t cnt = 0;
        for (int u = 0; u < nt; ++u) cnt += hist[static_cast<size_t>(u * K + c)];
        if (!cnt) continue;
        levstart.push_back(static_cast<I>(s));
        levcode.push_back(static_cast<CodeT<S>>(c));
        table[static_cast<size_t>(c)] = static_cast<I>((s << kPosShift) | (cnt > 1 ? kCounted : 0));
        s += cnt;
    }
    levstart.push_back(static_cast<I>(s));
}

// The cells and levels of one item (steps before the flood): flags, markers (idle ones
// lose kInside), out-of-mask labels zeroed, every in-mask pixel's level by its `code` (a
// PlainCode or CompactCode of img; 8/16-bit images take their grey level); `cell` holds n
// words, `levstart` gets the level starts with the in-mask count appended, and `levcode`,
// when given, each level's code. Returns the flood's own_max (watershed_fast_flood.h). `nt`
// threads; the result does not depend on it.
template <class S, class L, class I, class Code>
int64_t prepare_cells(const S* img, const uint8_t* mask, L* lab, const Grid& g, int nt, I* cell,
                      BigVector<I>& levstart, const Code& code, BigVector<typename Code::C>* levcode = nullptr) {
    const int64_t n = g.n;
    const bool masked = mask != nullptr;
    bool few = false;  // levels counted per distinct value (few_levels)
    big_ptr<uint8_t> flag_buf = big_array<uint8_t>(static_cast<size_t>(n));
    uint8_t* flags = flag_buf.get();
    fast_flags(img, mask, flags, g, nt);
    // A marker whose in-image neighbours are all markers or outside the mask (idle: it
    // would label nothing) keeps kLabelled but loses kInside, so neither the sort nor the
    // flood sees it (13 % of the coins tutorial's pixels). Reads of lab[q] happen only
    // where flags[q] has kInside, and only pixels without it have lab written here.
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t p = 0; p < n; ++p) {
        I w = flags[p];
        if (!(w & kInside)) {
            lab[p] = L(0);
        } else if (lab[p]) {
            bool idle = true;
            g.for_neighbors(p, flags, [&](int64_t q) {
                idle = idle && (!(flags[q] & kInside) || lab[q] != L(0));
            });
            w = idle ? static_cast<I>((w & kBorder) | kLabelled) : static_cast<I>(w | kLabelled);
        }
        cell[p] = w;
    }
    if constexpr (kNarrow<S>) {
        static_assert(std::is_same<typename Code::C, CodeT<S>>::value, "grey levels are the codes");
        std::vector<I> table;
        std::vector<I> starts;
        std::vector<CodeT<S>> codes;
        narrow_levels(img, flags, masked, n, table, starts, codes, nt);
        levstart.resize_uninitialized(starts.size());
        std::copy(starts.begin(), starts.end(), levstart.data());
        if (levcode) {
            levcode->resize_uninitialized(codes.size());
            std::copy(codes.begin(), codes.end(), levcode->data());
        }
        const I* tb = table.data();
#pragma omp parallel for schedule(static) num_threads(nt)
        for (int64_t p = 0; p < n; ++p)
            if (cell[p] & kInside) cell[p] |= tb[code_of(img[p])];
    } else {
        using C = typename Code::C;
        few = few_levels<C, I>(code, cell, n, levstart, nt, levcode);
        if (!few) levstart = sorted_levels<C, I>(code, cell, n, nt, levcode);
    }
    return kNarrow<S> || few ? 1 : kOwnMax;
}

}  // namespace detail
}  // namespace ws
}  // namespace seg
