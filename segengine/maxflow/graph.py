"""PyMaxflow-compatible graph classes over segengine's own max-flow solver.

``Graph[float]`` (:class:`GraphFloat`, float64 capacities) and ``Graph[int]``
(:class:`GraphInt`, int64 capacities) behave like PyMaxflow 1.3.2's classes of the same
names; ``Graph[np.float32]`` and ``Graph[np.int32]`` use 4-byte capacities.  Node ids are
64-bit.  All construction is vectorised: grid calls and ``add_edges``/``add_tedges`` run
without a Python loop per node or edge.

Grid form: a graph built only by :meth:`~segengine.maxflow.GraphFloat.add_grid_nodes` (on an empty graph),
:meth:`~segengine.maxflow.GraphFloat.add_grid_edges` over all of those nodes (no periodic axis, neighbour
offsets in {-1, 0, 1}^ndim) and terminal capacities is stored as an implicit grid (slot
capacities per node, no arc indices: 48 bytes per node for a 2D 4-connected float64 grid)
and solved by the grid solver, in parallel slabs when large.  Any other call (``add_edge``,
``add_nodes``, a periodic or partial ``add_grid_edges``, ...) turns it into a general graph
with the same residual network, so results never depend on the form.

Differences from PyMaxflow, on purpose: invalid input (node ids out of range, negative or
non-finite edge capacities, malformed structures) raises :class:`GraphError` (a subclass of
both ``ValueError`` and ``RuntimeError``, so code catching PyMaxflow's ``RuntimeError``
keeps working) instead of being accepted or crashing; memory exhaustion raises
``MemoryError`` instead of exiting the process, and a graph whose estimated size exceeds the
available memory is refused before it is allocated (see ``segengine.ops._memory``).
Integer graphs never wrap around: a capacity that does not fit the graph's type, terminal
capacities that accumulate past it on a node, an edge whose capacity plus reverse
capacity does not fit (the solver moves capacity between the two, so either residual can
reach their sum), and a maximum flow that could pass int64 raise ``OverflowError`` naming
the call.
"""

from __future__ import annotations

import contextlib

import numpy as np

from segengine._cy import _maxflow as _cy
from segengine.ops._common import resolve_threads
from segengine.ops._memory import check_working_set

__all__ = ["Graph", "GraphFloat", "GraphInt", "GraphFloat32", "GraphInt32", "GraphError",
           "vonNeumann_structure", "moore_structure"]


class GraphError(ValueError, RuntimeError):
    """Invalid graph input (bad node id, negative or non-finite capacity, bad shape)."""


@contextlib.contextmanager
def _named(call: str):
    """Prefix the kernel's OverflowError messages with the public call that raised them."""
    try:
        yield
    except OverflowError as e:
        raise OverflowError(f"{call}: {e}") from None


def _node_bytes(itemsize: int) -> int:
    """Bytes of the solver's state per node for capacities of ``itemsize`` bytes."""
    return 16 if itemsize == 8 else 12


