"""Blockwise calls on blocks extended by a halo from their neighbours.

Each output block is one task. Its inputs are, per array, the block itself and the pieces
of its (up to 3^ndim - 1) neighbours that fall inside its halo, each piece cut by its own
small task. So a task receives only its extended block's data (a neighbour's full block
would be 27 times that in 3-D), and an array used by several passes is cut once: the piece
tasks' names depend only on the array and the depth, so later passes reuse them.
"""

from __future__ import annotations

import functools
import itertools

import numpy as np

__all__ = ["map_halo"]


def _piece(block, offset, depth):
    """The part of a neighbour block (at ``offset`` in {-1, 0, 1}^ndim) inside the halo."""
    index = []
    for o, d in zip(offset, depth):
        index.append(slice(-d, None) if o < 0 else slice(0, d) if o > 0 else slice(None))
    return block[tuple(index)]


def _assemble(pieces, offsets, depth):
    """The extended block from the pieces present (missing ones: outside the array)."""
    centre = pieces[offsets.index((0,) * len(depth))]
    before = [0] * len(depth)
    after = [0] * len(depth)
    for off in offsets:
        for axis, o in enumerate(off):
            if o < 0:
                before[axis] = depth[axis]
            elif o > 0:
                after[axis] = depth[axis]
    shape = tuple(b + n + a for b, n, a in zip(before, centre.shape, after))
    out = np.empty(shape, dtype=centre.dtype)
    for piece, off in zip(pieces, offsets):
        start = [before[k] + (0 if o == 0 else -before[k] if o < 0 else centre.shape[k])
                 for k, o in enumerate(off)]
        out[tuple(slice(s, s + n) for s, n in zip(start, piece.shape))] = piece
    return out


def _call(*piece_lists, func, present, offsets, depth, halo, kwargs):
    it = iter(piece_lists)
    ext = [_assemble(next(it), offsets, depth) if p else None for p in present]
    return func(*ext, halo=halo, **kwargs)


def _pieces(x, depth, offsets):
    """A collection whose block ``(*j, k)`` is the piece of block ``j`` of ``x`` that the
    block at ``j - offsets[k]`` needs (its chunks are nominal: it is never computed whole)."""
    import dask.array as da
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    name = f"halo-piece-{tokenize(x.name, depth)}"
    dsk = {}
    for j in np.ndindex(*x.numblocks):
        for k, off in enumerate(offsets):
            dsk[(name,) + j + (k,)] = (functools.partial(_piece, offset=off, depth=depth), (x.name,) + j)
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=[x])
    return da.Array(graph, name, x.chunks + ((1,) * len(offsets),), meta=x._meta)


def map_halo(func, arrays, depth, *, dtype, name, **kwargs):
    """Apply ``func`` to every block of ``arrays`` extended by ``depth`` from its neighbours.

    Parameters
    ----------
    func : callable
        ``func(*extended_blocks, halo=..., **kwargs) -> ndarray`` of the block's own shape;
        ``halo`` is ``((before, after), ...)`` per axis (0 at the array's edges), and an
        input given as None arrives as None.
    arrays : list of dask arrays (same chunks) or None
    depth : tuple of int
        Halo per axis, at most the chunk size (every halo comes from the next block).
    dtype : numpy dtype of the output
    name : str
        Prefix of the task names.

    Returns
    -------
    dask array chunked like the inputs.
    """
    import dask.array as da
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    present = [a is not None for a in arrays]
    inputs = [a for a in arrays if a is not None]
    first = inputs[0]
    numblocks = first.numblocks
    ndim = first.ndim
    out_name = f"{name}-{tokenize(func, *inputs, depth, sorted(kwargs.items(), key=str))}"
    all_offsets = list(itertools.product((-1, 0, 1), repeat=ndim))
    pieces = [_pieces(a, depth, all_offsets) for a in inputs]
    used = sorted({tuple(o if d else 0 for o, d in zip(off, depth)) for off in all_offsets})
    dsk = {}
    for idx in np.ndindex(*numblocks):
        offsets = [off for off in used if all(0 <= i + o < n for i, o, n in zip(idx, off, numblocks))]
        halo = tuple((d if i > 0 else 0, d if i < n - 1 else 0) for i, n, d in zip(idx, numblocks, depth))
        call = functools.partial(_call, func=func, present=present, offsets=offsets, depth=depth,
                                 halo=halo, kwargs=kwargs)
        keys = [[(p.name,) + tuple(i + o for i, o in zip(idx, off)) + (all_offsets.index(off),)
                 for off in offsets] for p in pieces]
        dsk[(out_name,) + idx] = (call, *keys)
    graph = HighLevelGraph.from_collections(out_name, dsk, dependencies=pieces)
    return da.Array(graph, out_name, first.chunks, meta=np.empty((0,) * ndim, dtype=dtype))
