// The priority levels of the fast tie order (watershed_fast.h) for images wider than 16
// bits: the in-mask pixels sorted by their order-preserving codes, in parallel; images of at
// most 2^16 distinct codes are counted per code instead (few_levels).
//
// A sample sort: splitters from a regular sample of the codes cut the code range into
// buckets of about kBucketTarget pixels (a 2^16-entry table on the top bits of code - min
// narrows each lookup to a few splitters); pixels are counted and scattered into their
// buckets (thread-major ranges, so positions do not depend on the thread count), each bucket
// is sorted on its own (LSD radix on the bits in which its codes differ, in cache) and its
// runs of equal codes become levels. Equal codes always share a bucket, so the order among
// equal codes is the only thing the thread count could change, and the flood does not
// depend on it (watershed_fast_flood.h sorts a level's queued pixels by arrival).
//
// Internal to watershed_fast.cpp.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "big_alloc.h"
#include "parallel.h"
#include "watershed_fast_flood.h"

namespace seg {
namespace ws {
namespace detail {

// Largest level whose pixels get their own slots (watershed_fast_flood.h); larger levels
// are counted.
constexpr int64_t kOwnMax = 16;

// Pixels per bucket aimed at (their keys and pixels stay in L2 while the bucket is sorted).
constexpr int64_t kBucketTarget = 8192;

// Insertion sort of key[0..m) with val (small m).
template <class C, class I>
void insertion_sort(C* key, I* val, int64_t m) {
    for (int64_t i = 1; i < m; ++i) {
        const C k = key[i];
        const I v = val[i];
        int64_t j = i;
        for (; j > 0 && key[j - 1] > k; --j) {
            key[j] = key[j - 1];
            val[j] = val[j - 1];
        }
        key[j] = k;
        val[j] = v;
    }
}

// Sorts key[0..m) (with val) by key (the order of equal keys is unspecified but fixed by the
// input order). `k2`/`v2`: scratch of m entries; the result ends in key/val. Only the bits in
// which the keys differ count (bits of key - min, less the low bits that no key changes: a
// float32 image converted to float64 leaves 29 of them). When those are at most 22 bits (a
// float32 image's buckets): LSD radix in two passes or one, branch-free. Wider keys: a
// counting pass on the top 11 of those bits, then each group by insertion sort (up to 32
// entries) or the same way (its range is 2^11 times smaller). (The split + insertion sorts
// cost 2.5x the LSD passes on a float32 volume's buckets of 8192 codes, the insertion
// sorts' branches being unpredictable; on wide keys the LSD passes would be too many.)
template <class C, class I>
void bucket_sort(C* key, I* val, int64_t m, C* k2, I* v2) {
    if (m < 2) return;
    C lo = key[0], hi = key[0], vary = 0;
    for (int64_t i = 1; i < m; ++i) {
        lo = key[i] < lo ? key[i] : lo;
        hi = key[i] > hi ? key[i] : hi;
        vary |= key[i] ^ key[0];
    }
    if (lo == hi) return;
    if (m <= 16) return insertion_sort(key, val, m);
    constexpr int kDigit = 11;
    const int tz = __builtin_ctzll(static_cast<unsigned long long>(vary));
    int bits = 0;
    while (bits < int(8 * sizeof(C)) - tz && (((hi - lo) >> tz) >> bits) != 0) ++bits;
    if (bits <= 2 * kDigit) {
        const int passes = (bits + kDigit - 1) / kDigit;
        const int digit = (bits + passes - 1) / passes;
        const int64_t R = int64_t(1) << digit;
        const C mask = static_cast<C>(R - 1);
        int64_t h[(1 << kDigit) + 1];
        C* ka = key;
        I* va = val;
        C* kb = k2;
        I* vb = v2;
        for (int pass = 0; pass < passes; ++pass) {
            const int sh = tz + pass * digit;
            std::fill(h, h + R + 1, 0);
            for (int64_t i = 0; i < m; ++i) ++h[(((ka[i] - lo) >> sh) & mask) + 1];
            for (int64_t d = 0; d < R; ++d) h[d + 1] += h[d];
            for (int64_t i = 0; i < m; ++i) {
                const int64_t pos = h[((ka[i] - lo) >> sh) & mask]++;
                kb[pos] = ka[i];
                vb[pos] = va[i];
            }
            std::swap(ka, kb);
            std::swap(va, vb);
        }
        if (ka != key) {
            std::copy(ka, ka + m, key);
            std::copy(va, va + m, val);
        }
        return;
    }
    // digits of up to 11 bits, no wider than the group needs: a small group spread over a
    // wide range would otherwise pay for 2^11 counters
    int digit = 1;
    while (digit < kDigit && (int64_t(1) << digit) < m) ++digit;
    int sh = 0;
    while (((hi - lo) >> sh) >= (C(1) << digit)) ++sh;
    const int64_t R = static_cast<int64_t>((hi - lo) >> sh) + 1;
    int64_t h[(1 << kDigit) + 1];
    std::fill(h, h + R + 1, 0);
    for (int64_t i = 0; i < m; ++i) ++h[((key[i] - lo) >> sh) + 1];
    for (int64_t d = 0; d < R; ++d) h[d + 1] += h[d];
    int64_t start[(1 << kDigit) + 1];
    std::copy(h, h + R + 1, start);
    for (int64_t i = 0; i < m; ++i) {
        const int64_t pos = h[(key[i] - lo) >> sh]++;
        k2[pos] = key[i];
        v2[pos] = val[i];
    }
    std::copy(k2, k2 + m, key);
    std::copy(v2, v2 + m, val);
    for (int64_t d = 0; d < R; ++d) {
        const int64_t a = start[d], z = start[d + 1];
        if (z - a > 32) bucket_sort(key + a, val + a, z - a, k2 + a, v2 + a);
        else insertion_sort(key + a, val + a, z - a);
    }
}

// How far ahead mark_levels prefetches the cells it writes.
constexpr int64_t kMarkAhead = 16;

// Marks the levels of bucket [b0, b1) of the sorted keys: cell[idx[i]] |= i << kPosShift for
// levels (runs of equal codes) of at most kOwnMax pixels, (level start) << kPosShift |
// kCounted for larger ones. Returns the number of levels, whose starts it writes over
// idx[b0 + 0, 1, ...] and whose codes over key[b0 + 0, 1, ...] (each after the pixels and
// keys it overwrites have been read: a level's start is never below its index there).
template <class C, class I>
int64_t mark_levels(C* key, I* idx, int64_t b0, int64_t b1, I* cell) {
    int64_t count = 0;
    for (int64_t i = b0; i < b1;) {
        int64_t j = i + 1;
        while (j < b1 && key[j] == key[i]) ++j;
        if (j - i > kOwnMax) {
            const I w = static_cast<I>((i << kPosShift) | kCounted);
            for (int64_t u = i; u < j; ++u) cell[idx[u]] |= w;
        } else {
            for (int64_t u = i; u < j; ++u) {
                // the cells are scattered over the image: fetch a few ahead
                if (u + kMarkAhead < b1) __builtin_prefetch(cell + idx[u + kMarkAhead], 1, 3);
                cell[idx[u]] |= static_cast<I>(u << kPosShift);
            }
        }
        key[b0 + count] = key[i];
        idx[b0 + count++] = static_cast<I>(i);
        i = j;
    }
    return count;
}

// Images with few distinct values (a float copy of an 8-bit image, a filter of one) need no
// sort: their levels come from a count per distinct code, as for 8/16-bit images.
constexpr int64_t kFewMax = int64_t(1) << 16;  // most distinct codes taken that way
constexpr int kFewBits = 17;                    // hash table: 2^17 slots, at most half full

// Open-addressing (linear probing) table code -> value of 2^kFewBits slots (a code and its
// value share a cache line); value 0: empty.
template <class C>
struct CodeTable {
    struct Entry {
        C key;
        int64_t val;
    };
    std::vector<Entry> e;  // empty until reset() (by the thread that uses it)
    void reset() { e.assign(size_t(1) << kFewBits, Entry{C(0), 0}); }
    // the slot holding c, or the empty slot where c would go
    Entry& find(C c) {
        constexpr size_t mask = (size_t(1) << kFewBits) - 1;
        size_t i = static_cast<size_t>((uint64_t(c) * 0x9E3779B97F4A7C15ull) >> (64 - kFewBits));
        while (e[i].val && e[i].key != c) i = (i + 1) & mask;
        return e[i];
    }
};

// Levels of an image whose in-mask pixels (cell[p] & kInside) hold at most kFewMax distinct
// codes: counts per code in per-thread tables, the distinct codes sorted, then every cell
// marked as narrow_levels does (level start << kPosShift, kCounted for levels of more than
// one pixel: the flood's own_max is 1). Returns false, leaving the cells untouched, when
// there are more distinct codes, or when a thread's first pixels are mostly distinct (an
// image of many values gives up after a few thousand pixels); else the level starts with the
// in-mask count appended, and, when `levcode` is given, each level's code.
template <class C, class I, class Code>
bool few_levels(const Code& code, I* cell, int64_t n, BigVector<I>& levstart, int nt,
                BigVector<C>* levcode = nullptr) {
    // allocated here (an exception must not leave a parallel region), zeroed by each thread
    std::vector<CodeTable<C>> local(static_cast<size_t>(nt));
    for (CodeTable<C>& tab : local) tab.e.reserve(size_t(1) << kFewBits);
    int many = 0;
#pragma omp parallel num_threads(nt) reduction(| : many)
    {
        const int t = thread_id();
        const int T = team_size();
        const int64_t p0 = n * t / T, p1 = n * (t + 1) / T;
        CodeTable<C>& tab = local[static_cast<size_t>(t)];
        tab.reset();  // within the reserved capacity: no allocation
        int64_t distinct = 0, seen = 0;
        for (int64_t p = p0; p < p1 && !many; ++p) {
            if (!(cell[p] & kInside)) continue;
            const C c = code(p);
            auto& en = tab.find(c);
            ++seen;
            if (!en.val) {
                en.key = c;
                ++distinct;
                many = distinct > kFewMax || (distinct > 4096 && 4 * distinct > seen);
            }
            ++en.val;
        }
    }
    if (many) return false;
    // the other threads' counts into thread 0's table, which then maps each code to its cell
    // bits + 1
    CodeTable<C>& bits = local[0];
    int64_t distinct = 0;
    for (const auto& en : bits.e) distinct += en.val != 0;
    for (size_t u = 1; u < local.size(); ++u) {
        for (const auto& en : local[u].e) {
            if (!en.val) continue;
            auto& to = bits.find(en.key);
            if (!to.val) {
                if (++distinct > kFewMax) return false;  // the threads' codes differ
                to.key = en.key;
            }
            to.val += en.val;
        }
        std::vector<typename CodeTable<C>::Entry>().swap(local[u].e);
    }
    std::vector<C> keys;
    keys.reserve(static_cast<size_t>(distinct));
    for (const auto& en : bits.e)
        if (en.val) keys.push_back(en.key);
    std::sort(keys.begin(), keys.end());
    std::vector<I> starts;
    starts.reserve(keys.size() + 1);
    int64_t s = 0;
    for (const C c : keys) {
        auto& en = bits.find(c);
        const int64_t cnt = en.val;
        en.val = ((s << kPosShift) | (cnt > 1 ? kCounted : 0)) + 1;
        starts.push_back(static_cast<I>(s));
        s += cnt;
    }
    starts.push_back(static_cast<I>(s));
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t p = 0; p < n; ++p)
        if (cell[p] & kInside) cell[p] |= static_cast<I>(bits.find(code(p)).val - 1);
    levstart.resize_uninitialized(starts.size());
    std::copy(starts.begin(), starts.end(), levstart.data());
    if (levcode) {
        levcode->resize_uninitialized(keys.size());
        std::copy(keys.begin(), keys.end(), levcode->data());
    }
    return true;
}

// Sorts the in-mask pixels (cell[p] & kInside) by code(p) (an unsigned C, order-preserving),
// marks their levels in `cell` (see mark_levels) and returns the level starts with the
// in-mask count appended; each level's code into `levcode` when given. `nt` threads; the
// result does not depend on it.
template <class C, class I, class Code>
BigVector<I> sorted_levels(const Code& code, I* cell, int64_t n, int nt, BigVector<C>* levcode = nullptr) {
    // splitters from a regular sample of the pixels (deterministic), at most 65535
    std::vector<C> split;
    const int64_t want = std::min<int64_t>(n / kBucketTarget, 65535);
    C lo = 0, hi = 0;
    if (want > 1) {
        const int64_t S = std::min<int64_t>(n, want * 32);
        std::vector<C> sample;
        sample.reserve(static_cast<size_t>(S));
        for (int64_t j = 0; j < S; ++j) {
            const int64_t p = S > 1 ? (n - 1) * j / (S - 1) : 0;
            if (cell[p] & kInside) sample.push_back(code(p));
        }
        std::sort(sample.begin(), sample.end());
        const int64_t s = static_cast<int64_t>(sample.size());
        for (int64_t b = 1; b < want && s; ++b) {
            const C c = sample[static_cast<size_t>(s * b / want)];
            if (split.empty() || c > split.back()) split.push_back(c);
        }
        if (!split.empty()) {
            lo = split.front();
            hi = split.back();
        }
    }
    const int64_t B = static_cast<int64_t>(split.size()) + 1;
    // table[t]: the number of splitters below lo + (t << sh), so bucket(c) (the number of
    // splitters <= c) lies in [table[t], table[t + 1]] for c in table bin t (codes below lo
    // or above hi: the first or last bin)
    constexpr int kTableBits = 18;
    int sh = 0;
    while (((hi - lo) >> sh) >= (C(1) << kTableBits)) ++sh;
    const int64_t bins = static_cast<int64_t>((hi - lo) >> sh) + 1;
    std::vector<uint16_t> table(static_cast<size_t>(bins) + 1);
    {
        int64_t j = 0;
        for (int64_t t = 0; t <= bins; ++t) {
            if (t == bins) {
                j = B - 1;
            } else {
                const C base = lo + (C(t) << sh);
                while (j < B - 1 && split[static_cast<size_t>(j)] < base) ++j;
            }
            table[static_cast<size_t>(t)] = static_cast<uint16_t>(j);
        }
    }
    const C* sp = split.data();
    const uint16_t* tb = table.data();
    auto bucket_of = [=](C c) -> int64_t {
        const C d = c <= lo ? C(0) : (c - lo) >> sh;
        const int64_t t = d >= C(bins) ? bins - 1 : static_cast<int64_t>(d);
        int64_t a = tb[t], z = tb[t + 1];  // answer in [a, z]: a + #{splitters in [a, z) <= c}
        int64_t len = z - a;
        while (len > 0) {  // branch-free steps (cmov)
            const int64_t half = len >> 1;
            const bool le = sp[a + half] <= c;
            a = le ? a + half + 1 : a;
            len = le ? len - half - 1 : half;
        }
        return a;
    };
    // count per (thread, bucket), then scatter (thread-major within each bucket)
    big_ptr<C> key;
    big_ptr<I> idx;
    int64_t m = 0;
    std::vector<int64_t> boff(static_cast<size_t>(B) + 1, 0);
    std::vector<int64_t> lcount(static_cast<size_t>(B), 0);
    {
        std::vector<int64_t> cnt(static_cast<size_t>(B * nt), 0);
        big_ptr<uint16_t> bk = big_array<uint16_t>(static_cast<size_t>(n));
#pragma omp parallel num_threads(nt)
        {
            const int t = thread_id();
            const int T = team_size();
            const int64_t p0 = n * t / T, p1 = n * (t + 1) / T;
            int64_t* h = &cnt[static_cast<size_t>(t * B)];
            for (int64_t p = p0; p < p1; ++p) {
                if (!(cell[p] & kInside)) continue;
                const int64_t b = bucket_of(code(p));
                bk[static_cast<size_t>(p)] = static_cast<uint16_t>(b);
                ++h[b];
            }
#pragma omp barrier
#pragma omp single
            {
                int64_t s = 0;
                for (int64_t b = 0; b < B; ++b) {
                    boff[static_cast<size_t>(b)] = s;
                    for (int u = 0; u < T; ++u) {
                        int64_t& c = cnt[static_cast<size_t>(u * B + b)];
                        const int64_t k = c;
                        c = s;
                        s += k;
                    }
                }
                boff[static_cast<size_t>(B)] = s;
                m = s;
                key = big_array<C>(static_cast<size_t>(m));
                idx = big_array<I>(static_cast<size_t>(m));
            }
            for (int64_t p = p0; p < p1; ++p) {
                if (!(cell[p] & kInside)) continue;
                const C c = code(p);
                const int64_t pos = h[bk[static_cast<size_t>(p)]]++;
                key[pos] = c;
                idx[pos] = static_cast<I>(p);
            }
        }
    }
#pragma omp parallel num_threads(nt)
    {
        std::vector<C> k2;
        std::vector<I> v2;
#pragma omp for schedule(dynamic, 1)
        for (int64_t b = 0; b < B; ++b) {
            const int64_t b0 = boff[static_cast<size_t>(b)], b1 = boff[static_cast<size_t>(b) + 1];
            if (k2.size() < static_cast<size_t>(b1 - b0)) {
                k2.resize(static_cast<size_t>(b1 - b0));
                v2.resize(static_cast<size_t>(b1 - b0));
            }
            bucket_sort(key.get() + b0, idx.get() + b0, b1 - b0, k2.data(), v2.data());
            lcount[static_cast<size_t>(b)] = mark_levels(key.get(), idx.get(), b0, b1, cell);
        }
    }
    std::vector<int64_t> loff(static_cast<size_t>(B) + 1, 0);
    for (int64_t b = 0; b < B; ++b) loff[static_cast<size_t>(b) + 1] = loff[static_cast<size_t>(b)] + lcount[static_cast<size_t>(b)];
    BigVector<I> levstart;
    levstart.resize_uninitialized(static_cast<size_t>(loff[static_cast<size_t>(B)]) + 1);
    levstart[static_cast<size_t>(loff[static_cast<size_t>(B)])] = static_cast<I>(m);
    if (levcode) levcode->resize_uninitialized(static_cast<size_t>(loff[static_cast<size_t>(B)]));
#pragma omp parallel for schedule(dynamic, 4) num_threads(nt)
    for (int64_t b = 0; b < B; ++b) {  // each bucket's level starts and codes, left by mark_levels
        const int64_t from = boff[static_cast<size_t>(b)], count = lcount[static_cast<size_t>(b)];
        const int64_t to = loff[static_cast<size_t>(b)];
        std::copy(idx.get() + from, idx.get() + from + count, levstart.data() + to);
        if (levcode) std::copy(key.get() + from, key.get() + from + count, levcode->data() + to);
    }
    return levstart;
}

}  // namespace detail
}  // namespace ws
}  // namespace seg
