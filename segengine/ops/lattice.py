"""Permutohedral lattice filtering (Adams, Baek & Davis 2010) on CPU and CUDA.

A lattice is built once from per-point features and then filters any number of value
channels, any number of times, forwards (:meth:`PermutohedralLattice.filter`) or
adjoint (:meth:`PermutohedralLattice.adjoint`, the blur axes in reverse order). It is
held as plain tensors, so torch custom ops take it and a backward pass reuses it:

``offsets`` int32 ``[B*N, d+1]``
    the lattice vertex of each (point, simplex corner); vertex indices are global over the batch
``weights`` float32 ``[B*N, d+1]``
    the barycentric weight of each (point, corner)
``neighbors`` int32 ``[d+1, M, 2]``
    the two blur neighbours of each vertex along each lattice axis (-1: none)
``splat_ptr`` int64 ``[M+1]``, ``splat_pt`` int32 ``[B*N*(d+1)]``, ``splat_w`` float32 ``[B*N*(d+1)]``
    the transposed incidence (CSR by vertex, points in increasing order), so that the splat
    is a deterministic gather
``batch_vertices`` int64 ``[B]``
    vertices of each image

The numerics are pydensecrf's (elevation, rounding, barycentric weights, blur
``new = old + 0.5*(n1 + n2)``, slice scaled by ``1/(1 + 2**-d)``); see
``csrc/common/permutohedral.h``.

Custom ops (registered through :mod:`segengine.ops._library`): ``segengine::lattice_build``
(its fake kernel gives the vertex count M as a data-dependent size,
``torch.library.get_ctx().new_dynamic_size()``) and ``segengine::lattice_filter``
(differentiable in the values; the gradient is the adjoint filter on the same lattice). The
CPU kernels are here (``segengine._cy._lattice``); the CUDA kernels in
:mod:`segengine.ops._lattice_cuda`. ``num_threads`` travels through the ops as an int, 0
standing for None, resolved (``torch.get_num_threads()``) inside the CPU kernel.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from segengine.ops._common import all_finite, as_tensor, op_threads, run_threads, to_output
from segengine.ops._crf_norm import NORMALIZATIONS, normalization_code, normalizers
from segengine.ops._library import define, register_autograd, register_fake, register_kernel
from segengine.ops._memory import check_working_set

__all__ = ["PermutohedralLattice", "permutohedral_filter", "bilateral_filter"]

MAX_DIM = 16


# --------------------------------------------------------------------------- helpers

def check_positive_finite(value, name: str) -> float:
    """A bandwidth: a finite number > 0."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be finite and > 0, got {value!r}")
    return v


def lattice_working_set(P: int, d: int, C: int = 0, value_size: int = 4) -> float:
    """Upper bound on the bytes of a lattice on ``P`` points of dimension ``d`` filtering
    ``C`` value channels of ``value_size`` bytes once.

    Per point: offsets, weights, splat_pt and splat_w (16(d+1)) and the points-major copy of
    the values, the output and its copy back (3 C value_size). Per vertex: the blur
    neighbours and splat pointer (8(d+1) + 8) and the two blur buffers (2 C value_size).
    The vertex count is taken at its worst case, d+1 per point (distinct simplex corners).
    """
    per_point = 16.0 * (d + 1) + 3.0 * C * value_size
    per_vertex = 8.0 * (d + 1) + 8.0 + 2.0 * C * value_size
    return P * per_point + P * (d + 1) * per_vertex


def _features_copy_bytes(features: torch.Tensor) -> float:
    """Bytes :func:`_check_features` allocates: the float32 conversion (when not float32),
    the finiteness mask and the contiguous copy (when a conversion did not make one)."""
    n = float(features.numel())
    converted = features.dtype != torch.float32
    return (4 * n if converted else 0) + n + (4 * n if not (converted or features.is_contiguous()) else 0)


# --------------------------------------------------------------------------- custom ops

_lattice_build_op = define(
    "lattice_build(Tensor features, int num_threads, bool ghost_origin=False) -> "
    "(Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)")
_lattice_filter_op = define(
    "lattice_filter(Tensor values, Tensor offsets, Tensor weights, Tensor neighbors, Tensor splat_ptr, "
    "Tensor splat_pt, Tensor splat_w, bool reverse, int num_threads) -> Tensor")


