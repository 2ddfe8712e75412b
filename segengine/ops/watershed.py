"""Marker-based watershed with scikit-image 0.26's exact semantics, compiled.

``watershed`` is a drop-in for :func:`skimage.segmentation.watershed` (same signature,
defaults, flooding order and output); ``watershed_batch`` runs it over the first axis of a
batch, items in parallel threads. Validation lives in the public functions (with
:mod:`segengine.ops._watershed_inputs`); the kernel (``csrc/cpu/watershed*.{h,cpp}``, bound by
``segengine/_cy/_watershed.pyx``) only floods.

Shape of the ops. numpy (and list) inputs are checked with numpy and flooded directly
(:func:`flood_arrays`), numpy out. Tensor inputs are checked from their metadata only and go
through the custom ops ``segengine::watershed`` and ``segengine::watershed_batch`` (so
``torch.compile(fullgraph=True)`` traces the public functions): the CPU kernels here, the CUDA
kernels in :mod:`segengine.ops._watershed_cuda` (a copy to the CPU and back until a GPU
watershed exists). Checks that need the data (NaN, seed counts inside a mask, the
working-set guard) run in the kernels, at call time, as does ``num_threads``.

``tie_order="fast"`` (both functions) floods by (priority, arrival) with the markers
arriving in raster order instead of scikit-image's heap layout: the exact mode's output
whenever no two markers of different labels share a value (e.g. on images with distinct
values), deterministic and independent of the thread count; standard watershed only
(compactness > 0 and watershed lines raise ValueError). Its kernel
(``csrc/cpu/watershed_fast*.{h,cpp}``) turns values into order-preserving integer codes and
gives every in-mask pixel a level (its code's position in sorted order) and a queue slot: a
histogram for 8/16-bit images, a count per distinct value (hash tables) for wider ones with
at most 2**16 distinct values (a float copy or filter of an 8-bit image), a parallel sample
sort (buckets of ~8k pixels sorted in cache) for the others; markers with no unlabelled
in-mask neighbour get no level. The flood scans the levels in increasing order: a pixel
queued above the current level waits in its own slot (levels of more than 16 equal pixels:
slots filled by a counter), pixels clamped to the current level go to a FIFO, so each pixel
costs O(1) and the slots are read in order (the neighbourhoods of pixels a few levels ahead
are prefetched; arriving pixels' labels are kept in their cell words when the markers'
label range allows). Flags, codes, the sort and the queue setup run on ``num_threads`` threads;
the flood itself is serial. Measured (2026-12-03, 2-core Intel Xeon VM,
``python -m benchmarks --op watershed``, scikit-image 0.26 timed in the same run): coins
Sobel map float64 with the tutorial markers 11.0x scikit-image on one thread and 10.1x on
two, float32 11.7x / 13.5x (levels counted per distinct value: 35726 in float64); 128^3
float64 volume 5.9x / 8.8x. On images with many distinct values the serial flood (memory
access in value order: ~90-110 ms of the volume) dominates, so the 10x of issue 13 is
reached on the coins Sobel maps, not on the volumes. Pixels that differ from the exact
mode: 0 on the coins tutorial markers, 0.12 % with region markers on the uint8 Sobel map,
0.35 % on the distance transform with peak markers.

``tie_order="parallel"`` (both functions) uses both cores on one image: a pixel takes the
label of its neighbour of smallest key (priority, steps since the path last rose to that
priority), the first in footprint order among equal keys, which is a pure function of the
image and markers (csrc/cpu/watershed_parallel.h). It differs from the fast order only
where two neighbours of different labels share the smallest key (never on images of
distinct values, where both equal the exact mode). Its kernel cuts the image along its
first axis into one block per thread, floods each block on its own thread with the fast
order's machinery (recording every pixel's key beside its label), repairs the keys across
the faces (a Dijkstra in rounds until no face plane changes), then checks every pixel's
label against its parent's and relabels the exceptions' subtrees in key order.

Departures from scikit-image 0.26 (all documented in :func:`watershed`):

* NaN in ``image`` raises ``ValueError`` (scikit-image floods NaN pixels in an
  unspecified order); ``compactness=inf`` raises ``ValueError``.
* ``connectivity`` below 1 raises ``ValueError`` (scikit-image silently uses no
  neighbours at all).
* With an ``offset`` that is not the centre of the footprint, neighbours beyond the image
  edge are ignored (scikit-image pads by ``offset`` only, so such neighbours wrap to the
  next row or read past the buffer).
* ``markers=None`` also works for float16 and bool images (scikit-image's
  ``local_minima`` rejects them) and an int ``markers`` below 1 raises ``ValueError``.
* More than 2**31 heap pushes: scikit-image's int32 age counter wraps; ours is 64-bit.

Speed. Exactness has a price: scikit-image breaks ties between equal-valued markers by the
layout of its binary heap (markers all enter with age 0), so as long as two markers of
different labels share a value and are still in the heap, the kernel keeps a binary heap with
the very same push/pop rules (16-byte packed keys, cache-aligned, prefetching). After the last
such value it hands over to a bucket queue (8/16-bit images, O(1) per pixel) or a base-256
radix heap (other dtypes). Images whose markers of different labels tie all the way up (e.g.
scikit-image's coins tutorial: two huge marker regions on a quantised Sobel map) therefore run
only ~1.5-2x faster than scikit-image; region/seed markers run ~2-6x faster single-threaded,
and ``watershed_batch`` adds thread parallelism. Compact and watershed-line modes always use
the exact heap (labels are set at pop time). Measure with
``python -m benchmarks --op watershed``.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np
import torch

from segengine.ops._common import op_threads, run_threads
from segengine.ops._library import define, register_fake, register_kernel
from segengine.ops._watershed_inputs import (check_compactness, check_marker_count,
                                             check_marker_tensor, check_memory,
                                             check_tensor_image, check_tie_order, TIE_CODES,
                                             footprint,
                                             footprint_tensor, image_view, is_marker_count, kernel_image,
                                             marker_labels, mask_array, mask_tensor,
                                             minima_connectivity, minima_vectors,
                                             neighbor_vectors, seed_markers, tensor_image,
                                             to_numpy, work_labels, ws_working_set)

__all__ = ["watershed", "watershed_batch", "watershed_levels", "flood_arrays",
           "flood_batch_arrays", "ws_working_set"]


def _ext():
    from segengine._cy import _watershed
    return _watershed


# ----------------------------------------------------------------------------- the flood

def flood_arrays(raw, markers, seed_count, fp, off, minima_conn, mask_u8, compactness, wsl,
                 packed_limit=-1, tie=0, num_threads=1):
    """One watershed on checked numpy arrays: the code after validation, shared by the numpy
    path of :func:`watershed` and its CPU kernel.

    Parameters
    ----------
    raw : (M, N[, ...]) ndarray
        The image as checked by ``image_view`` (any layout; copied for the kernel as needed).
    markers : (M, N[, ...]) integer/bool ndarray or None
        Checked marker labels; None: seeds from `seed_count`, or the local minima.
    seed_count : real or None
        ``markers`` given as a number of seeds (with ``markers`` None).
    fp, off : bool ndarray, int64 ndarray [ndim]
        Footprint and its centre.
    minima_conn : float
        Connectivity of the local minima (``markers`` and ``seed_count`` None).
    mask_u8 : (M, N[, ...]) uint8 C-contiguous ndarray or None
    compactness : float
        >= 0 (0: standard watershed).
    wsl : bool
        Watershed lines.
    packed_limit : int
        Pixel count from which 32/64-bit images use 24-byte heap items (csrc/cpu/watershed.h;
        -1: the default). Tests pass 0 to cover the wide items on small images; the result
        does not depend on it.
    tie : int
        The tie order: 0 exact, 1 fast (csrc/cpu/watershed_fast.h), 2 parallel
        (csrc/cpu/watershed_parallel.h); 1 and 2 standard mode only: `compactness` 0
        and `wsl` False, checked by the caller).
    num_threads : int
        Threads (>= 1) of the fast and parallel tie orders; the result does not depend on it.

    Returns
    -------
    (M, N[, ...]) ndarray
        Labels in the dtype of `markers` (int64 for seeds, int32 for local minima).
    """
    check_memory("watershed", raw, 1, 1, markers if markers is not None else seed_count,
                 mask_u8 is not None, compactness > 0 or wsl)
    img = kernel_image(raw)
    shape = img.shape
    ext = _ext()
    sshape = np.asarray(shape, dtype=np.int64)
    if markers is None and seed_count is None:
        out_dtype = np.dtype(np.int32)
        labels = np.zeros(shape, dtype=np.int32)
        if img.size:
            ext.local_minima_markers(img, mask_u8, labels, sshape, minima_vectors(img.ndim, minima_conn))
    elif markers is None:
        if img.size == 0:
            labels = np.zeros(shape, dtype=np.int64)
        else:
            n_inside = img.size if mask_u8 is None else int(np.count_nonzero(mask_u8))
            labels = seed_markers(shape, seed_count, n_inside, img.size)
        out_dtype = labels.dtype
        labels = work_labels(labels)
    else:
        out_dtype = markers.dtype
        labels = work_labels(markers)
    if tie:
        ext.watershed_fast(img, mask_u8, labels, sshape, neighbor_vectors(fp, off), num_threads,
                           tie == TIE_CODES["parallel"])
    else:
        ext.watershed(img, mask_u8, labels, sshape, neighbor_vectors(fp, off), compactness, wsl,
                      packed_limit)
    return labels if labels.dtype == out_dtype else labels.astype(out_dtype)


def flood_batch_arrays(raw, markers, seed_count, fp, off, minima_conn, mask, compactness,
                       wsl, num_threads, tie=0):
    """:func:`flood_arrays` over the first axis of ``raw`` (B, M, N[, ...]), items in
    ``num_threads`` threads (an int >= 1); `markers` (B, M, N[, ...]) or None; `mask` a bool
    (B, M, N[, ...]) ndarray of any layout (a broadcast view is copied only after the
    working-set guard) or None; `tie`: the tie order's code (as in :func:`flood_arrays`). The code
    after validation, shared by the numpy path of :func:`watershed_batch` and its CPU
    kernel."""
    shape = raw.shape
    spatial = shape[1:]
    B = shape[0]
    check_memory("watershed_batch", raw, B, num_threads,
                 markers if markers is not None else seed_count, mask is not None,
                 compactness > 0 or wsl)
    img = kernel_image(raw)
    mask_u8 = None if mask is None else np.ascontiguousarray(mask).view(np.uint8)
    mvecs = None
    if markers is None and seed_count is None:
        out_dtype = np.dtype(np.int32)
        labels = np.zeros(shape, dtype=np.int32)
        mvecs = minima_vectors(len(spatial), minima_conn)
    elif markers is None:
        size = int(np.prod(spatial))
        labels = np.zeros(shape, dtype=np.int64)
        if size:
            for b in range(B):
                n_inside = size if mask_u8 is None else int(np.count_nonzero(mask_u8[b]))
                labels[b] = seed_markers(spatial, seed_count, n_inside, size)
        out_dtype = labels.dtype
    else:
        out_dtype = markers.dtype
        labels = work_labels(markers)
    _ext().watershed_batch(img, mask_u8, labels, np.asarray(spatial, dtype=np.int64),
                           neighbor_vectors(fp, off), mvecs, compactness, wsl, tie, num_threads)
    return labels if labels.dtype == out_dtype else labels.astype(out_dtype)


# ----------------------------------------------------------------------------- the ops

_watershed_op = define(
    "watershed(Tensor image, Tensor? markers, Tensor? mask, Tensor footprint, int[] offset, "
    "float minima_connectivity, float compactness, bool watershed_line, "
    "float? seed_count=None, int tie=0, int num_threads=0) -> Tensor")

_watershed_batch_op = define(
    "watershed_batch(Tensor images, Tensor? markers, Tensor? mask, Tensor footprint, "
    "int[] offset, float minima_connectivity, float compactness, bool watershed_line, "
    "float? seed_count, int num_threads, int tie=0) -> Tensor")


def _mask_u8(mask: torch.Tensor | None):
    return None if mask is None else np.ascontiguousarray(mask.numpy()).view(np.uint8)


def _label_dtype(markers, seed_count):
    """Output dtype of the ops: the markers', int64 for seeds, int32 for local minima."""
    if markers is not None:
        return markers.dtype
    return torch.int64 if seed_count is not None else torch.int32


