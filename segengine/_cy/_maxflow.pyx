# distutils: sources = csrc/cpu/maxflow.cpp csrc/cpu/maxflow_multilabel.cpp
# distutils: language = c++
"""Thin binding over csrc/cpu/maxflow.{h,cpp}: general graphs, implicit grids, multi-label moves.

All checks happen in Python (segengine/maxflow, segengine/ops); arrays arriving here are
C-contiguous with the right dtype and sizes.  C++ exceptions become Python ones
(std::bad_alloc -> MemoryError, std::invalid_argument -> ValueError, std::overflow_error ->
OverflowError: integer capacities that would wrap, see csrc/cpu/maxflow_checked.h; the
Python layer prefixes the public call's name); the GIL is released while the solver runs.
"""

from libc.stdint cimport int32_t, int64_t, uint8_t
from libcpp cimport bool as cbool

import numpy as np
cimport numpy as cnp

cnp.import_array()


cdef extern from "maxflow.h" namespace "seg::mf" nogil:
    int c_forward_offsets "seg::mf::forward_offsets"(int ndim, int connectivity, int* out) except +

    cdef cppclass GeneralGraph[T]:
        GeneralGraph() except +
        int64_t add_nodes(int64_t k) except +
        void add_edges(const int64_t* i, const int64_t* j, const T* cap, const T* rev, int64_t m) except +
        void add_tweights(const int64_t* i, const T* src, const T* snk, int64_t m) except +
        void mark_nodes(const int64_t* i, int64_t m) except +
        void begin_grid(int ndim, const int64_t* shape) except +
        cbool is_grid() except +
        void add_grid_arcs(const int* off, const T* w, int64_t w_stride, T st, cbool symmetric) except +
        void maxflow(cbool reuse_trees, int num_threads) except +
        double flow_double() except +
        int64_t flow_int() except +
        void segments(const int64_t* ids, int64_t m, uint8_t* out) except +
        int64_t node_count() except +
        int64_t arc_count() except +
        void reset() except +
        GeneralGraph[T]* copy() except +
        void set_wide_index(cbool on) except +
        int64_t export_arc_count() except +
        void export_arcs(int64_t* frm, int64_t* to, T* cap, T* tr) except +

    double c_grid_maxflow "seg::mf::grid_maxflow"[T](
        int ndim, const int64_t* shape, int connectivity,
        const T* src, int64_t src_stride, const T* snk, int64_t snk_stride,
        const T* fw, int64_t fw_sk, int64_t fw_sp, const T* bw, int64_t bw_sk, int64_t bw_sp,
        uint8_t* seg_out, int64_t* int_flow_out, int num_threads) except +

    void c_grid_maxflow_batch "seg::mf::grid_maxflow_batch"[T](
        int64_t B, int ndim, const int64_t* shape, int connectivity,
        const T* src, const T* snk, int64_t t_bs,
        const T* w, int64_t w_bs, int64_t w_sk, int64_t w_sp,
        uint8_t* seg_out, int num_threads) except +

    double c_multilabel_grid "seg::mf::multilabel_grid"(
        int method, int ndim, const int64_t* shape, int connectivity, int64_t C,
        const double* unary, const double* V, const double* ew,
        const int64_t* order, int64_t n_order, int64_t max_cycles,
        int64_t* labels, int64_t* cycles_out, cbool allow_dynamic, int num_threads,
        cbool verify) except +

    double c_grid_energy "seg::mf::grid_energy"(
        int ndim, const int64_t* shape, int connectivity, int64_t C,
        const double* unary, const double* V, const double* ew, const int64_t* labels) except +


ctypedef fused cap_t:
    int32_t
    int64_t
    float
    double


def forward_offsets(int ndim, int connectivity):
    """Forward neighbour offsets ``int64 [K, ndim]`` of a grid connectivity: the kernel's
    table, the one definition (read once by segengine/ops/_grid.py)."""
    cdef int buf[39]
    cdef int k
    with nogil:
        k = c_forward_offsets(ndim, connectivity, buf)
    out = np.empty((k, ndim), dtype=np.int64)
    cdef int64_t[:, ::1] o = out
    cdef int r, d
    for r in range(k):
        for d in range(ndim):
            o[r, d] = buf[r * 3 + d]
    return out


cdef int _kind(dtype) except -1:
    dtype = np.dtype(dtype)
    if dtype == np.int32:
        return 0
    if dtype == np.int64:
        return 1
    if dtype == np.float32:
        return 2
    if dtype == np.float64:
        return 3
    raise TypeError(f"capacity dtype must be int32, int64, float32 or float64, got {dtype}")


cdef void _add_edges(GeneralGraph[cap_t]* g, const int64_t[::1] i, const int64_t[::1] j,
                     const cap_t[::1] cap, const cap_t[::1] rev) except *:
    cdef int64_t m = i.shape[0]
    with nogil:
        g.add_edges(&i[0], &j[0], &cap[0], &rev[0], m)


