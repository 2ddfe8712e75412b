// The watershed's three priority queues (the bucket queue of 8/16-bit images is a plain
// vector of FIFOs, in watershed_standard.h):
//
//   * Heap<K>: binary min-heap with scikit-image's exact push/pop rules, hence the same layout
//     and the same order among equal keys (compact and watershed-line modes);
//   * FastHeap<Traits>: the same rules on packed 16/24-byte items, cache-aligned and
//     prefetching (standard mode while equal-valued markers of different labels are queued);
//   * RadixHeap: monotone base-256 radix heap on 64-bit value codes (standard mode once every
//     key left is unique, images wider than 16 bits).
//
// Internal to the watershed kernel.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "watershed_keys.h"

namespace seg {
namespace ws {
namespace detail {

// Binary min-heap with scikit-image's exact push/pop rules (hence the same layout).
template <class K>
struct Heap {
    std::vector<Item<K>> a;

    bool empty() const { return a.empty(); }
    const Item<K>& top() const { return a[0]; }

    void push(const Item<K>& x) {
        size_t c = a.size();
        a.push_back(x);
        while (c > 0) {
            size_t p = (c + 1) / 2 - 1;
            if (less(x, a[p])) {
                a[c] = a[p];
                c = p;
            } else {
                break;
            }
        }
        a[c] = x;
    }

    Item<K> pop() {
        Item<K> top = a[0];
        Item<K> last = a.back();
        a.pop_back();
        const size_t n = a.size();
        if (n == 0) return top;
        size_t i = 0;
        for (;;) {
            size_t l = 2 * i + 1;
            if (l >= n) break;
            size_t s = i;
            const Item<K>* best = &last;
            if (less(a[l], *best)) {
                s = l;
                best = &a[l];
            }
            size_t r = l + 1;
            if (r < n && less(a[r], *best)) s = r;
            if (s == i) break;
            a[i] = a[s];
            i = s;
        }
        a[i] = last;
        return top;
    }
};

// Binary heap with scikit-image's exact push/pop rules (the new item stays below equal
// keys; pop moves the last item to the root and sifts it down, the left child winning
// ties), hence the same layout. The array is placed so that the four grandchildren of a
// node (16-byte items) share one cache line, and they are prefetched on the way down.
template <class T>
struct FastHeap {
    using Item = typename T::Item;
    Item* d = nullptr;
    size_t n = 0;
    size_t cap = 0;
    void* raw = nullptr;

    FastHeap() = default;
    FastHeap(const FastHeap&) = delete;
    FastHeap& operator=(const FastHeap&) = delete;
    ~FastHeap() { std::free(raw); }

    void reserve(size_t want) {
        if (want <= cap) return;
        size_t nc = cap ? cap : 1024;
        while (nc < want) nc *= 2;
        size_t bytes = (nc + 8) * sizeof(Item);
        bytes = (bytes + 63) / 64 * 64;
        void* r = std::aligned_alloc(64, bytes);
        if (!r) throw std::bad_alloc();
        // index 3 on a 64-byte boundary: grandchildren 4i+3 .. 4i+6 share a line
        Item* nd = reinterpret_cast<Item*>(static_cast<char*>(r) + 64 - 3 * sizeof(Item) % 64);
        if (n) std::memcpy(static_cast<void*>(nd), static_cast<const void*>(d), n * sizeof(Item));
        std::free(raw);
        raw = r;
        d = nd;
        cap = nc;
    }

    bool empty() const { return n == 0; }

    void push(const Item& x) {
        if (n == cap) reserve(n + 1);
        size_t c = n++;
        while (c > 0) {
            const size_t p = (c - 1) >> 1;
            if (T::less(x, d[p])) {
                d[c] = d[p];
                c = p;
            } else {
                break;
            }
        }
        d[c] = x;
    }

    // Pop: move the last item to the root and sift it down; the smaller child moves up
    // (the left one on ties) while it is smaller than the sifted item.
    Item pop() {
        const Item top = d[0];
        const Item last = d[--n];
        if (n == 0) return top;
        size_t i = 0;
        for (;;) {
            size_t c = 2 * i + 1;
            if (c + 1 < n) {
                __builtin_prefetch(&d[4 * i + 3]);
                {
                    const char* gg = reinterpret_cast<const char*>(&d[8 * i + 7]);
                    for (size_t b = 0; b < 8 * sizeof(Item); b += 64) __builtin_prefetch(gg + b);
                }
                c += static_cast<size_t>(T::less(d[c + 1], d[c]));
            } else if (c >= n) {
                break;
            }
            if (!T::less(d[c], last)) break;
            d[i] = d[c];
            i = c;
        }
        d[i] = last;
        return top;
    }
};

// Monotone radix heap on 64-bit value codes (base 256), for the standard mode once every key
// left is unique. Keys only grow (values are clamped to the popped one). With `last` the
// current minimum, a key k != last lives in bucket (j, byte j of k) where j is the highest
// byte in which k differs from last; keys equal to last live in the FIFO `cur`. Every key of
// level j is smaller than every key of level j+1, so the minimum is in the lowest non-empty
// bucket of the lowest non-empty level; each item moves down at most 8 times. Equal codes
// always share a bucket and keep their arrival order (appends and in-order redistribution),
// so `cur` read as a FIFO pops them by age, as the binary heap would.
struct RItem {
    uint64_t code;
    int64_t index;
};

class RadixHeap {
  public:
    explicit RadixHeap(uint64_t start) : last_(start), buckets_(8 * 256) {
        std::memset(used_, 0, sizeof used_);
    }

    uint64_t last() const { return last_; }

    void put(const RItem& it) {
        const uint64_t x = it.code ^ last_;
        if (!x) {
            cur_.push_back(it);
            return;
        }
        const int j = (63 - __builtin_clzll(x)) >> 3;
        const int b = static_cast<int>((it.code >> (8 * j)) & 255);
        buckets_[static_cast<size_t>(j * 256 + b)].push_back(it);
        used_[j][b >> 6] |= uint64_t(1) << (b & 63);
    }

    // Next item in (code, arrival) order; false when empty.
    bool pop(RItem* out) {
        if (head_ == cur_.size() && !refill()) return false;
        *out = cur_[head_++];
        return true;
    }

  private:
    bool refill() {
        cur_.clear();
        head_ = 0;
        for (int j = 0; j < 8; ++j) {
            for (int w = 0; w < 4; ++w) {
                if (!used_[j][w]) continue;
                const int b = w * 64 + __builtin_ctzll(used_[j][w]);
                used_[j][w] &= used_[j][w] - 1;
                tmp_.clear();
                tmp_.swap(buckets_[static_cast<size_t>(j * 256 + b)]);
                uint64_t m = tmp_[0].code;
                for (const RItem& it : tmp_) m = it.code < m ? it.code : m;
                last_ = m;
                for (const RItem& it : tmp_) put(it);
                return true;
            }
        }
        return false;
    }

    uint64_t last_;
    std::vector<std::vector<RItem>> buckets_;
    uint64_t used_[8][4];
    std::vector<RItem> cur_;
    size_t head_ = 0;
    std::vector<RItem> tmp_;
};

}  // namespace detail
}  // namespace ws
}  // namespace seg
