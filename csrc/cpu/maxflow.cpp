// Max-flow entry points: general CSR graphs (and their grid form), implicit grids.
// Multi-label moves live in maxflow_multilabel.cpp.
// See maxflow.h for the contracts and maxflow_solver.h for the algorithm.
#include "maxflow.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <limits>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>

#include "maxflow_checked.h"
#include "maxflow_grid.h"
#include "maxflow_gridgraph.h"
#include "maxflow_solver.h"
#ifdef SEG_MF_PROFILE
#include <cstdlib>
#include <chrono>
#include <cstdio>
#endif

namespace seg {
namespace mf {

int forward_offsets(int ndim, int connectivity, int* out) {
    if (ndim != 2 && ndim != 3) throw std::invalid_argument("grid must be 2D or 3D");
    int K = 0;
    if (ndim == 2) {
        if (connectivity != 4 && connectivity != 8)
            throw std::invalid_argument("2D connectivity must be 4 or 8");
        for (int dy = -1; dy <= 1; ++dy)
            for (int dx = -1; dx <= 1; ++dx) {
                if (!(dy > 0 || (dy == 0 && dx > 0))) continue;
                int l1 = std::abs(dy) + std::abs(dx);
                if (connectivity == 4 && l1 > 1) continue;
                out[K * 3 + 0] = dy; out[K * 3 + 1] = dx; out[K * 3 + 2] = 0;
                ++K;
            }
    } else {
        if (connectivity != 6 && connectivity != 18 && connectivity != 26)
            throw std::invalid_argument("3D connectivity must be 6, 18 or 26");
        for (int dz = -1; dz <= 1; ++dz)
            for (int dy = -1; dy <= 1; ++dy)
                for (int dx = -1; dx <= 1; ++dx) {
                    if (!(dz > 0 || (dz == 0 && (dy > 0 || (dy == 0 && dx > 0))))) continue;
                    int l1 = std::abs(dz) + std::abs(dy) + std::abs(dx);
                    if (connectivity == 6 && l1 > 1) continue;
                    if (connectivity == 18 && l1 > 2) continue;
                    out[K * 3 + 0] = dz; out[K * 3 + 1] = dy; out[K * 3 + 2] = dx;
                    ++K;
                }
    }
    return K;
}

// ------------------------------------------------------------------ general graphs

template <class T>
struct GeneralGraph<T>::Impl {
    // staging (edges not yet in the CSR arrays) and terminal state before the first solve
    std::vector<int64_t> ei, ej;
    std::vector<T> ecap, erev;
    std::vector<T> tr;                 // used while no solver exists
    flow_t<T> flow0 = 0;
    // built solver (one of the two index widths)
    template <class I>
    struct Built {
        std::vector<I> first;
        std::vector<CsrArc<T, I>> arcs;
        std::unique_ptr<Solver<T, CsrTopology<T, I>>> solver;
    };
    std::unique_ptr<Built<int32_t>> b32;
    std::unique_ptr<Built<int64_t>> b64;
    bool dirty = false;                // nodes or edges added after the build
    // while the graph is exactly one grid: stored and solved as an implicit grid
    std::unique_ptr<detail::GridPart<T>> grid;

    bool built() const { return b32 || b64; }

