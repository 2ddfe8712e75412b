"""Marker-based watershed with scikit-image 0.26's exact semantics, compiled.

``watershed`` is a drop-in for :func:`skimage.segmentation.watershed` (same signature,
defaults, flooding order and output); ``watershed_batch`` runs it over the first axis of a
batch, items in parallel threads. Validation lives here; the kernel
(``csrc/cpu/watershed.cpp``) only floods.

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

import numbers
from typing import Optional

import numpy as np
import torch
from scipy import ndimage as ndi

from segengine.ops._common import resolve_threads
from segengine.ops._memory import check_working_set

__all__ = ["watershed", "watershed_batch", "watershed_levels"]


def _ext():
    from segengine._cy import _watershed
    return _watershed


# ----------------------------------------------------------------------------- conversions

def _to_numpy(x, name):
    """numpy view of an array-like or tensor (tensors are detached and moved to the CPU)."""
    if isinstance(x, torch.Tensor):
        t = x.detach()
        if t.device.type != "cpu":
            t = t.cpu()
        if t.dtype in (torch.bfloat16,):
            t = t.float()
        if t.is_complex():
            raise TypeError(f"`{name}` must be real, got a tensor of dtype {x.dtype}")
        return t.numpy()
    return np.asanyarray(x)


def _image_view(image):
    """The image as a numpy array (a view where possible), dtype and rank checked."""
    img = _to_numpy(image, "image")
    if img.dtype == object or img.dtype.kind not in "biuf":
        raise TypeError(f"`image` must have a boolean, integer or float dtype, got {img.dtype}")
    if img.ndim < 1:
        raise ValueError(f"`image` must have at least one dimension, got shape {img.shape}")
    if img.dtype.kind == "f" and img.dtype.itemsize > 8:
        raise TypeError(f"`image` dtype {img.dtype} is not supported (use float32 or float64)")
    return img


def _image_array(image):
    """C-contiguous image in a dtype the kernel reads."""
    return _kernel_image(_image_view(image))


def _kernel_dtype(dtype):
    if dtype == np.bool_:
        return np.dtype(np.uint8)
    if dtype.kind == "f" and dtype.itemsize < 4:
        return np.dtype(np.float32)
    return dtype.newbyteorder("=")


def _kernel_image(img):
    """C-contiguous copy (or view) of a checked image in a dtype the kernel reads."""
    if img.dtype == np.bool_:
        img = np.ascontiguousarray(img).view(np.uint8)
    elif img.dtype == np.float16 or (img.dtype.kind == "f" and img.dtype.itemsize < 4):
        img = img.astype(np.float32)  # exact
    img = np.ascontiguousarray(img)
    if img.dtype.byteorder not in ("=", "|"):
        img = img.astype(img.dtype.newbyteorder("="))
    return img


# ----------------------------------------------------------------------------- neighbourhood

def _footprint(ndim, connectivity, offset):
    """(footprint bool array, offset int array) as scikit-image's _validate_connectivity."""
    if connectivity is None:
        connectivity = 1
    if isinstance(connectivity, torch.Tensor):
        connectivity = connectivity.cpu().numpy()
    if np.isscalar(connectivity):
        if isinstance(connectivity, (bool, np.bool_)) or not isinstance(connectivity, numbers.Real):
            raise TypeError(f"`connectivity` must be a number >= 1 or a footprint array, "
                            f"got {connectivity!r}")
        if not connectivity >= 1:  # also catches NaN
            raise ValueError(f"`connectivity` must be >= 1 (1 = face neighbours, {ndim} = all), "
                             f"got {connectivity!r}")
        fp = ndi.generate_binary_structure(ndim, connectivity)
    else:
        fp = np.array(connectivity, dtype=bool)
        if fp.ndim != ndim:
            raise ValueError(f"`connectivity` footprint must have {ndim} dimensions like `image`, "
                             f"got shape {fp.shape}")
    if offset is None:
        if any(s % 2 == 0 for s in fp.shape):
            raise ValueError(f"`connectivity` footprint of shape {fp.shape} has no unambiguous "
                             "centre: give odd sizes or an `offset`")
        off = np.array(fp.shape) // 2
    else:
        off = np.asarray(offset).astype(np.int64).ravel()
        if off.shape != (ndim,):
            raise ValueError(f"`offset` must have {ndim} entries, got {np.asarray(offset).shape}")
        if np.any(off < 0) or np.any(off >= np.array(fp.shape)):
            raise ValueError(f"`offset` {tuple(off)} lies outside the footprint of shape {fp.shape}")
    return fp, off