def _half(structure: np.ndarray) -> np.ndarray:
    flat = structure.reshape(-1).copy()
    flat[: flat.size // 2 + 1] = 0
    return flat.reshape(structure.shape)


def vonNeumann_structure(ndim: int = 2, directed: bool = False) -> np.ndarray:
    """Von Neumann neighbourhood: float64 ``[3]*ndim`` with ones at the 2*ndim face neighbours.

    Parameters
    ----------
    ndim : int
        Number of grid dimensions.
    directed : bool
        Keep only the neighbours after the centre in C order (one per axis).
    """
    s = np.zeros((3,) * ndim)
    for d in range(ndim):
        for v in (0, 2):
            idx = [1] * ndim
            idx[d] = v
            s[tuple(idx)] = 1
    return _half(s) if directed else s


def moore_structure(ndim: int = 2, directed: bool = False) -> np.ndarray:
    """Moore neighbourhood: float64 ``[3]*ndim``, ones everywhere but the centre.

    Parameters
    ----------
    ndim : int
        Number of grid dimensions.
    directed : bool
        Keep only the neighbours after the centre in C order.
    """
    s = np.ones((3,) * ndim)
    s[(1,) * ndim] = 0
    return _half(s) if directed else s


class _GraphBase:
    """Common implementation; use :class:`GraphFloat` / :class:`GraphInt` (or ``Graph[...]``)."""

    _dtype = np.float64

    def __init__(self, est_node_num: int = 0, est_edge_num: int = 0):
        # the size estimates are accepted for compatibility; storage grows as needed
        self._g = _cy.CGraph(self._dtype)
        self._n = 0
        self._grid_shape = None   # shape of the grid while the graph is held in grid form

    # ------------------------------------------------------------ helpers
    @property
    def _is_int(self) -> bool:
        return np.issubdtype(self._dtype, np.integer)

    def _ids(self, ids, name: str) -> np.ndarray:
        a = np.asarray(ids)
        if a.dtype == bool or not (np.issubdtype(a.dtype, np.integer) or a.size == 0):
            if a.dtype.kind == "f" and a.size and np.all(np.isfinite(a)) and np.all(a == np.round(a)):
                a = a.astype(np.int64)
            else:
                raise GraphError(f"{name} must hold integer node ids, got dtype {a.dtype}")
        a = np.ascontiguousarray(a, dtype=np.int64)
        if a.size and (a.min() < 0 or a.max() >= self._n):
            bad = a[(a < 0) | (a >= self._n)].reshape(-1)[0]
            raise GraphError(f"{name}: node id {int(bad)} is not in the graph "
                             f"(valid ids: 0..{self._n - 1})")
        return a

    def _caps(self, values, name: str, shape, allow_negative: bool) -> np.ndarray:
        a = np.asarray(values)
        if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
            raise GraphError(f"{name} must be numeric, got dtype {a.dtype}")
        if np.iscomplexobj(a):
            raise GraphError(f"{name} must be real, got dtype {a.dtype}")
        try:
            a = np.broadcast_to(a, shape)
        except ValueError:
            raise GraphError(f"{name} of shape {np.shape(values)} cannot be broadcast to {tuple(shape)}")
        if a.dtype.kind == "f":
            if not np.all(np.isfinite(a)):
                raise GraphError(f"{name} contains NaN or infinity")
        if not allow_negative and a.size and a.min() < 0:
            raise GraphError(f"{name} must be non-negative, got minimum {a.min()}")
        if self._is_int and a.size:
            info = np.iinfo(self._dtype)
            hi, lo = a.max(), a.min()
            if a.dtype.kind == "f":
                bad = hi >= 2.0 ** (info.bits - 1) or lo < info.min
            else:
                bad = int(hi) > info.max or int(lo) < info.min
            if bad:
                v = hi if (float(hi) > info.max) else lo
                raise OverflowError(f"{name} value {v} does not fit in {np.dtype(self._dtype).name}")
            if a.dtype.kind == "f":
                a = np.trunc(a)
        return np.ascontiguousarray(a.astype(self._dtype, copy=False).reshape(-1))

    # ------------------------------------------------------------ nodes
    def add_nodes(self, num_nodes: int) -> np.ndarray:
        """Add nodes.

        Parameters
        ----------
        num_nodes : int
            How many (>= 0).

        Returns
        -------
        numpy.ndarray
            Their ids, int64 ``[num_nodes]``, consecutive.
        """
        num_nodes = int(num_nodes)
        if num_nodes < 0:
            raise GraphError(f"num_nodes must be non-negative, got {num_nodes}")
        self._check_memory(num_nodes, f"add_nodes({num_nodes})", grid=False)
        self._grid_shape = None
        first = self._g.add_nodes(num_nodes)
        self._n += num_nodes
        return np.arange(first, first + num_nodes, dtype=np.int64)

    def add_grid_nodes(self, shape) -> np.ndarray:
        """Add a grid of ``prod(shape)`` nodes.

        On an empty graph with 1 to 3 dimensions this starts the grid form (see the module
        docstring): as long as only grid calls follow, the graph is solved as an implicit grid.

        Parameters
        ----------
        shape : int or sequence of int
            Grid shape.

        Returns
        -------
        numpy.ndarray
            Their ids, int64 of ``shape``, in C order.
        """
        shape = tuple(int(s) for s in np.atleast_1d(shape))
        if any(s < 0 for s in shape):
            raise GraphError(f"shape must be non-negative, got {shape}")
        n = 1
        for s in shape:
            n *= s   # a Python int: no wrap-around for huge declared shapes
        grid = self._n == 0 and n > 0 and 1 <= len(shape) <= 3
        self._check_memory(n, f"add_grid_nodes({shape})", grid=grid)
        if grid:
            # grid form: solved as an implicit grid as long as only grid calls follow
            self._g.begin_grid(shape if len(shape) > 1 else (1,) + shape)
            self._n = n
            self._grid_shape = shape
            return np.arange(n, dtype=np.int64).reshape(shape)
        return self.add_nodes(n).reshape(shape)

    def _check_memory(self, n: int, what: str, grid: bool) -> None:
        """Refuse ``n`` new nodes whose working set cannot fit (before allocating anything).

        Grid form: node state plus the smallest slot layout (4 slots in 2D, 6 in 3D; more
        connectivity needs more later) plus the returned ids.  General graph: terminal
        capacity while staging, then solver node state and CSR offsets, plus the ids.
        """
        size = np.dtype(self._dtype).itemsize
        if grid:
            per_node = _node_bytes(size) + 6 * size + 8
        else:
            per_node = size + _node_bytes(size) + 8 + 8
        check_working_set(float(n) * per_node, what)

    def get_node_count(self) -> int:
        """Number of non-terminal nodes."""
        return self._n

    def get_edge_count(self) -> int:
        """Number of non-terminal arcs (two per added edge, as in PyMaxflow)."""
        return int(self._g.arc_count())

    get_node_num = get_node_count
    get_edge_num = get_edge_count

    # ------------------------------------------------------------ edges
    def add_edge(self, i, j, capacity, rcapacity) -> None:
        """Add the edge i -> j and its reverse.

        Parameters
        ----------
        i, j : int
            Node ids.
        capacity, rcapacity : float or int
            Capacities of i -> j and j -> i (non-negative, finite).
        """
        self._edges([i], [j], [capacity], [rcapacity], "add_edge")

    def add_edges(self, i, j, capacities, rcapacities) -> None:
        """Add many edges at once.

        Parameters
        ----------
        i, j : array_like of int, shape ``[m]``
            End nodes.
        capacities, rcapacities : array_like, broadcastable to ``[m]``
            Capacities of i->j and j->i, non-negative and finite.
        """
        self._edges(i, j, capacities, rcapacities, "add_edges")

    def _edges(self, i, j, capacities, rcapacities, call: str) -> None:
        ii = self._ids(i, "i").reshape(-1)
        jj = self._ids(j, "j").reshape(-1)
        if ii.shape != jj.shape:
            raise GraphError(f"i and j must have the same length, got {ii.size} and {jj.size}")
        c = self._caps(capacities, f"{call}: capacities", ii.shape, allow_negative=False)
        r = self._caps(rcapacities, f"{call}: rcapacities", ii.shape, allow_negative=False)
        with _named(call):
            self._g.add_edges(ii, jj, c, r)
        if ii.size:
            self._grid_shape = None

    def add_tedge(self, i, cap_source, cap_sink) -> None:
        """Add terminal capacities to one node.

        Parameters
        ----------
        i : int
            Node id.
        cap_source, cap_sink : float or int
            Capacities from the source and to the sink; added to the node's current ones
            (negative values allowed, as in PyMaxflow).
        """
        self._tedges([i], [cap_source], [cap_sink], "add_tedge")

    def add_tedges(self, i, cap_source, cap_sink) -> None:
        """Add terminal capacities to many nodes; equivalent to ``add_tedge`` in order.

        Parameters
        ----------
        i : array_like of int, shape ``[m]``
            Node ids.
        cap_source, cap_sink : array_like, broadcastable to ``[m]``
            Capacities from the source and to the sink (any sign, as in PyMaxflow).
        """
        self._tedges(i, cap_source, cap_sink, "add_tedges")

    def _tedges(self, i, cap_source, cap_sink, call: str) -> None:
        ii = self._ids(i, "i").reshape(-1)
        s = self._caps(cap_source, f"{call}: cap_source", ii.shape, allow_negative=True)
        t = self._caps(cap_sink, f"{call}: cap_sink", ii.shape, allow_negative=True)
        with _named(call):   # all or nothing: an overflow leaves the graph as it was
            self._g.add_tweights(ii, s, t)

    def add_grid_tedges(self, nodeids, sourcecaps, sinkcaps) -> None:
        """Add terminal capacities to a grid of nodes.

        Parameters
        ----------
        nodeids : numpy.ndarray of int
            Node ids, any shape ``S`` (typically from :meth:`add_grid_nodes`).
        sourcecaps, sinkcaps : array_like broadcastable to ``S``
            Capacities from the source and to the sink (any sign).
        """
        ids = np.asarray(nodeids)
        s = self._caps(sourcecaps, "add_grid_tedges: sourcecaps", ids.shape, allow_negative=True)
        t = self._caps(sinkcaps, "add_grid_tedges: sinkcaps", ids.shape, allow_negative=True)
        flat = ids.reshape(-1) if self._is_grid_ids(ids) else self._ids(ids, "nodeids").reshape(-1)
        with _named("add_grid_tedges"):
            self._g.add_tweights(flat, s, t)

    def add_grid_edges(self, nodeids, weights=1, structure=None, symmetric=False, periodic=False) -> None:
        """Add edges between grid nodes following a neighbourhood ``structure``.

        For every node p and every non-zero entry ``structure[c + o]`` (c the centre), the edge
        p -> p+o gets capacity ``weights[p] * structure[c + o]``; with ``symmetric`` the
        reverse edge gets the same capacity (else 0).  Neighbours outside the grid are
        skipped unless the axis is periodic, in which case they wrap around.

        Parameters
        ----------
        nodeids : ndarray of int, any shape ``S``
            Node ids (typically from :meth:`add_grid_nodes`).
        weights : array_like broadcastable to ``S``, default 1
            Per-node factor of the capacities of the edges leaving it (non-negative).
        structure : array_like, ndim ``len(S)``, odd sizes, optional
            Default: ``vonNeumann_structure(len(S), directed=symmetric)``.
        symmetric : bool
            Add the reverse edges with the same capacity (default: reverse capacity 0).
        periodic : bool or sequence of ``len(S)`` bools
            Axes along which neighbours wrap around.
        """
        ids = np.asarray(nodeids)
        ndim = ids.ndim
        if structure is None:
            structure = vonNeumann_structure(ndim, directed=bool(symmetric))
        structure = np.asarray(structure)
        if structure.ndim != ndim:
            raise GraphError(f"structure must have {ndim} dimensions like nodeids, got {structure.ndim}")
        if any(s % 2 == 0 for s in structure.shape):
            raise GraphError(f"structure must have odd sizes, got shape {structure.shape}")
        st = self._caps(structure, "add_grid_edges: structure", structure.shape,
                        allow_negative=False).reshape(structure.shape)
        per = np.broadcast_to(np.asarray(periodic, dtype=bool), (ndim,))
        center = np.array(structure.shape) // 2
        offs = [idx for idx in zip(*np.nonzero(st)) if (np.array(idx) - center).any()]
        if self._is_grid_ids(ids):
            offs = self._grid_edges(ids, weights, st, symmetric, per, offs)
            if not offs:
                return
        ids_c = self._ids(ids, "nodeids").reshape(ids.shape)
        w = self._caps(weights, "add_grid_edges: weights", ids.shape, allow_negative=False).reshape(ids.shape)
        size = np.dtype(self._dtype).itemsize
        check_working_set(2.0 * ids.size * len(offs) * (16 + 2 * size),
                          f"add_grid_edges on {ids.size} nodes with {len(offs)} neighbour offsets")
        for idx in offs:
            self._offset_edges(ids_c, w, st, idx, np.array(idx) - center, symmetric, per)

    def _offset_edges(self, ids_c, w, st, idx, off, symmetric, per) -> None:
        """General-graph edges p -> p + off of :meth:`add_grid_edges` for one structure entry."""
        ndim = ids_c.ndim
        q_arr = ids_c
        for a in range(ndim):
            if per[a] and off[a] and ids_c.shape[a]:
                q_arr = np.roll(q_arr, -int(off[a]), axis=a)
        sp, sq = [], []
        for a in range(ndim):
            S, o = ids_c.shape[a], int(off[a])
            if per[a]:
                sp.append(slice(None)); sq.append(slice(None))
                continue
            start, stop = max(0, -o), S - max(0, o)
            if stop <= start:
                return
            sp.append(slice(start, stop)); sq.append(slice(start + o, stop + o))
        wp = w[tuple(sp)]
        if self._is_int and wp.size and int(wp.max()) * int(st[idx]) > np.iinfo(self._dtype).max:
            raise OverflowError(f"add_grid_edges: edge capacity weight * structure overflows "
                                f"{np.dtype(self._dtype).name} ({int(wp.max())} * {int(st[idx])})")
        p = np.ascontiguousarray(ids_c[tuple(sp)]).reshape(-1)
        q = np.ascontiguousarray(q_arr[tuple(sq)]).reshape(-1)
        cap = np.ascontiguousarray(wp * st[idx], dtype=self._dtype).reshape(-1)
        rev = cap if symmetric else np.zeros_like(cap)
        with _named("add_grid_edges"):
            self._g.add_edges(p, q, cap, rev)

    def _is_grid_ids(self, ids: np.ndarray) -> bool:
        """True when the graph is in grid form and ``ids`` are all of its nodes in their grid
        layout (int64, C-contiguous, the ids :meth:`add_grid_nodes` returned): then they need
        no range check."""
        return (self._grid_shape is not None and ids.shape == self._grid_shape
                and ids.dtype == np.int64 and ids.flags.c_contiguous and self._g.is_grid()
                and _cy.is_arange(ids.reshape(-1)))

    def _grid_edges(self, ids, weights, st, symmetric, per, offs) -> list:
        """Add the edges of :meth:`add_grid_edges` to a graph in grid form.

        ``ids`` passed :meth:`_is_grid_ids`; ``offs`` are the structure entries (index
        tuples) of the non-centre neighbours.  Applies when no axis is periodic and every
        offset is in {-1, 0, 1}^ndim; returns the entries left for the general graph: all
        of them when it does not apply, those after the point where an integer graph had to
        leave the grid form (parallel arcs that would overflow their shared slot), else none.
        """
        center = np.array(st.shape) // 2
        if per.any() or any(np.abs(np.array(idx) - center).max() > 1 for idx in offs):
            return offs
        if np.ndim(weights) == 0:
            w = self._caps(weights, "add_grid_edges: weights", (1,), allow_negative=False)
        else:
            w = self._caps(weights, "add_grid_edges: weights", ids.shape, allow_negative=False)
        pad = 3 - ids.ndim
        for n, idx in enumerate(offs):
            if not self._g.is_grid():
                return offs[n:]
            off = (0,) * pad + tuple(int(v) for v in np.array(idx) - center)
            with _named("add_grid_edges"):
                self._g.add_grid_arcs(off, w, st[idx], bool(symmetric))
        return []

    # ------------------------------------------------------------ solve and query
    def maxflow(self, reuse_trees: bool = False, num_threads=None):
        """Compute the maximum flow (= capacity of the minimum cut).

        Parameters
        ----------
        reuse_trees : bool
            Reuse the search trees of the previous call; nodes whose terminal capacities
            changed since must be marked with :meth:`mark_node` first.
        num_threads : int, optional
            segengine extension (None: ``torch.get_num_threads()``): a fresh solve of a grid
            form graph of at least 65536 nodes runs in parallel slabs, as
            :func:`~segengine.maxflow.grid_maxflow` does; other graphs are solved serially.

        Returns
        -------
        float or int
            The flow: ``float`` for float graphs, ``int`` for integer graphs.

        Notes
        -----
        A graph built only by :meth:`add_grid_nodes` (on an empty graph), then
        :meth:`add_grid_edges` over all of its nodes (no periodic axes, neighbour offsets in
        {-1, 0, 1}^ndim) and terminal capacities is held and solved as an implicit grid:
        the same flow network in less than half the memory, solved faster.
        """
        num_threads = resolve_threads(num_threads)
        with _named("maxflow"):
            return self._g.maxflow(bool(reuse_trees), num_threads)

    def mark_node(self, i) -> None:
        """Mark node ``i`` (an int id) as changed for ``maxflow(reuse_trees=True)``."""
        self._g.mark_nodes(self._ids([i], "i"))

    def mark_grid_nodes(self, nodeids) -> None:
        """Mark many nodes as changed for ``maxflow(reuse_trees=True)``; ``nodeids``: int ids of any shape."""
        self._g.mark_nodes(self._ids(nodeids, "nodeids").reshape(-1))

    def get_segment(self, i) -> int:
        """Side of node ``i`` (an int id) in the minimum cut: 0 source side, 1 sink side."""
        return int(self._g.segments(self._ids([i], "i"))[0])

    def get_grid_segments(self, nodeids) -> np.ndarray:
        """Sides of many nodes in the minimum cut.

        Parameters
        ----------
        nodeids : array_like of int
            Node ids, any shape ``S``.

        Returns
        -------
        numpy.ndarray
            bool of shape ``S``: True where the node is on the sink side.
        """
        ids = np.asarray(nodeids)
        return self._g.segments(self._ids(ids, "nodeids").reshape(-1)).astype(bool).reshape(ids.shape)

    def get_nx_graph(self):
        """NetworkX ``DiGraph`` of the current residual network (needs networkx).

        Nodes 0..n-1 (attribute ``segment``) and the terminals ``'s'``, ``'t'``; every edge
        with a non-zero residual capacity, attribute ``weight`` (parallel arcs summed), as
        PyMaxflow's ``get_nx_graph``.  For debugging: slow on large graphs.
        """
        import networkx as nx
        frm, to, cap, tr = self._g.export()
        g = nx.DiGraph()
        g.add_nodes_from(range(self._n))
        keep = cap != 0
        for a, b, w in zip(frm[keep].tolist(), to[keep].tolist(), cap[keep].tolist()):
            if g.has_edge(a, b):
                g[a][b]["weight"] += w
            else:
                g.add_edge(a, b, weight=w)
        g.add_nodes_from(["s", "t"])
        seg = self._g.segments(np.arange(self._n, dtype=np.int64))
        for i, (r, sg) in enumerate(zip(tr.tolist(), seg.tolist())):
            g.nodes[i]["segment"] = int(sg)
            if r > 0:
                g.add_edge("s", i, weight=r)
            elif r < 0:
                g.add_edge(i, "t", weight=-r)
        return g

    def reset(self) -> None:
        """Remove all nodes and edges."""
        self._g.reset()
        self._n = 0
        self._grid_shape = None

    def copy(self):
        """A copy with the current (residual) capacities, terminal state and flow."""
        c = type(self).__new__(type(self))
        c._g = self._g.copy()
        c._n = self._n
        c._grid_shape = None   # the copy is a general graph
        return c


class GraphFloat(_GraphBase):
    """Graph with float64 capacities (PyMaxflow's ``Graph[float]``)."""
    _dtype = np.float64


class GraphInt(_GraphBase):
    """Graph with int64 capacities (PyMaxflow's ``Graph[int]``)."""
    _dtype = np.int64


class GraphFloat32(_GraphBase):
    """Graph with float32 capacities (half the arc memory of :class:`GraphFloat`)."""
    _dtype = np.float32


class GraphInt32(_GraphBase):
    """Graph with int32 capacities."""
    _dtype = np.int32


class _GraphSelector(dict):
    """``Graph[float]`` / ``Graph[int]`` (and numpy dtypes) select a graph class."""

    def __missing__(self, key):
        try:
            dt = np.dtype(key)
        except TypeError:
            raise KeyError(key)
        for k in (np.float64, np.int64, np.float32, np.int32):
            if dt == np.dtype(k):
                return dict.__getitem__(self, k)
        raise KeyError(key)


Graph = _GraphSelector({float: GraphFloat, int: GraphInt, np.float64: GraphFloat,
                        np.int64: GraphInt, np.float32: GraphFloat32, np.int32: GraphInt32})
