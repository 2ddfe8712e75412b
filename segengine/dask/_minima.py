"""Regional minima of a dask array, numbered globally and independently of the chunking: the
markers of an unseeded blockwise watershed, and the label numbering that goes with them.

Method (exact for any chunking and any plateau size, three passes over the blocks):

1. *Per block* (1-pixel halo, ``boundary='none'``): a pixel is a **candidate** when no
   neighbour is strictly lower. Two adjacent candidates are necessarily equal-valued, so the
   connected components of the candidate mask are pieces of plateaus. A piece **leaks** when
   one of its pixels has an equal-valued neighbour that is not a candidate (the plateau drains
   through it); leaks inside the block are found here. Every piece, and every piece of
   ``candidates & mask``, gets the id ``1 + raveled index of its first pixel in the block``:
   globally unique without any count pass.
2. *Per block face*: thin slabs across each face (extended by one pixel along the other axes,
   so that edge and corner neighbours under ``connectivity`` are seen) give the pairs of pieces
   that touch across blocks and the leaks across blocks. One small global task joins them
   (connected components over the face-touching pieces only, so the table stays small even
   for noisy volumes): a merged plateau is a regional minimum iff none of its pieces leaks,
   and a merged masked component takes the smallest id of its pieces.
3. *Per block again*: pass 1 is recomputed (so no per-pixel intermediate is held between the
   passes) and each masked piece is written with its global id, or 0.

The result equals scikit-image 0.26's ``local_minima(image, connectivity) * mask`` labelled by
``scipy.ndimage.label`` -- the markers of ``skimage.segmentation.watershed(image)`` and of
:func:`segengine.watershed` -- up to the numbering: ``relabel_sequential(ids, rank_table(ids))``
gives exactly that numbering.
"""

from __future__ import annotations

import numbers

import numpy as np
from scipy import ndimage as ndi

from segengine.dask._common import as_dask_array, match_chunks
from segengine.dask._minima_blocks import (ids_block, join_links, pieces_block, pieces_dtype,
                                           resolve, slab_links)

__all__ = ["regional_minima_markers", "rank_table", "relabel_sequential"]


# ----------------------------------------------------------------------------- public API

def regional_minima_markers(image, mask=None, connectivity=1):
    """Regional minima of ``image`` (plateaus included), each component marked by a global id.

    Parameters
    ----------
    image : (M[, N[, ...]]) dask.array.Array or numpy.ndarray
        Any number of dimensions >= 1; bool, integer or float dtype. A numpy array is
        wrapped with ``dask.array.from_array(chunks="auto")``.
    mask : array of the same shape, optional
        Pixels where ``mask`` is False are never marked. Minima are found on the whole image
        (mask-unaware, as scikit-image does); the mask then cuts them, and a minimum split by
        the mask gives one component per part. Rechunked to ``image``'s chunks; any
        bool/int/float dtype (nonzero = inside).
    connectivity : int, optional
        Neighbours are pixels at most ``connectivity`` axis steps away (1: faces only,
        ``image.ndim``: all), as in ``scipy.ndimage.generate_binary_structure``; used both to
        find the minima and to split them into components.

    Returns
    -------
    ids : (M[, N[, ...]]) dask.array.Array of int64, chunked like ``image``, lazy
        0 outside the minima; every pixel of a component of
        ``skimage.morphology.local_minima(image, connectivity=connectivity) & mask`` holds
        ``1 +`` the raveled (C-order) index of the component's first pixel. The same for
        any chunking and scheduler. A constant image has no minima (scikit-image's rule).
        Empty chunks, if any, are dropped from the output's chunking.

    Raises
    ------
    TypeError
        ``image``/``mask`` neither dask nor numpy arrays, or of a non-numeric dtype;
        non-integer ``connectivity``.
    ValueError
        0-d ``image``, ``mask`` shape differing from ``image``'s, ``connectivity < 1``. At
        compute time: NaN in ``image`` (as :func:`segengine.watershed`).

    Notes
    -----
    Pass 1 runs twice per block (once for the face tables, once for the output) so that no
    per-pixel intermediate is held across the global task (the image blocks with their
    1-pixel halo are, as they feed both). The global task sees only the plateau pieces that
    touch a block face. Per-block work is vectorised numpy/scipy
    (``segengine.dask._minima_blocks``).

    Examples
    --------
    >>> import numpy as np
    >>> from segengine.dask import regional_minima_markers
    >>> img = np.array([[3, 1, 1, 3, 0, 3, 2]], dtype=np.uint8)
    >>> regional_minima_markers(img).compute()
    array([[0, 2, 2, 0, 5, 0, 7]])
    """
    import dask.array as da

    image = as_dask_array(image, "image")
    _check_numeric(image, "image")
    if image.ndim < 1:
        raise ValueError(f"`image` must have at least one dimension, got shape {image.shape}")
    structure = _structure(image.ndim, connectivity)
    if mask is not None:
        mask = as_dask_array(mask, "mask")
        _check_numeric(mask, "mask")
        mask = match_chunks(mask, image, "mask")
        if mask.dtype != np.bool_:
            mask = mask.astype(bool)
    if any(np.isnan(c) for cs in image.chunks for c in cs):
        raise ValueError("`image` has unknown chunk sizes; call image.compute_chunk_sizes() first")
    if image.size == 0:
        return da.zeros(image.shape, dtype=np.int64, chunks=image.chunks)
    if any(0 in cs for cs in image.chunks):  # empty blocks have no faces: drop them
        image = image.rechunk(tuple(tuple(c for c in cs if c) for cs in image.chunks))
        mask = None if mask is None else mask.rechunk(image.chunks)

    ov = da.overlap.overlap(image, depth=1, boundary="none")
    args = (ov,) if mask is None else (ov, mask)
    pieces = da.map_blocks(pieces_block, *args, structure=structure, shape=image.shape,
                           depth=(1,) * image.ndim, dtype=pieces_dtype(image.dtype),
                           chunks=image.chunks)
    faces = [_face_links(pieces, axis, structure) for axis in range(image.ndim)
             if image.numblocks[axis] > 1]
    table = da.blockwise(resolve, (), image.min(), (), image.max(), (),
                         *(x for f in faces for x in (f, ())), dtype=object,
                         meta=np.empty((), object))  # one small task for the whole array
    return da.map_blocks(ids_block, *args, table, structure=structure, shape=image.shape,
                         depth=(1,) * image.ndim, dtype=np.int64, chunks=image.chunks)


