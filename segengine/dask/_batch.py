"""Graph cuts and fused upsampling over a batch axis of dask arrays: each block is a batch
of whole items, so every item gets exactly the single-process op's result."""

from __future__ import annotations

import functools
import numbers

import numpy as np

from segengine.dask._common import as_dask_array

__all__ = ["graphcut", "alpha_expansion", "upsample_argmax"]

_THREADS_DOC = """num_threads : int, optional
        Threads of each block's op (None: the op's default, ``torch.get_num_threads()``
        where the block runs). ``dask.distributed`` worker processes start with
        ``OMP_NUM_THREADS=1``, so there the op runs on one thread: with one dask thread per
        worker, pass ``num_threads`` = cores per worker. The threaded scheduler runs one
        block per core, each with torch's default thread count: pass ``num_threads=1``
        there to avoid oversubscription."""


# --------------------------------------------------------------------------- plumbing

def whole_items(x, like=None):
    """``x`` with every axis but the batch axis (0) in one chunk, and the batch chunks of
    ``like`` when given (graph cuts and alpha-expansion are global over an item: a block
    must hold whole items)."""
    chunks = {a: -1 for a in range(1, x.ndim)}
    if like is not None:
        chunks[0] = like.chunks[0]
    return x.rechunk(chunks)


def _batch_blockwise(func, arrays, out_ndim, out_sizes, dtype, token):
    """``func(*blocks)`` per batch chunk; every array is ``[B, ...]`` with one chunk per
    non-batch axis. The output ``[B, *out_sizes]`` (``out_ndim = 1 + len(out_sizes)``) has
    the batch chunks of the inputs and one chunk elsewhere. ``dtype=object`` lets a block
    return a tuple (split with :func:`_take`)."""
    import dask.array as da
    out_ind = ("b",) + tuple(f"o{i}" for i in range(out_ndim - 1))
    args = []
    for j, a in enumerate(arrays):
        args += [a, ("b",) + tuple(f"a{j}_{i}" for i in range(a.ndim - 1))]
    meta = np.empty((0,) * out_ndim, dtype=dtype)
    return da.blockwise(func, out_ind, *args, new_axes=dict(zip(out_ind[1:], out_sizes)),
                        dtype=dtype, meta=meta, concatenate=True, token=token)


def _item(block, index):
    """Element ``index`` of a tuple block (dask hands contracted axes over as nested lists)."""
    while isinstance(block, list):
        block = block[0]
    return block[index]


def _take(packed, index, dtype, keep_ndim):
    """Output ``index`` of a blockwise result whose blocks are tuples, keeping the first
    ``keep_ndim`` axes (the others have one chunk and are dropped)."""
    import dask.array as da
    ind = tuple(f"x{i}" for i in range(packed.ndim))
    meta = np.empty((0,) * keep_ndim, dtype=dtype)
    # concatenate=False: a tuple block must not be concatenated (dask would take it for a
    # list of blocks)
    return da.blockwise(_item, ind[:keep_ndim], packed, ind, index, None, dtype=dtype, meta=meta,
                        concatenate=False, token=f"{packed.name.rsplit('-', 1)[0]}-{index}")


def _check_batch(x, name, B, shape_tail=None, layout=""):
    if x.ndim < 1 or x.shape[0] != B or (shape_tail is not None and tuple(x.shape[1:]) != shape_tail):
        want = f"[{B}, {', '.join(map(str, shape_tail))}]" if shape_tail is not None else f"[{B}, ...]"
        raise ValueError(f"`{name}` must have shape {want}{layout}, got {tuple(x.shape)}")


def _tensor(block):
    from segengine.ops._common import as_tensor
    return as_tensor(np.asarray(block), "block")[0]


# --------------------------------------------------------------------------- graphcut

def _graphcut_block(unary, *rest, has_pairwise, has_image, pairwise, **kwargs):
    import segengine
    rest = list(rest)
    pw = _tensor(rest.pop(0)) if has_pairwise else pairwise
    img = _tensor(rest.pop(0)) if has_image else None
    return segengine.graphcut(_tensor(unary), pw, image=img, **kwargs).numpy()