@register_kernel("watershed", "cpu")
def watershed_cpu(image, markers, mask, footprint, offset, minima_connectivity, compactness,
                  watershed_line, seed_count=None, tie=0, num_threads=0):
    """The CPU kernel of ``segengine::watershed``: labels of ``image.shape`` (CPU tensors in
    and out; arguments as built by :func:`watershed`); ``num_threads`` (fast and parallel tie orders) 0
    means ``torch.get_num_threads()`` now."""
    out = flood_arrays(tensor_image(image), None if markers is None else markers.numpy(),
                       seed_count, footprint.numpy().astype(bool),
                       np.asarray(offset, dtype=np.int64), minima_connectivity, _mask_u8(mask),
                       compactness, watershed_line, tie=tie,
                       num_threads=run_threads(num_threads))
    return torch.from_numpy(out)


@register_fake("watershed")
def _(image, markers, mask, footprint, offset, minima_connectivity, compactness, watershed_line,
      seed_count=None, tie=0, num_threads=0):
    return image.new_empty(image.shape, dtype=_label_dtype(markers, seed_count))


@register_kernel("watershed_batch", "cpu")
def watershed_batch_cpu(images, markers, mask, footprint, offset, minima_connectivity,
                        compactness, watershed_line, seed_count, num_threads, tie=0):
    """The CPU kernel of ``segengine::watershed_batch``: labels of ``images.shape``;
    ``num_threads`` 0 means ``torch.get_num_threads()`` now."""
    out = flood_batch_arrays(tensor_image(images), None if markers is None else markers.numpy(),
                             seed_count, footprint.numpy().astype(bool),
                             np.asarray(offset, dtype=np.int64), minima_connectivity,
                             None if mask is None else mask.numpy(), compactness, watershed_line,
                             run_threads(num_threads), tie)
    return torch.from_numpy(out)


