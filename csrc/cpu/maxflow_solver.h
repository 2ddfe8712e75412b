// Boykov–Kolmogorov-class augmenting-path max-flow solver (segengine's own code).
//
// Algorithm (Boykov & Kolmogorov, "An experimental comparison of min-cut/max-flow
// algorithms for energy minimization in vision", TPAMI 2004): two search trees S
// (rooted at the source) and T (rooted at the sink) grow over residual arcs; when they
// touch, the path is augmented; arcs saturated by the augmentation turn nodes into
// orphans, which are re-attached to their tree through another valid parent (adoption,
// preferring parents close to the terminal, with the timestamp/distance heuristic) or
// freed. Tree reuse (Kohli & Torr, ICCV 2005): after capacities of marked nodes change,
// maxflow(reuse) restarts from the previous trees, re-activating only marked nodes.
//
// The solver is templated on a topology, so the same code serves
//   * CsrTopology: general graphs, arcs stored contiguously per node (head, sister, cap);
//   * GridTopology: implicit 2D/3D grids; a node's arcs are its neighbour slots, heads
//     are computed from fixed index offsets, only the residual capacities are stored
//     (a sentinel capacity marks a slot that leaves the grid).
//
// Assumptions (checked by the Python wrappers, not here): capacities are finite and
// non-negative (terminal capacities are stored as a signed difference tr = source - sink),
// node and arc indices are in range.  Allocation failure throws std::bad_alloc.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "big_alloc.h"
#include <string>
#ifdef SEG_MF_PROFILE
#include <cstdio>
#endif

namespace seg {
namespace mf {

// Flow accumulator: 64-bit integers for integer capacities, double for floats.
template <class T>
using flow_t = typename std::conditional<std::is_integral<T>::value, int64_t, double>::type;

enum : uint8_t { FREE = 0, IN_S = 1, IN_T = 2 };
enum : uint8_t { F_ACTIVE = 4, F_MARKED = 8 };

// Per-node solver state, 16 bytes for double capacities on grids (12 for float).
// P is the compact parent code of the topology.  `tf` packs the tree (bits 0-1: FREE,
// IN_S, IN_T) and the flags F_ACTIVE, F_MARKED.  `dist` saturates at 65535: it only
// steers the heuristics (closer parents), never correctness.
template <class T, class P>
struct Node {
    T tr;            // residual terminal capacity: > 0 from source, < 0 to sink
    uint32_t ts;     // timestamp of dist
    uint16_t dist;   // distance to the terminal (valid when ts is current)
    P parent;        // parent arc code, or one of the special codes below
    uint8_t tf;      // tree | flags
};

template <class N> inline uint8_t tree_of(const N& v) { return uint8_t(v.tf & 3u); }
template <class N> inline void set_tree(N& v, uint8_t t) { v.tf = uint8_t((v.tf & ~3u) | t); }
inline uint16_t dist_inc(uint16_t d) { return d == 0xFFFFu ? d : uint16_t(d + 1u); }
inline uint16_t dist_sat(uint32_t d) { return d > 0xFFFFu ? uint16_t(0xFFFFu) : uint16_t(d); }

// Special parent codes (P is a signed type).
template <class P> constexpr P P_TERMINAL = P(-1);
template <class P> constexpr P P_ORPHAN = P(-2);
template <class P> constexpr P P_NONE = P(-3);

// ------------------------------------------------------------------ topologies

// General graph in CSR form.  I: index type of nodes and arcs (int32_t or int64_t).
// Arcs are stored as one array of structs, so a scan touches one cache line per arc.
template <class T, class I>
struct CsrArc {
    T rc;        // residual capacity
    I head;      // head node
    I sis;       // reverse arc
};

template <class T, class I>
struct CsrTopology {
    using P = I;                      // parent code: the global arc index
    const I* first = nullptr;         // [n + 1] arc ranges per node
    CsrArc<T, I>* arcs = nullptr;     // [m]