@register_kernel("lattice_build", "cpu")
def _(features, num_threads, ghost_origin=False):
    """features float32 [B, d, N]; num_threads 0: torch.get_num_threads()."""
    from segengine._cy import _lattice
    # the wrapper passes contiguous tensors, but a graph captured by torch.export may hand the
    # kernel a view with other strides (a reshape traced as a copy can be a view at run time)
    features = features.contiguous()
    outs = _lattice.build(features.numpy(), run_threads(num_threads), ghost_origin)
    return tuple(torch.from_numpy(o) for o in outs)


@register_fake("lattice_build")
def _(features, num_threads, ghost_origin=False):
    B, d, N = features.shape
    M = torch.library.get_ctx().new_dynamic_size()
    P = B * N
    E = P * (d + 1)
    i32, f32, i64 = torch.int32, torch.float32, torch.int64
    return (features.new_empty((P, d + 1), dtype=i32), features.new_empty((P, d + 1), dtype=f32),
            features.new_empty((d + 1, M, 2), dtype=i32), features.new_empty((M + 1,), dtype=i64),
            features.new_empty((E,), dtype=i32), features.new_empty((E,), dtype=f32),
            features.new_empty((B,), dtype=i64))


@register_kernel("lattice_filter", "cpu")
def _(values, offsets, weights, neighbors, splat_ptr, splat_pt, splat_w, reverse, num_threads):
    """values float32/float64 [P, C] (points-major), the lattice tensors of lattice_build;
    num_threads 0: torch.get_num_threads()."""
    from segengine._cy import _lattice
    # contiguous here, not only in the wrapper: an exported graph's reshape of [B, N, C] to
    # [B*N, C] is traced as a copy (B > 1) but is a strided view when run with B == 1
    values = values.contiguous()
    out = torch.empty_like(values)
    _lattice.filter_values(values.numpy(), out.numpy(), offsets.numpy(), weights.numpy(), neighbors.numpy(),
                           splat_ptr.numpy(), splat_pt.numpy(), splat_w.numpy(), reverse,
                           run_threads(num_threads))
    return out


@register_fake("lattice_filter")
def _(values, offsets, weights, neighbors, splat_ptr, splat_pt, splat_w, reverse, num_threads):
    return torch.empty_like(values, memory_format=torch.contiguous_format)


def _filter_setup(ctx, inputs, output):
    ctx.lattice = inputs[1:7]
    ctx.reverse = inputs[7]
    ctx.num_threads = inputs[8]


def _filter_backward(ctx, grad):
    g = _lattice_filter_op(grad.contiguous(), *ctx.lattice, not ctx.reverse, ctx.num_threads)
    return g, None, None, None, None, None, None, None, None


register_autograd("lattice_filter", _filter_backward, setup_context=_filter_setup)

# the CUDA kernels of both ops (no CuPy import here: it is imported at the first launch)
from segengine.ops import _lattice_cuda  # noqa: E402,F401


# ----------------------------------------------------------------------- public class

def _check_features(features):
    if not isinstance(features, torch.Tensor):
        raise TypeError(f"features must be a torch.Tensor or numpy.ndarray, got {type(features).__name__}")
    if features.dim() < 3:
        raise ValueError(f"features must be [B, d, *spatial] or [B, d, N], got shape {tuple(features.shape)}")
    if not (features.dtype.is_floating_point or features.dtype in (torch.uint8, torch.int16, torch.int32,
                                                                    torch.int64, torch.int8)):
        raise TypeError(f"features must be a real tensor, got dtype {features.dtype}")
    d = features.shape[1]
    if not 1 <= d <= MAX_DIM:
        raise ValueError(f"features must have 1..{MAX_DIM} channels (the lattice dimension d), got {d}")
    f = features.to(torch.float32)
    # The CPU build raises the same error itself (no extra pass over the data). Elsewhere: a
    # data-dependent branch torch.compile cannot trace; traced, the build raises.
    if f.device.type != "cpu" and not torch.compiler.is_compiling() and not all_finite(f):
        raise ValueError("features must be finite (found NaN or Inf)")
    return f.reshape(features.shape[0], d, math.prod(features.shape[2:])).contiguous()


