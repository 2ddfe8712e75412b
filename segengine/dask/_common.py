"""Input handling shared by the ``segengine.dask`` functions: wrapping, chunk matching,
halo depths and the position of a block inside its overlapped neighbourhood."""

from __future__ import annotations

import numbers

import numpy as np

INSTALL_HINT = "segengine.dask needs the optional extra: pip install 'segengine[dask]'"


def require_dask():
    """Import dask.array, or raise ImportError saying which extra to install."""
    try:
        import dask.array  # noqa: F401
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError(f"{INSTALL_HINT} ({exc})") from exc


def as_dask_array(x, name: str, chunks="auto"):
    """``x`` as a dask array: dask arrays pass through, numpy arrays are wrapped.

    Raises
    ------
    TypeError
        Anything else (lists, torch tensors, scalars): the caller should convert it
        explicitly, so that no copy or device transfer happens silently.
    """
    import dask.array as da

    if isinstance(x, da.Array):
        return x
    if isinstance(x, np.ndarray):
        if not isinstance(chunks, str) and (len(chunks) != x.ndim or tuple(map(sum, chunks)) != x.shape):
            chunks = "auto"   # wrong shape: the caller's shape check says so
        return da.from_array(x, chunks=chunks)
    raise TypeError(f"`{name}` must be a dask array or a numpy array, got {type(x).__name__}")


def match_chunks(x, like, name: str, like_name: str = "image"):
    """``x`` rechunked to ``like``'s chunks (same shape required).

    Raises
    ------
    ValueError
        ``x.shape != like.shape``.
    """
    if tuple(x.shape) != tuple(like.shape):
        raise ValueError(f"`{name}` shape {tuple(x.shape)} does not match `{like_name}` shape "
                         f"{tuple(like.shape)}")
    if x.chunks != like.chunks:
        x = x.rechunk(like.chunks)
    return x


def normalize_depth(depth, ndim: int, chunks, default: int, name: str = "depth") -> tuple[int, ...]:
    """Per-axis halo widths.

    Parameters
    ----------
    depth : None, int, sequence of ndim ints, or dict {axis: int}
        None: ``min(default, chunk size along the axis)`` on every axis.
    ndim : int
    chunks : tuple of tuples
        The dask chunks of the array the halo is taken from. The chunk size of an axis is
        its largest chunk (a smaller last chunk is merged with its neighbour by
        :func:`fit_chunks_to_depth`).
    default : int

    Raises
    ------
    TypeError
        Non-integer depth.
    ValueError
        Negative depth, wrong number of axes, or a depth larger than the chunk size along
        its axis (a halo must come from the neighbouring block only: rechunk first).
    """
    size = [max(c) if len(c) else 0 for c in chunks]
    if depth is None:
        return tuple(min(default, s) if len(c) > 1 else 0 for s, c in zip(size, chunks))
    if isinstance(depth, dict):
        bad = [a for a in depth if not isinstance(a, numbers.Integral) or not 0 <= a < ndim]
        if bad:
            raise ValueError(f"`{name}` dict keys must be axes in [0, {ndim}), got {bad}")
        depth = [depth.get(a, 0) for a in range(ndim)]
    elif isinstance(depth, numbers.Integral) and not isinstance(depth, bool):
        depth = [depth] * ndim
    elif isinstance(depth, (tuple, list)):
        if len(depth) != ndim:
            raise ValueError(f"`{name}` needs one value per axis ({ndim}), got {len(depth)}")
    else:
        raise TypeError(f"`{name}` must be None, an int, a sequence or a dict, got {type(depth).__name__}")
    out = []
    for axis, d in enumerate(depth):
        if isinstance(d, bool) or not isinstance(d, numbers.Integral):
            raise TypeError(f"`{name}` values must be ints, got {d!r} on axis {axis}")
        if d < 0:
            raise ValueError(f"`{name}` must be >= 0, got {d} on axis {axis}")
        if d > size[axis] and len(chunks[axis]) > 1:
            raise ValueError(f"`{name}` {d} on axis {axis} is larger than the chunk size "
                             f"({size[axis]}) along that axis; rechunk to larger chunks or use "
                             f"a smaller depth")
        out.append(int(d) if len(chunks[axis]) > 1 else 0)
    return tuple(out)


def fit_chunks_to_depth(x, depth):
    """``x`` rechunked so that every chunk is at least ``depth`` wide along its axis, by
    merging each too-small chunk (typically the last one) into its neighbour; unchanged
    when nothing is too small."""
    new = []
    changed = False
    for c, d in zip(x.chunks, depth):
        c = list(c)
        i = 0
        while len(c) > 1 and i < len(c):
            if c[i] < d:
                j = i - 1 if i == len(c) - 1 else i + 1
                c[min(i, j)] = c[i] + c[j]
                del c[max(i, j)]
                changed = True
                i = 0
            else:
                i += 1
        new.append(tuple(c))
    return x.rechunk(tuple(new)) if changed else x


def block_halo(block_info, depth) -> tuple[tuple[int, int], ...]:
    """(before, after) halo widths of one block of an array overlapped with
    ``dask.array.overlap.overlap(x, depth, boundary='none')``: ``depth`` inside the array,
    0 at its edges. ``block_info`` is map_blocks' dict for the output (key None)."""
    info = block_info[None]
    loc, num = info["chunk-location"], info["num-chunks"]
    return tuple((d if i > 0 else 0, d if i < n - 1 else 0) for i, n, d in zip(loc, num, depth))


def inner_slices(halo) -> tuple[slice, ...]:
    """Slices that cut the block itself out of its overlapped neighbourhood."""
    return tuple(slice(b, -a if a else None) for b, a in halo)


def block_origin(block_info) -> tuple[int, ...]:
    """Global index of the block's first element (map_blocks' output block_info)."""
    return tuple(start for start, _ in block_info[None]["array-location"])
