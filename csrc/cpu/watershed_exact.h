// Compact and watershed-line modes: labels are set when a pixel is popped, so a pixel can be
// pushed several times and the exact heap (Heap<K>, scikit-image's layout) is used throughout.
//
// Internal to the watershed kernel.
#pragma once

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "watershed_grid.h"
#include "watershed_queues.h"

// The compact cost value + c * d must round exactly like scikit-image's (no fused multiply-add):
// setup.py builds with -ffp-contract=off; clang also gets the pragma.
#if defined(__clang__)
#pragma clang fp contract(off)
#endif

namespace seg {
namespace ws {
namespace detail {

template <class L>
inline bool diff_neighbors(uint8_t* flags, const L* lab, const Grid& g, int64_t index, L label) {
    if (!(flags[index] & kInside)) return true;
    bool diff = false;
    g.for_neighbors(index, flags, [&](int64_t q) {
        if (diff) return;
        if (flags[q] & kInside) {
            L nl = lab[q];
            if (nl && nl != label) diff = true;
        }
    });
    if (diff) flags[index] &= static_cast<uint8_t>(~kInside);
    return diff;
}

// Compact and watershed-line modes: labels are set when a pixel is popped, so a pixel can be
// pushed several times and the exact heap is used throughout (ages are 64-bit).
template <class S, class K, class L, bool COMPACT>
void flood(const S* img, uint8_t* flags, L* lab, const Grid& g, double compactness, bool wsl) {
    const int64_t n = g.n;
    (void)wsl;
    for (int64_t p = 0; p < n; ++p)
        if (!(flags[p] & kInside)) lab[p] = 0;
    Heap<K> heap;
    for (int64_t p = 0; p < n; ++p) {
        if (lab[p]) heap.push(Item<K>{static_cast<K>(img[p]), 0, p, p});
    }
    // A line pixel stays 0, so each later copy of it in the heap would pop again and push
    // its neighbours once more: pushes that are all dominated (same pixels, keys no smaller,
    // later ages) and so never decide a label, but whose number grows exponentially along
    // lines (minutes on a 6x6x6 image with 26-connectivity; scikit-image does the same).
    // They are skipped, except while equal-valued markers of different labels are still in
    // the heap: their order depends on the heap's layout, which those pushes change.
    bool contested = false;
    K vc{};
    if constexpr (!COMPACT) {
        std::vector<std::pair<K, L>> seeds;
        for (int64_t p = 0; p < n; ++p)
            if (lab[p]) seeds.emplace_back(static_cast<K>(img[p]), lab[p]);
        std::sort(seeds.begin(), seeds.end());
        for (size_t i = 1; i < seeds.size(); ++i) {
            if (seeds[i].first == seeds[i - 1].first && seeds[i].second != seeds[i - 1].second) {
                contested = true;
                vc = seeds[i].first;
            }
        }
    }
    int64_t age = 1;
    while (!heap.empty()) {
        const Item<K> e = heap.pop();
        if (lab[e.index] && e.index != e.source) continue;  // already flooded from elsewhere
        if constexpr (!COMPACT) {
            if (!(flags[e.index] & kInside) && (!contested || vc < e.value)) continue;
        }
        const L src = lab[e.source];
        // a line pixel (neighbours of another label) stays 0 and leaves the mask
        if (COMPACT || !diff_neighbors(flags, lab, g, e.index, src)) lab[e.index] = src;
        g.for_neighbors(e.index, flags, [&](int64_t q) {
            if (!(flags[q] & kInside)) return;
            if (lab[q]) return;
            ++age;
            K v;
            if constexpr (COMPACT) {
                v = static_cast<double>(img[q]);
                v += compactness * g.euclid(q, e.source);
            } else {
                v = static_cast<K>(img[q]);
            }
            if (v < e.value) v = e.value;
            heap.push(Item<K>{v, age, q, e.source});
        });
    }
}

}  // namespace detail
}  // namespace ws
}  // namespace seg