def _check_lattice_size(features: torch.Tensor) -> None:
    """ValueError when B*N*(d+1) lattice entries pass the int32 indices."""
    B, d = features.shape[:2]
    N = math.prod(features.shape[2:])
    if B * N * (d + 1) >= 2**31 - 1:
        raise ValueError(f"too many points for one lattice: B*N*(d+1) must stay below 2^31, got "
                         f"{B}*{N}*{d + 1} for features of shape {tuple(features.shape)}")


class PermutohedralLattice:
    """A permutohedral lattice built once from per-point features, reused for many filters.

    Parameters
    ----------
    features : torch.Tensor or numpy.ndarray, shape ``[B, d, *spatial]`` or ``[B, d, N]``
        Position of every point in a ``d``-dimensional feature space (1 <= d <= 16), already
        divided by the bandwidths: the filter is a Gaussian of standard deviation 1 in these
        units. Any real dtype; converted to float32. Must be finite. CUDA tensors build on the GPU.
    num_threads : int, optional
        CPU threads (None: ``torch.get_num_threads()``).
    pydensecrf_padding : bool
        Reproduce pydensecrf's SSE build exactly: when N is not a multiple of 4 it pads the
        points with all-zero features, whose lattice vertices (they hold no value) relay the
        blur. Off by default; :func:`segengine.dense_crf` and :mod:`segengine.densecrf` turn it on.

    Attributes
    ----------
    offsets, weights, neighbors, splat_ptr, splat_pt, splat_w, batch_vertices : torch.Tensor
        The lattice as plain tensors (see the module docstring for their shapes).
    d : int
        Feature dimension.
    num_vertices : int
        Lattice vertices M over the whole batch.

    Notes
    -----
    The filter is ``K v`` with ``K_ij ~ exp(-|f_i - f_j|^2 / 2)`` approximated on the lattice
    (the self term included), with pydensecrf's numerics. It is linear in the values;
    :meth:`adjoint` applies ``K^T`` (the same lattice, blur axes in reverse order), which is
    what autograd uses for the gradient with respect to the values.

    Accuracy (tested against the brute-force O(N^2) Gaussian in tests/test_lattice.py): for
    values in [0, 1], normalised ("after") filtering differs from the exact normalised
    Gaussian by at most 0.08 (mean 0.01) on 2-D spatial features, and by a mean of 0.03
    (max 0.35, for isolated colours) on 5-D bilateral features of natural images; the
    unnormalised filter matches the Gaussian's scale to within a factor of 2.

    Building is deterministic and independent of the thread count (vertices numbered by
    first occurrence); CPU filtering is deterministic for any thread count. The CPU build is
    O(N (d+1)) with one serial hash-insertion pass; the CUDA build sorts the N (d+1) keys.

    References
    ----------
    .. [1] A. Adams, J. Baek, M. A. Davis, "Fast High-Dimensional Filtering Using the
       Permutohedral Lattice", Computer Graphics Forum 29(2), 2010.
    """

    def __init__(self, features, *, num_threads=None, pydensecrf_padding: bool = False):
        t, _ = as_tensor(features, "features")
        self.num_threads = op_threads(num_threads)   # 0: torch.get_num_threads() when a kernel runs
        if isinstance(t, torch.Tensor) and t.dim() >= 3:   # before any pass over the data
            _check_lattice_size(t)
            if t.device.type == "cpu" and not torch.compiler.is_compiling():
                P, d = t.shape[0] * math.prod(t.shape[2:]), t.shape[1]
                check_working_set(_features_copy_bytes(t) + lattice_working_set(P, d),
                                  f"PermutohedralLattice on features of shape {tuple(t.shape)}")
        f = _check_features(t)
        self.batch, self.d, self.num_points = f.shape
        self.spatial = tuple(t.shape[2:])
        self.device = f.device
        (self.offsets, self.weights, self.neighbors, self.splat_ptr, self.splat_pt, self.splat_w,
         self.batch_vertices) = _lattice_build_op(f, self.num_threads,
                                                  bool(pydensecrf_padding) and self.num_points % 4 != 0)

    @property
    def num_vertices(self) -> int:
        return int(self.neighbors.shape[1])

    @property
    def tensors(self) -> tuple:
        """``(offsets, weights, neighbors, splat_ptr, splat_pt, splat_w)`` for the custom ops."""
        return (self.offsets, self.weights, self.neighbors, self.splat_ptr, self.splat_pt, self.splat_w)

    def _points_major(self, values, name="values"):
        t, was_numpy = as_tensor(values, name)
        if t.dim() < 2 or t.shape[0] != self.batch:
            raise ValueError(f"{name} must be [B, C, ...] with B = {self.batch}, got shape {tuple(t.shape)}")
        n = math.prod(t.shape[2:]) if t.dim() > 2 else 1
        if n != self.num_points or (t.dim() > 3 and tuple(t.shape[2:]) != self.spatial):
            raise ValueError(f"{name} must have the lattice's points: [B, C, {', '.join(map(str, self.spatial))}] "
                             f"or [B, C, {self.num_points}], got shape {tuple(t.shape)}")
        if t.device != self.device:
            raise ValueError(f"{name} is on {t.device} but the lattice is on {self.device}")
        if not t.dtype.is_floating_point:
            t = t.to(torch.float32)
        if t.dtype not in (torch.float32, torch.float64):
            raise TypeError(f"{name} must be float32 or float64, got {t.dtype}")
        C = t.shape[1]
        pm = t.reshape(self.batch, C, self.num_points).transpose(1, 2).reshape(self.batch * self.num_points, C)
        return pm.contiguous(), t.shape, was_numpy

    def _back(self, out, shape, was_numpy):
        C = shape[1]
        res = out.reshape(self.batch, self.num_points, C).transpose(1, 2).reshape(shape)
        return res.contiguous().numpy() if was_numpy else res

    def filter(self, values, *, reverse: bool = False):
        """Filter ``values`` on the lattice.

        Parameters
        ----------
        values : torch.Tensor or numpy.ndarray, shape ``[B, C, *spatial]`` or ``[B, C, N]``
            float32 or float64 (other real dtypes become float32), on the lattice's device.
        reverse : bool
            Apply the adjoint (transpose) filter instead.

        Returns
        -------
        torch.Tensor or numpy.ndarray
            Same shape and dtype as ``values``; differentiable with respect to ``values``.
        """
        pm, shape, was_numpy = self._points_major(values)
        out = _lattice_filter_op(pm, *self.tensors, bool(reverse), self.num_threads)
        return self._back(out, shape, was_numpy)

    def adjoint(self, values):
        """The adjoint filter ``K^T values`` (blur axes in reverse order).

        Parameters
        ----------
        values : torch.Tensor or numpy.ndarray, shape ``[B, C, *spatial]`` or ``[B, C, N]``
            As in :meth:`filter`.

        Returns
        -------
        torch.Tensor or numpy.ndarray
            Same shape and dtype as ``values``; ``filter(values, reverse=True)``.
        """
        return self.filter(values, reverse=True)

    def normalizer(self, dtype: torch.dtype = torch.float32):
        """``K 1``: the filtered ones, ``[B, 1, N]`` (or the spatial shape) of ``dtype``
        (float32 or float64)."""
        ones = torch.ones((self.batch, 1, self.num_points), dtype=dtype, device=self.device)
        out = self.filter(ones)
        return out.reshape((self.batch, 1) + (self.spatial if self.spatial else (self.num_points,)))

    def __repr__(self):
        return (f"PermutohedralLattice(batch={self.batch}, d={self.d}, points={self.num_points}, "
                f"vertices={self.num_vertices}, device={self.device})")


