// Multi-label grid energies: alpha-expansion and alpha-beta swap moves (contracts in
// maxflow.h).  Each move is a binary problem on the implicit grid solved exactly by the
// max-flow solver; a move is kept when it lowers the energy.
//
// Exact arithmetic: the move graphs hold the costs in fixed point, as int64 multiples of
// 1/scale (scale a power of two chosen from the cost bounds so that no sum can overflow;
// integer costs stay exact).  Float costs are thus rounded once, to ~1e-12 of their range,
// and every later capacity update is exact: a resumed move returns exactly the cut of the
// same move solved afresh, and ties (truncated data costs make many) are broken the same
// way.  In floating point, differences of differences left residuals at 1e-17 where 0 was
// meant, which picked other equal-energy cuts and so other local minima.  Energies and the
// acceptance of moves are computed from the float64 costs.
//
// Speed (all exact, the same minimum cut in exact arithmetic):
//   * a move whose labels have not changed since it was last solved is the same problem
//     with the same (rejected) answer: skipped;
//   * expansion moves keep their solved residual graph and search trees per label (when
//     they fit in kDynamicBudget bytes); the next time alpha is expanded only the
//     capacities around pixels whose label changed since are updated and the solve
//     resumes from the previous flow and trees (dynamic graph cuts, Kohli & Torr 2005);
//   * the energy change of a proposal is summed over the pixels it changes only.
//
// Assumes (checked in Python): finite unary, V and edge weights, V >= 0, labels in [0, C).
#include "maxflow.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <memory>
#include <vector>

#include "maxflow_grid.h"
#include "seg_codes.h"
#include "maxflow_solver.h"