def graphcut(unary, pairwise=1.0, image=None, beta=None, connectivity=None,
             blackbox_lambda: float = 20.0, num_threads=None):
    """Binary graph cut (:func:`segengine.graphcut`) of every item of a batch, over dask arrays.

    Parameters
    ----------
    unary : dask.array.Array or numpy.ndarray ``[B, 2, H, W]`` or ``[B, 2, D, H, W]``
        float32 or float64 costs.
    pairwise : float, or dask/numpy array ``[B, K, *spatial]``
        As in :func:`segengine.graphcut` (K forward neighbour offsets of ``connectivity``).
    image : dask/numpy array ``[B, C', *spatial]``, optional
        Contrast-sensitive weights, as in :func:`segengine.graphcut`.
    beta, connectivity, blackbox_lambda
        As in :func:`segengine.graphcut`; checked when this function is called.
    {threads}

    Returns
    -------
    dask.array.Array
        Lazy labels ``[B, *spatial]`` in {{0, 1}}, ``unary``'s dtype, with ``unary``'s batch
        chunks.

    Raises
    ------
    TypeError
        An array argument neither dask nor numpy, or non-float ``unary``.
    ValueError
        Mismatched shapes, bad keyword values (the op's own checks, run once on a one-pixel
        input). NaN/Inf or negative weights in the data raise when the blocks are computed.

    Notes
    -----
    Chunks may split only the batch axis: the min cut of an item is global, so the other
    axes are **rechunked** to one chunk (a block holds ``batch chunk x one item``; choose
    the batch chunks so that fits a worker). ``pairwise`` and ``image`` follow ``unary``'s
    batch chunks. Each block calls :func:`segengine.graphcut` on CPU tensors made from its
    numpy blocks, so every item equals the single-process result exactly.
    """
    unary = as_dask_array(unary, "unary")
    if unary.dtype.kind != "f":
        raise TypeError(f"`unary` must have a floating-point dtype, got {unary.dtype}")
    if unary.ndim not in (4, 5) or unary.shape[1] != 2:
        raise ValueError(f"`unary` must have shape [B, 2, H, W] or [B, 2, D, H, W], got {tuple(unary.shape)}")
    B, spatial = unary.shape[0], tuple(unary.shape[2:])
    nd = len(spatial)
    from segengine.ops._grid import check_connectivity, num_offsets
    conn = check_connectivity(nd, connectivity)
    K = num_offsets(nd, conn)
    arrays = [whole_items(unary)]
    if isinstance(pairwise, np.ndarray) and pairwise.ndim == 0:
        pairwise = float(pairwise)   # the op takes 0-d tensors as scalars too
    has_pw = not isinstance(pairwise, numbers.Number)
    if has_pw:
        pw = as_dask_array(pairwise, "pairwise")
        if pw.ndim == 0:
            raise TypeError("`pairwise` must be a number or a [B, K, *spatial] array; pass a "
                            "0-d array as float(pairwise)")
        _check_batch(pw, "pairwise", B, (K,) + spatial, f" (K={K} for connectivity {conn})")
        arrays.append(whole_items(pw, arrays[0]))
    if image is not None:
        img = as_dask_array(image, "image")
        if img.ndim != unary.ndim or img.shape[0] != B or tuple(img.shape[2:]) != spatial:
            raise ValueError(f"`image` must have shape [B, C', *spatial] = "
                             f"[{B}, C', {', '.join(map(str, spatial))}], got {tuple(img.shape)}")
        arrays.append(whole_items(img, arrays[0]))
    kwargs = dict(beta=beta, connectivity=connectivity, blackbox_lambda=blackbox_lambda,
                  num_threads=num_threads)
    # the op's own checks of the keywords (and its output dtype) on a one-pixel problem
    import segengine
    one = (1,) * nd
    dry = segengine.graphcut(
        _tensor(np.zeros((1, 2) + one, unary.dtype)),
        _tensor(np.zeros((1, K) + one, pw.dtype)) if has_pw else pairwise,
        image=_tensor(np.zeros((1, img.shape[1]) + one, img.dtype)) if image is not None else None,
        **kwargs)
    block = functools.partial(_graphcut_block, has_pairwise=has_pw, has_image=image is not None,
                              pairwise=None if has_pw else pairwise, **kwargs)
    return _batch_blockwise(block, arrays, 1 + nd, spatial, dry.numpy().dtype, "graphcut")


