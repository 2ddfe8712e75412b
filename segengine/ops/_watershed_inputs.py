"""Validation and conversion of the watershed ops' inputs (segengine.ops.watershed).

Two kinds of input, one set of rules:

* numpy arrays, lists and scalars (the numpy path of ``watershed``/``watershed_batch`` and
  ``watershed_levels``): checked and converted here with numpy;
* tensors (the op path): checked from their metadata only (shape, dtype), so that
  ``torch.compile(fullgraph=True)`` can trace the public functions; everything that needs the
  data (NaN, seed counts inside a mask, the working-set guard) runs in the kernels.

Footprints are built in plain Python (:func:`structure`, the same table as
``scipy.ndimage.generate_binary_structure``) for the same reason.
"""

from __future__ import annotations

import itertools
import math
import numbers

import numpy as np
import torch

from segengine.ops._memory import check_working_set

__all__ = ["to_numpy", "image_view", "kernel_dtype", "kernel_image", "TENSOR_IMAGE_DTYPES",
           "check_tensor_image", "tensor_image", "check_connectivity", "structure", "footprint",
           "footprint_tensor", "neighbor_vectors", "minima_vectors", "minima_connectivity",
           "regular_seeds", "is_marker_count", "check_marker_count", "seed_markers",
           "marker_labels", "check_marker_tensor", "work_labels", "mask_array", "mask_tensor",
           "check_compactness", "TIE_ORDERS", "TIE_CODES", "check_tie_order", "ws_working_set",
           "check_memory"]


# ----------------------------------------------------------------------------- conversions

def to_numpy(x, name):
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


def image_view(image):
    """The image as a numpy array (a view where possible), dtype and rank checked."""
    img = to_numpy(image, "image")
    if img.dtype == object or img.dtype.kind not in "biuf":
        raise TypeError(f"`image` must have a boolean, integer or float dtype, got {img.dtype}")
    if img.ndim < 1:
        raise ValueError(f"`image` must have at least one dimension, got shape {img.shape}")
    if img.dtype.kind == "f" and img.dtype.itemsize > 8:
        raise TypeError(f"`image` dtype {img.dtype} is not supported (use float32 or float64)")
    return img


def kernel_dtype(dtype):
    """The dtype the kernel reads for an image of ``dtype`` (bool: uint8, float16: float32)."""
    if dtype == np.bool_:
        return np.dtype(np.uint8)
    if dtype.kind == "f" and dtype.itemsize < 4:
        return np.dtype(np.float32)
    return dtype.newbyteorder("=")


def kernel_image(img):
    """C-contiguous copy (or view) of a checked image in a dtype the kernel reads."""
    if img.dtype == np.bool_:
        img = np.ascontiguousarray(img).view(np.uint8)
    elif img.dtype == np.float16 or (img.dtype.kind == "f" and img.dtype.itemsize < 4):
        img = img.astype(np.float32)  # exact
    img = np.ascontiguousarray(img)
    if img.dtype.byteorder not in ("=", "|"):
        img = img.astype(img.dtype.newbyteorder("="))
    return img


# tensor image dtypes the op accepts (bfloat16 is read as float32, exactly)
TENSOR_IMAGE_DTYPES = (torch.bool, torch.uint8, torch.int8, torch.uint16, torch.int16,
                       torch.uint32, torch.int32, torch.uint64, torch.int64, torch.float16,
                       torch.bfloat16, torch.float32, torch.float64)


def check_tensor_image(image: torch.Tensor, min_ndim: int = 1, name: str = "image") -> None:
    """The tensor form of :func:`image_view`'s checks (metadata only)."""
    if image.is_complex():
        raise TypeError(f"`{name}` must be real, got a tensor of dtype {image.dtype}")
    if image.dtype not in TENSOR_IMAGE_DTYPES:
        raise TypeError(f"`{name}` must have a boolean, integer or float dtype, got {image.dtype}")
    if image.dim() < min_ndim:
        if min_ndim == 1:
            raise ValueError(f"`{name}` must have at least one dimension, got shape "
                             f"{tuple(image.shape)}")
        raise ValueError(f"`{name}` must have shape (B, *spatial) with at least one spatial "
                         f"dimension, got shape {tuple(image.shape)}")


def tensor_image(image: torch.Tensor) -> np.ndarray:
    """numpy view of a CPU image tensor inside a kernel (bfloat16 read as float32)."""
    t = image.detach()
    if t.dtype == torch.bfloat16:
        t = t.float()
    return t.numpy()


# ----------------------------------------------------------------------------- neighbourhood

def check_connectivity(connectivity, ndim):
    """A scalar ``connectivity``: a real number >= 1 (not bool)."""
    if isinstance(connectivity, (bool, np.bool_)) or not isinstance(connectivity, numbers.Real):
        raise TypeError(f"`connectivity` must be a number >= 1 or a footprint array, "
                        f"got {connectivity!r}")
    if not connectivity >= 1:  # also catches NaN
        raise ValueError(f"`connectivity` must be >= 1 (1 = face neighbours, {ndim} = all), "
                         f"got {connectivity!r}")