namespace seg {
namespace mf {

using detail::GridGeom;

namespace {

template <int AC>
using GridSolver = Solver<int64_t, GridTopology<int64_t, AC>>;

// Per-label residual graphs of expansion moves are kept while they need at most this.
constexpr double kDynamicBudget = 512.0 * 1024 * 1024;
// A kept graph is resumed while at most this fraction of the pixels changed label since it
// was solved; past it the move is built and solved afresh.  Measured on the stereo case of
// issue 10 (callgrind, one thread): 5.89 G instructions at 0.5, 5.96 G at 0.25, 6.74 G at
// 0.1, 6.33 G when always resumed, 7.24 G when never.
constexpr double kResumeFraction = 0.5;

// E(l) = sum_p U[l_p * N + p] + sum_k sum_p w_k(p) V[l_p * C + l_{p + o_k}].
struct Energy {
    const GridGeom& g;
    int64_t C;
    const double* U;
    const double* V;
    const double* ew;   // [K, N] or nullptr (all 1)
    double scale;       // fixed-point scale of the move graphs (a power of two)
    std::vector<int64_t> Vq;   // V in fixed point, [C, C] (used when ew == nullptr)
    double w(int k, int64_t p) const { return ew ? ew[k * g.N + p] : 1.0; }
    double v(int64_t a, int64_t b) const { return V[a * C + b]; }
    // fixed-point unary cost and pairwise term of the move graphs
    int64_t qu(int64_t l, int64_t p) const { return int64_t(std::llrint(U[l * g.N + p] * scale)); }
    int64_t qv(int k, int64_t p, int64_t a, int64_t b) const {
        if (!ew) return Vq[size_t(a * C + b)];
        return int64_t(std::llrint(ew[k * g.N + p] * v(a, b) * scale));
    }
    Energy(const GridGeom& geom, int64_t nc, const double* u, const double* vv, const double* w_,
           double sc)
        : g(geom), C(nc), U(u), V(vv), ew(w_), scale(sc), Vq(size_t(nc * nc)) {
        for (int64_t i = 0; i < C * C; ++i) Vq[size_t(i)] = int64_t(std::llrint(V[i] * scale));
    }
};

// The fixed-point scale: the largest power of two (at most 2^52) for which N nodes' worth of
// terminal capacities stay below 2^61.  A node's capacity sums its unary difference (at most
// 2 max|U|) and, per incident pair (2K of them), terms of at most 4 max(w V) in magnitude.
double fixed_point_scale(const GridGeom& g, int64_t C, const double* U, const double* V,
                         const double* ew) {
    double mu = 0.0, mv = 0.0, mw = 1.0;
    for (int64_t i = 0; i < C * g.N; ++i) mu = std::max(mu, std::fabs(U[i]));
    for (int64_t i = 0; i < C * C; ++i) mv = std::max(mv, std::fabs(V[i]));
    if (ew) {
        mw = 0.0;
        for (int64_t i = 0; i < int64_t(g.K) * g.N; ++i) mw = std::max(mw, std::fabs(ew[i]));
    }
    const double bound = (2.0 * mu + 8.0 * g.K * mv * mw) * double(std::max<int64_t>(g.N, 1));
    if (!std::isfinite(bound))
        throw std::overflow_error("alpha-expansion: costs too large for a 64-bit fixed-point graph");
    if (!(bound > 0)) return 1.0;
    int e = 0;
    std::frexp(std::ldexp(1.0, 61) / bound, &e);   // 2^61 / bound in [2^(e-1), 2^e)
    if (e - 1 < -1000) throw std::overflow_error("alpha-expansion: costs too large for a 64-bit fixed-point graph");
    return std::ldexp(1.0, std::min(e - 1, 52));
}

// One binary move; x_p = 0 keeps l0(l_p), x_p = 1 takes l1(l_p).  Expansion (beta < 0):
// every pixel may take alpha.  Swap: pixels labelled alpha or beta choose between alpha
// (x = 0) and beta (x = 1); all others are fixed.
struct Move {
    int64_t alpha, beta;
    bool is_free(int64_t l) const { return beta < 0 || l == alpha || l == beta; }
    int64_t l0(int64_t l) const { return beta < 0 ? l : alpha; }
    int64_t l1(int64_t) const { return beta < 0 ? alpha : beta; }
};

// What one pixel or one neighbour pair puts into the move's graph: terminal terms
// tr = (cost of x = 1) - (cost of x = 0) of p and q, and the capacity e of the arc p -> q
// (q -> p is 0).  E(x_p, x_q) = A + (C-A) x_p + (D-C) x_q + (B+C-A-D)(1 - x_p) x_q.
struct Terms {
    int64_t tp = 0, tq = 0, e = 0;
};

inline int64_t unary_term(const Energy& E, const Move& m, int64_t p, int64_t l) {
    if (!m.is_free(l)) return 0;
    return E.qu(m.l1(l), p) - E.qu(m.l0(l), p);
}

inline Terms pair_terms(const Energy& E, const Move& m, int k, int64_t p, int64_t lp, int64_t lq) {
    Terms t;
    const bool fp = m.is_free(lp), fq = m.is_free(lq);
    if (fp && fq) {
        const int64_t A = E.qv(k, p, m.l0(lp), m.l0(lq)), B = E.qv(k, p, m.l0(lp), m.l1(lq));
        const int64_t C = E.qv(k, p, m.l1(lp), m.l0(lq)), D = E.qv(k, p, m.l1(lp), m.l1(lq));
        t.tp = C - A;
        t.tq = D - C;
        const int64_t e = B + C - A - D;
        // >= 0 for a metric (expansion) / semi-metric (swap), up to one unit of rounding
        t.e = e > 0 ? e : 0;
    } else if (fp) {
        t.tp = E.qv(k, p, m.l1(lp), lq) - E.qv(k, p, m.l0(lp), lq);
    } else if (fq) {
        t.tq = E.qv(k, p, lp, m.l1(lq)) - E.qv(k, p, lp, m.l0(lq));
    }
    return t;
}

// Calls f(k, a, b) once for every neighbour pair (a, b = a + o_k) with a or b in
// `changed` (flag[p] != 0 exactly for the pixels listed there).
template <class F>
void for_pairs_touching(const GridGeom& g, const std::vector<int64_t>& changed,
                        const std::vector<uint8_t>& flag, F&& f) {
    const int K = g.K;
    for (int64_t p : changed) {
        const int64_t z = p / (g.sz[1] * g.sz[2]), y = (p / g.sz[2]) % g.sz[1], x = p % g.sz[2];
        for (int k = 0; k < K; ++k) {
            const int dz = g.off[k][0], dy = g.off[k][1], dx = g.off[k][2];
            if (g.inside(z + dz, y + dy, x + dx)) f(k, p, p + g.delta[k]);
            // the pair (q, p) with q = p - o_k; when q changed too it is visited from q
            if (g.inside(z - dz, y - dy, x - dx) && !flag[size_t(p - g.delta[k])]) f(k, p - g.delta[k], p);
        }
    }
}

// The graph of move m for labels lab: rc [N * A] and the terminal terms of s's nodes.  Every
// slot inside the grid is written (the forward arc's capacity, 0 on its reverse); the
// slots outside keep the sentinel that MoveState::allocate wrote.
template <class S>
void build_move(const Energy& E, const Move& m, const int64_t* lab, int64_t* rc, S& s) {
    const GridGeom& g = E.g;
    const int K = g.K, A = g.A;
    for (int64_t p = 0; p < g.N; ++p) s.nodes[size_t(p)].tr = unary_term(E, m, p, lab[p]);
    for (int64_t z = 0; z < g.sz[0]; ++z)
        for (int64_t y = 0; y < g.sz[1]; ++y)
            for (int64_t x = 0; x < g.sz[2]; ++x) {
                const int64_t p = (z * g.sz[1] + y) * g.sz[2] + x;
                for (int k = 0; k < K; ++k) {
                    if (!g.inside(z + g.off[k][0], y + g.off[k][1], x + g.off[k][2])) continue;
                    const int64_t q = p + g.delta[k];
                    const Terms t = pair_terms(E, m, k, p, lab[p], lab[q]);
                    s.nodes[size_t(p)].tr += t.tp;
                    s.nodes[size_t(q)].tr += t.tq;
                    rc[size_t(p * A + k)] = t.e;
                    rc[size_t(q * A + K + k)] = 0;
                }
            }
}

// Turn the solved graph of move m for labels `old` into the graph for labels `lab` (they
// differ exactly at `changed`), keeping its flow: residuals move with the capacities; an
// arc whose flow exceeds its new capacity keeps only the capacity's worth and passes the
// excess to the terminal arcs of its ends (a reparametrisation: every cut changes by one
// constant).
// Marks the nodes whose terminal or arc capacities changed, for a solve with reused trees.
template <class S>
void update_move(const Energy& E, const Move& m, const std::vector<int64_t>& changed,
                 const std::vector<uint8_t>& flag, const int32_t* old, const int64_t* lab, int64_t* rc,
                 S& s) {
    const GridGeom& g = E.g;
    const int K = g.K, A = g.A;
    for (int64_t p : changed) {
        s.nodes[size_t(p)].tr += unary_term(E, m, p, lab[p]) - unary_term(E, m, p, old[p]);
        s.mark(p);
    }
    for_pairs_touching(g, changed, flag, [&](int k, int64_t a, int64_t b) {
        const Terms tn = pair_terms(E, m, k, a, lab[a], lab[b]);
        const Terms to = pair_terms(E, m, k, a, old[a], old[b]);
        int64_t& ta = s.nodes[size_t(a)].tr;
        int64_t& tb = s.nodes[size_t(b)].tr;
        ta += tn.tp - to.tp;
        tb += tn.tq - to.tq;
        if (tn.e != to.e) {
            // The reverse arc b -> a has capacity 0 in every move, so its residual is the
            // flow on a -> b; the forward residual is the new capacity less that flow.
            int64_t& r = rc[size_t(a * A + k)];
            int64_t& flow_ab = rc[size_t(b * A + K + k)];
            if (flow_ab > tn.e) {
                const int64_t d = flow_ab - tn.e;
                flow_ab = tn.e;
                r = 0;
                ta += d;
                tb -= d;
            } else {
                r = tn.e - flow_ab;
            }
        }
        s.mark(a);
        s.mark(b);
    });
}

// The solver state of one move, kept between its solves.
template <int AC>
struct MoveState {
    big_ptr<int64_t> rc;
    std::unique_ptr<GridSolver<AC>> solver;
    std::vector<int32_t> lab;          // labels the graph was built for (dynamic states)