# ----------------------------------------------------------------------- functions

def _check_filter_memory(values: torch.Tensor, features: torch.Tensor, normalization: str) -> None:
    """Working-set guard of :func:`permutohedral_filter`: the lattice with the value rows,
    the features' conversion and, when normalising, the normaliser and the scaled values."""
    if values.dim() < 2 or features.dim() < 3:
        return   # the shape checks below raise
    P, d = features.shape[0] * math.prod(features.shape[2:]), features.shape[1]
    C = values.shape[1]
    item = 8 if values.dtype == torch.float64 else 4
    nbytes = _features_copy_bytes(features) + lattice_working_set(P, d, C, item)
    if normalization != "none":
        nbytes += lattice_working_set(P, d, 1, item) - lattice_working_set(P, d) + 2.0 * P * C * item
    check_working_set(nbytes, f"permutohedral_filter of values {tuple(values.shape)} on features "
                              f"{tuple(features.shape)}")


def permutohedral_filter(values, features, normalization: str = "none", *, num_threads=None):
    """Gaussian filter of ``values`` in the feature space ``features`` (one lattice, one use).

    Parameters
    ----------
    values : torch.Tensor or numpy.ndarray, shape ``[B, C, *spatial]`` or ``[B, C, N]``
        float32/float64 values to filter.
    features : torch.Tensor or numpy.ndarray, shape ``[B, d, *spatial]`` or ``[B, d, N]``
        Point positions divided by the bandwidths (1 <= d <= 16).
    normalization : {"none", "symmetric", "after", "before"}
        ``"none"``: ``K v``; ``"symmetric"``: ``n * K(n * v)`` with ``n = 1/sqrt(K1 + 1e-20)``;
        ``"after"``: ``K v / (K1 + 1e-20)`` (a normalised, weighted average);
        ``"before"``: ``K(v / (K1 + 1e-20))``. (pydensecrf's normalisation types.)
    num_threads : int, optional
        CPU threads (None: ``torch.get_num_threads()``).

    Returns
    -------
    torch.Tensor or numpy.ndarray
        Same shape and dtype as ``values``.
    """
    code = normalization_code(normalization) if isinstance(normalization, str) else None
    if code is None:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
    vt, was_numpy = as_tensor(values, "values")
    ft, _ = as_tensor(features, "features")
    if ft.device.type == "cpu" and not torch.compiler.is_compiling():
        _check_filter_memory(vt, ft, normalization)
    lat = PermutohedralLattice(ft, num_threads=num_threads)
    pre = post = None
    if normalization != "none":
        # K1 in the values' dtype: a float64 filter is float64 throughout (and then equal on
        # CPU and GPU to float64 rounding, whatever order each adds the float32 ones in)
        dtype = vt.dtype if vt.dtype in (torch.float32, torch.float64) else torch.float32
        n = lat.normalizer(dtype).reshape(lat.batch, 1, *vt.shape[2:])
        pre, post = normalizers(n, code, dtype)
    out = lat.filter(vt if pre is None else vt * pre)
    if post is not None:
        out = out * post
    return to_output(out, was_numpy)


