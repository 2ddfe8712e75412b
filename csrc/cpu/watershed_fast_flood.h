// The serial flood of the fast tie order (watershed_fast.h): a scan of the priority levels in
// increasing order with one slot per in-mask pixel.
//
// Levels. Sorting the in-mask pixels by code gives each a position; level l (a run of equal
// codes) holds the positions [l, l + size(l)). A pixel that arrives in the queue above the
// level being emptied arrives there only once, at its own level, so the slots
// [l, l + size(l)) can hold level l's queue: levels of up to `own_max` pixels give each pixel
// its own slot (written without reading anything, with the pixel's arrival number; the
// queued ones are sorted by arrival when the level is visited), larger levels (8/16-bit
// grey levels, big plateaus) fill their slots in arrival order with a counter kept in the
// first slot. Pixels that arrive at or below the level being emptied (clamped to it) join
// a plain FIFO emptied after that level's slots (they arrived after everything in them).
// Levels are visited in increasing order, so pixels leave in (priority, arrival) order, as
// the rule in watershed_fast.h says. Markers with no unlabelled in-mask neighbour would
// label nothing and are not queued.
//
// Per pixel the flood reads one cell word (flags and slot position, see below) for every
// neighbour and writes the label once; a queue entry carries the pixel's border flag and
// label, so leaving the queue reads neither. The slots are read in order, which lets the
// scan prefetch the neighbourhoods of the pixels queued a few levels ahead.
//
// Labels in the cells. Once a pixel has arrived, its cell is only read for its flags, so when
// the markers' labels span a range that fits beside the flags (label - min + 1 <
// 2^(bits of I - kPosShift - 1)), an arriving pixel's label code is written into its own cell
// word instead of into `lab`, and a parallel pass decodes them at the end. The flood then
// touches one array at random instead of two (the `lab` writes were about a third of the
// scan's time at 1200x1500 and 128^3). Labels of any other range are written directly.
//
// Internal to watershed_fast.cpp.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "big_alloc.h"
#include "parallel.h"
#include "watershed_grid.h"

