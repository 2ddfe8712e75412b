// Parallel tie order watershed: see watershed_parallel.h for the rule and the method. This
// file: the blocks, their floods (the fast tie order's scan with a key sink), the repair
// across faces and the labelling pass.
#include "watershed_parallel.h"

#include <algorithm>
#include <cstdint>
#include <exception>
#include <functional>
#include <limits>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

#include "big_alloc.h"
#include "parallel.h"
#include "watershed_batch.h"
#include "watershed_dispatch.h"
#include "watershed_fast_flood.h"
#include "watershed_fast_setup.h"
#include "watershed_grid.h"

namespace seg {
namespace ws {
namespace detail {
namespace {

// Images smaller than this run as one block on one thread.
constexpr int64_t kParallelMin = int64_t(1) << 15;
// Fewest pixels per block (a block's flood must outweigh its faces' repair).
constexpr int64_t kMinBlock = int64_t(1) << 14;

// A key (C, D) packed as C << kShift | D in an unsigned integer K of twice the code width
// (uint64 for codes of 32 bits and items of fewer than 2^32 pixels, unsigned __int128
// otherwise), so that keys compare as integers. kNone: not reached.
template <class K>
struct Keys {
    static constexpr int kShift = 4 * static_cast<int>(sizeof(K));
    static constexpr K kNone = ~K(0);
    using D = std::conditional_t<sizeof(K) == 8, uint32_t, uint64_t>;
    // the key of a pixel of code c reached from a neighbour of key kp
    static K extend(K kp, K c) { return c > (kp >> kShift) ? (c << kShift) : kp + 1; }
};

// The flood's sink (see LabelSink in watershed_fast_flood.h): a queued pixel carries its D,
// and leaving the queue it records its key; the C of a pixel with D = 0 is its own code,
// the others share that of the last such pixel to leave (the level being emptied).
template <class S, class I, class K>
struct KeySink {
    using V = typename Keys<K>::D;
    const S* img;
    K* key;
    K level = 0;
    V of_marker(int64_t) const { return 0; }
    void leave(int64_t p, V d) {
        if (d == 0) level = K(code_of(img[p])) << Keys<K>::kShift;
        key[p] = level | K(d);
    }
    static V child(V d, bool clamped) { return clamped ? d + 1 : 0; }
    void arrive(I* cell, int64_t q, I w, V) const { cell[q] = w | kLabelled; }
};

// The blocks: planes [row[b], row[b+1]) of the first axis; `reach`: how many planes a
// neighbour offset spans (faces are repaired from that many planes on each side).
struct Blocks {
    int64_t nb = 1, plane = 1, reach = 1;
    std::vector<int64_t> row;
    int64_t lo(int64_t b) const { return row[b] * plane; }
    int64_t hi(int64_t b) const { return row[b + 1] * plane; }
};

Blocks make_blocks(const Grid& g, int nt) {
    Blocks bl;
    const int64_t rows = g.shape[0];
    bl.plane = rows ? g.n / rows : 1;
    bl.reach = 1;
    for (int k = 0; k < g.nn; ++k) {
        const int64_t v = g.vec[static_cast<size_t>(k) * g.ndim];
        bl.reach = std::max(bl.reach, v < 0 ? -v : v);
    }
    int64_t nb = g.n < kParallelMin ? 1 : nt;
    nb = std::min(nb, std::max<int64_t>(1, g.n / kMinBlock));
    nb = std::min(nb, std::max<int64_t>(1, rows / bl.reach));  // blocks of at least `reach` planes
    bl.nb = std::max<int64_t>(nb, 1);
    bl.row.resize(static_cast<size_t>(bl.nb + 1));
    for (int64_t b = 0; b <= bl.nb; ++b) bl.row[b] = rows * b / bl.nb;
    return bl;
}

// The grid of planes [0, rows) of g (the same offsets; faces count as borders).
Grid block_grid(const Grid& g, int64_t rows) {
    std::vector<int64_t> shape(g.shape, g.shape + g.ndim);
    shape[0] = rows;
    const Geometry geom{g.ndim, shape.data(), g.nn, g.vec.data()};
    return Grid(geom);
}

// Floods one block (arrays shifted to its first pixel, gb its grid): cells, levels, markers'
// keys, then the fast tie order's scan recording keys.
template <int NN, class S, class L, class I, class K>
void flood_block(const S* img, const uint8_t* mask, L* lab, const Grid& gb, I* cell, K* key) {
    BigVector<I> levstart;
    const int64_t own_max = prepare_cells<S, L, I>(img, mask, lab, gb, 1, cell, levstart);
    std::vector<std::vector<I>> active(1);
    for (int64_t p = 0; p < gb.n; ++p) {
        const I w = cell[p];
        // every marker has its key, idle ones too: they may be neighbours across a face
        key[p] = (w & kLabelled) ? K(code_of(img[p])) << Keys<K>::kShift : Keys<K>::kNone;
        if ((w & (kLabelled | kInside)) == (kLabelled | kInside)) active[0].push_back(static_cast<I>(p));
    }
    KeySink<S, I, K> sink{img, key};
    scan_levels<NN>(cell, sink, gb, levstart.data(), static_cast<int64_t>(levstart.size()) - 1, own_max, active, 1);
}

// The keys of the planes on both sides of each face, as they were at the start of a round.
template <class K>
struct FaceCopies {
    std::vector<std::vector<K>> face;  // face f (between blocks f and f+1): planes [row - reach, row + reach)
    const Blocks* bl;
    int64_t first(int64_t f) const { return std::max<int64_t>(0, bl->row[f + 1] - bl->reach) * bl->plane; }
    void take(int64_t f, const K* key, int64_t rows) {
        const int64_t a = first(f), b = std::min(rows, bl->row[f + 1] + bl->reach) * bl->plane;
        face[f].assign(key + a, key + b);
    }
    K at(int64_t f, int64_t q) const { return face[f][static_cast<size_t>(q - first(f))]; }
};

// Repairs block b from the face copies: pixels of its face planes whose key through a
// neighbour across a face is smaller take it, then a Dijkstra over the block lowers every key
// that depends on them. Returns whether a key in the block's face planes changed.
template <int NN, class S, class I, class K>
bool repair_block(int64_t b, const Blocks& bl, const Grid& g, const Grid& gb, const S* img, const I* cell, K* key,
                  const FaceCopies<K>& faces) {
    using KK = Keys<K>;
    const int64_t b0 = bl.lo(b), b1 = bl.hi(b);
    const int64_t band = std::min(bl.reach * bl.plane, b1 - b0);
    using Item = std::pair<K, int64_t>;
    std::vector<Item> heap;
    auto push = [&](K k, int64_t p) {
        heap.emplace_back(k, p);
        std::push_heap(heap.begin(), heap.end(), std::greater<Item>());
    };
    auto seed_from = [&](int64_t f, int64_t from, int64_t to) {
        for (int64_t p = from; p < to; ++p) {
            if (!(cell[p] & kInside)) continue;
            const K c = K(code_of(img[p]));
            each_neighbor<0>(g, g.off.data(), p, true, [&](int64_t q) {
                if (q >= b0 && q < b1) return;
                const K kq = faces.at(f, q);
                if (kq == KK::kNone) return;
                const K k = KK::extend(kq, c);
                if (k < key[p]) {
                    key[p] = k;
                    push(k, p);
                }
            });
        }
    };
    if (b > 0) seed_from(b - 1, b0, b0 + band);
    if (b + 1 < bl.nb) seed_from(b, b1 - band, b1);
    bool changed = false;
    int64_t off[NN > 0 ? NN : 1];
    if constexpr (NN > 0) std::copy(g.off.begin(), g.off.end(), off);
    const int64_t* offs = NN > 0 ? off : g.off.data();
    while (!heap.empty()) {
        std::pop_heap(heap.begin(), heap.end(), std::greater<Item>());
        const Item it = heap.back();
        heap.pop_back();
        const int64_t p = it.second;
        if (it.first != key[p]) continue;  // superseded
        changed |= p < b0 + band || p >= b1 - band;
        const int64_t lp = p - b0;
        each_neighbor<NN>(gb, offs, lp, cell[p] & kBorder, [&](int64_t lq) {
            const int64_t q = lq + b0;
            if (!(cell[q] & kInside)) return;
            const K k = KK::extend(it.first, K(code_of(img[q])));
            if (k < key[q]) {
                key[q] = k;
                push(k, q);
            }
        });
    }
    return changed;
}

// Labels every reached pixel that is not a marker: the label its chain of parents (each
// pixel's neighbour of smallest key, the first in neighbour order among equal keys) ends
// at. Pixels [lo, hi); chains cross ranges, so labels are read and written atomically (any
// two threads write the same label).
template <int NN, class L, class I, class K>
void label_range(int64_t lo, int64_t hi, const Grid& g, const I* cell, const K* key, L* lab,
                 std::vector<int64_t>& chain) {
    int64_t off[NN > 0 ? NN : 1];
    if constexpr (NN > 0) std::copy(g.off.begin(), g.off.end(), off);
    const int64_t* offs = NN > 0 ? off : g.off.data();
    auto parent = [&](int64_t p) {
        K best = Keys<K>::kNone;
        int64_t arg = -1;
        // kBorder marks block faces too: the border path checks coordinates on g
        each_neighbor<NN>(g, offs, p, cell[p] & kBorder, [&](int64_t q) {
            const K k = key[q];
            if (k < best) {
                best = k;
                arg = q;
            }
        });
        return arg;
    };
    for (int64_t p = lo; p < hi; ++p) {
        if (key[p] == Keys<K>::kNone || __atomic_load_n(&lab[p], __ATOMIC_RELAXED) != L(0)) continue;
        chain.clear();
        int64_t q = p;
        L label = 0;
        for (;;) {
            chain.push_back(q);
            q = parent(q);
            label = __atomic_load_n(&lab[q], __ATOMIC_RELAXED);
            if (label != L(0)) break;
        }
        for (const int64_t r : chain) __atomic_store_n(&lab[r], label, __ATOMIC_RELAXED);
    }
}

template <int NN, class S, class L, class I, class K>
void parallel_scan(const S* img, const uint8_t* mask, L* lab, const Grid& g, int nt) {
    const int64_t n = g.n;
    const Blocks bl = make_blocks(g, nt);
    const int64_t nb = bl.nb;
    if (n < kParallelMin) nt = 1;  // small images: thread start-up would cost more
    big_ptr<I> cell_buf = big_array<I>(static_cast<size_t>(n));
    big_ptr<K> key_buf = big_array<K>(static_cast<size_t>(n));
    I* cell = cell_buf.get();
    K* key = key_buf.get();
    std::vector<Grid> grids;
    for (int64_t b = 0; b < nb; ++b) grids.push_back(block_grid(g, bl.row[b + 1] - bl.row[b]));
    std::exception_ptr error;
    auto guarded = [&](auto&& f) {
        try {
            f();
        } catch (...) {
#pragma omp critical(seg_ws_parallel_error)
            if (!error) error = std::current_exception();
        }
    };
    // 1. each block flooded on its own
#pragma omp parallel for schedule(static, 1) num_threads(static_cast<int>(std::min<int64_t>(nt, nb)))
    for (int64_t b = 0; b < nb; ++b) {
        guarded([&] {
            const int64_t o = bl.lo(b);
            flood_block<NN, S, L, I, K>(img + o, mask ? mask + o : nullptr, lab + o, grids[b], cell + o, key + o);
        });
    }
    if (error) std::rethrow_exception(error);
    // 2. repair rounds until no face plane changes (keys only decrease: it ends)
    if (nb > 1) {
        FaceCopies<K> faces;
        faces.bl = &bl;
        faces.face.resize(static_cast<size_t>(nb - 1));
        std::vector<char> changed(static_cast<size_t>(nb), 1), todo(static_cast<size_t>(nb), 0);
        for (;;) {
            bool any = false;
            for (int64_t b = 0; b < nb; ++b) {
                todo[b] = (b > 0 && changed[b - 1]) || (b + 1 < nb && changed[b + 1]);
                any |= todo[b] != 0;
            }
            if (!any) break;
            for (int64_t f = 0; f + 1 < nb; ++f)
                if (changed[f] || changed[f + 1]) guarded([&] { faces.take(f, key, g.shape[0]); });
            if (error) std::rethrow_exception(error);
#pragma omp parallel for schedule(static, 1) num_threads(static_cast<int>(std::min<int64_t>(nt, nb)))
            for (int64_t b = 0; b < nb; ++b) {
                changed[b] = 0;
                if (todo[b])
                    guarded([&] {
                        changed[b] = repair_block<NN, S, I, K>(b, bl, g, grids[b], img, cell, key, faces) ? 1 : 0;
                    });
            }
            if (error) std::rethrow_exception(error);
        }
    }
    // 3. labels from the parents
    const int64_t chunk = 4096;
    const int64_t chunks = (n + chunk - 1) / chunk;
#pragma omp parallel num_threads(nt)
    {
        std::vector<int64_t> chain;
#pragma omp for schedule(static)
        for (int64_t c = 0; c < chunks; ++c)
            guarded([&] { label_range<NN, L, I, K>(c * chunk, std::min(n, (c + 1) * chunk), g, cell, key, lab, chain); });
    }
    if (error) std::rethrow_exception(error);
}

template <class S, class L, class I, class K>
void parallel_nn(const S* img, const uint8_t* mask, L* lab, const Grid& g, int nt) {
    switch (g.nn) {
        case 4: parallel_scan<4, S, L, I, K>(img, mask, lab, g, nt); break;
        case 6: parallel_scan<6, S, L, I, K>(img, mask, lab, g, nt); break;
        case 8: parallel_scan<8, S, L, I, K>(img, mask, lab, g, nt); break;
        default: parallel_scan<0, S, L, I, K>(img, mask, lab, g, nt);
    }
}

template <class S, class L>
void parallel_typed(const S* img, const uint8_t* mask, L* lab, const Grid& g, int nt) {
    const int64_t n = g.n;
    if (n == 0) return;
    using K1 = std::conditional_t<sizeof(CodeT<S>) == 4, uint64_t, unsigned __int128>;
    // int32 cells while level << kPosShift and pixel << 1 fit; D fits in half a key below 2^32 pixels
    if (n < (int64_t(1) << (31 - kPosShift))) parallel_nn<S, L, int32_t, K1>(img, mask, lab, g, nt);
    else if (n < (int64_t(1) << 32)) parallel_nn<S, L, int64_t, K1>(img, mask, lab, g, nt);
    else parallel_nn<S, L, int64_t, unsigned __int128>(img, mask, lab, g, nt);
}

void parallel_one(const void* image, int dtype, const uint8_t* mask, void* labels, int label_bytes, const Grid& g,
                  int nt) {
    if (label_bytes != 4 && label_bytes != 8) throw std::invalid_argument("watershed: labels must be int32 or int64");
    dispatch(dtype, [&](auto tag) {
        using S = std::remove_const_t<std::remove_pointer_t<decltype(tag)>>;
        const S* img = static_cast<const S*>(image);
        if (label_bytes == 4) parallel_typed(img, mask, static_cast<int32_t*>(labels), g, nt);
        else parallel_typed(img, mask, static_cast<int64_t*>(labels), g, nt);
    });
}

}  // namespace
}  // namespace detail

void watershed_parallel(const void* image, int dtype, const uint8_t* mask, void* labels, int label_bytes,
                        const Geometry& geom, int num_threads) {
    detail::Grid g(geom);
    detail::parallel_one(image, dtype, mask, labels, label_bytes, g, resolve_threads(num_threads));
}

void watershed_parallel_batch(const void* images, int dtype, const uint8_t* masks, void* labels,
                              int label_bytes, int64_t batch, const Geometry& geom,
                              const Geometry* minima_geom, int num_threads) {
    // a batch of one item gets the threads; larger batches run items in parallel
    const int nt = resolve_threads(num_threads);
    const int inner = batch == 1 ? nt : 1;
    detail::for_each_item(images, dtype, masks, labels, label_bytes, batch, geom, minima_geom,
                          batch == 1 ? 1 : nt,
                          [&](const void* img, const uint8_t* m, void* lab, const detail::Grid& g) {
                              detail::parallel_one(img, dtype, m, lab, label_bytes, g, inner);
                          });
}

}  // namespace ws
}  // namespace seg