def _check_bilateral_memory(image: torch.Tensor) -> None:
    """Working-set guard of :func:`bilateral_filter`: the float32 values (when converted),
    the coordinate and colour features and their concatenation, and the normalised filter."""
    B, K, H, W = image.shape
    P, d = B * H * W, K + 2
    item = 8 if image.dtype == torch.float64 else 4
    values = 4.0 * P * K if image.dtype not in (torch.float32, torch.float64) else 0.0
    feats = 8.0 * H * W + 4.0 * P * K + 4.0 * P * d
    norm = lattice_working_set(P, d, 1, item) - lattice_working_set(P, d) + 2.0 * P * K * item
    check_working_set(values + feats + P * d + lattice_working_set(P, d, K, item) + norm,
                      f"bilateral_filter on an image of shape {tuple(image.shape)}")


def bilateral_filter(image, sigma_spatial, sigma_color, *, num_threads=None):
    """Edge-preserving (normalised) bilateral filter of an image on the permutohedral lattice.

    Each output pixel is the average of all pixels weighted by
    ``exp(-|p - q|^2 / (2 sigma_spatial^2) - |I_p - I_q|^2 / (2 sigma_color^2))``, computed on
    the lattice (features ``(x/sigma_spatial, y/sigma_spatial, I/sigma_color)``, pydensecrf's
    approximation).

    Parameters
    ----------
    image : torch.Tensor or numpy.ndarray, shape ``[B, K, H, W]``
        Any real dtype (uint8 or float in the units of ``sigma_color``); K channels, all of
        which are colour features and filtered (1 <= K <= 14).
    sigma_spatial : float
        Spatial standard deviation in pixels (> 0).
    sigma_color : float
        Range standard deviation in intensity units (> 0).
    num_threads : int, optional
        CPU threads (None: ``torch.get_num_threads()``).

    Returns
    -------
    torch.Tensor or numpy.ndarray
        float32 ``[B, K, H, W]`` (float64 for float64 input).
    """
    t, was_numpy = as_tensor(image, "image")
    ss = check_positive_finite(sigma_spatial, "sigma_spatial")
    sc = check_positive_finite(sigma_color, "sigma_color")
    if t.dim() != 4:
        raise ValueError(f"image must be [B, K, H, W], got shape {tuple(t.shape)}")
    B, K, H, W = t.shape
    if not 1 <= K <= MAX_DIM - 2:
        raise ValueError(f"image must have 1..{MAX_DIM - 2} channels, got {K}")
    if t.dtype.is_complex or t.dtype == torch.bool:
        raise TypeError(f"image must be real, got {t.dtype}")
    # the working-set guard (host memory: CPU tensors), before any conversion
    if t.device.type == "cpu" and not torch.compiler.is_compiling():
        _check_bilateral_memory(t)
    vals = t if t.dtype in (torch.float32, torch.float64) else t.to(torch.float32)
    feats = point_features(B, (H, W), (ss, ss), t, (sc,) * K, device=t.device)
    out = permutohedral_filter(vals, feats, normalization="after", num_threads=num_threads)
    return to_output(out, was_numpy)