cdef void _add_tweights(GeneralGraph[cap_t]* g, const int64_t[::1] i, const cap_t[::1] src,
                        const cap_t[::1] snk) except *:
    cdef int64_t m = i.shape[0]
    with nogil:
        g.add_tweights(&i[0], &src[0], &snk[0], m)


cdef void _add_grid_arcs(GeneralGraph[cap_t]* g, const int* off, const cap_t[::1] w, int64_t w_stride,
                         cap_t st, cbool symmetric) except *:
    with nogil:
        g.add_grid_arcs(off, &w[0], w_stride, st, symmetric)


def is_arange(const int64_t[::1] ids):
    """True when ``ids`` is 0, 1, ..., len(ids) - 1."""
    cdef int64_t k
    cdef int64_t n = ids.shape[0]
    cdef bint ok = True
    with nogil:
        for k in range(n):
            if ids[k] != k:
                ok = False
                break
    return ok


cdef class CGraph:
    """An incremental general graph with capacities of one dtype (see segengine.maxflow.Graph)."""
    cdef GeneralGraph[int32_t]* g32
    cdef GeneralGraph[int64_t]* g64
    cdef GeneralGraph[float]* gf
    cdef GeneralGraph[double]* gd
    cdef readonly int kind
    cdef readonly object dtype

    def __cinit__(self, dtype=np.float64, *, bint _empty=False):
        self.kind = _kind(dtype)
        self.dtype = np.dtype(dtype)
        if _empty:
            return
        if self.kind == 0:
            self.g32 = new GeneralGraph[int32_t]()
        elif self.kind == 1:
            self.g64 = new GeneralGraph[int64_t]()
        elif self.kind == 2:
            self.gf = new GeneralGraph[float]()
        else:
            self.gd = new GeneralGraph[double]()

    def __dealloc__(self):
        del self.g32
        del self.g64
        del self.gf
        del self.gd

    def copy(self):
        cdef CGraph c = CGraph(self.dtype, _empty=True)
        with nogil:
            if self.kind == 0:
                c.g32 = self.g32.copy()
            elif self.kind == 1:
                c.g64 = self.g64.copy()
            elif self.kind == 2:
                c.gf = self.gf.copy()
            else:
                c.gd = self.gd.copy()
        return c

    def reset(self):
        with nogil:
            if self.kind == 0:
                self.g32.reset()
            elif self.kind == 1:
                self.g64.reset()
            elif self.kind == 2:
                self.gf.reset()
            else:
                self.gd.reset()

    def export(self):
        """(from int64 [m], to int64 [m], residual cap [m], terminal residual tr [n])."""
        cdef int64_t m
        cdef int64_t n = self.node_count()
        if self.kind == 0:
            m = self.g32.export_arc_count()
        elif self.kind == 1:
            m = self.g64.export_arc_count()
        elif self.kind == 2:
            m = self.gf.export_arc_count()
        else:
            m = self.gd.export_arc_count()
        frm = np.zeros(max(m, 1), dtype=np.int64)
        to = np.zeros(max(m, 1), dtype=np.int64)
        cap = np.zeros(max(m, 1), dtype=self.dtype)
        tr = np.zeros(max(n, 1), dtype=self.dtype)
        cdef int64_t[::1] fv = frm
        cdef int64_t[::1] tv = to
        cdef int32_t[::1] c32
        cdef int32_t[::1] t32
        cdef int64_t[::1] c64
        cdef int64_t[::1] t64
        cdef float[::1] cf
        cdef float[::1] tf
        cdef double[::1] cd
        cdef double[::1] td
        if self.kind == 0:
            c32 = cap; t32 = tr
            with nogil:
                self.g32.export_arcs(&fv[0], &tv[0], &c32[0], &t32[0])
        elif self.kind == 1:
            c64 = cap; t64 = tr
            with nogil:
                self.g64.export_arcs(&fv[0], &tv[0], &c64[0], &t64[0])
        elif self.kind == 2:
            cf = cap; tf = tr
            with nogil:
                self.gf.export_arcs(&fv[0], &tv[0], &cf[0], &tf[0])
        else:
            cd = cap; td = tr
            with nogil:
                self.gd.export_arcs(&fv[0], &tv[0], &cd[0], &td[0])
        return frm[:m], to[:m], cap[:m], tr[:n]

    def set_wide_index(self, bint on):
        """Testing hook: solve with 64-bit indices even when 32 bits would do."""
        if self.kind == 0:
            self.g32.set_wide_index(on)
        elif self.kind == 1:
            self.g64.set_wide_index(on)
        elif self.kind == 2:
            self.gf.set_wide_index(on)
        else:
            self.gd.set_wide_index(on)

    def add_nodes(self, int64_t k):
        cdef int64_t first
        with nogil:
            if self.kind == 0:
                first = self.g32.add_nodes(k)
            elif self.kind == 1:
                first = self.g64.add_nodes(k)
            elif self.kind == 2:
                first = self.gf.add_nodes(k)
            else:
                first = self.gd.add_nodes(k)
        return first

    def begin_grid(self, shape):
        """Hold the nodes of one C-order grid (2 or 3 axes) in grid form; the graph must be empty."""
        cdef int64_t shp[3]
        cdef int ndim = len(shape)
        for d in range(ndim):
            shp[d] = shape[d]
        with nogil:
            if self.kind == 0:
                self.g32.begin_grid(ndim, shp)
            elif self.kind == 1:
                self.g64.begin_grid(ndim, shp)
            elif self.kind == 2:
                self.gf.begin_grid(ndim, shp)
            else:
                self.gd.begin_grid(ndim, shp)

    def is_grid(self):
        """True while the graph is held (and solved) as an implicit grid."""
        if self.kind == 0:
            return self.g32.is_grid()
        if self.kind == 1:
            return self.g64.is_grid()
        if self.kind == 2:
            return self.gf.is_grid()
        return self.gd.is_grid()

    def add_grid_arcs(self, offset, w, st, bint symmetric):
        """Grid form: capacity ``w[p] * st`` on p -> p + offset ((dz, dy, dx) in {-1, 0, 1}^3);
        ``w`` holds one value per node, or one value for all."""
        cdef int off[3]
        for d in range(3):
            off[d] = offset[d]
        cdef int64_t stride = 0 if w.shape[0] == 1 else 1
        if self.kind == 0:
            _add_grid_arcs[int32_t](self.g32, off, w, stride, st, symmetric)
        elif self.kind == 1:
            _add_grid_arcs[int64_t](self.g64, off, w, stride, st, symmetric)
        elif self.kind == 2:
            _add_grid_arcs[float](self.gf, off, w, stride, st, symmetric)
        else:
            _add_grid_arcs[double](self.gd, off, w, stride, st, symmetric)

    def node_count(self):
        if self.kind == 0:
            return self.g32.node_count()
        if self.kind == 1:
            return self.g64.node_count()
        if self.kind == 2:
            return self.gf.node_count()
        return self.gd.node_count()

    def arc_count(self):
        if self.kind == 0:
            return self.g32.arc_count()
        if self.kind == 1:
            return self.g64.arc_count()
        if self.kind == 2:
            return self.gf.arc_count()
        return self.gd.arc_count()

    def add_edges(self, const int64_t[::1] i, const int64_t[::1] j, cap, rev):
        """i, j: int64 [m]; cap, rev: [m] of the graph's dtype."""
        if i.shape[0] == 0:
            return
        if self.kind == 0:
            _add_edges[int32_t](self.g32, i, j, cap, rev)
        elif self.kind == 1:
            _add_edges[int64_t](self.g64, i, j, cap, rev)
        elif self.kind == 2:
            _add_edges[float](self.gf, i, j, cap, rev)
        else:
            _add_edges[double](self.gd, i, j, cap, rev)

    def add_tweights(self, const int64_t[::1] i, src, snk):
        """i: int64 [m]; src, snk: [m] of the graph's dtype (applied in order)."""
        if i.shape[0] == 0:
            return
        if self.kind == 0:
            _add_tweights[int32_t](self.g32, i, src, snk)
        elif self.kind == 1:
            _add_tweights[int64_t](self.g64, i, src, snk)
        elif self.kind == 2:
            _add_tweights[float](self.gf, i, src, snk)
        else:
            _add_tweights[double](self.gd, i, src, snk)

    def mark_nodes(self, const int64_t[::1] i):
        cdef int64_t m = i.shape[0]
        if m == 0:
            return
        with nogil:
            if self.kind == 0:
                self.g32.mark_nodes(&i[0], m)
            elif self.kind == 1:
                self.g64.mark_nodes(&i[0], m)
            elif self.kind == 2:
                self.gf.mark_nodes(&i[0], m)
            else:
                self.gd.mark_nodes(&i[0], m)

    def maxflow(self, bint reuse_trees=False, int num_threads=1):
        """Solve; returns the flow (int for integer dtypes, float otherwise).

        num_threads >= 2 solves a large graph in grid form in parallel slabs."""
        with nogil:
            if self.kind == 0:
                self.g32.maxflow(reuse_trees, num_threads)
            elif self.kind == 1:
                self.g64.maxflow(reuse_trees, num_threads)
            elif self.kind == 2:
                self.gf.maxflow(reuse_trees, num_threads)
            else:
                self.gd.maxflow(reuse_trees, num_threads)
        return self.flow()

    def flow(self):
        if self.kind == 0:
            return int(self.g32.flow_int())
        if self.kind == 1:
            return int(self.g64.flow_int())
        if self.kind == 2:
            return float(self.gf.flow_double())
        return float(self.gd.flow_double())

    def segments(self, const int64_t[::1] ids):
        """uint8 [m]: 1 where the node is in the sink segment."""
        cdef int64_t m = ids.shape[0]
        out = np.zeros(m, dtype=np.uint8)
        cdef uint8_t[::1] o = out
        if m == 0:
            return out
        with nogil:
            if self.kind == 0:
                self.g32.segments(&ids[0], m, &o[0])
            elif self.kind == 1:
                self.g64.segments(&ids[0], m, &o[0])
            elif self.kind == 2:
                self.gf.segments(&ids[0], m, &o[0])
            else:
                self.gd.segments(&ids[0], m, &o[0])
        return out