@register_fake("watershed_batch")
def _(images, markers, mask, footprint, offset, minima_connectivity, compactness, watershed_line,
      seed_count, num_threads, tie=0):
    return images.new_empty(images.shape, dtype=_label_dtype(markers, seed_count))


def _marker_args(markers, shape, device):
    """(markers tensor or None, seed count or None) for the ops."""
    if markers is None:
        return None, None
    if is_marker_count(markers):
        return None, float(check_marker_count(markers))
    if isinstance(markers, torch.Tensor):
        check_marker_tensor(markers, shape)
        return markers.to(device), None
    m, _ = marker_labels(markers, shape)
    if m.dtype.byteorder not in ("=", "|"):
        m = m.astype(m.dtype.newbyteorder("="))
    return torch.from_numpy(np.ascontiguousarray(m)).to(device), None


def _numpy_args(raw, markers, connectivity, offset, compactness, spatial):
    """Checks shared by the numpy paths: (fp, off, compactness, marker array, seed count,
    minima connectivity)."""
    fp, off = footprint(len(spatial), connectivity, offset)
    comp = check_compactness(compactness)
    marr = seed_count = None
    if is_marker_count(markers):
        seed_count = check_marker_count(markers)
    elif markers is not None:
        marr = marker_labels(markers, raw.shape)[0]
    return fp, off, comp, marr, seed_count, minima_connectivity(markers, connectivity)


