"""One-shot max-flow on an implicit 2D/3D grid (neighbours computed, not stored)."""

from __future__ import annotations

import numpy as np

from segengine._cy import _maxflow as _cy
from segengine.ops._common import resolve_threads
from segengine.ops._grid import check_connectivity, forward_offsets, num_offsets
from segengine.ops._memory import check_working_set

__all__ = ["grid_maxflow", "forward_offsets"]

_DTYPES = (np.int32, np.int64, np.float32, np.float64)


def _arr(x, name, dtype):
    a = np.asarray(x)
    if not (np.issubdtype(a.dtype, np.number) or a.dtype == bool) or np.iscomplexobj(a):
        raise TypeError(f"{name} must be a real numeric array, got dtype {a.dtype}")
    if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or infinity")
    if np.dtype(dtype).kind == "i" and a.size:
        _check_range(a, name, np.dtype(dtype))
    return a.astype(dtype, copy=False)


def _check_range(a: np.ndarray, name: str, dtype: np.dtype) -> None:
    """OverflowError unless every value of ``a`` fits the integer ``dtype`` (floats are
    truncated towards zero by the conversion, as numpy's astype)."""
    info = np.iinfo(dtype)
    hi, lo = a.max(), a.min()
    if a.dtype.kind == "f":
        bad = hi >= 2.0 ** (info.bits - 1) or lo <= -(2.0 ** (info.bits - 1)) - 1
    else:
        bad = int(hi) > info.max or int(lo) < info.min
    if bad:
        v = hi if float(hi) > info.max else lo
        raise OverflowError(f"grid_maxflow: {name} value {v} does not fit in {dtype.name}")


def _working_set(N: int, K: int, dtype: np.dtype, n_edge_arrays: int) -> float:
    """Bytes grid_maxflow allocates for N nodes: slot capacities (2K per node), solver node
    state, segments, the contiguous terminal arrays and converted edge-weight arrays."""
    size = dtype.itemsize
    node = 16 if size == 8 else 12
    return float(N) * (2 * K * size + node + 1 + 2 * size + n_edge_arrays * K * size)


def grid_maxflow(source, sink, weights=1.0, connectivity=None, rweights=None, dtype=None,
                 num_threads=None):
    """Minimum s-t cut of a 2D/3D grid graph in one call.

    Parameters
    ----------
    source, sink : array_like, shape ``S`` (2 or 3 dims; one may be a scalar)
        Terminal capacities (any sign; only ``source - sink`` and ``min(source, sink)`` matter).
    weights : scalar or array_like ``[K, *S]``
        Capacity of the arc p -> p + o_k for the K forward offsets of
        :func:`segengine.maxflow.grid.forward_offsets`; non-negative and finite.  Arcs leaving the grid are ignored.
    connectivity : int, optional
        4 or 8 in 2D (default 4), 6, 18 or 26 in 3D (default 6).
    rweights : scalar or array_like ``[K, *S]``, optional
        Capacity of the reverse arc p + o_k -> p (default: ``weights``, an undirected grid).
    dtype : int32, int64, float32 or float64, optional
        Capacity type (default: numpy's result type of the inputs, float64 for Python floats).
    num_threads : int, optional
        Threads (None: ``torch.get_num_threads()``).  Grids of at least 65536 nodes and 32
        rows/slices are cut into slabs solved in parallel, then merged by one pass that
        reuses their search trees.  The flow does not depend on it; where the minimum cut
        is not unique, which minimum cut is returned may.

    Returns
    -------
    flow : float or int
        The max-flow value (exact int for integer dtypes).
    segments : ndarray of bool, shape ``S``
        True where the node is on the sink side (as PyMaxflow's ``get_grid_segments``).

    Raises
    ------
    OverflowError
        Integer dtypes: an input value does not fit ``dtype``, a node's ``source - sink``
        does not fit it, an arc pair's ``weights + rweights`` does not fit it (the solver
        moves capacity between the two), or the flow could pass int64.
    MemoryError
        The grid's working set exceeds the available memory (checked before allocating).
    """
    num_threads = resolve_threads(num_threads)
    src0, snk0 = np.asarray(source), np.asarray(sink)
    shape = np.broadcast_shapes(src0.shape, snk0.shape)
    ndim = len(shape)
    conn = check_connectivity(ndim, connectivity)
    K = num_offsets(ndim, conn)
    if dtype is None:
        dtype = np.result_type(src0, snk0, np.asarray(weights),
                               np.asarray(weights if rweights is None else rweights))
        if dtype == bool:
            dtype = np.int64
        if np.issubdtype(dtype, np.integer):
            dtype = np.int32 if dtype.itemsize <= 4 and dtype.kind == "i" and dtype != np.uint32 else np.int64
        else:
            dtype = np.float32 if dtype == np.float32 or dtype == np.float16 else np.float64
    dtype = np.dtype(dtype)
    if dtype not in [np.dtype(d) for d in _DTYPES]:
        raise TypeError(f"dtype must be int32, int64, float32 or float64, got {dtype}")
    n_nodes = 1
    for s in shape:
        n_nodes *= int(s)
    n_arrays = sum(np.ndim(w) > 0 for w in (weights, rweights))
    check_working_set(_working_set(n_nodes, K, dtype, n_arrays),
                      f"grid_maxflow on a grid of shape {tuple(shape)} ({dtype.name})")
    src = np.ascontiguousarray(np.broadcast_to(_arr(src0, "source", dtype), shape)).reshape(-1)
    snk = np.ascontiguousarray(np.broadcast_to(_arr(snk0, "sink", dtype), shape)).reshape(-1)
    N = src.size

    def edge(w, name):
        w = _arr(w, name, dtype)
        if w.size and w.min() < 0:
            raise ValueError(f"{name} must be non-negative, got minimum {w.min()}")
        if w.ndim == 0:
            return np.ascontiguousarray(w.reshape(1)), 0, 0
        if w.shape != (K,) + tuple(shape):
            raise ValueError(f"{name} must be a scalar or have shape {(K,) + tuple(shape)} "
                             f"(K={K} forward offsets), got {w.shape}")
        return np.ascontiguousarray(w).reshape(-1), N, 1

    fw, fsk, fsp = edge(weights, "weights")
    bw, bsk, bsp = (fw, fsk, fsp) if rweights is None else edge(rweights, "rweights")
    seg = np.zeros(N, dtype=np.uint8)
    if N == 0:
        return (0 if dtype.kind == "i" else 0.0), seg.astype(bool).reshape(shape)
    try:
        flow = _cy.grid_solve(src, 1, snk, 1, fw, fsk, fsp, bw, bsk, bsp, tuple(shape), conn, seg,
                              num_threads)
    except OverflowError as e:
        raise OverflowError(f"grid_maxflow: {e}") from None
    return flow, seg.view(bool).reshape(shape)
