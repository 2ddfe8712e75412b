// Vertex tables of the CPU permutohedral lattice build (internal to permutohedral.cpp):
// both number keys (image index + d coordinates) in order of first insertion.
//
//   * HashTable: open addressing on the keys' 64-bit hashes, for any features;
//   * BoxTable: a dense array over the box of keys that the features can reach, no
//     hashing; used when that box is small, as for the spatial-only (Gaussian) kernel, whose
//     features are a regular grid of pixel coordinates.
//
// The same ids come out of either for the same insertions, so the choice changes no result.
// A key outside the box (never expected: the box has a margin) makes BoxTable::insert
// return -1 and set `outside`; the build then starts again with a HashTable.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "../common/permutohedral.h"

namespace seg {
namespace lattice_tables {

// The keys a lattice build can create, per image: key coordinate i < d in
// [lo[i], lo[i] + ext[i]). Empty (per_image 0) when not bounded or too large to be worth it.
struct KeyBox {
    int d = 0;
    int64_t lo[SEG_LATTICE_MAX_D] = {};
    int64_t ext[SEG_LATTICE_MAX_D] = {};
    int64_t per_image = 0;  // prod(ext): 0 = no box

    // Slot of a key (key[0] = image, key[1..d] coordinates) in a table of images
    // [image_lo, image_lo + images), -1 outside.
    int64_t index(const int32_t* key, int64_t image_lo, int64_t images) const {
        const int64_t b = (int64_t)key[0] - image_lo;
        if (b < 0 || b >= images) return -1;
        int64_t idx = b;
        for (int i = 0; i < d; ++i) {
            const int64_t c = (int64_t)key[1 + i] - lo[i];
            if (c < 0 || c >= ext[i]) return -1;
            idx = idx * ext[i] + c;
        }
        return idx;
    }
};

// The smallest and largest of f[0..n), NaN skipped (+inf, -inf when none): four-lane
// running extremes, so that the loop vectorises (in any order the extremes are exact).
inline void float_range(const float* f, int64_t n, float& lo_out, float& hi_out) {
    typedef float v4f __attribute__((vector_size(16)));
    v4f lo[2], hi[2];
    lo[0] = lo[1] = (v4f){} + INFINITY;
    hi[0] = hi[1] = (v4f){} - INFINITY;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 2; ++k) {
            v4f x;
            std::memcpy(&x, f + i + 4 * k, sizeof x);
            lo[k] = x < lo[k] ? x : lo[k];
            hi[k] = x > hi[k] ? x : hi[k];
        }
    float a = INFINITY, b = -INFINITY;
    for (; i < n; ++i) {
        a = f[i] < a ? f[i] : a;
        b = f[i] > b ? f[i] : b;
    }
    for (int k = 0; k < 2; ++k)
        for (int l = 0; l < 4; ++l) {
            a = lo[k][l] < a ? lo[k][l] : a;
            b = hi[k][l] > b ? hi[k][l] : b;
        }
    lo_out = a;
    hi_out = b;
}

// The box of the keys of features [B, d, N] (ghost: the all-zero feature point too), or an
// empty box when it would hold more than `max_size` slots per image. The elevated coordinates are
// bounded from the features' ranges (csrc/common/permutohedral.h, point()): coordinate j is
// sum_{i>j} cf_i - j cf_j with cf_i = f_{i-1} * scale_{i-1}; a key coordinate lies within
// 2.5(d+1) of its elevated coordinate (rounding, the rank wrap and the vertex step); the
// margin is 3(d+1) + 2 plus a relative one for float rounding.
inline KeyBox key_box(const float* features, int64_t B, int d, int64_t N, bool ghost, const float* scale,
                      int64_t max_size) {
    KeyBox box;
    if (B <= 0 || N <= 0 || d < 1) return box;
    std::vector<double> fmin((size_t)d, ghost ? 0.0 : INFINITY), fmax((size_t)d, ghost ? 0.0 : -INFINITY);
    for (int64_t b = 0; b < B; ++b)
        for (int j = 0; j < d; ++j) {
            float lo, hi;
            float_range(features + (b * d + j) * N, N, lo, hi);
            fmin[j] = lo < fmin[j] ? lo : fmin[j];
            fmax[j] = hi > fmax[j] ? hi : fmax[j];
        }
    double cf_lo[SEG_LATTICE_MAX_D + 1], cf_hi[SEG_LATTICE_MAX_D + 1];  // cf_j, j = 1..d
    for (int j = 1; j <= d; ++j) {
        if (!std::isfinite(fmin[j - 1]) || !std::isfinite(fmax[j - 1])) return box;  // NaN/Inf: hash path reports it
        cf_lo[j] = fmin[j - 1] * scale[j - 1];
        cf_hi[j] = fmax[j - 1] * scale[j - 1];
    }
    double size = 1.0;
    box.d = d;
    for (int i = 0; i < d; ++i) {  // key coordinate i follows elevated coordinate i
        double lo = 0.0, hi = 0.0;
        for (int k = i + 1; k <= d; ++k) lo += cf_lo[k], hi += cf_hi[k];
        if (i > 0) lo -= i * cf_hi[i], hi -= i * cf_lo[i];
        const double margin = 3.0 * (d + 1) + 2.0 + 1e-5 * std::max(std::fabs(lo), std::fabs(hi));
        lo = std::floor(lo - margin);
        hi = std::ceil(hi + margin);
        if (!(hi - lo < 1e9)) return KeyBox();
        box.lo[i] = (int64_t)lo;
        box.ext[i] = (int64_t)(hi - lo) + 1;
        size *= (double)box.ext[i];
        if (size > (double)max_size) return KeyBox();
    }
    box.per_image = (int64_t)size;
    return box;
}

// Dense key table over a KeyBox for images [image_lo, image_lo + images) (see the file
// comment); the interface of HashTable.
struct BoxTable {
    static constexpr bool kHashed = false;
    int kw = 0;
    std::vector<int32_t> keys;       // [nv, kw]
    std::vector<int64_t> first;      // [nv] first (smallest) entry that created the vertex
    std::vector<int32_t> slot;       // [images * box.per_image] vertex id, -1 when none
    const KeyBox* box = nullptr;
    int64_t image_lo = 0, images = 0;
    int64_t nv = 0;
    bool outside = false;            // a key fell outside the box (see the file comment)