graphcut.__doc__ = graphcut.__doc__.format(threads=_THREADS_DOC)


# --------------------------------------------------------------------------- alpha-expansion

def _expansion_block(unary, *rest, has_edges, has_init, **kwargs):
    import segengine
    rest = list(rest)
    edges = rest.pop(0) if has_edges else None
    init = rest.pop(0) if has_init else None
    labels = np.empty((unary.shape[0],) + unary.shape[2:], dtype=np.int64)
    energy = np.empty(unary.shape[0], dtype=np.float64)
    for i in range(unary.shape[0]):
        labels[i], energy[i] = segengine.alpha_expansion(
            np.asarray(unary[i]), edge_weights=None if edges is None else np.asarray(edges[i]),
            init=None if init is None else np.asarray(init[i]), **kwargs)
    return labels, energy


def alpha_expansion(unary, pairwise=1.0, edge_weights=None, connectivity=None, max_cycles=None,
                    init=None, label_order=None, num_threads=None):
    """Alpha-expansion (:func:`segengine.alpha_expansion`) of every item of a batch, over
    dask arrays.

    Parameters
    ----------
    unary : dask.array.Array or numpy.ndarray ``[B, C, H, W]`` or ``[B, C, D, H, W]``
        Real costs ``unary[b, c, p]``.
    pairwise : float or numpy array ``[C, C]``
        Shared by all items (Potts weight or label-cost matrix, as in the op).
    edge_weights : dask/numpy array ``[B, K, *spatial]``, optional
        Per item, as the op's ``[K, *spatial]``.
    connectivity, max_cycles, label_order
        As in :func:`segengine.alpha_expansion`, shared by all items.
    init : dask/numpy integer array ``[B, *spatial]``, optional
        Initial labelling per item.
    {threads}

    Returns
    -------
    labels : dask.array.Array, int64 ``[B, *spatial]``
    energy : dask.array.Array, float64 ``[B]``
        Lazy, with ``unary``'s batch chunks. Computing both in one ``dask.compute`` solves
        each block once.

    Raises
    ------
    TypeError
        An array argument neither dask nor numpy (``pairwise``: not a number or numpy
        array), non-numeric ``unary`` or non-integer ``init``.
    ValueError
        Mismatched shapes or bad keyword values (the op's own checks, run once on a
        one-pixel input). NaN/Inf, labels out of range and pairwise matrices that some
        item's expansion moves cannot represent raise when the blocks are computed.

    Notes
    -----
    segengine's op is not batched: each block loops over its items. Chunks may split only
    the batch axis; the other axes are **rechunked** to one chunk (the moves are global
    over an item). Every item equals the single-process op's result (for float costs with
    several equal-energy cuts, as the op itself, up to the choice among them).
    """
    import segengine
    unary = as_dask_array(unary, "unary")
    if unary.dtype.kind not in "biuf":
        raise TypeError(f"`unary` must be real numeric, got dtype {unary.dtype}")
    if unary.ndim not in (4, 5):
        raise ValueError(f"`unary` must have shape [B, C, H, W] or [B, C, D, H, W], got {tuple(unary.shape)}")
    B, C, spatial = unary.shape[0], unary.shape[1], tuple(unary.shape[2:])
    nd = len(spatial)
    from segengine.ops._grid import check_connectivity, num_offsets
    conn = check_connectivity(nd, connectivity)
    K = num_offsets(nd, conn)
    import dask.array as da
    if isinstance(pairwise, da.Array) or not isinstance(pairwise, (numbers.Number, np.ndarray)):
        raise TypeError(f"`pairwise` must be a number or a numpy [C, C] array (sent to every "
                        f"block), got {type(pairwise).__name__}")
    arrays = [whole_items(unary)]
    if edge_weights is not None:
        ew = as_dask_array(edge_weights, "edge_weights")
        _check_batch(ew, "edge_weights", B, (K,) + spatial, f" (K={K} for connectivity {conn})")
        arrays.append(whole_items(ew, arrays[0]))
    if init is not None:
        ini = as_dask_array(init, "init")
        _check_batch(ini, "init", B, spatial)
        if ini.dtype.kind not in "iu":
            raise TypeError(f"`init` must be an integer array, got {ini.dtype}")
        arrays.append(whole_items(ini, arrays[0]))
    if label_order is not None:
        label_order = np.asarray(label_order)
    kwargs = dict(pairwise=pairwise, connectivity=connectivity, max_cycles=max_cycles,
                  label_order=label_order, num_threads=num_threads)
    # the op's checks of the keywords on a one-pixel problem; its initial label is one the
    # moves visit, so the representability check sees no label a real item would not
    order = np.arange(C) if label_order is None else label_order.reshape(-1)
    first = int(order[0]) if order.size and order.dtype.kind in "iu" and 0 <= order[0] < C else 0
    one = (1,) * nd
    segengine.alpha_expansion(
        np.zeros((C,) + one, unary.dtype),
        edge_weights=np.ones((K,) + one, ew.dtype) if edge_weights is not None else None,
        init=np.full(one, first, ini.dtype) if init is not None else None, **kwargs)
    block = functools.partial(_expansion_block, has_edges=edge_weights is not None,
                              has_init=init is not None, **kwargs)
    packed = _batch_blockwise(block, arrays, 1 + nd, spatial, object, "alpha_expansion")
    labels = _take(packed, 0, np.int64, 1 + nd)
    energy = _take(packed, 1, np.float64, 1)
    return labels, energy