    template <class F>
    inline void for_arcs(int64_t i, F&& f) const {
        const I e = first[i + 1];
        for (I a = first[i]; a < e; ++a) {
            if (f(int64_t(a), int64_t(arcs[a].head))) return;
        }
    }
    inline T& cap(int64_t a) const { return arcs[a].rc; }
    inline int64_t head(int64_t /*i*/, int64_t a) const { return arcs[a].head; }
    inline int64_t sister(int64_t /*i*/, int64_t /*j*/, int64_t a) const { return arcs[a].sis; }
    inline P encode(int64_t /*i*/, int64_t a) const { return P(a); }
    inline int64_t decode(int64_t /*i*/, P p) const { return int64_t(p); }
};

// Value of a grid slot that leaves the grid: the lowest T, never a residual capacity.
// (A sign test would not do: a residual that float rounding left at -1e-17 must stay an
// arc, visible to the tree bookkeeping, not vanish from it.)
template <class T> constexpr T grid_outside() { return std::numeric_limits<T>::lowest(); }
template <class T> inline bool is_outside(T c) { return c == grid_outside<T>(); }

// Implicit grid: node i has A arc slots; slot k points to i + delta[k]; the reverse of
// slot k is slot opp[k] of the head.  rc[i * A + k] == grid_outside<T>() marks a slot
// outside the grid.
// AC > 0 fixes A = AC at compile time (slots k < AC/2 forward, k + AC/2 their reverses),
// so that the slot loops unroll and the slot arithmetic folds; AC = 0: A set at run time.
template <class T, int AC = 0>
struct GridTopology {
    using P = int8_t;
    int A = AC;
    int64_t delta[26] = {0};
    int opp[26] = {0};
    T* rc = nullptr;                  // [n * A]

    inline int slots() const { return AC > 0 ? AC : A; }
    inline int opposite(int k) const { return AC > 0 ? (k < AC / 2 ? k + AC / 2 : k - AC / 2) : opp[k]; }

    template <class F>
    inline void for_arcs(int64_t i, F&& f) const {
        const int n = slots();
        const int64_t base = i * n;
        for (int k = 0; k < n; ++k) {
            if (is_outside(rc[base + k])) continue;
            if (f(base + k, i + delta[k])) return;
        }
    }
    inline T& cap(int64_t a) const { return rc[a]; }
    inline int64_t head(int64_t i, int64_t a) const { return i + delta[a - i * slots()]; }
    inline int64_t sister(int64_t i, int64_t j, int64_t a) const {
        return j * slots() + opposite(int(a - i * slots()));
    }
    inline P encode(int64_t i, int64_t a) const { return P(a - i * slots()); }
    inline int64_t decode(int64_t i, P p) const { return i * slots() + int64_t(p); }
};

// ------------------------------------------------------------------ the solver

template <class T, class Topo>
class Solver {
public:
    using P = typename Topo::P;
    using N = Node<T, P>;
    using Flow = flow_t<T>;

    // Node storage without value-initialisation: callers set every tr before maxflow(),
    // and init_fresh() sets all other fields (one pass over fresh pages instead of two).
    // A view (ext != nullptr) lets sub-solvers work on disjoint ranges of one array.
    struct NodeArray {
        big_ptr<N> own;
        N* p = nullptr;
        size_t n = 0;
        explicit NodeArray(size_t count) : own(big_array<N>(count)), p(own.get()), n(count) {}
        NodeArray(N* ext, size_t count) : p(ext), n(count) {}
        N& operator[](size_t i) { return p[i]; }
        const N& operator[](size_t i) const { return p[i]; }
        size_t size() const { return n; }
        N* data() { return p; }
        N* begin() { return p; }
        N* end() { return p + n; }
    };

    Topo topo;
    NodeArray nodes;
#ifdef SEG_MF_PROFILE
    int64_t st_grow = 0, st_adopt = 0, st_path = 0, st_aug = 0, st_orph = 0, st_walk = 0;
#endif
    Flow flow = 0;
    bool solved_once = false;
    bool verify = false;              // check the invariants around every run (debug_check)

