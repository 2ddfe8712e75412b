// A Graph-API graph that is exactly a grid, stored and solved as an implicit grid
// (internal header of csrc/cpu/maxflow.cpp).
//
// GeneralGraph<T> keeps a GridPart while everything added to it came through grid calls
// on one grid of nodes: begin (all nodes of one C-order grid), arcs along neighbour
// offsets in {-1, 0, 1}^3, terminal capacities.  Parallel arcs between the same pair add
// up in one slot (the same flow network).  Anything else converts it back to staging
// edges (to_staging) and the graph continues as a general one.
//
// Integer capacities are checked (maxflow_checked.h): a capacity w * st that does not fit
// throws std::overflow_error; parallel arcs whose sum would not fit their shared slot are
// refused (add_arcs returns -1) and the caller keeps them as separate arcs instead.
//
// Assumes (checked by segengine/maxflow/graph.py): capacities finite and non-negative,
// offsets in {-1, 0, 1}^3 and not all zero, weights laid out as the grid (C order).
#pragma once

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "big_alloc.h"
#include "maxflow_checked.h"
#include "maxflow_grid.h"
#include "maxflow_solver.h"

namespace seg {
namespace mf {
namespace detail {

// Smallest connectivity of a grid with `ndim` (2 or 3) axes whose neighbourhood holds an
// offset of L1 norm `l1` (1..3).
inline int connectivity_for(int ndim, int l1) {
    if (ndim == 2) return l1 <= 1 ? 4 : 8;
    return l1 <= 1 ? 6 : (l1 == 2 ? 18 : 26);
}

// Slot of the arc p -> p + off (off as (dz, dy, dx)) in the layout of g, -1 if none.
inline int slot_of(const GridGeom& g, const int* off) {
    for (int k = 0; k < g.K; ++k) {
        if (g.off[k][0] == off[0] && g.off[k][1] == off[1] && g.off[k][2] == off[2]) return k;
        if (g.off[k][0] == -off[0] && g.off[k][1] == -off[1] && g.off[k][2] == -off[2]) return g.K + k;
    }
    return -1;
}

// Offset (dz, dy, dx) of slot k of g.
inline void slot_offset(const GridGeom& g, int k, int* off) {
    const int sign = k < g.K ? 1 : -1, f = k < g.K ? k : k - g.K;
    for (int d = 0; d < 3; ++d) off[d] = sign * g.off[f][d];
}

template <class T>
struct GridPart {
    template <int AC> using SolverOf = Solver<T, GridTopology<T, AC>>;
    using Node = typename SolverOf<0>::N;   // the same node type for every AC
    int ndim = 2;                 // 2 or 3 (a 1D grid is a 2D grid of one row)
    int64_t shape[3] = {1, 1, 1};
    int64_t N = 0;
    int conn = 0;                 // 0 until the first arcs
    std::unique_ptr<GridGeom> geom;
    big_ptr<T> rc;                // [N * A] slot capacities, grid_outside<T>() outside the grid
    big_ptr<Node> nodes;          // node state (terminal capacities, trees) from the start
    // one solver over `nodes`, compiled for the layout's slot count (see with_slots)
    std::unique_ptr<SolverOf<0>> s0;
    std::unique_ptr<SolverOf<4>> s4;
    std::unique_ptr<SolverOf<6>> s6;
    std::unique_ptr<SolverOf<8>> s8;
    std::unique_ptr<SolverOf<26>> s26;
    bool stale = true;            // slots changed structurally since the last solve

    GridPart(int nd, const int64_t* shp) {
        ndim = nd;
        for (int d = 0; d < nd; ++d) shape[d] = shp[d];
        // the geometry checks sizes and overflow; its connectivity is replaced later
        GridGeom probe(nd, shp, nd == 2 ? 4 : 6);
        N = probe.N;
        nodes = big_array<Node>(size_t(N));
        for (int64_t i = 0; i < N; ++i) {
            Node& v = nodes[size_t(i)];
            v.tr = T(0); v.ts = 0; v.dist = 0; v.parent = P_NONE<typename SolverOf<0>::P>; v.tf = FREE;
        }
        s0.reset(new SolverOf<0>(nodes.get(), N));
    }