def grid_solve_batch(const cap_t[::1] src, const cap_t[::1] snk, int64_t t_bs,
                     const cap_t[::1] w, int64_t w_bs, int64_t w_sk, int64_t w_sp,
                     shape, int connectivity, int64_t B, uint8_t[::1] seg_out, int num_threads):
    """Solve B grid problems with symmetric pair weights (layout in csrc/cpu/maxflow.h,
    grid_maxflow_batch); fills seg_out [B*N] (1: sink side)."""
    cdef int64_t shp[3]
    cdef int ndim = len(shape)
    for d in range(ndim):
        shp[d] = shape[d]
    if B == 0:
        return
    with nogil:
        c_grid_maxflow_batch(B, ndim, shp, connectivity, &src[0], &snk[0], t_bs,
                             &w[0], w_bs, w_sk, w_sp, &seg_out[0], num_threads)


def grid_solve(const cap_t[::1] src, int64_t src_stride, const cap_t[::1] snk, int64_t snk_stride,
               const cap_t[::1] fw, int64_t fw_sk, int64_t fw_sp,
               const cap_t[::1] bw, int64_t bw_sk, int64_t bw_sp,
               shape, int connectivity, uint8_t[::1] seg_out, int num_threads=1):
    """Solve one grid problem; returns the flow (exact int for integer dtypes).

    num_threads >= 2 solves slabs of a large grid in parallel threads, then merges them."""
    cdef int64_t shp[3]
    cdef int ndim = len(shape)
    cdef int64_t iflow = 0
    cdef double f
    for d in range(ndim):
        shp[d] = shape[d]
    with nogil:
        f = c_grid_maxflow(ndim, shp, connectivity, &src[0], src_stride, &snk[0], snk_stride,
                           &fw[0], fw_sk, fw_sp, &bw[0], bw_sk, bw_sp, &seg_out[0], &iflow,
                           num_threads)
    return int(iflow) if (cap_t is int32_t or cap_t is int64_t) else f