    explicit Solver(int64_t n) : nodes(size_t(n)) {}
    Solver(N* ext, int64_t n) : nodes(ext, size_t(n)) {}

    uint32_t time_stamp() const { return time_; }

    // Continue after sub-solvers have solved disjoint parts of this graph in place (their
    // trees are valid trees here): only the nodes along the parts' borders, listed in
    // `border`, can grow over the arcs that joined the parts; activate them and run.
    Flow resume_from(const std::vector<int64_t>& border, uint32_t stamp) {
        queue_.clear(); qhead_ = 0;
        orphans_.clear();
        marked_.clear();
        sweep_ = int64_t(nodes.size());
        time_ = stamp;
        for (int64_t i : border)
            if (tree_of(nodes[size_t(i)]) != FREE) activate(i);
        solved_once = true;
        debug_check(false);
        run();
        debug_check(true);
        return flow;
    }

    // Add terminal capacities (Kolmogorov's convention: the common part min(source, sink)
    // goes to the flow, the difference stays on the node).
    inline void add_tweights(int64_t i, T cap_source, T cap_sink) {
        T delta = nodes[i].tr;
        if (delta > 0) cap_source += delta; else cap_sink -= delta;
        flow += Flow(cap_source < cap_sink ? cap_source : cap_sink);
        nodes[i].tr = cap_source - cap_sink;
    }

    void mark(int64_t i) {
        if (!(nodes[i].tf & F_MARKED)) {
            nodes[i].tf |= F_MARKED;
            marked_.push_back(i);
        }
    }

    // 1 = sink segment, 0 = source segment (free nodes count as source).
    inline int segment(int64_t i) const { return tree_of(nodes[i]) == IN_T ? 1 : 0; }

    Flow maxflow(bool reuse_trees) {
        if (reuse_trees && solved_once) init_reuse(); else { push_short_paths(); init_fresh(); }
        solved_once = true;
        debug_check(false);
        run();
        debug_check(true);
#ifdef SEG_MF_PROFILE
        std::fprintf(stderr, "grow %lld adopt %lld walk %lld path(S) %lld aug %lld orphans %lld\n",
                     (long long)st_grow, (long long)st_adopt, (long long)st_walk, (long long)st_path,
                     (long long)st_aug, (long long)st_orph);
#endif
        return flow;
    }

    // Saturate the paths source -> p -> q -> sink in one linear sweep before the trees
    // grow: a valid augmentation that removes most of the short paths BK would otherwise
    // find one by one through its trees (a large share of them on vision grids).
    void push_short_paths() {
        const int64_t n = int64_t(nodes.size());
        for (int64_t i = 0; i < n; ++i) {
            N& v = nodes[size_t(i)];
            if (!(v.tr > 0)) continue;
            topo.for_arcs(i, [&](int64_t a, int64_t j) {
                N& u = nodes[size_t(j)];
                if (!(u.tr < 0)) return false;
                T& c = topo.cap(a);
                if (!(c > 0)) return false;
                T f = v.tr;
                if (-u.tr < f) f = -u.tr;
                if (c < f) f = c;
                c -= f;
                topo.cap(topo.sister(i, j, a)) += f;
                v.tr -= f;
                u.tr += f;
                flow += Flow(f);
                return !(v.tr > 0);
            });
        }
    }


