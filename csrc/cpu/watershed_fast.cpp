// Fast tie order watershed: see watershed_fast.h for the rule. One job per section: value
// codes and flags (parallel), ranks (parallel radix sort), the bucket-queue flood (serial).
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
#include "watershed_grid.h"
#include "watershed_minima.h"

namespace seg {
namespace ws {
namespace detail {
namespace {

inline int thread_id() {
#ifdef SEGENGINE_OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

inline int team_size() {
#ifdef SEGENGINE_OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

// ---------------------------------------------------------------- codes

// Images smaller than this run on one thread.
constexpr int64_t kParallelMin = int64_t(1) << 15;

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
        bool row_border = false;
        for (int d = 0; d < last; ++d) {
            const int64_t c = (r * W / g.stride[d]) % g.shape[d];
            row_border |= (c < g.lo[d] || c >= g.hi[d]);
        }
        uint8_t* f = flags + r * W;
        const uint8_t* m = mask ? mask + r * W : nullptr;
        const S* v = img + r * W;
        int b = 0;
        for (int64_t x = 0; x < W; ++x) {
            if constexpr (std::is_floating_point<S>::value) b |= (v[x] != v[x]);
            uint8_t fl = m ? (m[x] ? kInside : 0) : kInside;
            if (row_border || x < g.lo[last] || x >= g.hi[last]) fl |= kBorder;
            f[x] = fl;
        }
        bad |= b;
    }
    if (bad) throw std::invalid_argument("watershed: `image` contains NaN");
}

// ---------------------------------------------------------------- ranks

// Stable LSD radix sort of (key, value) pairs by key, 11-bit digits, digits in which no two
// keys differ skipped; each pass histograms and scatters in `nt` threads. The output is the
// unique stable order, whatever the thread count.
template <class C, class I>
void radix_sort(std::vector<C>& key, std::vector<I>& val, int nt) {
    const int64_t m = static_cast<int64_t>(key.size());
    if (m < 2) return;
    C any = 0, all = ~C(0);
#pragma omp parallel for schedule(static) num_threads(nt) reduction(| : any) reduction(& : all)
    for (int64_t i = 0; i < m; ++i) {
        any |= key[i];
        all &= key[i];
    }
    const C diff = any ^ all;
    constexpr int kBits = 11;
    constexpr int64_t R = int64_t(1) << kBits;
    constexpr int kWidth = 8 * sizeof(C);
    std::vector<C> k2(static_cast<size_t>(m));
    std::vector<I> v2(static_cast<size_t>(m));
    std::vector<int64_t> hist(static_cast<size_t>(R * nt));
    for (int shift = 0; shift < kWidth; shift += kBits) {
        if (!((diff >> shift) & C(R - 1))) continue;
        const C* ks = key.data();
        const I* vs = val.data();
        C* kd = k2.data();
        I* vd = v2.data();
        int used = 1;
#pragma omp parallel num_threads(nt)
        {
            const int t = thread_id();
            const int T = team_size();
            const int64_t lo = m * t / T, hi = m * (t + 1) / T;
            int64_t* h = &hist[static_cast<size_t>(t * R)];
            std::fill(h, h + R, int64_t(0));
            for (int64_t i = lo; i < hi; ++i) ++h[(ks[i] >> shift) & C(R - 1)];
#pragma omp barrier
#pragma omp single
            {
                used = T;
                int64_t s = 0;
                for (int64_t d = 0; d < R; ++d)
                    for (int u = 0; u < T; ++u) {
                        int64_t& c = hist[static_cast<size_t>(u * R + d)];
                        const int64_t cnt = c;
                        c = s;
                        s += cnt;
                    }
            }
            for (int64_t i = lo; i < hi; ++i) {
                const int64_t pos = h[(ks[i] >> shift) & C(R - 1)]++;
                kd[pos] = ks[i];
                vd[pos] = vs[i];
            }
        }
        (void)used;
        key.swap(k2);
        val.swap(v2);
    }
}

// node[p].rank for every in-mask pixel p: the number of in-mask pixels with a smaller code (equal
// values, equal ranks). Returns the number of rank levels (the in-mask pixel count).
// Everything the flood reads or writes about a pixel, in one record (one cache line per
// visit): its priority level (rank; unused for 8/16-bit images), the next pixel of its
// level's FIFO, its label and its flags (watershed_grid.h).
template <class I, class L>
struct Cell {
    I rank;
    I next;
    L label;
    uint8_t flags;
};

// node[p].rank for every in-mask pixel p: the number of in-mask pixels with a smaller code (equal
// values, equal ranks). Returns the number of rank levels (the in-mask pixel count).
// Per-pixel queue state: the priority level (rank; unused for 8/16-bit images) and the
// next pixel of its level's FIFO, side by side (one cache line per pixel visit).
template <class I>
struct Node {
    I rank;
    I next;
};

template <class S, class I, class L>
int64_t ranks(const S* img, const uint8_t* flags, bool masked, int64_t n, Cell<I, L>* node, int nt) {
    using C = CodeT<S>;
    std::vector<I> idx;
    if (masked) {
        for (int64_t p = 0; p < n; ++p)
            if (flags[p] & kInside) idx.push_back(static_cast<I>(p));
    } else {
        idx.resize(static_cast<size_t>(n));
#pragma omp parallel for schedule(static) num_threads(nt)
        for (int64_t p = 0; p < n; ++p) idx[static_cast<size_t>(p)] = static_cast<I>(p);
    }
    const int64_t m = static_cast<int64_t>(idx.size());
    std::vector<C> key(static_cast<size_t>(m));
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t i = 0; i < m; ++i) key[static_cast<size_t>(i)] = code_of(img[idx[static_cast<size_t>(i)]]);
    radix_sort(key, idx, nt);
#pragma omp parallel num_threads(nt)
    {
        const int t = thread_id();
        const int T = team_size();
        const int64_t lo = m * t / T, hi = m * (t + 1) / T;
        if (lo < hi) {
            int64_t r = lo;
            while (r > 0 && key[static_cast<size_t>(r - 1)] == key[static_cast<size_t>(lo)]) --r;
            for (int64_t i = lo; i < hi; ++i) {
                if (i > lo && key[static_cast<size_t>(i)] != key[static_cast<size_t>(i - 1)]) r = i;
                node[idx[static_cast<size_t>(i)]].rank = static_cast<I>(r);
            }
        }
    }
    return m;
}

// ---------------------------------------------------------------- flood

// Calls f(q) for every neighbour q of p inside the image, in neighbour order (as
// Grid::for_neighbors, with the border flag read from p's cell).
template <class F>
inline void each_neighbor(const Grid& g, int64_t p, bool border, F&& f) {
    if (!border) {
        for (int k = 0; k < g.nn; ++k) f(p + g.off[k]);
        return;
    }
    int64_t c[kMaxDim];
    g.coords(p, c);
    for (int k = 0; k < g.nn; ++k) {
        const int64_t* v = &g.vec[static_cast<size_t>(k) * g.ndim];
        bool ok = true;
        for (int d = 0; d < g.ndim; ++d) {
            const int64_t x = c[d] + v[d];
            if (x < 0 || x >= g.shape[d]) {
                ok = false;
                break;
            }
        }
        if (ok) f(p + g.off[k]);
    }
}

// Bucket queue: one FIFO per priority level. Pixels that arrive above the level being
// emptied join their level's FIFO, a list linked through the cells' `next` (a pixel is
// queued at most once, as it is labelled when it arrives); pixels that arrive at or below it
// (clamped to it) join `cur`, a plain array read as a FIFO after that level's list: they
// arrived after everything on the list. Levels are visited in increasing order, so pixels
// leave in (priority, arrival) order. `prio(p, cell)` is the level of in-mask pixel p.
template <class I, class L, class P>
void flood_buckets(Cell<I, L>* cell, const Grid& g, int64_t nlev, bool masked, P&& prio) {
    const int64_t n = g.n;
    struct Fifo {
        I head, tail;
    };
    std::vector<Fifo> level(static_cast<size_t>(nlev), Fifo{I(-1), I(-1)});
    Fifo* lvl = level.data();
    auto push = [&](I q, int64_t r) {
        Fifo& f = lvl[r];
        if (f.head < 0) f.head = q;
        else cell[f.tail].next = q;
        f.tail = q;
        cell[q].next = I(-1);
    };
    int64_t lo = nlev;
    for (int64_t p = 0; p < n; ++p) {
        if (!cell[p].label) continue;
        const int64_t r = prio(p, cell[p]);
        push(static_cast<I>(p), r);
        lo = r < lo ? r : lo;
    }
    std::vector<I> cur;
    cur.reserve(4096);
    for (int64_t r = lo; r < nlev; ++r) {
        auto leave = [&](I p) {
            const Cell<I, L>& cp = cell[p];
            const L lb = cp.label;
            each_neighbor(g, p, cp.flags & kBorder, [&](int64_t q) {
                Cell<I, L>& c = cell[q];
                if (c.label || (masked && !(c.flags & kInside))) return;
                c.label = lb;
                const int64_t rq = prio(q, c);
                if (rq <= r) cur.push_back(static_cast<I>(q));
                else push(static_cast<I>(q), rq);
            });
        };
        for (I p = lvl[r].head; p >= 0; p = cell[p].next) leave(p);
        for (size_t i = 0; i < cur.size(); ++i) leave(cur[i]);
        cur.clear();
    }
}

template <class S, class L, class I>
void fast_cells(const S* img, const uint8_t* mask, L* lab, const Grid& g, int nt) {
    const int64_t n = g.n;
    std::vector<Cell<I, L>> cells(static_cast<size_t>(n));
    Cell<I, L>* cell = cells.data();
    int64_t nlev = int64_t(1) << (8 * (sizeof(S) <= 2 ? sizeof(S) : 1));
    {
        std::vector<uint8_t> flags(static_cast<size_t>(n));
        fast_flags(img, mask, flags.data(), g, nt);
        const uint8_t* f = flags.data();
#pragma omp parallel for schedule(static) num_threads(nt)
        for (int64_t p = 0; p < n; ++p)
            cell[p] = Cell<I, L>{I(0), I(-1), (f[p] & kInside) ? lab[p] : L(0), f[p]};
        if constexpr (!kNarrow<S>) nlev = ranks(img, f, mask != nullptr, n, cell, nt);
    }
    if constexpr (kNarrow<S>) {
        flood_buckets(cell, g, nlev, mask != nullptr,
                      [img](int64_t p, const Cell<I, L>&) { return static_cast<int64_t>(code_of(img[p])); });
    } else {
        flood_buckets(cell, g, nlev, mask != nullptr,
                      [](int64_t, const Cell<I, L>& c) { return static_cast<int64_t>(c.rank); });
    }
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t p = 0; p < n; ++p) lab[p] = cell[p].label;
}

template <class S, class L>
void fast_typed(const S* img, const uint8_t* mask, L* lab, const Grid& g, int nt) {
    const int64_t n = g.n;
    if (n == 0) return;
    if (n < kParallelMin) nt = 1;  // small images: thread start-up would cost more
    if (n < std::numeric_limits<int32_t>::max()) fast_cells<S, L, int32_t>(img, mask, lab, g, nt);
    else fast_cells<S, L, int64_t>(img, mask, lab, g, nt);
}

void fast_one(const void* image, int dtype, const uint8_t* mask, void* labels, int label_bytes,
              const Grid& g, int nt) {
    if (label_bytes != 4 && label_bytes != 8) throw std::invalid_argument("watershed: labels must be int32 or int64");
    dispatch(dtype, [&](auto tag) {
        using S = std::remove_const_t<std::remove_pointer_t<decltype(tag)>>;
        const S* img = static_cast<const S*>(image);
        if (label_bytes == 4) fast_typed(img, mask, static_cast<int32_t*>(labels), g, nt);
        else fast_typed(img, mask, static_cast<int64_t*>(labels), g, nt);
    });
}

}  // namespace
}  // namespace detail

void watershed_fast(const void* image, int dtype, const uint8_t* mask, void* labels, int label_bytes,
                    const Geometry& geom, int num_threads) {
    detail::Grid g(geom);
    detail::fast_one(image, dtype, mask, labels, label_bytes, g, resolve_threads(num_threads));
}

void watershed_fast_batch(const void* images, int dtype, const uint8_t* masks, void* labels,
                          int label_bytes, int64_t batch, const Geometry& geom,
                          const Geometry* minima_geom, int num_threads) {
    // a batch of one item gets the threads; larger batches run items in parallel
    const int nt = resolve_threads(num_threads);
    const int inner = batch == 1 ? nt : 1;
    detail::for_each_item(images, dtype, masks, labels, label_bytes, batch, geom, minima_geom,
                          batch == 1 ? 1 : nt,
                          [&](const void* img, const uint8_t* m, void* lab, const detail::Grid& g) {
                              detail::fast_one(img, dtype, m, lab, label_bytes, g, inner);
                          });
}

}  // namespace ws
}  // namespace seg