def _neighbor_vectors(fp, center):
    """Neighbour offset vectors [k, ndim] in scikit-image's visiting order: footprint entries
    in C order, stably sorted by Euclidean length, the first (normally the centre) dropped."""
    if fp.size == 0 or not fp.any():
        return np.zeros((0, fp.ndim), dtype=np.int64)
    vecs = np.stack([idx - c for idx, c in zip(np.nonzero(fp), center)], axis=-1).astype(np.int64)
    dist = np.sqrt(np.sum(vecs.astype(np.float64) ** 2, axis=1))
    vecs = vecs[np.argsort(dist, kind="stable")]
    return np.ascontiguousarray(vecs[1:])


# ----------------------------------------------------------------------------- markers

def _regular_seeds(shape, n_points):
    """~n_points regularly spaced seeds labelled 1..k in C order (skimage.util.regular_seeds)."""
    shape = np.asarray(shape)
    ndim = len(shape)
    order = np.argsort(np.argsort(shape))
    dims = np.sort(shape)
    size = float(np.prod(shape))
    if size <= n_points:
        slices = (slice(None),) * ndim
    else:
        step = np.full(ndim, (size / n_points) ** (1.0 / ndim), dtype=np.float64)
        if (dims < step).any():
            for d in range(ndim):
                step[d] = dims[d]
                rest = float(np.prod(dims[d + 1:]))
                step[d + 1:] = (rest / n_points) ** (1.0 / (ndim - d - 1))
                if (dims >= step).all():
                    break
        starts = (step // 2).astype(int)
        steps = np.round(step).astype(int)
        sl = [slice(a, None, b) for a, b in zip(starts, steps)]
        slices = tuple(sl[i] for i in order)
    seeds = np.zeros(tuple(int(s) for s in shape), dtype=np.int64)
    k = seeds[slices].size
    seeds[slices] = 1 + np.arange(k).reshape(seeds[slices].shape)
    return seeds


def _is_marker_count(markers):
    return not isinstance(markers, (np.ndarray, list, tuple, torch.Tensor))


def _seed_markers(shape, count, n_inside, size):
    if isinstance(count, (bool, np.bool_)) or not isinstance(count, numbers.Real):
        raise TypeError(f"`markers` must be None, an int or an integer array, got {type(count).__name__}")
    if n_inside == 0:
        raise ValueError("`markers` as a number of seeds needs a `mask` with at least one True pixel")
    n = int(count / (n_inside / size))
    if n < 1:
        raise ValueError(f"`markers` as a number of seeds must be >= 1, got {count!r}")
    return _regular_seeds(shape, n)


def _marker_labels(markers, shape):
    """Marker array checked for dtype and shape; returns (array, output dtype)."""
    m = _to_numpy(markers, "markers")
    # shape first: scikit-image raises ValueError for a wrong shape whatever the dtype
    if m.shape != tuple(shape):
        raise ValueError(f"`markers` (shape {m.shape}) must have the same shape as `image` "
                         f"(shape {tuple(shape)})")
    if m.dtype.kind not in "biu":
        raise TypeError(f"`markers` must be an integer (or boolean) label array, got dtype {m.dtype}")
    return m, m.dtype


def _work_labels(m):
    """Contiguous int32/int64 copy of the markers the kernel overwrites (bijective cast)."""
    return np.array(m, dtype=np.int32 if m.dtype.itemsize <= 4 else np.int64, order="C", copy=True)


def _mask_array(mask, shape, name="mask"):
    if mask is None:
        return None
    m = _to_numpy(mask, name)
    m = np.asarray(m, dtype=bool)
    if m.shape != tuple(shape):
        raise ValueError(f"`{name}` (shape {m.shape}) must have the same shape as `image` "
                         f"(shape {tuple(shape)})")
    return np.ascontiguousarray(m).view(np.uint8)


def _check_compactness(compactness):
    try:
        c = float(compactness)
    except (TypeError, ValueError):
        raise TypeError(f"`compactness` must be a float, got {compactness!r}") from None
    if c == np.inf:
        raise ValueError("`compactness` must be finite, got inf")
    return c if c > 0 else 0.0  # scikit-image: compact watershed only when > 0


def _finish(labels, out_dtype, like):
    out = labels if labels.dtype == out_dtype else labels.astype(out_dtype)
    if isinstance(like, torch.Tensor):
        return torch.from_numpy(out).to(like.device)
    return out


# ----------------------------------------------------------------------------- memory

def _image_copy_bytes(img):
    """Bytes per pixel of the kernel's copy of the image (0 when it reads the input as is)."""
    kd = _kernel_dtype(img.dtype)
    if img.dtype == kd and img.flags.c_contiguous:
        return 0
    return kd.itemsize


def _label_bytes(markers):
    """Bytes per pixel of the label arrays: the kernel's int32/int64 work copy, the cast back
    to the markers' dtype and a contiguous copy; ``markers`` is None, an int (seed count) or a
    checked marker array."""
    if markers is None:
        return 4
    if not isinstance(markers, np.ndarray):
        return 16  # int64 seeds, then their work copy
    work = 4 if markers.dtype.itemsize <= 4 else 8
    size = markers.dtype.itemsize
    return work + (size if markers.dtype != np.dtype(f"int{8 * work}") else 0) + \
        (size if not markers.flags.c_contiguous else 0)


def ws_working_set(n_items, item_pixels, concurrent, image_copy, labels, mask, exact_heap,
                   wide_image=False):
    """Estimated peak bytes of a watershed call (csrc/cpu/watershed.cpp).

    Whole batch, per pixel: the image copy, the label arrays, the mask (1). Per item being
    flooded (``concurrent`` at a time): flags (1) and local-minimum state (1), and the
    priority queue, which holds at most every pixel once. Standard mode: 16-byte heap items in
    an array grown by doubling (old and new copies coexist while it grows, the new one may be
    twice the size needed), then the items left when the exact-tie phase ends are moved to the
    bucket or radix queue, itself grown by doubling: taken as 64 bytes per pixel, 80 for
    64-bit images (wider radix codes). Compact and watershed-line modes (``exact_heap``) keep
    a std::vector heap of 32-byte items: 128. Noise images come near these worst cases.
    Measured (2026-12, ``ru_maxrss``, 2000-3000 px square, sparse seeds, dense markers or
    markers=None): standard mode 36-67 bytes per pixel for uint8/float32 noise, 63-85 for
    float64 noise, 27-49 for a smooth float32 image (this estimate: 70, 86, 70); compact and
    watershed-line mode 96-134 (estimate 134).
    """
    queue = 128 if exact_heap else (80 if wide_image else 64)
    per_pixel = image_copy + labels + (1 if mask else 0)
    return n_items * item_pixels * per_pixel + min(concurrent, n_items) * item_pixels * (2 + queue)


def _check_memory(what, img, n_items, concurrent, markers, mask, exact_heap):
    item_pixels = img.size // n_items if n_items else 0
    check_working_set(ws_working_set(n_items, item_pixels, concurrent, _image_copy_bytes(img),
                                     _label_bytes(markers), mask is not None, exact_heap,
                                     img.dtype.itemsize == 8),
                      f"{what} on an image of shape {list(img.shape)}")


# ----------------------------------------------------------------------------- public API

def watershed(image, markers=None, connectivity=1, offset=None, mask=None, compactness=0.0,
              watershed_line=False):
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
        NaN in `image`, infinite compactness.

    Notes
    -----
    Empty images (a zero-length axis) give an empty label array. See the module docstring
    for the few departures from scikit-image.

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
    raw = _image_view(image)
    shape = raw.shape
    fp, off = _footprint(raw.ndim, connectivity, offset)
    mask_u8 = _mask_array(mask, shape)
    comp = _check_compactness(compactness)
    marr = None if markers is None or _is_marker_count(markers) else _marker_labels(markers, shape)[0]
    _check_memory("watershed", raw, 1, 1, markers if marr is None else marr, mask,
                  comp > 0 or bool(watershed_line))
    img = _kernel_image(raw)
    minima_conn = 0.0
    if markers is None:
        if not np.isscalar(connectivity) and connectivity is not None:
            raise ValueError("`markers=None` needs an integer `connectivity` (the local minima "
                             "are found with it), got a footprint array")
        minima_conn = float(connectivity if connectivity is not None else 1)
        labels = None
    elif _is_marker_count(markers):
        if img.size == 0:
            labels = np.zeros(shape, dtype=np.int64)
        else:
            n_inside = img.size if mask_u8 is None else int(np.count_nonzero(mask_u8))
            labels = _seed_markers(shape, markers, n_inside, img.size)
    else:
        labels = marr
    if isinstance(image, torch.Tensor):
        as_t = (lambda a: None if a is None else torch.from_numpy(np.ascontiguousarray(a)))
        return torch.ops.segengine.watershed(
            image, as_t(labels), as_t(None if mask_u8 is None else mask_u8.view(bool)),
            torch.from_numpy(fp), [int(o) for o in off], minima_conn, comp, bool(watershed_line))
    return _watershed_numpy(img, labels, fp, off, minima_conn, mask_u8, comp, bool(watershed_line))


def _watershed_numpy(img, markers, fp, off, minima_conn, mask_u8, comp, wsl):
    """Core on validated numpy inputs; ``markers`` None means local minima."""
    ext = _ext()
    shape = img.shape
    sshape = np.asarray(shape, dtype=np.int64)
    vecs = _neighbor_vectors(fp, off)
    if markers is None:
        out_dtype = np.dtype(np.int32)
        labels = np.zeros(shape, dtype=np.int32)
        if img.size:
            mfp = ndi.generate_binary_structure(img.ndim, minima_conn)
            mvecs = _neighbor_vectors(mfp, np.ones(img.ndim, dtype=np.int64))
            ext.local_minima_markers(img, mask_u8, labels, sshape, mvecs)
    else:
        out_dtype = markers.dtype
        labels = _work_labels(markers)
    if img.size:
        ext.watershed(img, mask_u8, labels, sshape, vecs, comp, wsl)
    return labels if labels.dtype == out_dtype else labels.astype(out_dtype)


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
    raw = _image_view(image)
    shape = raw.shape
    fp, off = _footprint(raw.ndim, connectivity, None)
    mask_u8 = _mask_array(mask, shape)
    m, _ = _marker_labels(markers, shape)
    lv = np.ascontiguousarray(level_value, dtype=np.float64)
    if lv.shape != shape:
        raise ValueError(f"`level_value` (shape {lv.shape}) must have the shape of `image` {shape}")
    _check_memory("watershed", raw, 1, 1, m, mask, False)
    img = _kernel_image(raw)
    labels = np.array(m, dtype=np.int64, order="C", copy=True)
    levels = np.empty(shape, dtype=np.float64)
    _ext().watershed_levels(img, mask_u8, labels, np.asarray(shape, dtype=np.int64),
                            _neighbor_vectors(fp, off), lv.reshape(-1), levels.reshape(-1))
    return labels, levels


@torch.library.custom_op("segengine::watershed", mutates_args=())
def _watershed_op(image: torch.Tensor, markers: Optional[torch.Tensor], mask: Optional[torch.Tensor],
                  footprint: torch.Tensor, offset: list[int], minima_connectivity: float,
                  compactness: float, watershed_line: bool) -> torch.Tensor:
    """Tensor entry point (registered so torch.compile and fake tensors see the output):
    computed on the CPU, returned on ``image.device``."""
    img = _image_array(image)
    out = _watershed_numpy(img, None if markers is None else markers.cpu().numpy(),
                           footprint.cpu().numpy().astype(bool), np.asarray(offset, dtype=np.int64),
                           minima_connectivity,
                           None if mask is None else np.ascontiguousarray(mask.cpu().numpy()).view(np.uint8),
                           compactness, watershed_line)
    return torch.from_numpy(out).to(image.device)


@_watershed_op.register_fake
def _(image, markers, mask, footprint, offset, minima_connectivity, compactness, watershed_line):
    dtype = torch.int32 if markers is None else markers.dtype
    return image.new_empty(image.shape, dtype=dtype)


def watershed_batch(images, markers=None, connectivity=1, offset=None, mask=None,
                    compactness=0.0, watershed_line=False, num_threads=None):
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
        Threads over items; None means ``torch.get_num_threads()``.

    Returns
    -------
    out : (B, M, N[, ...]) ndarray or torch.Tensor
        ``out[b] == watershed(images[b], markers[b], ..., mask=mask[b])`` for every b.
    """
    raw = _image_view(images)
    if raw.ndim < 2:
        raise ValueError(f"`images` must have shape (B, *spatial) with at least one spatial "
                         f"dimension, got shape {raw.shape}")
    shape = raw.shape
    spatial = shape[1:]
    B = shape[0]
    fp, off = _footprint(len(spatial), connectivity, offset)
    vecs = _neighbor_vectors(fp, off)
    mk = None
    if mask is not None:
        mk = np.asarray(_to_numpy(mask, "mask"), dtype=bool)
        if mk.shape == tuple(spatial):
            mk = np.broadcast_to(mk, shape)
        if mk.shape != shape:
            raise ValueError(f"`mask` (shape {mk.shape}) must have the shape of `images` "
                             f"{shape} or of one image {spatial}")
    comp = _check_compactness(compactness)
    num_threads = resolve_threads(num_threads)
    m = None if markers is None or _is_marker_count(markers) else _marker_labels(markers, shape)[0]
    _check_memory("watershed_batch", raw, B, num_threads, markers if m is None else m, mask,
                  comp > 0 or bool(watershed_line))
    img = _kernel_image(raw)
    mask_u8 = None if mk is None else _mask_array(mk, shape)
    sshape = np.asarray(spatial, dtype=np.int64)
    mvecs = None
    if markers is None:
        if not np.isscalar(connectivity) and connectivity is not None:
            raise ValueError("`markers=None` needs an integer `connectivity`, got a footprint array")
        out_dtype = np.dtype(np.int32)
        labels = np.zeros(shape, dtype=np.int32)
        mfp = ndi.generate_binary_structure(len(spatial), connectivity if connectivity is not None else 1)
        mvecs = _neighbor_vectors(mfp, np.ones(len(spatial), dtype=np.int64))
    elif _is_marker_count(markers):
        size = int(np.prod(spatial))
        labels = np.zeros(shape, dtype=np.int64)
        if size:
            for b in range(B):
                n_inside = size if mask_u8 is None else int(np.count_nonzero(mask_u8[b]))
                labels[b] = _seed_markers(spatial, markers, n_inside, size)
        out_dtype = labels.dtype
    else:
        out_dtype = m.dtype
        labels = _work_labels(m)
    if img.size:
        _ext().watershed_batch(img, mask_u8, labels, sshape, vecs, mvecs, comp,
                               bool(watershed_line), num_threads)
    return _finish(labels, out_dtype, images)