    void allocate(const GridGeom& g, bool verify) {
        rc = big_array<int64_t>(size_t(g.N) * size_t(g.A));
        detail::fill_grid<int64_t>(g, rc.get(), [](int, int64_t) { return int64_t(0); },
                                   [](int, int64_t) { return int64_t(0); }, 1);
        solver.reset(new GridSolver<AC>(g.N));
        solver->verify = verify;
        detail::setup_grid_solver(*solver, g, rc.get());
    }
};

}  // namespace

double grid_energy(int ndim, const int64_t* shape, int connectivity, int64_t C, const double* unary,
                   const double* V, const double* ew, const int64_t* labels) {
    GridGeom g(ndim, shape, connectivity);
    const int64_t N = g.N;
    double e = 0.0;
    for (int64_t p = 0; p < N; ++p) e += unary[labels[p] * N + p];
    for (int64_t z = 0; z < g.sz[0]; ++z)
        for (int64_t y = 0; y < g.sz[1]; ++y)
            for (int64_t x = 0; x < g.sz[2]; ++x) {
                const int64_t p = (z * g.sz[1] + y) * g.sz[2] + x;
                for (int k = 0; k < g.K; ++k) {
                    if (!g.inside(z + g.off[k][0], y + g.off[k][1], x + g.off[k][2])) continue;
                    const int64_t q = p + g.delta[k];
                    const double w = ew ? ew[k * N + p] : 1.0;
                    e += w * V[labels[p] * C + labels[q]];
                }
            }
    return e;
}

namespace {

// Cycles of moves until none lowers the energy (or max_cycles); labels in place.
template <int AC>
int64_t run_moves(const Energy& E, const std::vector<Move>& moves, bool allow_dynamic,
                  int64_t max_cycles, int64_t* labels, int nthreads, bool verify) {
    const GridGeom& g = E.g;
    const int64_t N = g.N;
    const double* unary = E.U;
    const double state_bytes =
        double(N) * (double(g.A) * sizeof(int64_t) + sizeof(typename GridSolver<AC>::N) + sizeof(int32_t));
    const bool dynamic = allow_dynamic && !moves.empty() && moves[0].beta < 0 &&
                         double(moves.size()) * state_bytes <= kDynamicBudget;
    std::vector<MoveState<AC>> states(dynamic ? moves.size() : 1);
    // labels change only when a move is kept: `version` counts them
    uint64_t version = 0;
    std::vector<uint64_t> solved_at(moves.size(), std::numeric_limits<uint64_t>::max());
    std::vector<int64_t> prop(static_cast<size_t>(N)), changed;
    std::vector<uint8_t> flag(static_cast<size_t>(N), 0);
    auto set_changed = [&](const std::vector<int64_t>& list, uint8_t v) { for (int64_t p : list) flag[size_t(p)] = v; };

    int64_t cycles = 0;
    for (; max_cycles < 0 || cycles < max_cycles;) {
        ++cycles;
        bool improved = false;
        for (size_t i = 0; i < moves.size(); ++i) {
            if (solved_at[i] == version) continue;   // same labels: same rejected move
            solved_at[i] = version;
            const Move& m = moves[i];
            MoveState<AC>& st = states[dynamic ? i : 0];
            bool fresh = !st.solver || !dynamic;
            if (!fresh) {
                changed.clear();
                for (int64_t p = 0; p < N; ++p)
                    if (st.lab[size_t(p)] != labels[p]) changed.push_back(p);
                // Both paths give the same cut (exact arithmetic): resume only while few
                // pixels changed, otherwise a fresh (possibly parallel) solve is cheaper.
                fresh = double(changed.size()) > kResumeFraction * double(N);
            }
            if (fresh) {
                if (!st.solver) st.allocate(g, verify);
                build_move(E, m, labels, st.rc.get(), *st.solver);
                if (detail::slab_solve_pays(g, nthreads)) detail::solve_slabs(g, *st.solver, st.rc.get(), nthreads);
                else st.solver->maxflow(false);
                if (dynamic) st.lab.assign(labels, labels + N);
            } else {
                set_changed(changed, 1);
                update_move(E, m, changed, flag, st.lab.data(), labels, st.rc.get(), *st.solver);
                set_changed(changed, 0);
                for (int64_t p : changed) st.lab[size_t(p)] = int32_t(labels[p]);
                st.solver->maxflow(true);
            }
            // the proposal and its energy change, summed over the pixels it changes
            changed.clear();
            for (int64_t p = 0; p < N; ++p) {
                const int64_t l = labels[p];
                prop[size_t(p)] = !m.is_free(l) ? l : (st.solver->segment(p) ? m.l1(l) : m.l0(l));
                if (prop[size_t(p)] != l) changed.push_back(p);
            }
            if (changed.empty()) continue;
            set_changed(changed, 1);
            double dE = 0.0;
            for (int64_t p : changed) dE += unary[prop[size_t(p)] * N + p] - unary[labels[p] * N + p];
            for_pairs_touching(g, changed, flag, [&](int k, int64_t a, int64_t b) {
                dE += E.w(k, a) * (E.v(prop[size_t(a)], prop[size_t(b)]) - E.v(labels[a], labels[b]));
            });
            set_changed(changed, 0);
            if (dE < 0) {
                for (int64_t p : changed) labels[p] = prop[size_t(p)];
                ++version;
                improved = true;
            }
        }
        if (!improved) break;
    }
    return cycles;
}

}  // namespace

double multilabel_grid(int method, int ndim, const int64_t* shape, int connectivity, int64_t C,
                       const double* unary, const double* V, const double* ew, const int64_t* order,
                       int64_t n_order, int64_t max_cycles, int64_t* labels, int64_t* cycles_out,
                       bool allow_dynamic, int num_threads, bool verify) {
    GridGeom g(ndim, shape, connectivity);
    const Energy E(g, C, unary, V, ew, fixed_point_scale(g, C, unary, V, ew));
    std::vector<Move> moves;
    if (method == seg::codes::MOVE_EXPANSION) {
        for (int64_t a = 0; a < n_order; ++a) moves.push_back(Move{order[a], -1});
    } else {
        for (int64_t a = 0; a < n_order; ++a)
            for (int64_t b = a + 1; b < n_order; ++b) moves.push_back(Move{order[a], order[b]});
    }
    *cycles_out = detail::with_slots(g, [&](auto ac) {
        return run_moves<decltype(ac)::value>(E, moves, allow_dynamic, max_cycles, labels, num_threads, verify);
    });
    return grid_energy(ndim, shape, connectivity, C, unary, V, ew, labels);
}

}  // namespace mf
}  // namespace seg