    template <class F> decltype(auto) visit(F&& f) {
        if (s4) return f(*s4);
        if (s6) return f(*s6);
        if (s8) return f(*s8);
        if (s26) return f(*s26);
        return f(*s0);
    }
    template <class F> decltype(auto) visit(F&& f) const {
        if (s4) return f(static_cast<const SolverOf<4>&>(*s4));
        if (s6) return f(static_cast<const SolverOf<6>&>(*s6));
        if (s8) return f(static_cast<const SolverOf<8>&>(*s8));
        if (s26) return f(static_cast<const SolverOf<26>&>(*s26));
        return f(static_cast<const SolverOf<0>&>(*s0));
    }

    // Terminal residual of node i and the flow, for detail::add_tweights_all.
    std::pair<T*, flow_t<T>*> tr_at(int64_t i) {
        return {&nodes[size_t(i)].tr, visit([](auto& s) { return &s.flow; })};
    }
    void mark(int64_t i) { visit([&](auto& s) { if (s.solved_once) s.mark(i); }); }
    int segment(int64_t i) const { return tree_of(nodes[size_t(i)]) == IN_T ? 1 : 0; }
    flow_t<T> flow() const { return visit([](const auto& s) { return s.flow; }); }
    T tr(int64_t i) const { return nodes[size_t(i)].tr; }

    // Lay the slots out for connectivity c (at least the current one), keeping every
    // capacity already stored.
    void widen(int c) {
        std::unique_ptr<GridGeom> g(new GridGeom(ndim, shape, c));
        big_ptr<T> r = big_array<T>(size_t(N) * size_t(g->A));
        fill_grid<T>(*g, r.get(), [](int, int64_t) { return T(0); }, [](int, int64_t) { return T(0); }, 1);
        if (geom) {
            // slot k of the old layout -> slot of the same offset in the new one
            int map[26];
            for (int k = 0; k < geom->A; ++k) {
                int off[3];
                slot_offset(*geom, k, off);
                map[k] = slot_of(*g, off);
            }
            const int A0 = geom->A, A1 = g->A;
            for (int64_t p = 0; p < N; ++p)
                for (int k = 0; k < A0; ++k) r[size_t(p * A1 + map[k])] = rc[size_t(p * A0 + k)];
        }
        geom = std::move(g);
        rc = std::move(r);
        conn = c;
        // a solver of the new layout's kind over the same nodes, with the flow so far
        const flow_t<T> f = flow();
        s0.reset(); s4.reset(); s6.reset(); s8.reset(); s26.reset();
        with_slots(*geom, [&](auto ac) {
            constexpr int AC = decltype(ac)::value;
            std::unique_ptr<SolverOf<AC>> s(new SolverOf<AC>(nodes.get(), N));
            s->flow = f;
            setup_grid_solver(*s, *geom, rc.get());
            if constexpr (AC == 4) s4 = std::move(s);
            else if constexpr (AC == 6) s6 = std::move(s);
            else if constexpr (AC == 8) s8 = std::move(s);
            else if constexpr (AC == 26) s26 = std::move(s);
            else s0 = std::move(s);
        });
        stale = true;   // parent codes name slots of the old layout
    }

    void ensure_layout() { if (!geom) widen(ndim == 2 ? 4 : 6); }

    // Calls f(p, q) for every node pair (p, q = p + off) inside the grid.
    template <class F>
    void for_pairs(const int* off, F&& f) const {
        const int64_t d = (off[0] * shape3(1) + off[1]) * shape3(2) + off[2];
        for (int64_t z = std::max<int64_t>(0, -off[0]); z < shape3(0) - std::max(0, off[0]); ++z)
            for (int64_t y = std::max<int64_t>(0, -off[1]); y < shape3(1) - std::max(0, off[1]); ++y) {
                const int64_t x0 = std::max(0, -off[2]), x1 = shape3(2) - std::max(0, off[2]);
                const int64_t row = (z * shape3(1) + y) * shape3(2);
                for (int64_t x = x0; x < x1; ++x) f(row + x, row + x + d);
            }
    }

    // Sizes as (z, y, x), z = 1 in 2D.
    int64_t shape3(int d) const { return ndim == 2 ? (d == 0 ? 1 : shape[d - 1]) : shape[d]; }

    // The capacity w[p * w_stride] * st, checked for integers.
    static T arc_cap(const T* w, int64_t w_stride, T st, int64_t p) {
        if constexpr (std::is_integral<T>::value) {
            T c;
            if (__builtin_mul_overflow(w[p * w_stride], st, &c))
                throw std::overflow_error(std::string("edge capacity weight * structure overflows ") +
                                          type_name<T>());
            return c;
        } else {
            return T(w[p * w_stride] * st);
        }
    }