    void init(int64_t expected, int key_width, const KeyBox& b, int64_t first_image, int64_t image_count) {
        kw = key_width;
        box = &b;
        image_lo = first_image;
        images = image_count;
        slot.assign((size_t)(image_count * b.per_image), -1);
        keys.reserve((size_t)expected * kw / 2 + kw);
        first.reserve((size_t)expected / 2 + 1);
    }
    void compact() {}
    uint64_t hash_of(int64_t) const { return 0; }  // no hashes (the HashTable interface)
    int64_t find(uint64_t, const int32_t* key) const {
        const int64_t i = box->index(key, image_lo, images);
        return i < 0 ? -1 : slot[(size_t)i];
    }
    void prefetch(uint64_t, const int32_t*) const {}  // dense and local: nothing to gain
    int64_t insert(uint64_t, const int32_t* key, int64_t entry) {
        const int64_t i = box->index(key, image_lo, images);
        if (i < 0) {  // no throw: this runs inside OpenMP regions
            outside = true;
            return -1;
        }
        int32_t& s = slot[(size_t)i];
        if (s >= 0) return s;
        s = (int32_t)nv;
        keys.insert(keys.end(), key, key + kw);
        first.push_back(entry);
        return nv++;
    }
};

struct HashTable {
    static constexpr bool kHashed = true;
    int kw = 0;                      // key width: 1 (image) + d
    std::vector<int32_t> keys;       // [nv, kw]
    std::vector<uint64_t> hashes;    // [nv]
    std::vector<int64_t> first;      // [nv] first (smallest) entry that created the vertex
    // open addressing; a slot holds (high 32 bits of the hash) << 32 | vertex id, so most
    // mismatches are rejected without touching the vertex's key; kEmpty when free
    std::vector<uint64_t> slots;
    uint64_t mask = 0;
    int64_t nv = 0;
    bool outside = false;            // never set (the BoxTable interface)
    static constexpr uint64_t kEmpty = ~0ull;