    // The solver's invariants, checked before and after each run() in debug builds
    // (SEG_MF_DEBUG) and, in any build, when `verify` is set (a testing hook); a violation
    // throws std::logic_error naming the node.
    //   * every residual capacity is >= 0;
    //   * a tree node's parent is the terminal (and its tr has the tree's sign) or a node
    //     of the same tree reached over an arc with residual capacity in the tree's
    //     direction; following parents reaches a terminal within n steps (no cycles);
    //   * no orphans are left between runs, and a free node's tr is 0 after a run;
    //   * after a run (`final`): no augmenting path is left: every residual arc out of an
    //     S node ends in S, every residual arc into a T node starts in T, and there are no
    //     orphans.  Together these certify that the flow is maximum.
    void debug_check(bool final) {
#ifndef SEG_MF_DEBUG
        if (!verify) return;
#endif
        const int64_t n = int64_t(nodes.size());
        auto fail = [&](int64_t i, const char* what) {
            throw std::logic_error("max-flow invariant violated at node " + std::to_string(i) + ": " + what);
        };
        for (int64_t i = 0; i < n; ++i) {
            const N& v = nodes[size_t(i)];
            if (!(v.tr == v.tr)) fail(i, "terminal capacity is NaN");
            topo.for_arcs(i, [&](int64_t a, int64_t) {
                if (!(topo.cap(a) >= T(0))) fail(i, "negative residual capacity");
                return false;
            });
            const uint8_t t = tree_of(v);
            if (t == FREE) {
                if (final && v.tr != T(0)) fail(i, "free node with a terminal residual");
                continue;
            }
            if (v.parent == P_TERMINAL<P>) {
                if (final && !(t == IN_S ? v.tr > 0 : v.tr < 0)) fail(i, "terminal parent without terminal residual");
            } else if (v.parent >= 0) {
                const int64_t a = topo.decode(i, v.parent);
                const int64_t j = topo.head(i, a);
                if (tree_of(nodes[size_t(j)]) != t) fail(i, "parent in another tree");
                const T c = t == IN_S ? topo.cap(topo.sister(i, j, a)) : topo.cap(a);
                if (!(c > 0)) fail(i, "parent arc not residual");
            } else {
                fail(i, "tree node without a parent");
            }
            int64_t u = i, steps = 0;
            while (nodes[size_t(u)].parent >= 0) {
                u = topo.head(u, topo.decode(u, nodes[size_t(u)].parent));
                if (++steps > n) fail(i, "cycle of parent arcs");
            }
            if (final) {
                topo.for_arcs(i, [&](int64_t a, int64_t j) {
                    const uint8_t tj = tree_of(nodes[size_t(j)]);
                    if (t == IN_S && topo.cap(a) > 0 && tj != IN_S) fail(i, "residual arc from S leaves S");
                    if (t == IN_T && topo.cap(topo.sister(i, j, a)) > 0 && tj != IN_T)
                        fail(i, "residual arc into T from outside T");
                    return false;
                });
            }
        }
        if (final && (!orphans_.empty() || !marked_.empty())) fail(-1, "orphans or marks left after a run");
    }

private:
    std::vector<int64_t> queue_;      // FIFO of active nodes (ring over a vector)
    size_t qhead_ = 0;
    int64_t sweep_ = std::numeric_limits<int64_t>::max();   // init_fresh() sweep position
    std::vector<int64_t> orphans_;
    std::vector<int64_t> marked_;
    uint32_t time_ = 0;

    inline void activate(int64_t i) {
        N& v = nodes[i];
        if (!(v.tf & F_ACTIVE)) {
            v.tf |= F_ACTIVE;
            queue_.push_back(i);
        }
    }
    inline int64_t next_active() {
        // First the nodes activated by init_fresh(), in index order (a sweep instead of a
        // queue holding all N of them), then the FIFO of nodes activated since: the same
        // order as one queue, without its 8 bytes per node.
        const int64_t n = int64_t(nodes.size());
        while (sweep_ < n) {
            N& v = nodes[sweep_++];
            if (v.tf & F_ACTIVE) {
                v.tf &= uint8_t(~F_ACTIVE);
                if (tree_of(v) != FREE) return sweep_ - 1;
            }
        }
        while (qhead_ < queue_.size()) {
            int64_t i = queue_[qhead_++];
            if (qhead_ > 4096 && qhead_ * 2 > queue_.size()) {  // compact the consumed prefix
                queue_.erase(queue_.begin(), queue_.begin() + int64_t(qhead_));
                qhead_ = 0;
            }
            N& v = nodes[i];
            v.tf &= uint8_t(~F_ACTIVE);
            if (tree_of(v) != FREE) return i;
        }
        queue_.clear();
        qhead_ = 0;
        return -1;
    }

