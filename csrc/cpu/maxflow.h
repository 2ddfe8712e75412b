// Max-flow/min-cut entry points used by segengine/_cy/_maxflow*.pyx.
//
// * GeneralGraph<T>: incremental general graph (PyMaxflow-style API) solved on compact
//   CSR arc arrays (32-bit indices when they fit, 64-bit otherwise), tree reuse between
//   maxflow calls.
// * grid_maxflow<T>: one-shot solve on an implicit 2D/3D grid (neighbours computed).
// * grid_maxflow_batch<T>: B independent grid problems solved in parallel threads.
// * multilabel_grid: alpha-expansion / alpha-beta-swap on a grid with a label-cost matrix.
//
// Assumes (checked in Python): finite capacities, edge capacities >= 0, node ids in range,
// array sizes consistent.  Throws std::invalid_argument on inconsistent sizes that are
// checked here, std::overflow_error when integer capacities (or the fixed-point costs of the
// multi-label moves) would not fit their type, and std::bad_alloc when memory runs out;
// never exits.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

namespace seg {
namespace mf {

// Forward neighbour offsets of a connectivity: all offsets in {-1,0,1}^ndim whose first
// non-zero component is positive, restricted to the connectivity (4/8 in 2D, 6/18/26 in
// 3D), in C order of the 3^ndim neighbourhood.  Writes K rows of 3 ints (the first `ndim`
// used); returns K.  The one definition of the table: Python reads it through the binding
// (segengine/ops/_grid.py), the per-pair weights of every grid op follow its order.
int forward_offsets(int ndim, int connectivity, int* out /* [13 * 3] */);

template <class T>
class GeneralGraph {
public:
    GeneralGraph();
    ~GeneralGraph();
    int64_t add_nodes(int64_t k);                       // returns the first new id
    void add_edges(const int64_t* i, const int64_t* j, const T* cap, const T* rev, int64_t m);
    void add_tweights(const int64_t* i, const T* src, const T* snk, int64_t m);
    void mark_nodes(const int64_t* i, int64_t m);
    // Grid form: begin_grid makes an empty graph hold the prod(shape) nodes of one C-order
    // grid (ndim 2 or 3); add_grid_arcs adds w[p * w_stride] * st to the arc
    // p -> p + off (off = (dz, dy, dx) in {-1, 0, 1}^3, dz = 0 in 2D; and to the reverse
    // arc when symmetric) for every p whose neighbour is in the grid.  Such a graph is
    // solved as an implicit grid; any other call turns it into a general graph.
    void begin_grid(int ndim, const int64_t* shape);
    bool is_grid() const;
    void add_grid_arcs(const int* off, const T* w, int64_t w_stride, T st, bool symmetric);
    // num_threads >= 2: a grid-form graph of at least 65536 nodes is solved in parallel
    // slabs (fresh solves only), as grid_maxflow.
    void maxflow(bool reuse_trees, int num_threads = 1);
    double flow_double() const;
    int64_t flow_int() const;
    void segments(const int64_t* ids, int64_t m, uint8_t* out) const;
    int64_t node_count() const { return n_; }
    int64_t arc_count() const { return arcs_; }
    void reset();
    GeneralGraph<T>* copy() const;
    // Residual arcs (both directions of every edge, self-loops excluded) and terminal
    // residuals tr[n] (> 0: from the source, < 0: to the sink), e.g. for get_nx_graph.
    int64_t export_arc_count() const;
    void export_arcs(int64_t* from, int64_t* to, T* cap, T* tr) const;
    // Testing hook: build with 64-bit node/arc indices even when 32 bits would do.
    void set_wide_index(bool on) { wide_ = on; }

    struct Impl;   // public only so that file-local helpers can name it

private:
    std::unique_ptr<Impl> impl_;
    int64_t n_ = 0;
    int64_t arcs_ = 0;
    bool wide_ = false;
};

// One grid problem.  shape: ndim (2 or 3) sizes, N = prod(shape) nodes.
// Terminal capacities src/snk: element p at src[p * src_stride] (stride 0: one value).
// Edge capacities: forward arc p -> p + o_k is fw[k * fw_sk + p * fw_sp], backward arc
// p + o_k -> p is bw[k * bw_sk + p * bw_sp].  seg_out[N]: 1 = sink segment.
// Returns the max-flow value (double; exact for integer capacities below 2^53).
// num_threads >= 2 (<= 0: all) solves slabs of a large grid in parallel, then merges.
template <class T>
double grid_maxflow(int ndim, const int64_t* shape, int connectivity,
                    const T* src, int64_t src_stride, const T* snk, int64_t snk_stride,
                    const T* fw, int64_t fw_sk, int64_t fw_sp,
                    const T* bw, int64_t bw_sk, int64_t bw_sp,
                    uint8_t* seg_out, int64_t* int_flow_out, int num_threads = 0);

// B binary problems on one grid with symmetric pair weights (the batch of segengine.graphcut):
// item b has terminal capacities src[b * t_bs + p], snk[b * t_bs + p] and the weight
// w[b * w_bs + k * w_sk + p * w_sp] on both arcs of the pair (p, p + o_k); it writes
// seg_out + b * N.  Items run in parallel threads (num_threads <= 0: all).
template <class T>
void grid_maxflow_batch(int64_t B, int ndim, const int64_t* shape, int connectivity,
                        const T* src, const T* snk, int64_t t_bs,
                        const T* w, int64_t w_bs, int64_t w_sk, int64_t w_sp,
                        uint8_t* seg_out, int num_threads);

// Multi-label energy on a grid:
//   E(l) = sum_p unary[l_p * N + p] + sum_k sum_p w_k(p) * V[l_p * C + l_{p+o_k}]
// with w_k(p) = ew[k * N + p] (ew == nullptr: 1).  method 0: alpha-expansion, 1: swap.
// labels[N] (int64, in/out).  order: the labels to visit (n_order of them).
// max_cycles < 0: until no move improves.  Returns the final energy; *cycles_out: cycles run.
// allow_dynamic: expansion moves may keep per-label residual graphs (up to 512 MiB) and
// resume from them (false: every move is built and solved afresh; a testing hook).
// num_threads >= 2: fresh solves of large grids run in parallel slabs (as grid_maxflow).
// verify: check the max-flow invariants around every solve (a testing hook; always on in
// SEG_MF_DEBUG builds); a violation throws std::logic_error.
double multilabel_grid(int method, int ndim, const int64_t* shape, int connectivity, int64_t C,
                       const double* unary, const double* V, const double* ew,
                       const int64_t* order, int64_t n_order, int64_t max_cycles,
                       int64_t* labels, int64_t* cycles_out, bool allow_dynamic = true,
                       int num_threads = 1, bool verify = false);

double grid_energy(int ndim, const int64_t* shape, int connectivity, int64_t C,
                   const double* unary, const double* V, const double* ew, const int64_t* labels);

}  // namespace mf
}  // namespace seg