def rank_table(markers):
    """The sorted distinct nonzero values of an id array, as one lazy array.

    Parameters
    ----------
    markers : dask.array.Array or numpy.ndarray of integers
        For example the output of :func:`regional_minima_markers`.

    Returns
    -------
    table : (K,) dask.array.Array of int64, one chunk, K unknown until computed
        Sorted, without 0. Pass it to :func:`relabel_sequential`.

    Raises
    ------
    TypeError
        ``markers`` neither dask nor numpy, or not of an integer dtype.
    """
    import dask.array as da

    markers = as_dask_array(markers, "markers")
    _check_integer(markers, "markers")
    nd = markers.ndim
    parts = markers.map_blocks(_nonzero_unique, dtype=object, meta=np.empty((0,) * nd, object),
                               chunks=tuple((1,) * n for n in markers.numblocks))
    return da.blockwise(_merge_unique, (nd,), parts, tuple(range(nd)), new_axes={nd: np.nan},
                        concatenate=True, dtype=np.int64, meta=np.empty(0, np.int64))


def relabel_sequential(labels, table, dtype=np.int32):
    """Map each nonzero id of ``labels`` to ``1 +`` its rank in ``table`` (0 stays 0).

    Parameters
    ----------
    labels : dask.array.Array or numpy.ndarray of integers
    table : 1-D sorted integer array (numpy or dask), or a dask Delayed computing to one
        Typically ``rank_table(markers)``; every nonzero value of ``labels`` must be in it.
    dtype : integer dtype, optional
        Output dtype (default int32, as :func:`segengine.watershed` with ``markers=None``).

    Returns
    -------
    relabelled : dask.array.Array of ``dtype``, chunked like ``labels``, lazy
        With ``table = rank_table(ids)`` for ``ids`` from :func:`regional_minima_markers`, the
        numbering of ``scipy.ndimage.label`` on the whole array (raster order of each
        component's first pixel).

    Raises
    ------
    TypeError
        Non-integer ``labels``, ``table`` or ``dtype``; ``table`` of another type.
    ValueError
        ``table`` not 1-D, or (numpy) not strictly increasing. At compute time: a label missing
        from ``table``, or more ids than ``dtype`` can number.
    """
    import dask.array as da
    from dask.delayed import Delayed

    labels = as_dask_array(labels, "labels")
    _check_integer(labels, "labels")
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"`dtype` must be an integer dtype, got {dtype!r}") from None
    if dtype.kind not in "iu":
        raise TypeError(f"`dtype` must be an integer dtype, got {dtype}")
    if isinstance(table, Delayed):
        table = da.from_delayed(table, shape=(np.nan,), dtype=np.int64)
    elif isinstance(table, np.ndarray):
        _check_table(table)
        table = da.from_array(table, chunks=-1)
    elif not isinstance(table, da.Array):
        raise TypeError(f"`table` must be a numpy or dask array (rank_table) or a Delayed, "
                        f"got {type(table).__name__}")
    if table.ndim != 1:
        raise ValueError(f"`table` must be a 1-D integer array, got {table.ndim} dimensions")
    if table.dtype.kind not in "iu":
        raise TypeError(f"`table` must have an integer dtype, got {table.dtype}")
    index = tuple(range(labels.ndim))
    return da.blockwise(_relabel_block, index, labels, index, table, (labels.ndim,),
                        concatenate=True, out_dtype=dtype, dtype=dtype,
                        meta=np.empty((0,) * labels.ndim, dtype))