    void init_fresh() {
        queue_.clear(); qhead_ = 0;
        orphans_.clear();
        time_ = 0;
        const int64_t n = int64_t(nodes.size());
        for (int64_t i = 0; i < n; ++i) {
            N& v = nodes[i];
            v.ts = 0;
            v.dist = 1;
            if (v.tr > 0) { v.tf = uint8_t(IN_S | F_ACTIVE); v.parent = P_TERMINAL<P>; }
            else if (v.tr < 0) { v.tf = uint8_t(IN_T | F_ACTIVE); v.parent = P_TERMINAL<P>; }
            else { v.tf = FREE; v.parent = P_NONE<P>; }
        }
        sweep_ = 0;
        marked_.clear();
    }

    // Children of i (nodes whose parent arc points at i) within tree `tree` become orphans.
    void orphan_children(int64_t i, uint8_t tree) {
        topo.for_arcs(i, [&](int64_t a, int64_t j) {
            (void)a;
            N& u = nodes[j];
            if (tree_of(u) == tree && u.parent >= 0 && topo.head(j, topo.decode(j, u.parent)) == i) {
                u.parent = P_ORPHAN<P>;
                orphans_.push_back(j);
            }
            return false;
        });
    }

    void init_reuse() {
        // Previous trees stay; marked nodes are re-rooted according to their new terminal
        // capacity and re-activated, parents over saturated arcs become orphans.
        orphans_.clear();
        ++time_;
        for (int64_t i : marked_) {
            N& v = nodes[i];
            v.tf &= uint8_t(~F_MARKED);
            const uint8_t want = v.tr > 0 ? IN_S : (v.tr < 0 ? IN_T : FREE);
            if (want != FREE) {
                if (tree_of(v) != want && tree_of(v) != FREE) orphan_children(i, tree_of(v));
                set_tree(v, want); v.parent = P_TERMINAL<P>; v.ts = time_; v.dist = 1;
            } else if (tree_of(v) != FREE) {
                if (v.parent == P_TERMINAL<P>) {
                    v.parent = P_ORPHAN<P>; orphans_.push_back(i);
                } else if (v.parent >= 0) {
                    const int64_t a = topo.decode(i, v.parent);
                    const int64_t j = topo.head(i, a);
                    const T c = tree_of(v) == IN_S ? topo.cap(topo.sister(i, j, a)) : topo.cap(a);
                    if (!(c > 0) || tree_of(nodes[j]) != tree_of(v)) { v.parent = P_ORPHAN<P>; orphans_.push_back(i); }
                }
            }
            if (tree_of(v) != FREE && v.parent >= 0) {
                const int64_t a = topo.decode(i, v.parent);
                const int64_t j = topo.head(i, a);
                const T c = tree_of(v) == IN_S ? topo.cap(topo.sister(i, j, a)) : topo.cap(a);
                if (!(c > 0) || tree_of(nodes[j]) != tree_of(v)) { v.parent = P_ORPHAN<P>; orphans_.push_back(i); }
            }
            if (tree_of(v) != FREE) activate(i);
            // neighbours may now grow into i or be grown into
            topo.for_arcs(i, [&](int64_t, int64_t j) {
                if (tree_of(nodes[j]) != FREE) activate(j);
                return false;
            });
        }
        marked_.clear();
        adopt_orphans();
    }