namespace seg {
namespace ws {
namespace detail {

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

// A pixel's cell word: pos << kPosShift | kCounted | kLabelled | kBorder | kInside
// (kInside/kBorder: watershed_grid.h). pos: the pixel's own slot (its position in the sorted
// order) or, with kCounted, its level's first slot. Pixels outside the mask have no pos.
constexpr uint8_t kLabelled = 4;  // labelled (queued or done)
constexpr uint8_t kCounted = 8;   // queued at its level by the level's counter
constexpr int kPosShift = 4;

// A level slot: pb = pixel << 1 | border flag (-1: empty), its label (or label code), and
// `tag`: the pixel's arrival number (own slots), or in a counted level's first slot the
// number of pixels queued there so far.
template <class I, class L>
struct Slot {
    I pb;
    I tag;
    L label;
};

// A pixel in the FIFO of clamped arrivals.
template <class I, class L>
struct Entry {
    I pb;
    L label;
};

// The FIFO of clamped arrivals: a vector whose push stays inlined in the scan (growth is
// the rare, out-of-line path).
template <class E>
struct Fifo {
    std::vector<E> buf = std::vector<E>(4096);
    size_t n = 0;
    __attribute__((noinline)) void grow() { buf.resize(buf.size() * 2); }
    void push(const E& e) {
        if (__builtin_expect(n == buf.size(), 0)) grow();
        buf[n++] = e;
    }
};

// Where arriving pixels' labels go: `lab` itself (InCell false) or, as codes
// label - base + 1, their cell words (InCell true; decode_cell_labels writes `lab` after the
// flood). V: the label type the queue carries.
template <class I, class L, bool InCell>
struct LabelSink {
    using V = std::conditional_t<InCell, I, L>;
    L* lab;
    L base;
    V of_marker(int64_t p) const {
        if constexpr (InCell) return static_cast<I>(lab[p] - base + 1);
        else return lab[p];
    }
    // the scan starts emptying level k; p leaves the queue carrying v (nothing to record:
    // the label was written on arrival)
    void begin_level(int64_t) {}
    // the level's slots are done; its FIFO of clamped arrivals is emptied next
    void begin_fifo() {}
    void leave(int64_t, V) {}
    // p will leave the queue soon (nothing it reads on leaving is not prefetched already)
    void prefetch(int64_t) const {}
    // what a neighbour reached from a pixel carrying v carries (clamped: at or below the
    // level being emptied)
    static V child(V v, bool) { return v; }
    // q arrives with label v; w: its cell word before
    void arrive(I* cell, int64_t q, I w, V v) const {
        if constexpr (InCell) {
            cell[q] = static_cast<I>((v << kPosShift) | kLabelled | (w & (kInside | kBorder)));
        } else {
            cell[q] = w | kLabelled;
            lab[q] = v;
        }
    }
};

// The labels of pixels that arrived with InCell: every labelled pixel whose `lab` is still 0
// (the markers keep theirs).
template <class I, class L>
void decode_cell_labels(const I* cell, L* lab, int64_t n, L base, int nt) {
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t p = 0; p < n; ++p) {  // a select, not a branch: the loop vectorises
        const I w = cell[p];
        const L old = lab[p];
        lab[p] = ((w & kLabelled) && old == L(0)) ? static_cast<L>(static_cast<L>(w >> kPosShift) + base - 1) : old;
    }
}

// Calls f(q) for every neighbour q of p inside the image, in neighbour order (as
// Grid::for_neighbors, with the border flag given). NN > 0: the neighbour count, known at
// compile time (`off`: the raveled offsets, g.off copied), so the interior loop unrolls.
template <int NN, class F>
inline void each_neighbor(const Grid& g, const int64_t* off, int64_t p, bool border, F&& f) {
    if (!border) {
        if constexpr (NN > 0) {
            for (int k = 0; k < NN; ++k) f(p + off[k]);
        } else {
            for (int k = 0; k < g.nn; ++k) f(p + off[k]);
        }
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

// The scan of flood_levels_scan_nn (arguments as there): queues the markers listed in
// `active` (per thread range, raster order over the ranges), then empties the levels in
// increasing order. `sink` says what a queued pixel carries and records it: a LabelSink (the
// labels), or the parallel tie order's key sink (watershed_parallel.cpp: each pixel's
// priority and distance). `nt` threads fill the slots.
template <int NN, class I, class Sink>
void scan_levels(I* cell, Sink& sink, const Grid& g, const I* levstart, int64_t nlev, int64_t own_max,
                 const std::vector<std::vector<I>>& active, int nt) {
    using V = typename Sink::V;
    using S = Slot<I, V>;
    using E = Entry<I, V>;
    const int64_t m = nlev ? static_cast<int64_t>(levstart[nlev]) : 0;
    big_ptr<S> slots = big_array<S>(static_cast<size_t>(m));
    S* Q = slots.get();
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t i = 0; i < m; ++i) Q[i] = S{I(-1), I(0), V{}};
    Fifo<E> fifo;
    I arrivals = 0;
    auto queue_at_level = [&](I pb, V lb, I w) {
        const I pos = w >> kPosShift;
        if (!(w & kCounted)) {
            Q[pos] = S{pb, arrivals++, lb};  // no read: a store miss does not stall
        } else {
            S& s = Q[pos + Q[pos].tag++];
            s.pb = pb;
            s.label = lb;
        }
    };
    int64_t off[NN > 0 ? NN : 1];
    if constexpr (NN > 0) std::copy(g.off.begin(), g.off.end(), off);
    const int64_t* offs = NN > 0 ? off : g.off.data();
    for (const auto& act : active)
        for (const I p : act) {
            const I w = cell[p];
            queue_at_level(static_cast<I>((int64_t(p) << 1) | ((w & kBorder) ? 1 : 0)), sink.of_marker(p), w);
        }
    // neighbour offsets that leave p's cache line: prefetched around pixels a few levels ahead
    std::vector<int64_t> ahead_off{0};
    for (int k = 0; k < g.nn; ++k)
        if (g.off[k] * int64_t(sizeof(I)) >= 64 || g.off[k] * int64_t(sizeof(I)) <= -64) ahead_off.push_back(g.off[k]);
    // a cursor kAhead slots ahead of the slot being read prefetches the neighbourhoods of
    // the pixels queued there (each slot once)
    constexpr int64_t kAhead = 24;
    int64_t ahead = 0;
    auto prefetch_to = [&](int64_t pos) {
        const int64_t stop = std::min<int64_t>(pos + kAhead, m);
        for (; ahead < stop; ++ahead) {
            const I a = Q[ahead].pb;
            if (a < 0) continue;
            const I* c = cell + (a >> 1);
            for (int64_t o : ahead_off) __builtin_prefetch(c + o, 0, 3);
            sink.prefetch(a >> 1);
        }
    };
    std::vector<S> small(static_cast<size_t>(own_max > 1 ? own_max : 1));
    for (int64_t k = 0; k < nlev; ++k) {
        const int64_t r = levstart[k];
        const int64_t end = levstart[k + 1];
        prefetch_to(end);
        sink.begin_level(k);
        auto leave = [&](I pb, V lb) {
            const int64_t p = static_cast<int64_t>(pb >> 1);
            sink.leave(p, lb);
            each_neighbor<NN>(g, offs, p, pb & 1, [&](int64_t q) {
                const I w = cell[q];
                if ((w & (kLabelled | kInside)) != kInside) return;
                sink.arrive(cell, q, w, lb);
                const I qb = static_cast<I>((q << 1) | ((w & kBorder) ? 1 : 0));
                if ((w >> kPosShift) < end) fifo.push(E{qb, sink.child(lb, true)});  // at or below this level
                else queue_at_level(qb, sink.child(lb, false), w);
            });
        };
        const int64_t size = end - r;
        if (size == 1) {
            if (Q[r].pb >= 0) leave(Q[r].pb, Q[r].label);
        } else if (size > own_max) {
            const int64_t c = Q[r].tag;
            for (int64_t j = 0; j < c; ++j) {
                prefetch_to(r + j);
                leave(Q[r + j].pb, Q[r + j].label);
            }
        } else {  // own slots: the queued ones by arrival (insertion sort, few)
            int64_t c = 0;
            for (int64_t j = r; j < end; ++j) {
                if (Q[j].pb < 0) continue;
                const S s = Q[j];
                int64_t t = c++;
                for (; t > 0 && small[static_cast<size_t>(t - 1)].tag > s.tag; --t)
                    small[static_cast<size_t>(t)] = small[static_cast<size_t>(t - 1)];
                small[static_cast<size_t>(t)] = s;
            }
            for (int64_t j = 0; j < c; ++j) leave(small[static_cast<size_t>(j)].pb, small[static_cast<size_t>(j)].label);
        }
        sink.begin_fifo();
        for (size_t i = 0; i < fifo.n; ++i) {
            const E e = fifo.buf[i];
            leave(e.pb, e.label);
        }
        fifo.n = 0;
    }
}

// Floods in place. `cell[p]`: the cell words (kLabelled on the markers: nonzero labels inside
// the mask; idle markers, whose in-image neighbours are all markers or outside the mask, have
// kLabelled without kInside and no level; overwritten); `lab`: the markers inside the mask,
// 0 elsewhere (written); `levstart[0..nlev]`: the start positions of the `nlev` levels, increasing, levstart[nlev] = m
// (the in-mask pixel count). Levels of more than `own_max` pixels are counted, the others
// give each pixel its own slot (and are sorted by arrival when visited). `nt` threads list
// the markers, fill the slots and decode the labels; the flood itself is serial.
//
// Markers arrive in raster order. An idle marker would label nothing: leaving it out of the
// queue changes no one's order. The others are listed per thread range (in parallel), and
// the range of all markers' labels is taken on the way (it decides whether labels travel in
// the cells). `wrap(label_sink)` gives the sink the scan uses: by default the label sink
// itself; the parallel tie order wraps it into a sink that also records keys.
struct SameSink {
    template <class LS>
    LS operator()(const LS& s) const { return s; }
};

template <int NN, class I, class L, class Wrap = SameSink>
void flood_levels_scan_nn(I* cell, L* lab, const Grid& g, const I* levstart, int64_t nlev, int64_t own_max, int nt,
                          Wrap wrap = Wrap()) {
    const int64_t n = g.n;
    std::vector<std::vector<I>> active(static_cast<size_t>(nt));
    L lo = std::numeric_limits<L>::max(), hi = std::numeric_limits<L>::min();
#pragma omp parallel num_threads(nt) reduction(min : lo) reduction(max : hi)
    {
        const int t = thread_id();
        const int T = team_size();
        const int64_t p0 = n * t / T, p1 = n * (t + 1) / T;
        std::vector<I>& act = active[static_cast<size_t>(t)];
        for (int64_t p = p0; p < p1; ++p) {
            const I w = cell[p];
            if (!(w & kLabelled)) continue;
            lo = std::min(lo, lab[p]);
            hi = std::max(hi, lab[p]);
            if (w & kInside) act.push_back(static_cast<I>(p));
        }
    }
    // codes label - lo + 1 must fit in I beside the flags (and their sign bit stay clear)
    constexpr uint64_t kMaxCode = (uint64_t(std::numeric_limits<I>::max()) >> kPosShift) - 1;
    const bool fits = lo > hi || static_cast<uint64_t>(hi) - static_cast<uint64_t>(lo) < kMaxCode;
    if (fits) {
        const L base = lo > hi ? L(0) : lo;
        auto sink = wrap(LabelSink<I, L, true>{lab, base});
        scan_levels<NN>(cell, sink, g, levstart, nlev, own_max, active, nt);
        decode_cell_labels(cell, lab, n, base, nt);
    } else {
        auto sink = wrap(LabelSink<I, L, false>{lab, L(0)});
        scan_levels<NN>(cell, sink, g, levstart, nlev, own_max, active, nt);
    }
}

template <class I, class L>
void flood_levels_scan(I* cell, L* lab, const Grid& g, const I* levstart, int64_t nlev, int64_t own_max, int nt) {
    switch (g.nn) {
        case 4: flood_levels_scan_nn<4, I, L>(cell, lab, g, levstart, nlev, own_max, nt); break;
        case 6: flood_levels_scan_nn<6, I, L>(cell, lab, g, levstart, nlev, own_max, nt); break;
        case 8: flood_levels_scan_nn<8, I, L>(cell, lab, g, levstart, nlev, own_max, nt); break;
        default: flood_levels_scan_nn<0, I, L>(cell, lab, g, levstart, nlev, own_max, nt);
    }
}

}  // namespace detail
}  // namespace ws
}  // namespace seg
