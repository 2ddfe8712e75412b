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
#include "cpu_features.h"
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
// (uint64 for codes of 32 bits, CompactCode ones of 64-bit images included, and items of
// fewer than 2^32 pixels; unsigned __int128 otherwise), so that keys compare as integers.
// kNone: not reached.
template <class K>
struct Keys {
    static constexpr int kShift = 4 * static_cast<int>(sizeof(K));
    static constexpr K kNone = ~K(0);
    using D = std::conditional_t<sizeof(K) == 8, uint32_t, uint64_t>;
    // the key of a pixel of code c reached from a neighbour of key kp (not a marker's)
    static K extend(K kp, K c) { return c > (kp >> kShift) ? (c << kShift) | 1 : kp + 1; }
    // markers, and only they, have D = 0
    static bool is_marker(K k) { return (k & ((K(1) << kShift) - 1)) == 0; }
};

// The flood's sink: the fast tie order's label sink `inner` (watershed_fast_flood.h), and
// the key of every pixel recorded as it leaves the queue. Pixels leaving during level k share
// its C, the level's code (levcode[k], read in order, not from the image at each pixel).
//
// D is not carried in the queue (it would widen every slot and FIFO entry: 40 % more scan
// time): it follows from the order in which a level is emptied. Its slots hold first the
// markers (D = 0; they were queued before anything else, and their keys are set before the
// flood), then pixels that arrived from below (D = 1). The FIFO then holds clamped arrivals,
// each with its parent's D + 1, in the order of a breadth-first search from those sources,
// so D never decreases along it and changes at layer boundaries: layer 1 is what the
// markers pushed, layer 2 starts where the first pixel from below began pushing, and layer
// L + 1 (L >= 2) starts at the FIFO's length when layer L's first entry leaves.
template <class I, class K, class C, class Inner>
struct KeySink {
    using V = typename Inner::V;
    using D = typename Keys<K>::D;
    Inner inner;
    const C* levcode;
    K* key;
    K level = 0;
    bool in_fifo = false, from_below = false;
    size_t pushed = 0, popped = 0;  // FIFO entries of this level so far
    size_t boundary = 0;            // the FIFO index where the next layer starts
    size_t first_from_below = 0;    // pushed when the first pixel from below left its slot
    D layer = 0;                    // D of the FIFO entries being emptied
    V of_marker(int64_t p) const { return inner.of_marker(p); }
    void begin_level(int64_t k) {
        level = K(levcode[k]) << Keys<K>::kShift;
        in_fifo = from_below = false;
        pushed = popped = 0;
    }
    void begin_fifo() {
        in_fifo = true;
        layer = 1;
        boundary = from_below ? first_from_below : pushed;
    }
    void leave(int64_t p, V) {
        D d;
        if (!in_fifo) {
            if (key[p] != Keys<K>::kNone) return;  // a marker: its key is set
            if (!from_below) first_from_below = pushed;
            from_below = true;
            d = 1;
        } else {
            if (popped == boundary) {  // a new layer; it ends where the FIFO ends now
                ++layer;
                boundary = pushed;
            }
            d = layer;
            ++popped;
        }
        key[p] = level | K(d);
    }
    V child(V v, bool clamped) {
        pushed += clamped ? 1 : 0;
        return v;
    }
    void arrive(I* cell, int64_t q, I w, V v) const { inner.arrive(cell, q, w, v); }
    // what leave(p) reads and writes, a few levels ahead
    void prefetch(int64_t p) const { __builtin_prefetch(key + p, 1, 3); }
};