    // Walk from j to its root; return the distance to the terminal or UINT32_MAX when
    // the chain ends in an orphan.  Caches the result along the path.
    inline uint32_t origin_distance(int64_t j) {
        uint32_t d = 0;
        int64_t u = j;
        for (;;) {
            N& w = nodes[u];
            if (w.ts == time_) { d += w.dist; break; }
            if (w.parent == P_TERMINAL<P>) { w.ts = time_; w.dist = 1; d += 1; break; }
            if (w.parent < 0) return std::numeric_limits<uint32_t>::max();
            ++d;
#ifdef SEG_MF_PROFILE
            ++st_walk;
#endif
            u = topo.head(u, topo.decode(u, w.parent));
        }
        // second pass: stamp distances along the path
        u = j;
        uint32_t dd = d;
        while (nodes[u].ts != time_) {
            N& w = nodes[u];
            w.ts = time_; w.dist = dist_sat(dd); --dd;
            u = topo.head(u, topo.decode(u, w.parent));
        }
        return d;
    }

    void adopt(int64_t i) {
        N& v = nodes[i];
        const uint8_t tree = tree_of(v);
        int64_t best = -1;
        uint32_t dmin = std::numeric_limits<uint32_t>::max();
        topo.for_arcs(i, [&](int64_t a, int64_t j) {
#ifdef SEG_MF_PROFILE
            ++st_adopt;
#endif
            N& u = nodes[j];
            if (tree_of(u) != tree || (u.parent < 0 && u.parent != P_TERMINAL<P>)) return false;
            const T c = tree == IN_S ? topo.cap(topo.sister(i, j, a)) : topo.cap(a);
            if (!(c > 0)) return false;
            uint32_t d = origin_distance(j);
            if (d < dmin) { dmin = d; best = a; }
            return false;
        });
        if (best >= 0) {
            v.parent = topo.encode(i, best);
            v.ts = time_;
            v.dist = dist_sat(dmin + 1);
            return;
        }
        // no valid parent: i becomes free; its children become orphans, neighbours that
        // could regrow into it become active
        set_tree(v, FREE);
        v.parent = P_NONE<P>;
        topo.for_arcs(i, [&](int64_t a, int64_t j) {
            N& u = nodes[j];
            if (tree_of(u) != tree) return false;
            const T c = tree == IN_S ? topo.cap(topo.sister(i, j, a)) : topo.cap(a);
            if (c > 0) activate(j);
            if (u.parent >= 0 && topo.head(j, topo.decode(j, u.parent)) == i) {
                u.parent = P_ORPHAN<P>;
                orphans_.push_back(j);
            }
            return false;
        });
    }

    void adopt_orphans() {
        // FIFO (augmentation makes ~1 orphan per path on vision grids: the order hardly matters)
        for (size_t k = 0; k < orphans_.size(); ++k) {
            int64_t i = orphans_[k];
            if (nodes[i].parent != P_ORPHAN<P>) continue;
#ifdef SEG_MF_PROFILE
            ++st_orph;
#endif
            adopt(i);
        }
        orphans_.clear();
    }

    void augment(int64_t s_end, int64_t t_end, int64_t a_mid, int64_t a_mid_rev) {
        T f = topo.cap(a_mid);
        // bottleneck on the source side
        int64_t u = s_end;
        for (;;) {
            N& w = nodes[u];
            if (w.parent == P_TERMINAL<P>) { if (w.tr < f) f = w.tr; break; }
            const int64_t a = topo.decode(u, w.parent);
            const int64_t p = topo.head(u, a);
            const T c = topo.cap(topo.sister(u, p, a));
            if (c < f) f = c;
            u = p;
#ifdef SEG_MF_PROFILE
            ++st_path;
#endif
        }
        u = t_end;
        for (;;) {
            N& w = nodes[u];
            if (w.parent == P_TERMINAL<P>) { if (-w.tr < f) f = -w.tr; break; }
            const int64_t a = topo.decode(u, w.parent);
            const T c = topo.cap(a);
            if (c < f) f = c;
            u = topo.head(u, a);
        }
        // push
        topo.cap(a_mid) -= f;
        topo.cap(a_mid_rev) += f;
        u = s_end;
        for (;;) {
            N& w = nodes[u];
            if (w.parent == P_TERMINAL<P>) {
                w.tr -= f;
                if (!(w.tr > 0)) { w.parent = P_ORPHAN<P>; orphans_.push_back(u); }
                break;
            }
            const int64_t a = topo.decode(u, w.parent);
            const int64_t p = topo.head(u, a);
            const int64_t s = topo.sister(u, p, a);
            topo.cap(a) += f;
            topo.cap(s) -= f;
            if (!(topo.cap(s) > 0)) { w.parent = P_ORPHAN<P>; orphans_.push_back(u); }
            u = p;
        }
        u = t_end;
        for (;;) {
            N& w = nodes[u];
            if (w.parent == P_TERMINAL<P>) {
                w.tr += f;
                if (!(w.tr < 0)) { w.parent = P_ORPHAN<P>; orphans_.push_back(u); }
                break;
            }
            const int64_t a = topo.decode(u, w.parent);
            const int64_t p = topo.head(u, a);
            const int64_t s = topo.sister(u, p, a);
            topo.cap(a) -= f;
            topo.cap(s) += f;
            if (!(topo.cap(a) > 0)) { w.parent = P_ORPHAN<P>; orphans_.push_back(u); }
            u = p;
        }
        flow += Flow(f);
#ifdef SEG_MF_PROFILE
        ++st_aug;
#endif
    }