# ----------------------------------------------------------------------------- public API

class _TensorArgs(NamedTuple):
    markers: Optional[torch.Tensor]
    mask: Optional[torch.Tensor]
    footprint: torch.Tensor
    offset: list
    minima_conn: float
    compactness: float
    watershed_line: bool
    seed_count: Optional[float]
    tie: int
    threads: int


def _tensor_args(image, spatial_ndim, markers, connectivity, offset, mask_t, compactness,
                 watershed_line, tie_order, num_threads) -> _TensorArgs:
    """The op arguments shared by :func:`watershed` and :func:`watershed_batch` on tensors,
    checked from metadata only (``torch.compile`` traces this)."""
    fp, off = footprint_tensor(spatial_ndim, connectivity, offset)
    comp = check_compactness(compactness)
    tie = check_tie_order(tie_order, comp, bool(watershed_line))
    threads = op_threads(num_threads)
    markers_t, seed_count = _marker_args(markers, tuple(image.shape), image.device)
    return _TensorArgs(markers_t, mask_t, fp, off, minima_connectivity(markers, connectivity),
                       comp, bool(watershed_line), seed_count, tie, threads)


def watershed(image, markers=None, connectivity=1, offset=None, mask=None, compactness=0.0,
              watershed_line=False, tie_order="exact", num_threads=None):
    """Find watershed basins in an image flooded from given markers.

    Same signature, defaults and output as :func:`skimage.segmentation.watershed` in
    scikit-image 0.26, computed by a compiled kernel: a binary heap with scikit-image's
    exact tie-breaking (value, then insertion order), switching to a bucket queue for 8- and
    16-bit images once no tie between markers of different labels is left.

    Parameters
    ----------
    image : (M, N[, ...]) ndarray or torch.Tensor, bool, integer or float dtype
        Data array where the lowest value points are labelled first. Integers of 64 bits are
        compared after conversion to float64, as scikit-image does (values beyond 2**53 that
        round to the same float tie and are ordered by insertion). NaN raises ValueError.
        CUDA tensors are copied to the CPU and the result returned on their device.
    markers : int, or (M, N[, ...]) ndarray/tensor of int or bool, optional
        The desired number of basins (regularly spaced seeds, counted inside `mask`), or an
        array marking the basins with the labels to assign (0 means not a marker; negative
        labels are allowed and kept). None (default): the local minima of `image` under
        `connectivity`, labelled like ``scipy.ndimage.label`` (needs an integer
        connectivity).
    connectivity : int or ndarray, optional
        Neighbourhood: an int ``>= 1`` as in ``scipy.ndimage.generate_binary_structure``
        (1: 4/6-neighbours, ndim: 8/26), or a boolean footprint with ``image.ndim``
        dimensions. Default 1.
    offset : array_like of shape (image.ndim,), optional
        Coordinates of the centre of the footprint (default: its middle). Neighbours that
        fall outside the image are ignored.
    mask : (M, N[, ...]) ndarray/tensor of bool, optional
        Only points where mask is True are labelled.
    compactness : float, optional
        Compact watershed when > 0: priority = value + compactness * Euclidean distance to
        the seed. Must be finite. Watershed lines are not drawn in this mode (as in
        scikit-image).
    watershed_line : bool, optional
        If True, a one-pixel wide line of label 0 separates the regions.
    tie_order : {"exact", "fast", "parallel"}, optional
        "exact" (default): scikit-image's output, ties included. "fast": the same flooding
        with a documented tie rule instead of scikit-image's heap layout (see Notes), its
        preparation on ``num_threads`` threads, the flood serial. "parallel": a tie rule
        that lets blocks of the image flood on ``num_threads`` threads at once (see
        Notes). Both: standard watershed only (``compactness`` > 0 or
        ``watershed_line=True`` raise ValueError).
    num_threads : int, optional
        Threads of ``tie_order="fast"`` and ``"parallel"`` (None: ``torch.get_num_threads()``
        when the kernel runs); the result never depends on it. The exact mode is
        single-threaded.

    Returns
    -------
    out : (M, N[, ...]) ndarray or torch.Tensor
        Labels, with the dtype of `markers` (int32 when `markers` is None, int64 when it is
        an int); a tensor on the device of `image` when `image` is a tensor.

    Raises
    ------
    TypeError
        Non-numeric image, non-integer markers, bad connectivity type.
    ValueError
        Shape mismatch of `markers` or `mask`, connectivity < 1, bad footprint or offset,
        NaN in `image`, infinite compactness, a `tie_order` other than
        "exact"/"fast"/"parallel", ``tie_order="fast"`` or ``"parallel"`` with
        ``compactness`` > 0 or ``watershed_line=True``.

    Notes
    -----
    Empty images (a zero-length axis) give an empty label array. See the module docstring
    for the few departures from scikit-image.

    ``tie_order="fast"`` is a stable priority flood: every queued pixel has the priority
    max(its value, the priority of the pixel that reached it) (markers: their value);
    pixels leave the queue in order of (priority, arrival), markers arriving first in
    raster (C) order, then each pixel when it is first reached; a pixel leaving the queue
    gives its label to its unlabelled in-mask neighbours in footprint order. scikit-image
    applies the same rule except that all its markers arrive "at once" (age 0) and leave
    in its binary heap's layout order. Hence the fast result equals the exact one whenever
    no two markers of different labels share a value (for instance when all values are
    distinct), and otherwise differs at most where such tied fronts meet (measured on the
    coins tutorial markers: see ``python -m benchmarks --op watershed``). The result is
    deterministic and independent of ``num_threads``. See the module docstring for how it
    is computed.

    ``tie_order="parallel"`` gives every pixel reached from a marker a key (C, D): C the
    smallest, over paths from a marker, of the largest value on the path (a marker's own
    value for a marker), D the steps since that path last rose to C (markers 0; a pixel
    above its lowest neighbour's C: 1; otherwise that neighbour's D + 1). A pixel takes the
    label of its neighbour of smallest key, the first in footprint order among equal keys.
    This is scikit-image's rule wherever the water reaches a pixel from one neighbour first;
    it differs from the fast order only where two neighbours of different labels share the
    smallest key (never when all values are distinct: then all three orders agree). The
    result is a pure function of the image, so it is deterministic and independent of
    ``num_threads`` and of how the kernel cuts the image into blocks.

    References
    ----------
    .. [1] P. Neubert and P. Protzel, "Compact Watershed and Preemptive SLIC: On Improving
           Trade-offs of Superpixel Segmentation Algorithms", ICPR 2014.
    .. [2] P. J. Soille and M. M. Ansoult, "Automated basin delineation from digital
           elevation models using mathematical morphology", Signal Processing 20(2), 1990.

    Examples
    --------
    >>> import numpy as np, segengine
    >>> img = np.array([[0, 1, 2, 1, 0]], dtype=np.uint8)
    >>> segengine.watershed(img, np.array([[1, 0, 0, 0, 2]]))
    array([[1, 1, 1, 2, 2]])
    """
    if isinstance(image, torch.Tensor):
        check_tensor_image(image)
        a = _tensor_args(image, image.dim(), markers, connectivity, offset,
                         mask_tensor(mask, tuple(image.shape), image.device), compactness,
                         watershed_line, tie_order, num_threads)
        return _watershed_op(image, a.markers, a.mask, a.footprint, a.offset, a.minima_conn,
                             a.compactness, a.watershed_line, a.seed_count, a.tie, a.threads)
    raw = image_view(image)
    mask_u8 = mask_array(mask, raw.shape)
    threads = op_threads(num_threads)
    fp, off, comp, marr, seed_count, minima_conn = _numpy_args(raw, markers, connectivity, offset,
                                                               compactness, raw.shape)
    tie = check_tie_order(tie_order, comp, bool(watershed_line))
    return flood_arrays(raw, marr, seed_count, fp, off, minima_conn, mask_u8, comp,
                        bool(watershed_line), tie=tie,
                        num_threads=run_threads(threads) if tie else 1)