alpha_expansion.__doc__ = alpha_expansion.__doc__.format(threads=_THREADS_DOC)


# --------------------------------------------------------------------------- upsample_argmax

def _upsample_block(logits, **kwargs):
    import segengine
    return segengine.upsample_argmax(np.asarray(logits), **kwargs)


def upsample_argmax(logits, size=None, scale_factor=None, align_corners: bool = False,
                    return_confidence: bool = False, num_threads=None):
    """Fused bilinear upsampling + argmax (:func:`segengine.upsample_argmax`) over the batch
    chunks of a dask array.

    Parameters
    ----------
    logits : dask.array.Array or numpy.ndarray ``[B, C, h, w]``
        float16, float32 or float64.
    size, scale_factor, align_corners, return_confidence
        As in :func:`segengine.upsample_argmax` (exactly one of ``size``, ``scale_factor``).
    {threads}

    Returns
    -------
    labels : dask.array.Array, int64 ``[B, H, W]``
    confidence : dask.array.Array, float32 ``[B, H, W]``
        Only with ``return_confidence=True``. Lazy, with ``logits``' batch chunks.

    Raises
    ------
    TypeError
        ``logits`` neither dask nor numpy, or not floating point.
    ValueError
        Bad shape, ``size``/``scale_factor`` (the op's own rules) or empty logits.

    Notes
    -----
    Chunks may split only the batch axis: the class and spatial axes are **rechunked** to
    one chunk (an output row needs all classes; splitting ``h, w`` would need a one-pixel
    halo and a source-index shift per tile, for no gain over batch chunks). Every item
    equals the single-process op's result exactly.
    """
    from segengine.ops._common import check_threads
    from segengine.ops.upsample import output_size
    logits = as_dask_array(logits, "logits")
    if logits.ndim != 4:
        raise ValueError(f"`logits` must be [B, C, h, w], got shape {tuple(logits.shape)}")
    if logits.dtype.kind != "f":
        raise TypeError(f"`logits` must have a floating-point dtype, got {logits.dtype}")
    if 0 in logits.shape:
        raise ValueError(f"`logits` must not be empty, got shape {tuple(logits.shape)}")
    H, W, _, _ = output_size(logits.shape[2], logits.shape[3], size, scale_factor)
    check_threads(num_threads)
    block = functools.partial(_upsample_block, size=size, scale_factor=scale_factor,
                              align_corners=bool(align_corners),
                              return_confidence=bool(return_confidence), num_threads=num_threads)
    arrays = [whole_items(logits)]
    if not return_confidence:
        return _batch_blockwise(block, arrays, 3, (H, W), np.int64, "upsample_argmax")
    packed = _batch_blockwise(block, arrays, 3, (H, W), object, "upsample_argmax")
    return _take(packed, 0, np.int64, 3), _take(packed, 1, np.float32, 3)


upsample_argmax.__doc__ = upsample_argmax.__doc__.format(threads=_THREADS_DOC)