def structure(ndim: int, connectivity) -> list[bool]:
    """``scipy.ndimage.generate_binary_structure(ndim, connectivity)`` raveled in C order, in
    plain Python: the 3**ndim offsets whose city-block length is <= ``connectivity``."""
    return [sum(abs(i - 1) for i in idx) <= connectivity
            for idx in itertools.product(range(3), repeat=ndim)]


def _is_scalar_connectivity(connectivity) -> bool:
    return connectivity is None or not isinstance(connectivity, (np.ndarray, torch.Tensor, list, tuple))


def footprint(ndim, connectivity, offset):
    """(footprint bool ndarray, offset int64 ndarray) as scikit-image's _validate_connectivity."""
    if connectivity is None:
        connectivity = 1
    if isinstance(connectivity, torch.Tensor):
        connectivity = connectivity.cpu().numpy()
    if np.isscalar(connectivity):
        check_connectivity(connectivity, ndim)
        fp = np.array(structure(ndim, connectivity), dtype=bool).reshape((3,) * ndim)
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


def footprint_tensor(ndim, connectivity, offset) -> tuple[torch.Tensor, list[int]]:
    """:func:`footprint` as the op's arguments (bool tensor, list of ints). A scalar
    connectivity without offset is built in plain Python (traceable by torch.compile)."""
    if offset is None and _is_scalar_connectivity(connectivity):
        conn = 1 if connectivity is None else connectivity
        check_connectivity(conn, ndim)
        fp = torch.tensor(structure(ndim, conn), dtype=torch.bool).reshape((3,) * ndim)
        return fp, [1] * ndim
    fp, off = footprint(ndim, connectivity, offset)
    return torch.from_numpy(fp), [int(o) for o in off]


def neighbor_vectors(fp, center):
    """Neighbour offset vectors [k, ndim] in scikit-image's visiting order: footprint entries
    in C order, stably sorted by Euclidean length, the first (normally the centre) dropped."""
    if fp.size == 0 or not fp.any():
        return np.zeros((0, fp.ndim), dtype=np.int64)
    vecs = np.stack([idx - c for idx, c in zip(np.nonzero(fp), center)], axis=-1).astype(np.int64)
    dist = np.sqrt(np.sum(vecs.astype(np.float64) ** 2, axis=1))
    vecs = vecs[np.argsort(dist, kind="stable")]
    return np.ascontiguousarray(vecs[1:])


def minima_vectors(ndim, connectivity):
    """Neighbour vectors of the full footprint of ``connectivity`` (local-minima markers)."""
    fp = np.array(structure(ndim, connectivity), dtype=bool).reshape((3,) * ndim)
    return neighbor_vectors(fp, np.ones(ndim, dtype=np.int64))


def minima_connectivity(markers, connectivity) -> float:
    """The connectivity of the local minima for ``markers=None`` (0.0 otherwise)."""
    if markers is not None:
        return 0.0
    if not _is_scalar_connectivity(connectivity):
        raise ValueError("`markers=None` needs an integer `connectivity` (the local minima "
                         "are found with it), got a footprint array")
    return float(connectivity if connectivity is not None else 1)


# ----------------------------------------------------------------------------- markers

def regular_seeds(shape, n_points):
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


def is_marker_count(markers):
    """True when ``markers`` is a number of seeds rather than None or a label array."""
    return markers is not None and not isinstance(markers, (np.ndarray, list, tuple, torch.Tensor))


def check_marker_count(count) -> float:
    """A seed count: a real number (its range is checked with the mask, in seed_markers)."""
    if isinstance(count, (bool, np.bool_)) or not isinstance(count, numbers.Real):
        raise TypeError(f"`markers` must be None, an int or an integer array, got {type(count).__name__}")
    return count


def seed_markers(shape, count, n_inside, size):
    """int64 seeds for ``markers=count``: ``count`` is relative to the ``n_inside`` pixels of
    the mask out of ``size``, as in scikit-image."""
    check_marker_count(count)
    if n_inside == 0:
        raise ValueError("`markers` as a number of seeds needs a `mask` with at least one True pixel")
    n = int(count / (n_inside / size))
    if n < 1:
        raise ValueError(f"`markers` as a number of seeds must be >= 1, got {count!r}")
    return regular_seeds(shape, n)


def marker_labels(markers, shape):
    """Marker array checked for dtype and shape; returns (array, output dtype)."""
    m = to_numpy(markers, "markers")
    # shape first: scikit-image raises ValueError for a wrong shape whatever the dtype
    if m.shape != tuple(shape):
        raise ValueError(f"`markers` (shape {m.shape}) must have the same shape as `image` "
                         f"(shape {tuple(shape)})")
    if m.dtype.kind not in "biu":
        raise TypeError(f"`markers` must be an integer (or boolean) label array, got dtype {m.dtype}")
    return m, m.dtype