def watershed_batch(images, markers=None, connectivity=1, offset=None, mask=None,
                    compactness=0.0, watershed_line=False, num_threads=None, tie_order="exact"):
    """:func:`watershed` over the first axis of a batch, items in parallel threads.

    Parameters
    ----------
    images : (B, M, N[, ...]) ndarray or torch.Tensor
        B images of one shape and dtype.
    markers : None, int, or (B, M, N[, ...]) integer/bool array or tensor
        Per item, as `markers` of :func:`watershed` (an int gives every item that many
        regularly spaced seeds, counted inside its own mask).
    connectivity, offset, compactness, watershed_line
        As in :func:`watershed`, shared by every item.
    mask : None, (B, M, N[, ...]) or (M, N[, ...]) bool array or tensor
        Per-item masks, or one mask for every item.
    num_threads : int, optional
        Threads over items; None means ``torch.get_num_threads()`` when the kernel runs. With
        ``tie_order="fast"`` or ``"parallel"`` a batch of one item gives them to that item.
    tie_order : {"exact", "fast", "parallel"}, optional
        As in :func:`watershed`, shared by every item.

    Returns
    -------
    out : (B, M, N[, ...]) ndarray or torch.Tensor
        ``out[b] == watershed(images[b], markers[b], ..., mask=mask[b])`` for every b.
    """
    if isinstance(images, torch.Tensor):
        check_tensor_image(images, min_ndim=2, name="images")
        shape = tuple(images.shape)
        a = _tensor_args(images, images.dim() - 1, markers, connectivity, offset,
                         mask_tensor(mask, shape, images.device, broadcast_from=shape[1:]),
                         compactness, watershed_line, tie_order, num_threads)
        return _watershed_batch_op(images, a.markers, a.mask, a.footprint, a.offset,
                                   a.minima_conn, a.compactness, a.watershed_line, a.seed_count,
                                   a.threads, a.tie)
    raw = image_view(images)
    if raw.ndim < 2:
        raise ValueError(f"`images` must have shape (B, *spatial) with at least one spatial "
                         f"dimension, got shape {raw.shape}")
    shape = raw.shape
    spatial = shape[1:]
    mk = None
    if mask is not None:
        mk = np.asarray(to_numpy(mask, "mask"), dtype=bool)
        if mk.shape == tuple(spatial):
            mk = np.broadcast_to(mk, shape)
        if mk.shape != shape:
            raise ValueError(f"`mask` (shape {mk.shape}) must have the shape of `images` "
                             f"{shape} or of one image {spatial}")
    threads = op_threads(num_threads)
    fp, off, comp, marr, seed_count, minima_conn = _numpy_args(raw, markers, connectivity, offset,
                                                               compactness, spatial)
    tie = check_tie_order(tie_order, comp, bool(watershed_line))
    return flood_batch_arrays(raw, marr, seed_count, fp, off, minima_conn, mk, comp,
                              bool(watershed_line), run_threads(threads), tie)