def multilabel(int method, shape, int connectivity, const double[::1] unary, int64_t C,
               const double[::1] V, ew, const int64_t[::1] order, int64_t max_cycles,
               int64_t[::1] labels, bint allow_dynamic=True, int num_threads=1, bint verify=False):
    """Alpha-expansion (``method`` = segengine._codes.MoveKind.EXPANSION) or swap (SWAP) in place on ``labels``; returns (energy, cycles).

    allow_dynamic=False (testing hook) solves every expansion move afresh; num_threads >= 2
    solves fresh moves of large grids in parallel slabs; verify=True (testing hook) checks the
    max-flow invariants around every solve and raises RuntimeError on a violation."""
    cdef int64_t shp[3]
    cdef int ndim = len(shape)
    cdef const double[::1] ewv
    cdef const double* ewp = NULL
    cdef int64_t cycles = 0
    cdef double e
    for d in range(ndim):
        shp[d] = shape[d]
    if ew is not None:
        ewv = ew
        ewp = &ewv[0]
    with nogil:
        e = c_multilabel_grid(method, ndim, shp, connectivity, C, &unary[0], &V[0], ewp,
                              &order[0], order.shape[0], max_cycles, &labels[0], &cycles,
                              allow_dynamic, num_threads, verify)
    return e, int(cycles)


def energy(shape, int connectivity, const double[::1] unary, int64_t C, const double[::1] V, ew,
           const int64_t[::1] labels):
    """Energy of a labelling (see multilabel)."""
    cdef int64_t shp[3]
    cdef int ndim = len(shape)
    cdef const double[::1] ewv
    cdef const double* ewp = NULL
    for d in range(ndim):
        shp[d] = shape[d]
    cdef double e
    if ew is not None:
        ewv = ew
        ewp = &ewv[0]
    with nogil:
        e = c_grid_energy(ndim, shp, connectivity, C, &unary[0], &V[0], ewp, &labels[0])
    return e