# ----------------------------------------------------------------------------- validation

def _check_numeric(x, name):
    if x.dtype.kind not in "biuf":
        raise TypeError(f"`{name}` must have a boolean, integer or float dtype, got {x.dtype}")


def _check_integer(x, name):
    if x.dtype.kind not in "iu":
        raise TypeError(f"`{name}` must have an integer dtype, got {x.dtype}")


def _check_table(table):
    if table.ndim != 1:
        raise ValueError(f"`table` must be a 1-D integer array, got shape {table.shape}")
    if table.dtype.kind not in "iu":
        raise TypeError(f"`table` must have an integer dtype, got {table.dtype}")
    if table.size > 1 and not np.all(table[1:] > table[:-1]):
        raise ValueError("`table` must be sorted and without repeats (use rank_table)")


def _structure(ndim, connectivity):
    if isinstance(connectivity, (bool, np.bool_)) or not isinstance(connectivity, numbers.Integral):
        raise TypeError(f"`connectivity` must be an int >= 1, got {connectivity!r}")
    if connectivity < 1:
        raise ValueError(f"`connectivity` must be >= 1 (1 = face neighbours, {ndim} = all), "
                         f"got {connectivity}")
    return ndi.generate_binary_structure(ndim, min(int(connectivity), ndim))


# ----------------------------------------------------------------------------- pass 2: faces

def _face_links(pieces, axis, structure):
    """Face tables across every block face normal to ``axis``: a lazy object array, one
    element per face (see :func:`slab_links`)."""
    import dask.array as da

    ends = np.cumsum(pieces.chunks[axis])[:-1]
    take = np.stack([ends - 1, ends], axis=1).ravel()
    slab = pieces[(slice(None),) * axis + (take,)].rechunk({axis: 2})
    if pieces.ndim > 1:
        forward = {j: (0, 0) if j == axis else (0, 1) for j in range(pieces.ndim)}
        slab = da.overlap.overlap(slab, depth=forward, boundary="none")
    links = da.map_blocks(slab_links, slab, axis=axis, structure=structure, dtype=object,
                          meta=np.empty((0,) * pieces.ndim, object),
                          chunks=tuple((1,) * len(c) for c in slab.chunks))
    return da.blockwise(join_links, (), links, tuple(range(pieces.ndim)), concatenate=True,
                        dtype=object, meta=np.empty((), object))


# ----------------------------------------------------------------------------- numbering

def _nonzero_unique(block):
    out = np.empty((1,) * block.ndim, dtype=object)
    out.flat[0] = np.unique(block[block != 0]).astype(np.int64, copy=False)
    return out


def _merge_unique(parts):
    return np.unique(np.concatenate([np.empty(0, np.int64)] + list(parts.ravel())))


def _relabel_block(block, table, out_dtype):
    if table.size > np.iinfo(out_dtype).max:
        raise ValueError(f"{table.size} ids do not fit in dtype {out_dtype}")
    out = np.zeros(block.shape, dtype=out_dtype)
    nz = block != 0
    vals = block[nz]
    pos = np.searchsorted(table, vals)
    ok = pos < table.size
    ok[ok] = table[pos[ok]] == vals[ok]
    if not ok.all():
        raise ValueError(f"label {vals[~ok][0]} is not in `table`")
    out[nz] = pos + 1
    return out
