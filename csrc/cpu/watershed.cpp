// Marker-based watershed, scikit-image 0.26 semantics. See watershed.h for the contract.
//
// Flooding order (what scikit-image's Cython kernel does, restated):
//   * every marker pixel is pushed first, in raster order, with key (image value, age 0);
//   * each push of a neighbour gets the next age (1, 2, ... never reused), and its value is
//     max(image[neighbour] (+ compactness * distance to the seed), value of the popped pixel);
//   * items leave a binary min-heap ordered by (value, age). Markers share age 0, so equal-valued
//     markers tie and leave in the order the heap's layout dictates: we keep a binary heap
//     with exactly the same push (sift-up) and pop (last to root, sift-down, left child first)
//     rules, so the layout and therefore the order are the same.
//   * standard mode labels a pixel when it is pushed; compact and watershed-line modes label
//     it when it is popped (a pixel may be pushed several times).
// Speed: in standard mode, once no two differently-labelled markers that share a value are
// left in the heap, every remaining key is unique and any queue popping in (value, age) order
// gives the same result: a bucket queue (one FIFO per grey level, O(1)) for 8/16-bit images,
// a monotone radix heap on 64-bit value codes for the others. Equal-valued markers of the
// same label may leave in any order there: they leave consecutively and push the same pixels
// with the same label, so the labelling does not depend on their order. Until then, the heap
// has 16-byte packed keys (value code | age) for images of at most 32 bits, is laid out so a
// node's grandchildren share a cache line, and prefetches two levels ahead.

#include "watershed.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "parallel.h"

// The compact cost value + c * d must round exactly like scikit-image's (no fused multiply-add):
// setup.py builds with -ffp-contract=off; clang also gets the pragma.
#if defined(__clang__)
#pragma clang fp contract(off)
#endif