template <class I, class K, class C>
struct WrapKeys {
    const C* levcode;
    K* key;
    template <class Inner>
    KeySink<I, K, C, Inner> operator()(const Inner& inner) const {
        return KeySink<I, K, C, Inner>{inner, levcode, key};
    }
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

// Floods one block (arrays and `code` shifted to its first pixel, gb its grid): cells, levels,
// markers' keys, then the fast tie order's scan, recording keys beside the labels.
template <int NN, class S, class L, class I, class K, class Code>
void flood_block(const S* img, const Code& code, const uint8_t* mask, L* lab, const Grid& gb, I* cell, K* key) {
    using C = typename Code::C;
    BigVector<I> levstart;
    BigVector<C> levcode;
    const int64_t own_max = prepare_cells<S, L, I>(img, mask, lab, gb, 1, cell, levstart, code, &levcode);
    for (int64_t p = 0; p < gb.n; ++p)  // every marker has its key, idle ones too (a neighbour across a face)
        key[p] = (cell[p] & kLabelled) ? K(code(p)) << Keys<K>::kShift : Keys<K>::kNone;
    const WrapKeys<I, K, C> wrap{levcode.data(), key};
    flood_levels_scan_nn<NN>(cell, lab, gb, levstart.data(), static_cast<int64_t>(levstart.size()) - 1, own_max, 1,
                             wrap);
}

// The keys of the planes on both sides of each face, as they were at the start of a round.
template <class K, class L>
struct FaceCopies {
    // face f (between blocks f and f+1): planes [row - reach, row + reach)
    std::vector<std::vector<K>> key;
    std::vector<std::vector<L>> label;
    const Blocks* bl;
    int64_t first(int64_t f) const { return std::max<int64_t>(0, bl->row[f + 1] - bl->reach) * bl->plane; }
    void take(int64_t f, const K* k, const L* lab, int64_t rows) {
        const int64_t a = first(f), b = std::min(rows, bl->row[f + 1] + bl->reach) * bl->plane;
        key[f].assign(k + a, k + b);
        label[f].assign(lab + a, lab + b);
    }
    size_t at(int64_t f, int64_t q) const { return static_cast<size_t>(q - first(f)); }
};

// The neighbour of p of smallest key, the first in neighbour order among equal keys (-1: none
// reached). kBorder marks block faces too: the border path checks coordinates on g.
template <int NN, class I, class K>
inline int64_t parent_of(int64_t p, const Grid& g, const int64_t* offs, const I* cell, const K* key) {
    K best = Keys<K>::kNone;
    int64_t arg = -1;
    each_neighbor<NN>(g, offs, p, cell[p] & kBorder, [&](int64_t q) {
        const K k = key[q];
        const bool less = k < best;  // selects, not branches: the comparisons are unpredictable
        best = less ? k : best;
        arg = less ? q : arg;
    });
    return arg;
}


// Repairs block b from the face copies (the keys and labels of the planes across its faces
// as they were when the round began): pixels of its face planes whose key through a
// neighbour across a face is smaller take it, with that neighbour's label, then a Dijkstra
// over the block lowers every key that depends on them, labels following. Returns whether a
// key in the block's face planes changed. (A pixel can also keep its key and change its
// parent; the labels are checked once all keys are final: fix_labels.)
template <int NN, class Code, class L, class I, class K>
bool repair_block(int64_t b, const Blocks& bl, const Grid& g, const Grid& gb, const Code& code, const I* cell, K* key,
                  L* lab, const FaceCopies<K, L>& faces) {
    using KK = Keys<K>;
    const int64_t b0 = bl.lo(b), b1 = bl.hi(b);
    const int64_t band = std::min(bl.reach * bl.plane, b1 - b0);
    using Item = std::pair<K, int64_t>;
    std::vector<Item> heap;
    // q (in the block) as seen from a neighbour of key kp and label lp
    auto offer = [&](int64_t q, K kp, L lp) {
        if (!(cell[q] & kInside)) return;
        const K k = KK::extend(kp, K(code(q)));
        if (k < key[q]) {
            key[q] = k;
            lab[q] = lp;
            heap.emplace_back(k, q);
            std::push_heap(heap.begin(), heap.end(), std::greater<Item>());
        }
    };
    auto seed_from = [&](int64_t f, int64_t from, int64_t to) {
        for (int64_t p = from; p < to; ++p) {
            if (!(cell[p] & kInside)) continue;
            each_neighbor<0>(g, g.off.data(), p, true, [&](int64_t q) {
                if (q >= b0 && q < b1) return;
                const size_t i = faces.at(f, q);
                if (faces.key[f][i] != KK::kNone) offer(p, faces.key[f][i], faces.label[f][i]);
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
        const L lp = lab[p];
        // the block's grid indexes from its first pixel
        each_neighbor<NN>(gb, offs, p - b0, cell[p] & kBorder, [&](int64_t lq) { offer(lq + b0, it.first, lp); });
    }
    return changed;
}

// Once the labels are decoded, a cell word's bits above its flags are free: they hold the
// pixel's parent + 1 (0: a marker or not reached).
template <class I>
inline int64_t parent_in(I w) {
    return static_cast<int64_t>(w >> kPosShift) - 1;
}

// The parent pass of one pixel run [a, z) whose neighbours all lie in the image (NN > 0,
// offsets off[J...]): parent_of as selects over contiguous loads (the neighbour loop
// unrolled by the fold, so that the pixel loop vectorises), the parent's label carried
// along. mism[p - a]: whether p's label differs from its parent's.
template <class K, class I, class L>
struct Nearest {
    K key;
    I arg;
    L lab;
    void offer(K kq, I q, L lq) {
        const bool less = kq < key;  // the first of equal keys stays
        key = less ? kq : key;
        arg = less ? q : arg;
        lab = less ? lq : lab;
    }
};

template <class L, class I, class K, size_t... J>
__attribute__((always_inline)) inline void parents_run(int64_t a, int64_t z, const int64_t* offs,
                                                        I* __restrict cell, const K* __restrict key,
                                                        const L* __restrict lab, uint8_t* __restrict mism,
                                                        std::index_sequence<J...>) {
    const int64_t off[] = {offs[J]...};
    for (int64_t p = a; p < z; ++p) {
        Nearest<K, I, L> nb{Keys<K>::kNone, I(-1), L(0)};
        (nb.offer(key[p + off[J]], static_cast<I>(p + off[J]), lab[p + off[J]]), ...);
        const K k = key[p];
        const bool plain = (k != Keys<K>::kNone) & !Keys<K>::is_marker(k);  // markers keep their labels
        const I flags = cell[p] & (kInside | kBorder);
        cell[p] = plain ? static_cast<I>(((nb.arg + 1) << kPosShift) | flags) : flags;
        mism[p - a] = plain & (nb.lab != lab[p]);
    }
}

template <int NN, class L, class I, class K>
__attribute__((target("avx2"))) void parents_run_avx2(int64_t a, int64_t z, const int64_t* off, I* cell,
                                                       const K* key, const L* lab, uint8_t* mism) {
    parents_run(a, z, off, cell, key, lab, mism, std::make_index_sequence<NN>());
}

template <int NN, class L, class I, class K>
void parents_run_base(int64_t a, int64_t z, const int64_t* off, I* cell, const K* key, const L* lab,
                      uint8_t* mism) {
    parents_run(a, z, off, cell, key, lab, mism, std::make_index_sequence<NN>());
}

// Each pixel's parent (parent_of) into its cell word (parent_in), for pixels [lo, hi) (whole
// rows); those whose label differs from their parent's are appended to `out`, in order. The
// interior of interior rows takes parents_run when keys are 64-bit and the neighbour count
// known; the rest the neighbour loop with coordinate checks.
template <int NN, class L, class I, class K>
void parents_and_mismatches(int64_t lo, int64_t hi, const Grid& g, I* cell, const K* key, const L* lab,
                            std::vector<int64_t>& out) {
    int64_t off[NN > 0 ? NN : 1];
    if constexpr (NN > 0) std::copy(g.off.begin(), g.off.end(), off);
    const int64_t* offs = NN > 0 ? off : g.off.data();
    auto one = [&](int64_t p) {
        const I flags = cell[p] & (kInside | kBorder);
        const K k = key[p];
        if (k == Keys<K>::kNone || Keys<K>::is_marker(k)) {  // markers keep their labels
            cell[p] = flags;
            return;
        }
        const int64_t q = parent_of<NN>(p, g, offs, cell, key);
        cell[p] = static_cast<I>(((q + 1) << kPosShift) | flags);
        if (lab[q] != lab[p]) out.push_back(p);
    };
    const int last = g.ndim - 1;
    const int64_t W = g.shape[last];
    if constexpr (NN > 0 && std::is_same_v<K, uint64_t>) {
        const bool avx2 = cpu_has_avx2();
        const int64_t x0 = g.lo[last], x1 = std::max(g.lo[last], g.hi[last]);
        std::vector<uint8_t> mism(static_cast<size_t>(W));
        for (int64_t r = W ? lo / W : 0; r < (W ? hi / W : 0); ++r) {
            const int64_t p0 = r * W;
            if (x1 == x0 || g.row_on_border(r)) {
                for (int64_t p = p0; p < p0 + W; ++p) one(p);
                continue;
            }
            for (int64_t p = p0; p < p0 + x0; ++p) one(p);
            if (avx2) parents_run_avx2<NN>(p0 + x0, p0 + x1, off, cell, key, lab, mism.data());
            else parents_run_base<NN>(p0 + x0, p0 + x1, off, cell, key, lab, mism.data());
            for (int64_t x = x0; x < x1; ++x)
                if (mism[static_cast<size_t>(x - x0)]) out.push_back(p0 + x);
            for (int64_t p = p0 + x1; p < p0 + W; ++p) one(p);
        }
    } else {
        for (int64_t p = lo; p < hi; ++p) one(p);
    }
}

// Relabels the pixels in `wrong` (their labels differ from their parents') from their
// parents, in increasing key order, each with its subtree in the parent forest (parents in
// the cell words). A parent's key is smaller than its child's, so a visited pixel's wrong
// ancestors among these have been relabelled before it. Only pixels of [lo, hi) are read or
// written: pixels of `wrong` whose parent lies outside, and children outside that a subtree
// reaches, are appended to `deferred` instead (with lo = 0, hi = n nothing is deferred).
template <int NN, class L, class I, class K>
void fix_labels(const std::vector<int64_t>& wrong, int64_t lo, int64_t hi, const Grid& g, const I* cell,
                const K* key, L* lab, std::vector<int64_t>& deferred) {
    using Item = std::pair<K, int64_t>;
    std::vector<Item> heap;
    for (const int64_t p : wrong) {
        const int64_t q = parent_in(cell[p]);
        if (q >= lo && q < hi) heap.emplace_back(key[p], p);
        else deferred.push_back(p);
    }
    if (heap.empty()) return;
    std::make_heap(heap.begin(), heap.end(), std::greater<Item>());
    int64_t off[NN > 0 ? NN : 1];
    if constexpr (NN > 0) std::copy(g.off.begin(), g.off.end(), off);
    const int64_t* offs = NN > 0 ? off : g.off.data();
    std::vector<int64_t> stack;
    while (!heap.empty()) {
        std::pop_heap(heap.begin(), heap.end(), std::greater<Item>());
        const int64_t p = heap.back().second;
        heap.pop_back();
        const L want = lab[parent_in(cell[p])];
        if (want == lab[p]) continue;
        lab[p] = want;
        stack.push_back(p);
        while (!stack.empty()) {
            const int64_t x = stack.back();
            stack.pop_back();
            each_neighbor<NN>(g, offs, x, cell[x] & kBorder, [&](int64_t r) {
                if (r < lo || r >= hi) {
                    deferred.push_back(r);  // checked again when the blocks are done
                } else if (parent_in(cell[r]) == x && lab[r] != want) {
                    lab[r] = want;
                    stack.push_back(r);
                }
            });
        }
    }
}

template <int NN, class S, class L, class I, class K, class Code>
void parallel_scan(const S* img, const Code& code, const uint8_t* mask, L* lab, const Grid& g, int nt) {
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
            flood_block<NN, S, L, I, K>(img + o, code.at(o), mask ? mask + o : nullptr, lab + o, grids[b], cell + o,
                                         key + o);
        });
    }
    if (error) std::rethrow_exception(error);
    // 2. repair rounds until no face plane changes (keys only decrease: it ends)
    if (nb > 1) {
        FaceCopies<K, L> faces;
        faces.bl = &bl;
        faces.key.resize(static_cast<size_t>(nb - 1));
        faces.label.resize(static_cast<size_t>(nb - 1));
        std::vector<char> changed(static_cast<size_t>(nb), 1), todo(static_cast<size_t>(nb), 0);
        for (;;) {
            bool any = false;
            for (int64_t b = 0; b < nb; ++b) {
                todo[b] = (b > 0 && changed[b - 1]) || (b + 1 < nb && changed[b + 1]);
                any |= todo[b] != 0;
            }
            if (!any) break;
            for (int64_t f = 0; f + 1 < nb; ++f)
                if (changed[f] || changed[f + 1]) guarded([&] { faces.take(f, key, lab, g.shape[0]); });
            if (error) std::rethrow_exception(error);
#pragma omp parallel for schedule(static, 1) num_threads(static_cast<int>(std::min<int64_t>(nt, nb)))
            for (int64_t b = 0; b < nb; ++b) {
                changed[b] = 0;
                if (todo[b])
                    guarded([&] {
                        changed[b] = repair_block<NN>(b, bl, g, grids[b], code, cell, key, lab, faces) ? 1 : 0;
                    });
            }
            if (error) std::rethrow_exception(error);
        }
    }
    // 3. labels: each pixel's should be its parent's; the floods and repairs gave nearly all
    // of them so (ties broken by arrival, parents changed by a repair are the exceptions).
    // Per block, in parallel: the parents and the labels that differ from them; then their
    // fix within each block; then, on one thread, what crosses a face.
    std::vector<std::vector<int64_t>> wrong(static_cast<size_t>(nb)), deferred(static_cast<size_t>(nb));
#pragma omp parallel for schedule(static, 1) num_threads(static_cast<int>(std::min<int64_t>(nt, nb)))
    for (int64_t b = 0; b < nb; ++b)
        guarded([&] { parents_and_mismatches<NN>(bl.lo(b), bl.hi(b), g, cell, key, lab, wrong[b]); });
    if (error) std::rethrow_exception(error);
#pragma omp parallel for schedule(static, 1) num_threads(static_cast<int>(std::min<int64_t>(nt, nb)))
    for (int64_t b = 0; b < nb; ++b)
        guarded([&] { fix_labels<NN>(wrong[b], bl.lo(b), bl.hi(b), g, cell, key, lab, deferred[b]); });
    if (error) std::rethrow_exception(error);
    std::vector<int64_t> rest, none;
    for (const auto& d : deferred)
        for (const int64_t p : d)
            if (parent_in(cell[p]) >= 0 && lab[parent_in(cell[p])] != lab[p]) rest.push_back(p);
    fix_labels<NN>(rest, 0, n, g, cell, key, lab, none);
}

template <class S, class L, class I, class K, class Code>
void parallel_nn(const S* img, const Code& code, const uint8_t* mask, L* lab, const Grid& g, int nt) {
    // Images of 2^27 pixels or more (int64 cells) take the generic neighbour loop: specialising them too would
    // double this file's build time for a loop overhead that is small beside such an image's memory traffic.
    if constexpr (!std::is_same_v<I, int32_t>) {
        parallel_scan<0, S, L, I, K>(img, code, mask, lab, g, nt);
    } else {
        switch (g.nn) {
            case 4: parallel_scan<4, S, L, I, K>(img, code, mask, lab, g, nt); break;
            case 6: parallel_scan<6, S, L, I, K>(img, code, mask, lab, g, nt); break;
            case 8: parallel_scan<8, S, L, I, K>(img, code, mask, lab, g, nt); break;
            default: parallel_scan<0, S, L, I, K>(img, code, mask, lab, g, nt);
        }
    }
}

// Keys pack (C, D) into 64 bits for 32-bit codes below 2^32 pixels, 128 otherwise.
template <class S, class L, class Code>
void parallel_coded(const S* img, const Code& code, const uint8_t* mask, L* lab, const Grid& g, int nt) {
    const int64_t n = g.n;
    using K1 = std::conditional_t<sizeof(typename Code::C) == 4, uint64_t, unsigned __int128>;
    // int32 cells while level << kPosShift and pixel << 1 fit; D fits in half a key below 2^32 pixels
    if (n < (int64_t(1) << (31 - kPosShift))) parallel_nn<S, L, int32_t, K1>(img, code, mask, lab, g, nt);
    else if (n < (int64_t(1) << 32)) parallel_nn<S, L, int64_t, K1>(img, code, mask, lab, g, nt);
    else parallel_nn<S, L, int64_t, unsigned __int128>(img, code, mask, lab, g, nt);
}

template <class S, class L>
void parallel_typed(const S* img, const uint8_t* mask, L* lab, const Grid& g, int nt) {
    if (g.n == 0) return;
    if constexpr (sizeof(CodeT<S>) == 8) {
        CompactCode<S> compact;
        if (compact_code(img, g.n, nt, compact)) return parallel_coded(img, compact, mask, lab, g, nt);
    }
    parallel_coded(img, PlainCode<S>{img}, mask, lab, g, nt);
}

void parallel_one(const void* image, int dtype, const uint8_t* mask, void* labels, int label_bytes, const Grid& g,
                  int nt) {
    with_types(image, dtype, labels, label_bytes, [&](auto img, auto lab) { parallel_typed(img, mask, lab, g, nt); });
}

}  // namespace
}  // namespace detail

void watershed_parallel(const void* image, int dtype, const uint8_t* mask, void* labels, int label_bytes,
                        const Geometry& geom, int num_threads) {
    detail::Grid g(geom);
    detail::parallel_one(image, dtype, mask, labels, label_bytes, g, resolve_threads(num_threads));
}

void watershed_parallel_batch(const void* images, int dtype, const uint8_t* masks, void* labels, int label_bytes,
                              int64_t batch, const Geometry& geom, const Geometry* minima_geom, int num_threads) {
    detail::threaded_items(images, dtype, masks, labels, label_bytes, batch, geom, minima_geom, num_threads,
                           detail::parallel_one);
}

}  // namespace ws
}  // namespace seg