    // Continue as a general graph: the grid's residual network becomes staging edges.
    void leave_grid() {
        if (!grid) return;
        grid->to_staging(ei, ej, ecap, erev, tr, flow0);
        grid.reset();
    }
};

template <class T, class B>
static void unbuild(B& b, std::vector<int64_t>& ei, std::vector<int64_t>& ej, std::vector<T>& ecap,
                    std::vector<T>& erev, std::vector<T>& tr, flow_t<T>& flow0, int64_t n_total);

template <class T> GeneralGraph<T>::GeneralGraph() : impl_(new Impl()) {}
template <class T> GeneralGraph<T>::~GeneralGraph() = default;

template <class T>
void GeneralGraph<T>::reset() {
    impl_.reset(new Impl());
    n_ = 0;
    arcs_ = 0;
}

template <class T>
int64_t GeneralGraph<T>::add_nodes(int64_t k) {
    if (k < 0) throw std::invalid_argument("number of nodes must be non-negative");
    int64_t first = n_;
    Impl& g = *impl_;
    g.leave_grid();
    if (g.built()) {
        // back to staging form (residuals kept); the next maxflow rebuilds the arrays
        if (g.b32) unbuild<T>(*g.b32, g.ei, g.ej, g.ecap, g.erev, g.tr, g.flow0, n_);
        else unbuild<T>(*g.b64, g.ei, g.ej, g.ecap, g.erev, g.tr, g.flow0, n_);
        g.b32.reset(); g.b64.reset();
        g.dirty = false;
    }
    try {
        g.tr.resize(size_t(n_ + k), T(0));
    } catch (const std::length_error&) {
        throw std::bad_alloc();
    }
    n_ += k;
    return first;
}

template <class T>
void GeneralGraph<T>::add_edges(const int64_t* i, const int64_t* j, const T* cap, const T* rev,
                                int64_t m) {
    for (int64_t k = 0; k < m; ++k)
        if (!detail::pair_fits<T>(cap[k], rev[k]))
            throw std::overflow_error("capacity + reverse capacity of edge " + std::to_string(i[k]) + " -> " +
                                      std::to_string(j[k]) + " overflows " + detail::type_name<T>());
    Impl& g = *impl_;
    g.leave_grid();
    size_t old = g.ei.size();
    try {
        g.ei.resize(old + size_t(m)); g.ej.resize(old + size_t(m));
        g.ecap.resize(old + size_t(m)); g.erev.resize(old + size_t(m));
    } catch (const std::length_error&) {
        throw std::bad_alloc();
    }
    std::copy(i, i + m, g.ei.begin() + int64_t(old));
    std::copy(j, j + m, g.ej.begin() + int64_t(old));
    std::copy(cap, cap + m, g.ecap.begin() + int64_t(old));
    std::copy(rev, rev + m, g.erev.begin() + int64_t(old));
    arcs_ += 2 * m;
    if (g.built()) g.dirty = true;
}

// Terminal capacities, checked for integers (all or nothing, see maxflow_checked.h).
template <class T>
void GeneralGraph<T>::add_tweights(const int64_t* i, const T* src, const T* snk, int64_t m) {
    Impl& g = *impl_;
    using R = std::pair<T*, flow_t<T>*>;
    if (g.grid) {
        detail::add_tweights_all<T>(i, src, snk, m, [&](int64_t v) { return g.grid->tr_at(v); });
        return;
    }
    // nodes of a built solver hold their state there; nodes added since are staged
    auto staged = [&](int64_t v) { return R(&g.tr[size_t(v)], &g.flow0); };
    auto in = [&](auto& b) {
        auto& s = *b->solver;
        const int64_t ns = int64_t(s.nodes.size());
        detail::add_tweights_all<T>(i, src, snk, m, [&](int64_t v) {
            return v < ns ? R(&s.nodes[size_t(v)].tr, &s.flow) : staged(v);
        });
    };
    if (g.b32) in(g.b32);
    else if (g.b64) in(g.b64);
    else detail::add_tweights_all<T>(i, src, snk, m, staged);
}

template <class T>
void GeneralGraph<T>::mark_nodes(const int64_t* i, int64_t m) {
    Impl& g = *impl_;
    if (g.grid) { for (int64_t k = 0; k < m; ++k) g.grid->mark(i[k]); }
    else if (g.b32) for (int64_t k = 0; k < m; ++k) { if (i[k] < int64_t(g.b32->solver->nodes.size())) g.b32->solver->mark(i[k]); }
    else if (g.b64) for (int64_t k = 0; k < m; ++k) { if (i[k] < int64_t(g.b64->solver->nodes.size())) g.b64->solver->mark(i[k]); }
}

// Move the state of a built solver back into staging form (residual capacities become
// the new edge capacities, the flow so far is kept).
template <class T, class B>
static void unbuild(B& b, std::vector<int64_t>& ei, std::vector<int64_t>& ej, std::vector<T>& ecap,
                    std::vector<T>& erev, std::vector<T>& tr, flow_t<T>& flow0, int64_t n_total) {
    auto& s = *b.solver;
    const int64_t n_old = int64_t(s.nodes.size());
    std::vector<int64_t> ni, nj;
    std::vector<T> nc, nr;
    const int64_t m2 = int64_t(b.arcs.size());
    ni.reserve(size_t(m2 / 2) + ei.size()); nj.reserve(ni.capacity());
    nc.reserve(ni.capacity()); nr.reserve(ni.capacity());
    for (int64_t i = 0; i < n_old; ++i)
        for (int64_t a = b.first[i]; a < int64_t(b.first[i + 1]); ++a)
            if (a < int64_t(b.arcs[a].sis)) {
                ni.push_back(i); nj.push_back(b.arcs[a].head); nc.push_back(b.arcs[a].rc);
                nr.push_back(b.arcs[b.arcs[a].sis].rc);
            }
    ni.insert(ni.end(), ei.begin(), ei.end()); nj.insert(nj.end(), ej.begin(), ej.end());
    nc.insert(nc.end(), ecap.begin(), ecap.end()); nr.insert(nr.end(), erev.begin(), erev.end());
    ei.swap(ni); ej.swap(nj); ecap.swap(nc); erev.swap(nr);
    tr.assign(size_t(n_total), T(0));
    for (int64_t i = 0; i < n_old; ++i) tr[size_t(i)] = s.nodes[size_t(i)].tr;
    flow0 = s.flow;
}

template <class T, class I>
static void build_csr(typename GeneralGraph<T>::Impl& g, int64_t n,
                      std::unique_ptr<typename GeneralGraph<T>::Impl::template Built<I>>& out) {
    using B = typename GeneralGraph<T>::Impl::template Built<I>;
    std::unique_ptr<B> b(new B());
    const int64_t m = int64_t(g.ei.size());
    b->first.assign(size_t(n + 1), I(0));
    int64_t m2 = 0;
    for (int64_t e = 0; e < m; ++e) {
        const int64_t i = g.ei[size_t(e)], j = g.ej[size_t(e)];
        if (i == j) continue;              // a self-loop carries no flow
        ++b->first[size_t(i + 1)]; ++b->first[size_t(j + 1)];
        m2 += 2;
    }
    for (int64_t i = 0; i < n; ++i) b->first[size_t(i + 1)] += b->first[size_t(i)];
    b->arcs.resize(size_t(m2));
    {
        std::vector<I> cur(b->first.begin(), b->first.end() - 1);
        for (int64_t e = 0; e < m; ++e) {
            const int64_t i = g.ei[size_t(e)], j = g.ej[size_t(e)];
            if (i == j) continue;
            const I a = cur[size_t(i)]++, r = cur[size_t(j)]++;
            b->arcs[size_t(a)] = CsrArc<T, I>{g.ecap[size_t(e)], I(j), r};
            b->arcs[size_t(r)] = CsrArc<T, I>{g.erev[size_t(e)], I(i), a};
        }
    }
    std::vector<int64_t>().swap(g.ei); std::vector<int64_t>().swap(g.ej);
    std::vector<T>().swap(g.ecap); std::vector<T>().swap(g.erev);
    b->solver.reset(new Solver<T, CsrTopology<T, I>>(n));
    auto& s = *b->solver;
    s.topo.first = b->first.data();
    s.topo.arcs = b->arcs.data();
    for (int64_t i = 0; i < n; ++i) s.nodes[size_t(i)].tr = g.tr[size_t(i)];
    s.flow = g.flow0;
    std::vector<T>().swap(g.tr);
    g.flow0 = 0;
    out = std::move(b);
}

template <class T>
void GeneralGraph<T>::begin_grid(int ndim, const int64_t* shape) {
    if (n_ != 0 || !impl_->ei.empty() || impl_->built())
        throw std::invalid_argument("begin_grid needs an empty graph");
    std::unique_ptr<detail::GridPart<T>> part(new detail::GridPart<T>(ndim, shape));
    n_ = part->N;
    impl_->grid = std::move(part);
}

template <class T>
bool GeneralGraph<T>::is_grid() const { return bool(impl_->grid); }

template <class T>
void GeneralGraph<T>::add_grid_arcs(const int* off, const T* w, int64_t w_stride, T st, bool symmetric) {
    if (!impl_->grid) throw std::invalid_argument("add_grid_arcs needs a graph in grid form");
    auto& part = *impl_->grid;
    const int64_t pairs = part.add_arcs(off, w, w_stride, st, symmetric);
    if (pairs >= 0) {
        arcs_ += 2 * pairs;
        return;
    }
    // Integer parallel arcs would overflow their shared slot: continue as a general graph,
    // where they are separate arcs (as in PyMaxflow).
    std::vector<int64_t> ei, ej;
    std::vector<T> ec;
    part.for_pairs(off, [&](int64_t p, int64_t q) {
        ei.push_back(p); ej.push_back(q); ec.push_back(part.arc_cap(w, w_stride, st, p));
    });
    std::vector<T> er = symmetric ? ec : std::vector<T>(ec.size(), T(0));
    add_edges(ei.data(), ej.data(), ec.data(), er.data(), int64_t(ei.size()));
}

template <class T>
void GeneralGraph<T>::maxflow(bool reuse_trees, int num_threads) {
    Impl& g = *impl_;
    if (g.grid) {
        g.grid->maxflow(reuse_trees, num_threads);
        return;
    }
    if (g.built() && (g.dirty || !g.ei.empty())) {
        if (g.b32) unbuild<T>(*g.b32, g.ei, g.ej, g.ecap, g.erev, g.tr, g.flow0, n_);
        else unbuild<T>(*g.b64, g.ei, g.ej, g.ecap, g.erev, g.tr, g.flow0, n_);
        g.b32.reset(); g.b64.reset();
        g.dirty = false;
        reuse_trees = false;
    }
    if (!g.built()) {
        const int64_t lim = int64_t(std::numeric_limits<int32_t>::max()) - 8;
        if (!wide_ && n_ < lim && int64_t(g.ei.size()) < lim / 2) build_csr<T, int32_t>(g, n_, g.b32);
        else build_csr<T, int64_t>(g, n_, g.b64);
        reuse_trees = false;
    }
    auto solve = [&](auto& b) {
        auto& s = *b->solver;
        const auto& arcs = b->arcs;
        const auto& first = b->first;
        detail::check_flow_bound<T>(
            s.flow, int64_t(s.nodes.size()), [&](int64_t i) { return s.nodes[size_t(i)].tr; },
            [&](int64_t i, detail::wide_t<T>& out, detail::wide_t<T>& in) {
                for (int64_t a = int64_t(first[size_t(i)]); a < int64_t(first[size_t(i + 1)]); ++a) {
                    out += arcs[size_t(a)].rc;
                    in += arcs[size_t(arcs[size_t(a)].sis)].rc;
                }
            });
        s.maxflow(reuse_trees);
    };
    if (g.b32) solve(g.b32);
    else solve(g.b64);
}

template <class T>
double GeneralGraph<T>::flow_double() const {
    const Impl& g = *impl_;
    if (g.grid) return double(g.grid->flow());
    if (g.b32) return double(g.b32->solver->flow);
    if (g.b64) return double(g.b64->solver->flow);
    return double(g.flow0);
}

template <class T>
int64_t GeneralGraph<T>::flow_int() const {
    const Impl& g = *impl_;
    if (g.grid) return int64_t(g.grid->flow());
    if (g.b32) return int64_t(g.b32->solver->flow);
    if (g.b64) return int64_t(g.b64->solver->flow);
    return int64_t(g.flow0);
}

template <class T>
void GeneralGraph<T>::segments(const int64_t* ids, int64_t m, uint8_t* out) const {
    const Impl& g = *impl_;
    for (int64_t k = 0; k < m; ++k) {
        const int64_t i = ids[k];
        uint8_t s = 0;
        if (g.grid) s = uint8_t(g.grid->segment(i));
        else if (g.b32 && i < int64_t(g.b32->solver->nodes.size())) s = uint8_t(g.b32->solver->segment(i));
        else if (g.b64 && i < int64_t(g.b64->solver->nodes.size())) s = uint8_t(g.b64->solver->segment(i));
        out[k] = s;
    }
}

template <class T>
int64_t GeneralGraph<T>::export_arc_count() const {
    const Impl& g = *impl_;
    if (g.grid) return g.grid->arc_count();
    int64_t m = 0;
    for (size_t e = 0; e < g.ei.size(); ++e) m += g.ei[e] != g.ej[e] ? 2 : 0;
    if (g.b32) m += int64_t(g.b32->arcs.size());
    if (g.b64) m += int64_t(g.b64->arcs.size());
    return m;
}

template <class T, class B>
static int64_t export_built(const B& b, int64_t* from, int64_t* to, T* cap, T* tr) {
    const int64_t n = int64_t(b.solver->nodes.size());
    int64_t k = 0;
    for (int64_t i = 0; i < n; ++i) {
        tr[i] = b.solver->nodes[size_t(i)].tr;
        for (int64_t a = b.first[size_t(i)]; a < int64_t(b.first[size_t(i + 1)]); ++a, ++k) {
            from[k] = i; to[k] = b.arcs[size_t(a)].head; cap[k] = b.arcs[size_t(a)].rc;
        }
    }
    return k;
}

template <class T>
void GeneralGraph<T>::export_arcs(int64_t* from, int64_t* to, T* cap, T* tr) const {
    const Impl& g = *impl_;
    if (g.grid) {
        int64_t k = 0;
        g.grid->for_each_arc([&](int64_t p, int64_t q, T c) { from[k] = p; to[k] = q; cap[k] = c; ++k; });
        for (int64_t i = 0; i < n_; ++i) tr[i] = g.grid->tr(i);
        return;
    }
    int64_t k = 0;
    if (g.b32) k = export_built<T>(*g.b32, from, to, cap, tr);
    else if (g.b64) k = export_built<T>(*g.b64, from, to, cap, tr);
    else for (int64_t i = 0; i < n_; ++i) tr[i] = g.tr[size_t(i)];
    for (size_t e = 0; e < g.ei.size(); ++e) {
        if (g.ei[e] == g.ej[e]) continue;
        from[k] = g.ei[e]; to[k] = g.ej[e]; cap[k] = g.ecap[e]; ++k;
        from[k] = g.ej[e]; to[k] = g.ei[e]; cap[k] = g.erev[e]; ++k;
    }
}

template <class T>
GeneralGraph<T>* GeneralGraph<T>::copy() const {
    // Copy through the staging form: residual capacities, terminal state and flow are kept.
    std::unique_ptr<GeneralGraph<T>> c(new GeneralGraph<T>());
    const Impl& g = *impl_;
    Impl& d = *c->impl_;
    c->n_ = n_;
    c->arcs_ = arcs_;
    d.ei = g.ei; d.ej = g.ej; d.ecap = g.ecap; d.erev = g.erev;
    if (g.grid) {
        g.grid->to_staging(d.ei, d.ej, d.ecap, d.erev, d.tr, d.flow0);
    } else if (g.built()) {
        std::vector<int64_t> ei, ej; std::vector<T> ec, er; std::vector<T> tr; flow_t<T> f0 = 0;
        if (g.b32) unbuild<T>(*g.b32, ei, ej, ec, er, tr, f0, n_);
        else unbuild<T>(*g.b64, ei, ej, ec, er, tr, f0, n_);
        // unbuild appended the pending staging edges (ei was empty) -> append g's staging
        ei.insert(ei.end(), g.ei.begin(), g.ei.end()); ej.insert(ej.end(), g.ej.begin(), g.ej.end());
        ec.insert(ec.end(), g.ecap.begin(), g.ecap.end()); er.insert(er.end(), g.erev.begin(), g.erev.end());
        d.ei.swap(ei); d.ej.swap(ej); d.ecap.swap(ec); d.erev.swap(er); d.tr.swap(tr); d.flow0 = f0;
    } else {
        d.tr = g.tr; d.flow0 = g.flow0;
    }
    return c.release();
}

// ------------------------------------------------------------------ grids

using detail::GridGeom;
using detail::fill_grid;
using detail::setup_grid_solver;
using detail::solve_slabs;

namespace {

// Integer grids: every slot and its reverse (cap + rev) must fit T.
template <class T>
void check_grid_pairs(const GridGeom& g, const T* rc) {
    for (int64_t p = 0; p < g.N; ++p)
        for (int k = 0; k < g.K; ++k) {
            const T c = rc[size_t(p * g.A + k)];
            if (is_outside(c)) continue;
            const int64_t q = p + g.delta[k];
            if (!detail::pair_fits<T>(c, rc[size_t(q * g.A + g.opp[k])]))
                throw std::overflow_error("weights + rweights of the arc pair " + std::to_string(p) + " <-> " +
                                          std::to_string(q) + " overflows " + detail::type_name<T>());
        }
}

template <class T>
double solve_one_grid(const GridGeom& g, const T* src, int64_t src_stride, const T* snk,
                      int64_t snk_stride, const T* fw, int64_t fw_sk, int64_t fw_sp, const T* bw,
                      int64_t bw_sk, int64_t bw_sp, uint8_t* seg_out, int64_t* int_flow, int nthreads) {
#ifdef SEG_MF_PROFILE
    auto t0 = std::chrono::steady_clock::now();
#endif
    big_ptr<T> rc = big_array<T>(size_t(g.N) * size_t(g.A));
    fill_grid<T>(g, rc.get(),
                 [&](int k, int64_t p) { return fw[k * fw_sk + p * fw_sp]; },
                 [&](int k, int64_t p) { return bw[k * bw_sk + p * bw_sp]; }, nthreads);
    return detail::with_slots(g, [&](auto ac) {
        Solver<T, GridTopology<T, decltype(ac)::value>> s(g.N);
        setup_grid_solver(s, g, rc.get());
        if constexpr (std::is_integral<T>::value) check_grid_pairs<T>(g, rc.get());
        for (int64_t p = 0; p < g.N; ++p) {
            s.nodes[size_t(p)].tr = T(0);
            detail::tweights_checked<T>(s.nodes[size_t(p)].tr, s.flow, src[p * src_stride],
                                        snk[p * snk_stride], p);
        }
        detail::check_flow_bound<T>(
            s.flow, g.N, [&](int64_t p) { return s.nodes[size_t(p)].tr; },
            [&](int64_t p, detail::wide_t<T>& out, detail::wide_t<T>& in) {
                for (int k = 0; k < g.A; ++k) {
                    const T c = rc[size_t(p * g.A + k)];
                    if (is_outside(c)) continue;
                    out += c;
                    in += rc[size_t((p + g.delta[k]) * g.A + g.opp[k])];
                }
            });
#ifdef SEG_MF_PROFILE
        auto t1 = std::chrono::steady_clock::now();
#endif
        if (detail::slab_solve_pays(g, nthreads)) solve_slabs(g, s, rc.get(), nthreads);
        else s.maxflow(false);
#ifdef SEG_MF_PROFILE
        auto t2 = std::chrono::steady_clock::now();
        std::fprintf(stderr, "fill+init %.1f ms, solve %.1f ms\n",
                     std::chrono::duration<double>(t1 - t0).count() * 1e3,
                     std::chrono::duration<double>(t2 - t1).count() * 1e3);
#endif
        for (int64_t p = 0; p < g.N; ++p) seg_out[p] = uint8_t(s.segment(p));
        if (int_flow) *int_flow = int64_t(s.flow);
        return double(s.flow);
    });
}

}  // namespace

template <class T>
double grid_maxflow(int ndim, const int64_t* shape, int connectivity, const T* src,
                    int64_t src_stride, const T* snk, int64_t snk_stride, const T* fw, int64_t fw_sk,
                    int64_t fw_sp, const T* bw, int64_t bw_sk, int64_t bw_sp, uint8_t* seg_out,
                    int64_t* int_flow_out, int num_threads) {
    GridGeom g(ndim, shape, connectivity);
    const int nt = num_threads > 0 ? num_threads : int(std::max(1u, std::thread::hardware_concurrency()));
    return solve_one_grid<T>(g, src, src_stride, snk, snk_stride, fw, fw_sk, fw_sp, bw, bw_sk, bw_sp,
                             seg_out, int_flow_out, nt);
}

template <class T>
void grid_maxflow_batch(int64_t B, int ndim, const int64_t* shape, int connectivity, const T* src,
                        const T* snk, int64_t t_bs, const T* w, int64_t w_bs, int64_t w_sk,
                        int64_t w_sp, uint8_t* seg_out, int num_threads) {
    GridGeom g(ndim, shape, connectivity);
    // std::thread rather than OpenMP: an OpenMP team left spinning after the region would
    // steal cores from the serial solves that follow (e.g. the backward pass).
    const int nt = num_threads > 0 ? num_threads : int(std::max(1u, std::thread::hardware_concurrency()));
    const int outer = int(std::min<int64_t>(nt, std::max<int64_t>(B, 1)));
    const int inner = std::max(1, nt / std::max(outer, 1));
    std::atomic<int64_t> next{0};
    std::vector<std::exception_ptr> errs(static_cast<size_t>(outer));
    auto work = [&](int t) {
        try {
            for (int64_t b = next++; b < B; b = next++) {
                const T* wb = w + b * w_bs;
                solve_one_grid<T>(g, src + b * t_bs, 1, snk + b * t_bs, 1, wb, w_sk, w_sp, wb, w_sk,
                                  w_sp, seg_out + b * g.N, nullptr, inner);
            }
        } catch (...) {
            errs[size_t(t)] = std::current_exception();
            next = B;   // the others stop at their next item
        }
    };
    std::vector<std::thread> th;
    for (int t = 1; t < outer; ++t) th.emplace_back(work, t);
    work(0);
    for (auto& x : th) x.join();
    for (auto& e : errs) if (e) std::rethrow_exception(e);
}

// ------------------------------------------------------------------ instantiations

template class GeneralGraph<int32_t>;
template class GeneralGraph<int64_t>;
template class GeneralGraph<float>;
template class GeneralGraph<double>;

#define SEG_MF_GRID(T)                                                                          \
    template double grid_maxflow<T>(int, const int64_t*, int, const T*, int64_t, const T*,      \
                                    int64_t, const T*, int64_t, int64_t, const T*, int64_t,     \
                                    int64_t, uint8_t*, int64_t*, int);                          \
    template void grid_maxflow_batch<T>(int64_t, int, const int64_t*, int, const T*, const T*,  \
                                        int64_t, const T*, int64_t, int64_t, int64_t, uint8_t*, \
                                        int);
SEG_MF_GRID(int32_t)
SEG_MF_GRID(int64_t)
SEG_MF_GRID(float)
SEG_MF_GRID(double)

}  // namespace mf
}  // namespace seg