    void run() {
        int64_t cur = -1;
        for (;;) {
            int64_t i = cur;
            if (i < 0 || tree_of(nodes[i]) == FREE) {
                i = next_active();
                if (i < 0) break;
            }
            cur = -1;
            N& v = nodes[i];
            int64_t s_end = -1, t_end = -1, a_mid = -1, a_rev = -1;
            if (tree_of(v) == IN_S) {
                topo.for_arcs(i, [&](int64_t a, int64_t j) {
#ifdef SEG_MF_PROFILE
                    ++st_grow;
#endif
                    if (!(topo.cap(a) > 0)) return false;
                    N& u = nodes[j];
                    if (tree_of(u) == FREE) {
                        set_tree(u, IN_S);
                        u.parent = topo.encode(j, topo.sister(i, j, a));
                        u.ts = v.ts; u.dist = dist_inc(v.dist);
                        activate(j);
                        return false;
                    }
                    if (tree_of(u) == IN_T) {
                        s_end = i; t_end = j; a_mid = a; a_rev = topo.sister(i, j, a);
                        return true;
                    }
                    if (u.ts <= v.ts && u.dist > v.dist && u.parent >= 0) {
                        u.parent = topo.encode(j, topo.sister(i, j, a));
                        u.ts = v.ts; u.dist = dist_inc(v.dist);
                    }
                    return false;
                });
            } else {
                topo.for_arcs(i, [&](int64_t a, int64_t j) {
#ifdef SEG_MF_PROFILE
                    ++st_grow;
#endif
                    const int64_t s = topo.sister(i, j, a);
                    if (!(topo.cap(s) > 0)) return false;
                    N& u = nodes[j];
                    if (tree_of(u) == FREE) {
                        set_tree(u, IN_T);
                        u.parent = topo.encode(j, s);
                        u.ts = v.ts; u.dist = dist_inc(v.dist);
                        activate(j);
                        return false;
                    }
                    if (tree_of(u) == IN_S) {
                        s_end = j; t_end = i; a_mid = s; a_rev = a;
                        return true;
                    }
                    if (u.ts <= v.ts && u.dist > v.dist && u.parent >= 0) {
                        u.parent = topo.encode(j, s);
                        u.ts = v.ts; u.dist = dist_inc(v.dist);
                    }
                    return false;
                });
            }
            if (a_mid < 0) continue;   // i fully expanded
            // keep scanning i after this augmentation
            cur = i;
            if (++time_ == 0) {                    // timestamp wrap: invalidate all stamps
                for (auto& w : nodes) w.ts = 0;
                time_ = 1;
            }
            augment(s_end, t_end, a_mid, a_rev);
            adopt_orphans();
        }
    }
};

}  // namespace mf
}  // namespace seg