def check_marker_tensor(markers: torch.Tensor, shape) -> None:
    """The tensor form of :func:`marker_labels`'s checks (metadata only)."""
    if tuple(markers.shape) != tuple(shape):
        raise ValueError(f"`markers` (shape {tuple(markers.shape)}) must have the same shape as "
                         f"`image` (shape {tuple(shape)})")
    if markers.dtype.is_floating_point or markers.dtype.is_complex:
        raise TypeError(f"`markers` must be an integer (or boolean) label array, got dtype "
                        f"{markers.dtype}")


def work_labels(m):
    """Contiguous int32/int64 copy of the markers the kernel overwrites (bijective cast)."""
    return np.array(m, dtype=np.int32 if m.dtype.itemsize <= 4 else np.int64, order="C", copy=True)


def mask_array(mask, shape, name="mask"):
    """uint8 view (C-contiguous) of a boolean mask of ``shape``, or None."""
    if mask is None:
        return None
    m = to_numpy(mask, name)
    m = np.asarray(m, dtype=bool)
    if m.shape != tuple(shape):
        raise ValueError(f"`{name}` (shape {m.shape}) must have the same shape as `image` "
                         f"(shape {tuple(shape)})")
    return np.ascontiguousarray(m).view(np.uint8)


def mask_tensor(mask, shape, device, broadcast_from=None):
    """Bool tensor of ``shape`` on ``device`` (or None) from a tensor, array or list mask;
    a mask of shape ``broadcast_from`` is expanded to ``shape`` (one mask for a batch)."""
    if mask is None:
        return None
    m = mask if isinstance(mask, torch.Tensor) else torch.as_tensor(np.asarray(mask, dtype=bool))
    m = m.to(device=device, dtype=torch.bool)
    if broadcast_from is not None and tuple(m.shape) == tuple(broadcast_from):
        m = m.expand(tuple(shape))
    if tuple(m.shape) != tuple(shape):
        if broadcast_from is not None:
            raise ValueError(f"`mask` (shape {tuple(m.shape)}) must have the shape of `images` "
                             f"{tuple(shape)} or of one image {tuple(broadcast_from)}")
        raise ValueError(f"`mask` (shape {tuple(m.shape)}) must have the same shape as `image` "
                         f"(shape {tuple(shape)})")
    return m


def check_compactness(compactness):
    """Finite float; values <= 0 mean the standard watershed (0.0)."""
    try:
        c = float(compactness)
    except (TypeError, ValueError):
        raise TypeError(f"`compactness` must be a float, got {compactness!r}") from None
    if c == math.inf:
        raise ValueError("`compactness` must be finite, got inf")
    return c if c > 0 else 0.0  # scikit-image: compact watershed only when > 0


TIE_ORDERS = ("exact", "fast", "parallel")
# the kernels' codes of the tie orders (0: scikit-image's exact order)
TIE_CODES = {name: code for code, name in enumerate(TIE_ORDERS)}


def check_tie_order(tie_order, compactness, watershed_line) -> int:
    """The code (``TIE_CODES``) of a checked ``tie_order``; ``compactness`` is the checked
    value (0.0: standard watershed). The fast and parallel tie orders flood the standard
    watershed only."""
    if not isinstance(tie_order, str) or tie_order not in TIE_ORDERS:
        raise ValueError(f"`tie_order` must be 'exact', 'fast' or 'parallel', got {tie_order!r}")
    if tie_order != "exact" and (compactness > 0 or watershed_line):
        raise ValueError(f"`tie_order={tie_order!r}` floods the standard watershed only: it "
                         "supports neither `compactness` > 0 nor `watershed_line=True` (use "
                         "tie_order='exact')")
    return TIE_CODES[tie_order]


# ----------------------------------------------------------------------------- memory

def _image_copy_bytes(img):
    """Bytes per pixel of the kernel's copy of the image (0 when it reads the input as is)."""
    kd = kernel_dtype(img.dtype)
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
    """Estimated peak bytes of a watershed call (csrc/cpu/watershed*.{h,cpp}).

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


def check_memory(what, img, n_items, concurrent, markers, has_mask, exact_heap):
    """MemoryError when the estimated working set of a call on numpy image ``img`` (``n_items``
    items, ``concurrent`` flooded at once) cannot fit (segengine.ops._memory)."""
    item_pixels = img.size // n_items if n_items else 0
    check_working_set(ws_working_set(n_items, item_pixels, concurrent, _image_copy_bytes(img),
                                     _label_bytes(markers), has_mask, exact_heap,
                                     img.dtype.itemsize == 8),
                      f"{what} on an image of shape {list(img.shape)}")