    void init(int64_t expected, int key_width, const KeyBox&, int64_t, int64_t) {
        kw = key_width;
        uint64_t cap = 16;
        while (cap < (uint64_t)expected * 2) cap <<= 1;
        slots.assign(cap, kEmpty);
        mask = cap - 1;
        keys.reserve((size_t)expected * kw / 2 + kw);
        hashes.reserve((size_t)expected / 2 + 1);
    }
    // Rehash into the smallest power-of-two slot array at most 1/4 full (cache-friendly finds).
    void compact() {
        uint64_t cap = 16;
        while (cap < (uint64_t)nv * 4) cap <<= 1;
        if (cap < mask + 1) rehash(cap);
    }
    void grow() { rehash((mask + 1) * 2); }
    void rehash(uint64_t cap) {
        std::vector<uint64_t>(cap, kEmpty).swap(slots);
        mask = cap - 1;
        for (int64_t v = 0; v < nv; ++v) {
            uint64_t s = hashes[v] & mask;
            while (slots[s] != kEmpty) s = (s + 1) & mask;
            slots[s] = slot_value(hashes[v], v);
        }
    }
    static uint64_t slot_value(uint64_t h, int64_t v) { return (h & 0xFFFFFFFF00000000ull) | (uint32_t)v; }
    template <int KW>
    static bool same_n(const int32_t* a, const int32_t* b, int n) {  // KW > 0: n == KW
        int32_t diff = 0;
        for (int i = 0; i < (KW > 0 ? KW : n); ++i) diff |= a[i] ^ b[i];
        return diff == 0;
    }
    bool same(int64_t v, const int32_t* key) const {  // branch-free: keys almost always match
        const int32_t* k = &keys[(size_t)v * kw];
        switch (kw) {  // the usual kernels' key widths, unrolled (1 + d for d = 2, 3, 5, 6)
            case 3: return same_n<3>(k, key, 3);
            case 4: return same_n<4>(k, key, 4);
            case 6: return same_n<6>(k, key, 6);
            case 7: return same_n<7>(k, key, 7);
            default: return same_n<0>(k, key, kw);
        }
    }
    // Slot of key (hash h): the slot holding it, or the empty slot where it would go.
    uint64_t probe(uint64_t h, const int32_t* key) const {
        const uint64_t tag = h & 0xFFFFFFFF00000000ull;
        uint64_t s = h & mask;
        while (true) {
            const uint64_t x = slots[s];
            if (x == kEmpty) return s;
            if ((x & 0xFFFFFFFF00000000ull) == tag && same((int64_t)(uint32_t)x, key)) return s;
            s = (s + 1) & mask;
        }
    }
    uint64_t hash_of(int64_t v) const { return hashes[(size_t)v]; }
    void prefetch(uint64_t h, const int32_t*) const { __builtin_prefetch(&slots[h & mask]); }
    int64_t find(uint64_t h, const int32_t* key) const {
        const uint64_t x = slots[probe(h, key)];
        return x == kEmpty ? -1 : (int64_t)(uint32_t)x;
    }
    int64_t insert(uint64_t h, const int32_t* key, int64_t entry) {
        if ((uint64_t)(nv + 1) * 2 > mask + 1) grow();
        const uint64_t s = probe(h, key);
        if (slots[s] != kEmpty) return (int64_t)(uint32_t)slots[s];
        slots[s] = slot_value(h, nv);
        keys.insert(keys.end(), key, key + kw);
        hashes.push_back(h);
        first.push_back(entry);
        return nv++;
    }
};

}  // namespace lattice_tables
}  // namespace seg