namespace seg {
namespace ws {
namespace {

constexpr int kMaxDim = 64;

// Images of 32-bit and 64-bit types with fewer pixels than this get 16-byte heap items (age
// and index in 32 bits); larger ones 24-byte items. Lowered by the tests to cover both.
int64_t g_packed_limit = (int64_t(1) << 32) - 4;
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

template <class S>
inline bool is_nan(S v) {
    if constexpr (std::is_floating_point<S>::value) return v != v;
    else return false;
}

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

template <class S>
struct KeyOf {
    using type = S;
};
template <>
struct KeyOf<int64_t> {
    using type = double;  // scikit-image compares float64 copies
};
template <>
struct KeyOf<uint64_t> {
    using type = double;
};

template <class K>
struct Item {
    K value;
    int64_t age;
    int64_t index;
    int64_t source;
};

template <class K>
inline bool less(const Item<K>& a, const Item<K>& b) {
    if (a.value != b.value) return a.value < b.value;
    return a.age < b.age;
}

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

// ---- standard mode (no compactness, no lines) for images of at most 32 bits -------------
// The key (value, age) is packed into one uint64: an order-preserving code of the value in the
// high bits, the age in the low bits (48 bits for 8/16-bit images, 32 bits otherwise: the
// caller guarantees fewer pushes than that, as each pixel is pushed at most once here).

// Item of the standard-mode heap for images of at most 32 bits: (value code | age), index.
struct Packed {
    uint64_t key;
    int64_t index;
};

// Item of the standard-mode heap for 64-bit images (compared as double, like scikit-image).
struct Wide {
    double value;
    uint64_t age;
    int64_t index;
};

struct PackedTraits {
    using Item = Packed;
    static bool less(const Packed& x, const Packed& y) { return x.key < y.key; }
};

struct WideTraits {
    using Item = Wide;
    static bool less(const Wide& x, const Wide& y) {
        return (x.value < y.value) | ((x.value == y.value) & (x.age < y.age));
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

template <class S>
struct Encoding {  // images of at most 32 bits: packed keys
    using Traits = PackedTraits;
    static constexpr int kAgeBits = sizeof(S) <= 2 ? 48 : 32;
    static constexpr uint64_t kValueMask = ~((uint64_t(1) << kAgeBits) - 1);
    using Code = uint64_t;
    static Code code(S v) {
        if constexpr (std::is_same<S, float>::value) {
            if (v == 0.0f) v = 0.0f;  // -0 and +0 tie, as in scikit-image
            uint32_t u;
            std::memcpy(&u, &v, sizeof u);
            u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
            return static_cast<uint64_t>(u) << kAgeBits;
        } else if constexpr (std::is_signed<S>::value) {
            using U = std::make_unsigned_t<S>;
            const U u = static_cast<U>(static_cast<U>(v) ^ (U(1) << (8 * sizeof(S) - 1)));
            return static_cast<uint64_t>(u) << kAgeBits;
        } else {
            return static_cast<uint64_t>(v) << kAgeBits;
        }
    }
    static Packed make(Code c, uint64_t age, int64_t index) { return Packed{c | age, index}; }
    static int64_t index(const Packed& it) { return it.index; }
    static Code value(const Packed& it) { return it.key & kValueMask; }
    static int64_t level(const Packed& it) { return static_cast<int64_t>(it.key >> kAgeBits); }
    // order-preserving code of the (clamped) value without the age, for the radix heap
    static uint64_t rcode(const Packed& it) { return it.key >> kAgeBits; }
    static uint64_t rcode_v(S v) { return code(v) >> kAgeBits; }
};

template <class S>
struct WideEncoding {  // 64-bit images and float64: compared as double
    using Traits = WideTraits;
    using Code = double;
    static Code code(S v) { return static_cast<double>(v); }
    static Wide make(Code c, uint64_t age, int64_t index) { return Wide{c, age, index}; }
    static int64_t index(const Wide& it) { return it.index; }
    static Code value(const Wide& it) { return it.value; }
    static int64_t level(const Wide&) { return 0; }
    static uint64_t ordered(double v) {
        if (v == 0.0) v = 0.0;  // -0 and +0 tie
        uint64_t u;
        std::memcpy(&u, &v, sizeof u);
        return (u >> 63) ? ~u : (u | (uint64_t(1) << 63));
    }
    static uint64_t rcode(const Wide& it) { return ordered(it.value); }
    static uint64_t rcode_v(S v) { return ordered(static_cast<double>(v)); }
};


// 64-bit images with fewer than 2^32 - 4 pixels: 16-byte items, the order-preserving code of
// the double value, then age (high 32 bits) and index (low 32 bits); only the age breaks ties.
struct Pair {
    uint64_t code;
    uint64_t age_index;
};

struct PairTraits {
    using Item = Pair;
    static bool less(const Pair& x, const Pair& y) {
        return (x.code < y.code) | ((x.code == y.code) & ((x.age_index >> 32) < (y.age_index >> 32)));
    }
};

template <class S>
struct PairEncoding {
    using Traits = PairTraits;
    using Code = uint64_t;
    static Code code(S v) { return WideEncoding<S>::ordered(static_cast<double>(v)); }
    static Pair make(Code c, uint64_t age, int64_t index) {
        return Pair{c, (age << 32) | static_cast<uint64_t>(index)};
    }
    static Code value(const Pair& it) { return it.code; }
    static int64_t level(const Pair&) { return 0; }
    static uint64_t rcode(const Pair& it) { return it.code; }
    static uint64_t rcode_v(S v) { return code(v); }
    static int64_t index(const Pair& it) { return static_cast<int64_t>(it.age_index & 0xffffffffu); }
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

template <class S, class L>
void watershed_typed(const S* img, const uint8_t* mask, L* lab, const Grid& g, double compactness,
                     bool wsl, const Levels& lv_out) {
    if (g.n == 0) return;
    if (lv_out.out && (compactness > 0 || wsl))
        throw std::invalid_argument("watershed: flooding levels are only computed in the standard mode");
    std::vector<uint8_t> flags(static_cast<size_t>(g.n));
    build_flags(img, mask, flags.data(), g);
    if (compactness > 0) {
        flood<S, double, L, true>(img, flags.data(), lab, g, compactness, wsl);
        return;
    }
    if (!wsl) {
        if constexpr (sizeof(S) <= 4) {
            // at most n + 1 pushes: the age must fit the packed key
            if (sizeof(S) <= 2 || g.n < g_packed_limit) {
                flood_standard<S, L, Encoding<S>>(img, flags.data(), lab, g, lv_out);
                return;
            }
        }
        if (g.n < g_packed_limit) flood_standard<S, L, PairEncoding<S>>(img, flags.data(), lab, g, lv_out);
        else flood_standard<S, L, WideEncoding<S>>(img, flags.data(), lab, g, lv_out);
        return;
    }
    flood<S, typename KeyOf<S>::type, L, false>(img, flags.data(), lab, g, compactness, wsl);
}

template <class S>
int64_t minima_typed(const S* img, const uint8_t* mask, int32_t* lab, const Grid& g) {
    const int64_t n = g.n;
    if (n == 0) return 0;
    std::vector<uint8_t> flags(static_cast<size_t>(n));
    build_flags(img, mask, flags.data(), g);
    S gmax = img[0];
    for (int64_t p = 1; p < n; ++p)
        if (img[p] > gmax) gmax = img[p];
    std::vector<uint8_t> st(static_cast<size_t>(n), 0);  // 1 visited, 2 local minimum
    std::vector<int64_t> queue;
    for (int64_t p = 0; p < n; ++p) {
        if (st[p]) continue;
        const S v = img[p];
        queue.clear();
        queue.push_back(p);
        st[p] = 1;
        bool is_min = true;
        for (size_t qi = 0; qi < queue.size(); ++qi) {
            const int64_t c = queue[qi];
            // skimage pads with the global maximum: a plateau at that value touching the
            // border has an equal neighbour outside the image and is not a minimum.
            if ((flags[c] & kBorder) && v == gmax && g.leaves_image(c)) is_min = false;
            g.for_neighbors(c, flags.data(), [&](int64_t q) {
                const S w = img[q];
                if (w == v) {
                    if (!st[q]) {
                        st[q] = 1;
                        queue.push_back(q);
                    }
                } else if (w < v) {
                    is_min = false;
                }
            });
        }
        if (is_min)
            for (int64_t q : queue) st[q] = 2;
    }
    // Label the minima inside the mask, numbered in raster order of their first pixel.
    for (int64_t p = 0; p < n; ++p) lab[p] = 0;
    int64_t next = 0;
    for (int64_t p = 0; p < n; ++p) {
        if (st[p] != 2 || !(flags[p] & kInside) || lab[p]) continue;
        if (next >= std::numeric_limits<int32_t>::max())
            throw std::invalid_argument("watershed: more than 2**31-1 local minima");
        const int32_t l = static_cast<int32_t>(++next);
        queue.clear();
        queue.push_back(p);
        lab[p] = l;
        for (size_t qi = 0; qi < queue.size(); ++qi) {
            g.for_neighbors(queue[qi], flags.data(), [&](int64_t q) {
                if (st[q] == 2 && (flags[q] & kInside) && !lab[q]) {
                    lab[q] = l;
                    queue.push_back(q);
                }
            });
        }
    }
    return next;
}

template <class F>
void dispatch(int dtype, F&& f) {
    switch (dtype) {
        case U8: f(static_cast<const uint8_t*>(nullptr)); break;
        case I8: f(static_cast<const int8_t*>(nullptr)); break;
        case U16: f(static_cast<const uint16_t*>(nullptr)); break;
        case I16: f(static_cast<const int16_t*>(nullptr)); break;
        case U32: f(static_cast<const uint32_t*>(nullptr)); break;
        case I32: f(static_cast<const int32_t*>(nullptr)); break;
        case U64: f(static_cast<const uint64_t*>(nullptr)); break;
        case I64: f(static_cast<const int64_t*>(nullptr)); break;
        case F32: f(static_cast<const float*>(nullptr)); break;
        case F64: f(static_cast<const double*>(nullptr)); break;
        default: throw std::invalid_argument("watershed: unsupported image dtype code " + std::to_string(dtype));
    }
}

size_t dtype_size(int dtype) {
    size_t s = 0;
    dispatch(dtype, [&](auto tag) { s = sizeof(*tag); });
    return s;
}

void watershed_one(const void* image, int dtype, const uint8_t* mask, void* labels, int label_bytes,
                   const Grid& g, double compactness, bool wsl, const Levels& lv_out = Levels{}) {
    if (label_bytes != 4 && label_bytes != 8) throw std::invalid_argument("watershed: labels must be int32 or int64");
    dispatch(dtype, [&](auto tag) {
        using S = std::remove_const_t<std::remove_pointer_t<decltype(tag)>>;
        const S* img = static_cast<const S*>(image);
        if (label_bytes == 4) watershed_typed(img, mask, static_cast<int32_t*>(labels), g, compactness, wsl, lv_out);
        else watershed_typed(img, mask, static_cast<int64_t*>(labels), g, compactness, wsl, lv_out);
    });
}

int64_t minima_one(const void* image, int dtype, const uint8_t* mask, int32_t* labels, const Grid& g) {
    int64_t count = 0;
    dispatch(dtype, [&](auto tag) {
        using S = std::remove_const_t<std::remove_pointer_t<decltype(tag)>>;
        count = minima_typed(static_cast<const S*>(image), mask, labels, g);
    });
    return count;
}

}  // namespace

void set_packed_limit(int64_t n) { g_packed_limit = n < 0 ? (int64_t(1) << 32) - 4 : n; }

void watershed(const void* image, int dtype, const uint8_t* mask, void* labels, int label_bytes,
               const Geometry& geom, double compactness, bool watershed_line) {
    Grid g(geom);
    watershed_one(image, dtype, mask, labels, label_bytes, g, compactness, watershed_line);
}

void watershed_levels(const void* image, int dtype, const uint8_t* mask, void* labels, int label_bytes,
                      const Geometry& geom, const double* level_value, double* levels) {
    if (!level_value || !levels) throw std::invalid_argument("watershed_levels: null level arrays");
    Grid g(geom);
    watershed_one(image, dtype, mask, labels, label_bytes, g, 0.0, false, Levels{level_value, levels});
}

int64_t local_minima_markers(const void* image, int dtype, const uint8_t* mask, int32_t* labels,
                             const Geometry& geom) {
    Grid g(geom);
    return minima_one(image, dtype, mask, labels, g);
}

void watershed_batch(const void* images, int dtype, const uint8_t* masks, void* labels,
                     int label_bytes, int64_t batch, const Geometry& geom,
                     const Geometry* minima_geom, double compactness, bool watershed_line,
                     int num_threads) {
    Grid g(geom);
    const bool minima = minima_geom != nullptr;
    if (minima && label_bytes != 4) throw std::invalid_argument("watershed: minima markers need int32 labels");
    Grid gm(minima ? *minima_geom : geom);
    const int64_t n = g.n;
    const size_t isz = dtype_size(dtype);
    std::exception_ptr error;
    const int nt = resolve_threads(num_threads);
    (void)nt;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
    for (int64_t b = 0; b < batch; ++b) {
        try {
            const void* img = static_cast<const char*>(images) + static_cast<size_t>(b * n) * isz;
            const uint8_t* m = masks ? masks + b * n : nullptr;
            void* lab = static_cast<char*>(labels) + static_cast<size_t>(b * n) * label_bytes;
            if (minima) minima_one(img, dtype, m, static_cast<int32_t*>(lab), gm);
            watershed_one(img, dtype, m, lab, label_bytes, g, compactness, watershed_line);
        } catch (...) {
#pragma omp critical(seg_ws_error)
            if (!error) error = std::current_exception();
        }
    }
    if (error) std::rethrow_exception(error);
}

}  // namespace ws
}  // namespace seg