def watershed_levels(image, markers, level_value, connectivity=1, mask=None):
    """Standard-mode :func:`watershed` on numpy arrays that also returns each pixel's
    flooding level (the building block of ``segengine.dask``'s seam repair).

    Parameters
    ----------
    image : (M, N[, ...]) ndarray, bool, integer or float dtype
        Flooding priorities, exactly as in :func:`watershed`.
    markers : (M, N[, ...]) ndarray of int
        Seeds (nonzero), as in :func:`watershed`.
    level_value : (M, N[, ...]) ndarray of float64
        The value whose path maximum is the level (usually ``image`` itself).
    connectivity : int, optional
    mask : (M, N[, ...]) bool ndarray, optional

    Returns
    -------
    labels : (M, N[, ...]) int64 ndarray
        The same labels as ``watershed(image, markers, connectivity, mask=mask)``.
    levels : (M, N[, ...]) float64 ndarray
        Maximum of `level_value` along the path by which the flood reached each pixel
        (seeds: their own value; unreached or masked-out pixels: +inf).
    """
    raw = image_view(image)
    shape = raw.shape
    fp, off = footprint(raw.ndim, connectivity, None)
    mask_u8 = mask_array(mask, shape)
    m, _ = marker_labels(markers, shape)
    lv = np.ascontiguousarray(level_value, dtype=np.float64)
    if lv.shape != shape:
        raise ValueError(f"`level_value` (shape {lv.shape}) must have the shape of `image` {shape}")
    check_memory("watershed", raw, 1, 1, m, mask is not None, False)
    img = kernel_image(raw)
    labels = np.array(m, dtype=np.int64, order="C", copy=True)
    levels = np.empty(shape, dtype=np.float64)
    _ext().watershed_levels(img, mask_u8, labels, np.asarray(shape, dtype=np.int64),
                            neighbor_vectors(fp, off), lv.reshape(-1), levels.reshape(-1))
    return labels, levels


from segengine.ops import _watershed_cuda  # noqa: E402,F401  (registers the CUDA kernels)
