// Implicit-grid helpers shared by the max-flow entry points (internal header of
// csrc/cpu/maxflow*.cpp): grid geometry, filling the slot capacities, solver set-up and
// the parallel slab solve.  Assumes what maxflow.h states (checked sizes, finite
// non-negative capacities).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <limits>
#include <memory>
#include <stdexcept>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "maxflow.h"
#include "maxflow_solver.h"
#ifdef SEG_MF_PROFILE
#include <chrono>
#include <cstdio>
#endif

namespace seg {
namespace mf {
namespace detail {

struct GridGeom {
    int ndim = 0, K = 0, A = 0;
    int64_t sz[3] = {1, 1, 1};        // z, y, x (2D: z = 1)
    int64_t N = 0;
    int off[13][3];                   // forward offsets as (dz, dy, dx)
    int64_t delta[26];
    int opp[26];

    GridGeom(int nd, const int64_t* shape, int conn) {
        ndim = nd;
        int raw[13 * 3];
        K = forward_offsets(nd, conn, raw);
        A = 2 * K;
        if (nd == 2) { sz[0] = 1; sz[1] = shape[0]; sz[2] = shape[1]; }
        else { sz[0] = shape[0]; sz[1] = shape[1]; sz[2] = shape[2]; }
        for (int d = 0; d < 3; ++d)
            if (sz[d] < 0) throw std::invalid_argument("grid sizes must be non-negative");
        // N * 26 slots * 8 bytes must not overflow: such a grid cannot be allocated anyway
        const int64_t lim = std::numeric_limits<int64_t>::max() / 256;
        if ((sz[1] != 0 && sz[0] > lim / sz[1]) || (sz[0] * sz[1] != 0 && sz[2] > lim / (sz[0] * sz[1])))
            throw std::bad_alloc();
        N = sz[0] * sz[1] * sz[2];
        for (int k = 0; k < K; ++k) {
            if (nd == 2) { off[k][0] = 0; off[k][1] = raw[k * 3]; off[k][2] = raw[k * 3 + 1]; }
            else { off[k][0] = raw[k * 3]; off[k][1] = raw[k * 3 + 1]; off[k][2] = raw[k * 3 + 2]; }
            int64_t d = (off[k][0] * sz[1] + off[k][1]) * sz[2] + off[k][2];
            delta[k] = d; delta[K + k] = -d;
            opp[k] = K + k; opp[K + k] = k;
        }
    }
    inline bool inside(int64_t z, int64_t y, int64_t x) const {
        return z >= 0 && z < sz[0] && y >= 0 && y < sz[1] && x >= 0 && x < sz[2];
    }
};

// rc[p*A + k]: forward slot k (p -> p+o_k) = fw(k, p); backward slot K+k (p -> p-o_k)
// = bw(k, p - o_k); grid_outside<T>() outside the grid.  Also applies source/sink capacities.
template <class T, class CapF, class CapB>
void fill_grid(const GridGeom& g, T* rc, CapF fw, CapB bw, int nthreads) {
    const int64_t Z = g.sz[0], Y = g.sz[1], X = g.sz[2];
    const int A = g.A, K = g.K;
    // Serial on purpose: the fill is memory-bound, and an OpenMP team left spinning after
    // it steals the core that the (serial) solver needs next.
    for (int64_t z = 0; z < Z; ++z)
        for (int64_t y = 0; y < Y; ++y) {
            // validity of each slot away from the x borders depends on (z, y) only
            bool vf[13], vb[13];
            for (int k = 0; k < K; ++k) {
                vf[k] = g.inside(z + g.off[k][0], y + g.off[k][1], 1 + g.off[k][2]) || X < 3;
                vb[k] = g.inside(z - g.off[k][0], y - g.off[k][1], 1 - g.off[k][2]) || X < 3;
            }
            const int64_t row = (z * Y + y) * X;
            for (int64_t x = 0; x < X; ++x) {
                const int64_t p = row + x;
                T* r = rc + p * A;
                if (x > 0 && x < X - 1) {
                    for (int k = 0; k < K; ++k) {
                        r[k] = vf[k] ? fw(k, p) : grid_outside<T>();
                        r[K + k] = vb[k] ? bw(k, p - g.delta[k]) : grid_outside<T>();
                    }
                } else {
                    for (int k = 0; k < K; ++k) {
                        const int dz = g.off[k][0], dy = g.off[k][1], dx = g.off[k][2];
                        r[k] = g.inside(z + dz, y + dy, x + dx) ? fw(k, p) : grid_outside<T>();
                        r[K + k] = g.inside(z - dz, y - dy, x - dx) ? bw(k, p - g.delta[k]) : grid_outside<T>();
                    }
                }
            }
        }
    (void)nthreads;
}

template <class T, int AC>
inline void setup_grid_solver(Solver<T, GridTopology<T, AC>>& s, const GridGeom& g, T* rc) {
    if (AC > 0 && AC != g.A) throw std::invalid_argument("grid solver built for another connectivity");
    s.topo.A = g.A;
    for (int k = 0; k < g.A; ++k) { s.topo.delta[k] = g.delta[k]; s.topo.opp[k] = g.opp[k]; }
    s.topo.rc = rc;
}

// Calls f(std::integral_constant<int, AC>) with AC = g.A for the slot counts that have a
// compiled grid solver of their own (4 / 8: 2D 4- / 8-connected, 6 / 26: 3D 6- / 26-connected),
// else AC = 0 (3D 18-connected).  A fixed slot count lets the slot loops unroll: 1.5x on
// 2D 8-connected grids against the run-time count.
template <class F>
inline decltype(auto) with_slots(const GridGeom& g, F&& f) {
    if (g.A == 4) return f(std::integral_constant<int, 4>());
    if (g.A == 6) return f(std::integral_constant<int, 6>());
    if (g.A == 8) return f(std::integral_constant<int, 8>());
    if (g.A == 26) return f(std::integral_constant<int, 26>());
    return f(std::integral_constant<int, 0>());
}

// Slabs per thread of a parallel slab solve (see solve_slabs).  Measured with 2 threads on the
// benchmark grids (coffee 4/8-connected, tiled coffee, 128^3 volumes 6/26-connected), 2 beat 4
// on all six (by 8-30 %: fewer borders for the serial merge pass) and 1 on four of them (uneven
// slabs leave a thread idle).
constexpr int kSlabsPerThread = 2;

// Whether a fresh solve of grid g with nthreads threads is split into parallel slabs.
inline bool slab_solve_pays(const GridGeom& g, int nthreads) {
    const int64_t outer = g.ndim == 3 ? g.sz[0] : g.sz[1];
    return nthreads >= 2 && outer >= 32 && g.N >= 65536;
}

// Parallel solve of one grid (nthreads >= 2, big enough): the grid is cut into slabs along
// its outermost axis (kSlabsPerThread per thread); each slab is solved by one thread on its
// own range of the node array, with the arcs that cross slab borders hidden (as if outside the grid).  The slabs' flows are
// valid flows of the whole graph and their search trees valid trees of it, so after the
// crossing arcs are restored one serial pass that starts from the border nodes finishes
// the job (Boykov-Kolmogorov with reused trees).  The flow value does not depend on the
// number of threads; where the minimum cut is not unique the cut may.
template <class T, int AC>
void solve_slabs(const GridGeom& g, Solver<T, GridTopology<T, AC>>& s, T* rc, int nthreads) {
    using S = Solver<T, GridTopology<T, AC>>;
    const bool three = g.ndim == 3;
    const int64_t outer = three ? g.sz[0] : g.sz[1];
    const int64_t plane = three ? g.sz[1] * g.sz[2] : g.sz[2];
    const int A = g.A;
    // More slabs than threads, handed out in order to whichever thread is free: the flow
    // work is uneven across an image (a textured half can take twice as long), and the
    // merge pass costs little per extra border.
    int T_ = int(std::min<int64_t>(int64_t(kSlabsPerThread) * nthreads, outer / 16));
    // slab t covers outer indices [b[t], b[t+1])
    std::vector<int64_t> b(static_cast<size_t>(T_ + 1));
    for (int t = 0; t <= T_; ++t) b[size_t(t)] = outer * t / T_;
    // outer-axis component of each slot's offset
    int od[26];
    for (int k = 0; k < g.K; ++k) {
        od[k] = three ? g.off[k][0] : g.off[k][1];
        od[g.K + k] = -od[k];
    }
    // hide the crossing arcs: slots of the first/last plane of a slab leaving the slab
    std::vector<std::pair<int64_t, T>> saved;
    std::vector<int64_t> border;
    for (int t = 0; t < T_; ++t) {
        for (int side = 0; side < 2; ++side) {
            const int64_t o = side == 0 ? b[size_t(t)] : b[size_t(t + 1)] - 1;
            if ((side == 0 && t == 0) || (side == 1 && t == T_ - 1)) continue;
            const int dir = side == 0 ? -1 : 1;
            for (int64_t p = o * plane; p < (o + 1) * plane; ++p) {
                border.push_back(p);
                for (int k = 0; k < A; ++k)
                    if (od[k] == dir && !is_outside(rc[p * A + k])) {
                        saved.emplace_back(p * A + k, rc[p * A + k]);
                        rc[p * A + k] = grid_outside<T>();
                    }
            }
        }
    }
    std::vector<std::unique_ptr<S>> sub(static_cast<size_t>(T_));
    std::vector<std::exception_ptr> errs(static_cast<size_t>(T_));
    for (int t = 0; t < T_; ++t) {
        const int64_t n0 = b[size_t(t)] * plane, n1 = b[size_t(t + 1)] * plane;
        sub[size_t(t)].reset(new S(s.nodes.data() + n0, n1 - n0));
        S& q = *sub[size_t(t)];
        q.topo = s.topo;
        q.topo.rc = rc + n0 * A;
    }
    std::atomic<int> next{0};
    auto work = [&]() {
        for (int t = next++; t < T_; t = next++) {
            try { sub[size_t(t)]->maxflow(false); } catch (...) { errs[size_t(t)] = std::current_exception(); }
        }
    };
    std::vector<std::thread> th;
    const int n_threads = std::min(nthreads, T_);
    for (int t = 1; t < n_threads; ++t) th.emplace_back(work);
    work();
    for (auto& x : th) x.join();
    for (auto& e : errs) if (e) std::rethrow_exception(e);
    uint32_t stamp = 0;
    for (auto& q : sub) { s.flow += q->flow; stamp = std::max(stamp, q->time_stamp()); }
    for (auto& sv : saved) rc[sv.first] = sv.second;
#ifdef SEG_MF_PROFILE
    auto tr0 = std::chrono::steady_clock::now();
#endif
    s.resume_from(border, stamp + 1);
#ifdef SEG_MF_PROFILE
    std::fprintf(stderr, "slabs %d, merge pass %.1f ms\n", T_,
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - tr0).count() * 1e3);
#endif
}

}  // namespace detail
}  // namespace mf
}  // namespace seg