def divide_float32(t: torch.Tensor, divisor: float) -> torch.Tensor:
    """``t / float32(divisor)`` for a float32 tensor ``t``, correctly rounded on every device.

    PyTorch's CUDA division by a CPU scalar multiplies by the scalar's reciprocal, which is
    one rounding more than the CPU's division: features would then differ by an ulp between
    CPU and GPU, and so would their lattices. Dividing by a 0-d tensor on ``t``'s device is a
    true division on both.
    """
    return t / torch.full((), float(np.float32(divisor)), dtype=torch.float32, device=t.device)


def point_features(B: int, spatial, scales, image=None, srgb=None, spacing=None, device=None,
                   origin=None) -> torch.Tensor:
    """The features of a Gaussian (``image`` None) or bilateral kernel, written into one new
    contiguous float32 tensor ``[B, nd (+ K), *spatial]``.

    First the coordinates, ordered (x, y[, z]) (``x``, the last axis, first, as in
    pydensecrf): each coordinate plus its ``origin`` (if given), times its ``spacing`` (if
    given), divided by its scale, in float32; then ``float32(image) / float32(srgb)`` per
    channel.

    Parameters
    ----------
    B : int
    spatial : tuple of int
        The nd spatial sizes.
    scales : sequence of float
        Per spatial axis, the bandwidth (ordered like ``spatial``).
    image : torch.Tensor, optional
        ``[B, K, *spatial]``, any real dtype (converted to float32 first).
    srgb : sequence of float, optional
        ``K`` colour bandwidths (with ``image``).
    spacing : sequence of float, optional
        Per spatial axis (ordered like ``spatial``), the distance between samples.
    device : torch.device, optional
    origin : sequence of int, optional
        Per spatial axis, the index of the first sample (a tile's offset in a larger image).
    """
    nd = len(spatial)
    K = 0 if image is None else image.shape[1]
    out = torch.empty((B, nd + K, *spatial), dtype=torch.float32, device=device)
    for j, ax in enumerate(reversed(range(nd))):   # x (the last axis) first
        start = 0 if origin is None else int(origin[ax])
        c = torch.arange(start, start + spatial[ax], dtype=torch.float32, device=device)
        if spacing is not None:
            c = c * np.float32(spacing[ax])
        shape = [1] * nd
        shape[ax] = spatial[ax]
        out[:, j].copy_(divide_float32(c, scales[ax]).reshape(shape))
    if K:
        # converted to float32 first (float64 rounds there), then a true float32 division
        col = out[:, nd:]
        col.copy_(image)
        col.div_(torch.tensor(srgb, dtype=torch.float32, device=device).reshape(1, K, *([1] * nd)))
    return out