    // Add capacity w[p * w_stride] * st to the arc p -> p + off for every p whose
    // neighbour is inside the grid (and the same to p + off -> p when symmetric).
    // off: (dz, dy, dx), dz = 0 in 2D.  Returns the number of node pairs, or -1 (nothing
    // added) when an integer slot pair would overflow: cap + rev of a slot and its
    // reverse must fit T, parallel arcs adding up in one slot.
    int64_t add_arcs(const int* off, const T* w, int64_t w_stride, T st, bool symmetric) {
        const int l1 = std::abs(off[0]) + std::abs(off[1]) + std::abs(off[2]);
        const int need = connectivity_for(ndim, l1);
        if (!geom || need > conn) widen(std::max(need, conn));
        const GridGeom& g = *geom;
        const int slot = slot_of(g, off);
        const int back = slot < g.K ? slot + g.K : slot - g.K;
        const int A = g.A;
        if constexpr (std::is_integral<T>::value) {
            bool ok = true;
            for_pairs(off, [&](int64_t p, int64_t q) {
                const wide_t<T> c = arc_cap(w, w_stride, st, p);
                const wide_t<T> sum = wide_t<T>(rc[size_t(p * A + slot)]) + rc[size_t(q * A + back)] +
                                      (symmetric ? 2 * c : c);
                if (!fits<T>(sum)) ok = false;
            });
            if (!ok) return -1;
        }
        int64_t pairs = 0;
        for_pairs(off, [&](int64_t p, int64_t q) {
            const T c = arc_cap(w, w_stride, st, p);
            rc[size_t(p * A + slot)] += c;
            if (symmetric) rc[size_t(q * A + back)] += c;
            ++pairs;
        });
        stale = true;
        return pairs;
    }

    void maxflow(bool reuse, int nthreads) {
        ensure_layout();
        check_flow_bound<T>(flow(), N, [&](int64_t i) { return nodes[size_t(i)].tr; },
                            [&](int64_t i, wide_t<T>& out, wide_t<T>& in) { slot_caps(i, out, in); });
        visit([&](auto& s) {
            if (stale || !s.solved_once) reuse = false;
            if (!reuse && slab_solve_pays(*geom, nthreads)) solve_slabs(*geom, s, rc.get(), nthreads);
            else s.maxflow(reuse);
        });
        stale = false;
    }

    // Residual capacity out of and into node i (added to out, in).
    void slot_caps(int64_t i, wide_t<T>& out, wide_t<T>& in) const {
        const int A = geom->A;
        for (int k = 0; k < A; ++k) {
            const T c = rc[size_t(i * A + k)];
            if (is_outside(c)) continue;
            out += c;
            in += rc[size_t((i + geom->delta[k]) * A + geom->opp[k])];
        }
    }

    // Arcs of the residual network: (from, to, cap) for every slot inside the grid.
    template <class F>
    void for_each_arc(F&& f) const {
        if (!geom) return;
        const int A = geom->A;
        for (int64_t p = 0; p < N; ++p)
            for (int k = 0; k < A; ++k) {
                const T c = rc[size_t(p * A + k)];
                if (!is_outside(c)) f(p, p + geom->delta[k], c);
            }
    }

    int64_t arc_count() const {
        int64_t m = 0;
        for_each_arc([&](int64_t, int64_t, T) { ++m; });
        return m;
    }

    // The same residual network as staging edges (one per forward slot), terminal
    // residuals tr[N] and the flow so far.
    void to_staging(std::vector<int64_t>& ei, std::vector<int64_t>& ej, std::vector<T>& ecap,
                    std::vector<T>& erev, std::vector<T>& tr, flow_t<T>& flow) const {
        if (geom) {
            const int A = geom->A, K = geom->K;
            const size_t m = size_t(arc_count() / 2);
            ei.reserve(ei.size() + m); ej.reserve(ej.size() + m);
            ecap.reserve(ecap.size() + m); erev.reserve(erev.size() + m);
            for (int64_t p = 0; p < N; ++p)
                for (int k = 0; k < K; ++k) {
                    const T c = rc[size_t(p * A + k)];
                    if (is_outside(c)) continue;
                    const int64_t q = p + geom->delta[k];
                    ei.push_back(p); ej.push_back(q); ecap.push_back(c);
                    erev.push_back(rc[size_t(q * A + geom->opp[k])]);
                }
        }
        tr.resize(size_t(N));
        for (int64_t i = 0; i < N; ++i) tr[size_t(i)] = nodes[size_t(i)].tr;
        flow = this->flow();
    }
};

}  // namespace detail
}  // namespace mf
}  // namespace seg
