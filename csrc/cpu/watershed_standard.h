// Standard mode (no compactness, no lines): a pixel is labelled when pushed, so it is pushed
// at most once. The exact-order heap (FastHeap) runs only while equal-valued markers of
// different labels are queued; then every key left is unique and the items move to a bucket
// queue (8/16-bit images: one FIFO per grey level) or a radix heap (wider images), which pop
// in the same (value, age) order.
//
// Internal to the watershed kernel.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "watershed_flood.h"
#include "watershed_grid.h"
#include "watershed_queues.h"

namespace seg {
namespace ws {
namespace detail {

template <class S>
constexpr bool kBucketable = std::is_integral<S>::value && sizeof(S) <= 2;

template <class S>
inline int64_t level_of(S v) {
    return static_cast<int64_t>(v) - static_cast<int64_t>(std::numeric_limits<S>::min());
}

// Bucket-queue flooding (standard mode, 8/16-bit images) from grey level `first` on:
// one FIFO per level, visited in increasing level order; pushes never go below the level
// being popped (values are clamped), so this pops in (value, age) order.
template <class S, class L>
void run_buckets(const S* img, const uint8_t* flags, L* lab, const Grid& g,
                 std::vector<std::vector<int64_t>>& buckets, int64_t first, bool check_flags,
                 const Levels& lv_out) {
    const int64_t nlev = static_cast<int64_t>(buckets.size());
    for (int64_t lv = first; lv < nlev; ++lv) {
        std::vector<int64_t>& b = buckets[static_cast<size_t>(lv)];
        for (size_t i = 0; i < b.size(); ++i) {
            const int64_t p = b[i];
            const L lb = lab[p];
            if (i + 4 < b.size()) {  // the FIFO shows what comes next: fetch it early
                const int64_t nx = b[i + 4];
                if (!(flags[nx] & kBorder))
                    for (int k = 0; k < g.nn; ++k) __builtin_prefetch(&lab[nx + g.off[k]]);
            }
            g.for_neighbors(p, flags, [&](int64_t q) {
                if (lab[q] || (check_flags && !(flags[q] & kInside))) return;
                lab[q] = lb;
                lv_out.push(p, q);
                int64_t ql = level_of(img[q]);
                if (ql < lv) ql = lv;
                buckets[static_cast<size_t>(ql)].push_back(q);
            });
        }
        std::vector<int64_t>().swap(b);
    }
}

template <class S, class L, class E>
void run_radix(const S* img, const uint8_t* flags, L* lab, const Grid& g, const std::vector<RItem>& start,
               bool check_flags, const Levels& lv_out) {
    if (start.empty()) return;
    RadixHeap heap(start.front().code);
    for (const RItem& it : start) heap.put(it);
    RItem e;
    while (heap.pop(&e)) {
        const int64_t p = e.index;
        const uint64_t last = heap.last();
        const L elab = lab[p];
        if (!(flags[p] & kBorder)) {  // let the neighbours' cache misses overlap
            for (int k = 0; k < g.nn; ++k) {
                __builtin_prefetch(&lab[p + g.off[k]]);
                __builtin_prefetch(&img[p + g.off[k]]);
            }
        }
        g.for_neighbors(p, flags, [&](int64_t q) {
            if (lab[q] || (check_flags && !(flags[q] & kInside))) return;
            lab[q] = elab;
            lv_out.push(p, q);
            uint64_t c = E::rcode_v(img[q]);
            if (c < last) c = last;
            heap.put(RItem{c, q});
        });
    }
}

// Highest value code held by markers of two different labels (false: none).
template <class S, class L, class E>
bool contested_code(const S* img, const L* lab, int64_t n, uint64_t* out) {
    int64_t m = 0;
    for (int64_t p = 0; p < n; ++p) m += (lab[p] != 0);
    if (m < 2) return false;
    int bits = 1;
    while ((int64_t(1) << bits) < 2 * m) ++bits;
    const uint64_t mask = (uint64_t(1) << bits) - 1;
    std::vector<uint64_t> keys(size_t(1) << bits);
    std::vector<L> first(size_t(1) << bits, L(0));
    bool any = false;
    uint64_t vc = 0;
    for (int64_t p = 0; p < n; ++p) {
        const L l = lab[p];
        if (!l) continue;
        const uint64_t c = E::rcode_v(img[p]);
        uint64_t h = (c * 0x9E3779B97F4A7C15ull) >> (64 - bits);
        for (;; h = (h + 1) & mask) {
            if (!first[h]) {
                first[h] = l;
                keys[h] = c;
                break;
            }
            if (keys[h] == c) {
                if (first[h] != l && (!any || c > vc)) {
                    any = true;
                    vc = c;
                }
                break;
            }
        }
    }
    *out = vc;
    return any;
}

// Standard mode (no compactness, no lines): a pixel is labelled when pushed, so it is pushed
// at most once and the age never exceeds n + 1.
template <class S, class L, class E>
void flood_standard(const S* img, uint8_t* flags, L* lab, const Grid& g, const Levels& lv_out) {
    using Item = typename E::Traits::Item;
    const int64_t n = g.n;
    bool outside = false;
    for (int64_t p = 0; p < n; ++p) {
        if (!(flags[p] & kInside)) {
            lab[p] = 0;
            outside = true;
        }
    }
    // Flooding reads one array per neighbour instead of two: pixels outside the mask get a
    // sentinel label (one no marker uses) once the markers have been collected, and 0 again
    // at the end. Without a mask there is nothing to check.
    const L sentinel = std::numeric_limits<L>::min();
    bool use_sentinel = false;
    if (outside) {
        use_sentinel = true;
        for (int64_t p = 0; p < n && use_sentinel; ++p) use_sentinel = (lab[p] != sentinel);
    }
    const bool check_flags = outside && !use_sentinel;
    struct Arm {
        L* lab;
        const uint8_t* flags;
        int64_t n;
        L sentinel;
        bool on = false;
        void arm() {
            if (on) return;
            on = true;
            for (int64_t p = 0; p < n; ++p)
                if (!(flags[p] & kInside)) lab[p] = sentinel;
        }
        ~Arm() {
            if (!on) return;
            for (int64_t p = 0; p < n; ++p)
                if (lab[p] == sentinel) lab[p] = 0;
        }
    } armed{lab, flags, n, sentinel};
    auto arm = [&] {
        if (use_sentinel) armed.arm();
    };

    int64_t vc = -1;  // highest grey level holding markers of two different labels
    if constexpr (kBucketable<S>) {
        const int64_t nlev = int64_t(1) << (8 * sizeof(S));
        std::vector<L> first(static_cast<size_t>(nlev), L(0));
        for (int64_t p = 0; p < n; ++p) {
            const L l = lab[p];
            if (!l) continue;
            const int64_t lv = level_of(img[p]);
            L& f = first[static_cast<size_t>(lv)];
            if (!f) f = l;
            else if (f != l && lv > vc) vc = lv;
        }
        if (vc < 0) {  // no contested grey level: no heap phase at all
            std::vector<std::vector<int64_t>> buckets(static_cast<size_t>(nlev));
            int64_t lo = nlev;
            for (int64_t p = 0; p < n; ++p) {
                if (!lab[p]) continue;
                const int64_t lv = level_of(img[p]);
                buckets[static_cast<size_t>(lv)].push_back(p);
                if (lv < lo) lo = lv;
            }
            arm();
            lv_out.seed(lab, flags, n);
            run_buckets(img, flags, lab, g, buckets, lo, check_flags, lv_out);
            return;
        }
    }

    bool radix = false;
    uint64_t vcode = 0;  // non-bucketable images: highest contested value code
    if constexpr (!kBucketable<S>) {
        radix = true;
        if (!contested_code<S, L, E>(img, lab, n, &vcode)) {  // no heap phase at all
            std::vector<RItem> start;
            for (int64_t p = 0; p < n; ++p)
                if (lab[p]) start.push_back(RItem{E::rcode_v(img[p]), p});
            std::stable_sort(start.begin(), start.end(),
                             [](const RItem& x, const RItem& y) { return x.code < y.code; });
            arm();
            lv_out.seed(lab, flags, n);
            run_radix<S, L, E>(img, flags, lab, g, start, check_flags, lv_out);
            return;
        }
    }

    FastHeap<typename E::Traits> heap;
    int64_t nmarkers = 0;
    for (int64_t p = 0; p < n; ++p) nmarkers += (lab[p] != 0);
    heap.reserve(static_cast<size_t>(nmarkers) + 1024);
    for (int64_t p = 0; p < n; ++p)
        if (lab[p]) heap.push(E::make(E::code(img[p]), 0, p));
    arm();
    lv_out.seed(lab, flags, n);
    uint64_t age = 1;
    while (!heap.empty()) {
        if constexpr (kBucketable<S>) {
            if (E::level(heap.d[0]) > vc) break;
        } else {
            if (radix && E::rcode(heap.d[0]) > vcode) break;
        }
        const Item e = heap.pop();
        const typename E::Code evalue = E::value(e);
        const int64_t eidx = E::index(e);
        const L elab = lab[eidx];
        if (!(flags[eidx] & kBorder)) {  // let the neighbours' cache misses overlap
            for (int k = 0; k < g.nn; ++k) {
                __builtin_prefetch(&lab[eidx + g.off[k]]);
                __builtin_prefetch(&img[eidx + g.off[k]]);
            }
        }
        g.for_neighbors(eidx, flags, [&](int64_t q) {
            if (lab[q] || (check_flags && !(flags[q] & kInside))) return;
            ++age;
            lab[q] = elab;
            lv_out.push(eidx, q);
            typename E::Code v = E::code(img[q]);
            if (v < evalue) v = evalue;
            heap.push(E::make(v, age, q));
        });
    }
    if constexpr (kBucketable<S>) {
        if (!heap.empty()) {
            // Every key left is unique: move the items to the buckets in (value, age) order.
            std::sort(heap.d, heap.d + heap.n, [](const Item& x, const Item& y) { return E::Traits::less(x, y); });
            std::vector<std::vector<int64_t>> buckets(size_t(1) << (8 * sizeof(S)));
            for (size_t k = 0; k < heap.n; ++k) buckets[static_cast<size_t>(E::level(heap.d[k]))].push_back(E::index(heap.d[k]));
            const int64_t lo = E::level(heap.d[0]);
            heap.n = 0;
            run_buckets(img, flags, lab, g, buckets, lo, check_flags, lv_out);
        }
    } else {
        if (!heap.empty()) {
            // Every key left is unique: hand the items to the radix heap in (value, age) order.
            std::sort(heap.d, heap.d + heap.n, [](const Item& x, const Item& y) { return E::Traits::less(x, y); });
            std::vector<RItem> start(heap.n);
            for (size_t k = 0; k < heap.n; ++k) start[k] = RItem{E::rcode(heap.d[k]), E::index(heap.d[k])};
            heap.n = 0;
            run_radix<S, L, E>(img, flags, lab, g, start, check_flags, lv_out);
        }
    }
}

}  // namespace detail
}  // namespace ws
}  // namespace seg
