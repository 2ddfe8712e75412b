"""Fully connected CRF (Kraehenbuehl & Koltun 2011) by mean field on permutohedral lattices.

:func:`dense_crf` is batched and runs on CPU (C++/OpenMP, one fused pass per iteration) or
CUDA (lattice kernels + torch pointwise ops), with pydensecrf's numerics:

* unary ``U = -log_softmax(logits)`` (or ``-log(clip(p, 1e-5, 1))`` for probabilities);
* ``Q0 = softmax(-U)``, then ``iterations`` parallel updates
  ``Q = softmax(-U - sum_k compat_k(norm_k(K_k, Q)))``;
* Gaussian kernel features ``(x/sxy, y/sxy)`` with x the column index; bilateral features
  ``(x/sxy, y/sxy, I_1/srgb, ..., I_K/srgb)``;
* compatibility: a scalar ``w`` is Potts and contributes ``-w * KQ``; a length-C vector ``v``
  contributes ``+diag(v) KQ``; a C x C matrix ``M`` contributes ``+0.5 (M + M^T) KQ``.

The op is registered as ``segengine::dense_crf`` (segengine.ops._library: a fake kernel, the CPU
kernel here and the CUDA kernel in segengine.ops._crf_cuda);
it is not differentiable (the trainable layer is ``segengine.nn.DenseCRF``).

Speed (CPU). One C++ call per ``dense_crf``: the lattices are built in parallel (chunks of
points number their vertices in local hash tables, then one short serial merge keeps
pydensecrf's first-occurrence order, so the numbering never depends on the thread count), and
each mean-field iteration is one fused pass over the points (slice both kernels, normalise,
compatibility, softmax, and at once splat the new marginals for the next iteration), then a
reduce + blur per kernel; the marginals themselves are only written after the last update.
Splat sums are deterministic: an image's points are cut into up to four parts by its size
alone, each part scatters into a buffer of its own, and the parts are added in order, so an
image gets bitwise the same result for any thread count and in any batch. A batch runs a
chunk of images at a time (enough to occupy every thread, ``crf_chunk_images``), so the
lattices, buffers and features in memory are one chunk's: called eagerly, :func:`dense_crf`
makes each chunk's features only when it runs (the op, as torch.compile calls it, receives
every image's), and the Gaussian kernel's features, the same for every image, are made once
and broadcast. Measured figures
and the profile: benchmarks/results/ and the README.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch

from segengine._codes import UnaryKind
from segengine.ops._common import all_finite, as_tensor, op_threads, run_threads, to_output
from segengine.ops._crf_norm import NORMALIZATIONS, normalization_code
from segengine.ops._library import define, register_fake, register_kernel
from segengine.ops._memory import check_working_set
from segengine.ops.lattice import MAX_DIM, check_positive_finite, point_features

__all__ = ["dense_crf"]


# --------------------------------------------------------------------------- the op

_dense_crf_op = define(
    "dense_crf(Tensor unary, Tensor[] features, Tensor[] compats, int[] normalizations, int iterations, "
    f"int num_threads, bool pydensecrf_padding=True, int unary_kind={int(UnaryKind.ENERGY)}) -> Tensor")


def _dense_crf_cpu(unary, features_of, compats, normalizations, iterations, num_threads, pydensecrf_padding,
                   unary_kind, Q):
    """The CPU kernel: marginals into ``Q`` (float32 ``[B, C, N]``, C-contiguous), a chunk of
    images at a time (``crf_chunk_images``: enough for every thread), so that the lattices,
    buffers and features in memory are one chunk's. ``features_of(b0, b1)``: the kernels'
    features of images [b0, b1), float32 ``[b1 - b0, d_k, N]`` (views will do)."""
    from segengine._cy import _lattice
    B, C, N = unary.shape
    ghost = bool(pydensecrf_padding) and N % 4 != 0
    threads = run_threads(num_threads)
    chunk = _lattice.crf_chunk_images(N, threads)
    for b0 in range(0, B, chunk):
        b1 = min(B, b0 + chunk)
        _lattice.dense_crf(unary[b0:b1].contiguous().numpy(), int(unary_kind), Q[b0:b1].numpy(),
                           [f.contiguous().numpy() for f in features_of(b0, b1)],
                           [int(n) for n in normalizations], [c.numpy() for c in compats], ghost,
                           int(iterations), threads)


@register_kernel("dense_crf", "cpu")
def _(unary, features, compats, normalizations, iterations, num_threads, pydensecrf_padding=True,
      unary_kind=int(UnaryKind.ENERGY)):
    """unary float32 [B, C, N]: energies U, logits or probabilities (``unary_kind``, a
    UnaryKind); features float32 [B, d_k, N] (a batch stride of 0 will do: features the same
    for every image); compats float32 [C] or [C, C] (already in the form that is added: -w*1
    for Potts, symmetrised matrices); normalizations: Normalization codes; num_threads 0:
    torch.get_num_threads(). Non-finite input raises ValueError."""
    Q = torch.empty_like(unary)  # [B, C, N]: the kernel reads and writes channel-major
    _dense_crf_cpu(unary, lambda b0, b1: [f[b0:b1] for f in features], compats, normalizations, iterations,
                   num_threads, pydensecrf_padding, unary_kind, Q)
    return Q


@register_fake("dense_crf")
def _(unary, features, compats, normalizations, iterations, num_threads, pydensecrf_padding=True,
      unary_kind=int(UnaryKind.ENERGY)):
    return torch.empty_like(unary)


# the CUDA kernel (no CuPy import here: it is imported at the first launch)
from segengine.ops import _crf_cuda  # noqa: E402,F401


# --------------------------------------------------------------------------- validation

def compat_array(compat, C: int, name: str) -> np.ndarray | None:
    """pydensecrf's label compatibility as the float32 array that is *added* to the pairwise
    term: Potts ``w`` -> ``[-w]*C``, vector ``v`` -> ``v``, matrix ``M`` -> ``(M + M^T)/2``.
    None (or a zero Potts weight) gives None: no kernel."""
    if compat is None:
        return None
    if isinstance(compat, torch.Tensor):
        compat = compat.detach().cpu().numpy()
    if isinstance(compat, numbers.Number) and not isinstance(compat, bool):
        w = float(compat)
        if not math.isfinite(w):
            raise ValueError(f"{name} must be finite, got {compat!r}")
        if w == 0.0:
            return None
        return np.full(C, -w, dtype=np.float32)
    try:
        a = np.asarray(compat, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, a length-{C} vector or a {C}x{C} matrix, "
                        f"got {type(compat).__name__}") from None
    if a.ndim == 0:
        return compat_array(float(a), C, name)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be finite")
    if a.ndim == 1:
        if a.shape[0] != C:
            raise ValueError(f"{name} as a vector must have length C = {C}, got {a.shape[0]}")
        return a.astype(np.float32)
    if a.ndim == 2:
        if a.shape != (C, C):
            raise ValueError(f"{name} as a matrix must be {C}x{C}, got {a.shape[0]}x{a.shape[1]}")
        m = a.astype(np.float32)
        return np.ascontiguousarray(np.float32(0.5) * (m + m.T))
    raise ValueError(f"{name} must be a scalar, a vector or a matrix, got {a.ndim} dimensions")


def crf_working_set(B: int, N: int, C: int, dims, input_copy: bool, chunk_images: int | None = None) -> int:
    """Estimated peak bytes of the CPU path of :func:`dense_crf` (``dims``: the feature
    dimension d of each kernel).

    The kernel runs a chunk of ``chunk_images`` images at a time (default: as many as it may
    use, ``min(B, max(4, torch.get_num_threads()))``; ``crf_chunk_images`` takes at most that
    many). Per point of the batch: the marginals Q (4C) and the float32 input copy (4C, when
    one is made). Per point of a chunk: the padded unary/marginal buffer Up (4Cp, Cp = C
    rounded up to 8), per kernel its features and their temporaries (2 * 4d), normalisers (8)
    and the lattice's offsets and weights (8(d+1)). Per lattice vertex of a chunk: the blur
    neighbours (8(d+1)) and the splat, two blur and the part buffers of the mean field
    (4 * 4Cp). The hash tables of the build are freed before those buffers exist.
    The vertex count M is only known after the build; it is taken as one vertex per point and
    kernel. Measured (2026-12, 1024x1024 RGB, C = 21, default kernels, ``ru_maxrss``): M/P =
    0.13 (Gaussian) and 0.08 (bilateral) on a photograph, 1.5 for the bilateral kernel of
    uniform noise; peak 454 (photograph) and 1048 (noise) bytes per pixel, this estimate
    1164: 2.6x and 1.1x the real peak.
    """
    if chunk_images is None:
        chunk_images = max(4, torch.get_num_threads())
    chunk = min(B, chunk_images)
    Cp = -(-C // 8) * 8
    per_point = 4 * C + (4 * C if input_copy else 0)
    per_chunk_point = 4 * Cp + sum(8 * d + 8 + 8 * (d + 1) for d in dims)
    per_chunk_point += sum(8 * (d + 1) + 16 * Cp for d in dims)
    return B * N * per_point + chunk * N * per_chunk_point


def dense_crf(logits, image, *, probabilities: bool = False, iterations: int = 5,
              gaussian_sxy=3, gaussian_compat=3, bilateral_sxy=80, bilateral_srgb=13,
              bilateral_compat=10, normalization: str = "symmetric", spacing=None,
              num_threads=None, origin=None):
    """Dense CRF mean-field inference, pydensecrf's model, batched, on CPU or CUDA.

    Parameters
    ----------
    logits : torch.Tensor or numpy.ndarray, shape ``[B, C, H, W]`` or ``[B, C, D, H, W]``
        Unnormalised log-probabilities (unary energy ``-log_softmax(logits)``), or
        probabilities when ``probabilities=True``. Float dtype, finite, C >= 2.
    image : torch.Tensor or numpy.ndarray, shape ``[B, K, H, W]`` or ``[B, K, D, H, W]``
        Guide image, uint8 or float in 0..255 (the units of ``bilateral_srgb``), any number of
        channels K (RGB: K = 3; 2 + K <= 16 in 2D, 3 + K <= 16 in 3D). Same device as ``logits``.
    probabilities : bool
        ``logits`` holds probabilities; unary ``-log(clip(p, 1e-5, 1))`` as pydensecrf's
        ``unary_from_softmax``.
    iterations : int
        Mean-field updates (>= 0; 0 returns ``softmax(-U)``).
    gaussian_sxy : float
        Spatial standard deviation (pixels) of the smoothness kernel.
    gaussian_compat : float, array of shape ``[C]`` or ``[C, C]``, or None
        Its label compatibility (None or 0: no Gaussian kernel).
    bilateral_sxy, bilateral_srgb : float
        Spatial and colour standard deviations of the appearance kernel (``bilateral_srgb``
        may also be a length-K sequence, one per channel).
    bilateral_compat : float, array of shape ``[C]`` or ``[C, C]``, or None
        Its label compatibility (None or 0: no bilateral kernel).
    normalization : {"symmetric", "after", "before", "none"}
        Kernel normalisation (pydensecrf's ``NORMALIZE_SYMMETRIC``, ``NORMALIZE_AFTER``, ``NORMALIZE_BEFORE``,
        ``NO_NORMALIZATION``).
    spacing : sequence of float, optional
        Voxel size per spatial axis, ``(sy, sx)`` in 2D or ``(sz, sy, sx)`` in 3D; coordinates
        are multiplied by it before dividing by the bandwidths.
    num_threads : int, optional
        CPU threads (None: ``torch.get_num_threads()``).
    origin : sequence of int, optional
        Index of the first pixel along each spatial axis, added to the coordinates (default
        0). For a tile of a larger image pass the tile's position: the lattice's vertices
        then sit where they sit for the whole image, so a tile with a wide enough halo
        reproduces the whole image's result (``segengine.dask.dense_crf`` does this).

    Returns
    -------
    torch.Tensor or numpy.ndarray
        Marginals ``Q`` float32 ``[B, C, *spatial]`` (summing to 1 over C); numpy for numpy input,
        otherwise a tensor on the input's device.

    Notes
    -----
    Compatibility follows pydensecrf exactly. A scalar ``w`` is the Potts model: ``-w * KQ``
    is the pairwise term, so neighbours with the same label *lower* a label's energy (an
    attraction of strength ``w``). A 1-D vector ``v`` is used as ``+diag(v) KQ``: **positive**
    entries then *raise* a label's energy where its neighbours share it, pushing labels
    apart -- the opposite of a scalar of the same sign. For per-class Potts weights pass
    ``-w_c``. A matrix ``M`` is used as ``+0.5 (M + M^T) KQ``.

    When the number of pixels per image is not a multiple of 4, pydensecrf's (SSE) lattice
    also holds the vertices of an all-zero feature vector (from its padding points); they
    carry no value but relay the blur. dense_crf reproduces this so that the results agree
    with pydensecrf to float rounding (``PermutohedralLattice(pydensecrf_padding=True)``).

    The CPU path builds the lattices once per call (C++), then runs every iteration in C++
    (splat + blur per kernel, then one fused pass: slice, normalise, compatibility, softmax),
    parallel with OpenMP and deterministic. The CUDA path builds the lattices on the GPU
    (sort-based keys) and runs the iterations with the lattice kernels and torch pointwise ops.

    References
    ----------
    .. [1] P. Kraehenbuehl, V. Koltun, "Efficient Inference in Fully Connected CRFs with
       Gaussian Edge Potentials", NIPS 2011.
    """
    lt, was_numpy = as_tensor(logits, "logits")
    it, _ = as_tensor(image, "image")
    if not lt.dtype.is_floating_point:
        raise TypeError(f"logits must be a floating-point tensor, got {lt.dtype}")
    if lt.dim() not in (4, 5):
        raise ValueError(f"logits must be [B, C, H, W] or [B, C, D, H, W], got shape {tuple(lt.shape)}")
    B, C = lt.shape[:2]
    spatial = tuple(lt.shape[2:])
    nd = len(spatial)
    if C < 2:
        raise ValueError(f"logits must have at least 2 classes (C >= 2), got C = {C}")
    if it.dim() != lt.dim() or it.shape[0] != B or tuple(it.shape[2:]) != spatial:
        raise ValueError(f"image must be [B, K, {', '.join(map(str, spatial))}] with B = {B}, "
                         f"got shape {tuple(it.shape)}")
    if it.device != lt.device:
        raise ValueError(f"image is on {it.device} but logits are on {lt.device}")
    if it.dtype.is_complex or it.dtype == torch.bool:
        raise TypeError(f"image must be uint8 or float, got {it.dtype}")
    K = it.shape[1]
    if K < 1 or nd + K > MAX_DIM:
        raise ValueError(f"image must have 1..{MAX_DIM - nd} channels, got {K}")
    cg = compat_array(gaussian_compat, C, "gaussian_compat")
    cb = compat_array(bilateral_compat, C, "bilateral_compat")
    # host-side checks that torch.compile cannot trace (a /proc read, a data-dependent branch);
    # traced, a non-finite image still raises, from the lattice build in the kernel
    eager = not torch.compiler.is_compiling()
    if eager and lt.device.type == "cpu":  # before anything of the input's size is allocated
        dims = ([nd] if cg is not None else []) + ([nd + K] if cb is not None else [])
        copy = lt.dtype != torch.float32 or not lt.is_contiguous()
        check_working_set(crf_working_set(B, math.prod(spatial), C, dims, copy),
                          f"dense_crf on logits of shape {list(lt.shape)}")
    if eager and not all_finite(it):
        raise ValueError("image must be finite (found NaN or Inf)")
    if isinstance(iterations, bool) or not isinstance(iterations, numbers.Integral) or iterations < 0:
        raise ValueError(f"iterations must be a non-negative integer, got {iterations!r}")
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
    nthreads = op_threads(num_threads)   # 0: resolved inside the kernel, at call time
    if spacing is None:
        sp = None
    else:
        sp = tuple(spacing)
        if len(sp) != nd:
            raise ValueError(f"spacing must have {nd} values (one per spatial axis), got {len(sp)}")
        sp = tuple(check_positive_finite(s, "spacing") for s in sp)
    if origin is not None:
        origin = tuple(origin)
        if len(origin) != nd or any(isinstance(o, bool) or not isinstance(o, numbers.Integral) for o in origin):
            raise ValueError(f"origin must be {nd} integers (one per spatial axis), got {origin!r}")
        if any(abs(int(o)) + n > 2**24 for o, n in zip(origin, spatial)):
            raise ValueError("origin: coordinates must stay below 2**24 (exact in float32)")

    compats = []
    if cg is not None:
        g = check_positive_finite(gaussian_sxy, "gaussian_sxy")
        compats.append(cg)
    if cb is not None:
        bxy = check_positive_finite(bilateral_sxy, "bilateral_sxy")
        if isinstance(bilateral_srgb, numbers.Number) or (isinstance(bilateral_srgb, (np.ndarray, torch.Tensor))
                                                          and np.ndim(bilateral_srgb) == 0):
            srgb = (check_positive_finite(bilateral_srgb, "bilateral_srgb"),) * K
        else:
            srgb = tuple(check_positive_finite(s, "bilateral_srgb") for s in bilateral_srgb)
            if len(srgb) != K:
                raise ValueError(f"bilateral_srgb must be a number or have K = {K} values, got {len(srgb)}")
        compats.append(cb)
    norms = [int(normalization_code(normalization))] * len(compats)
    N = math.prod(spatial)

    def features_of(b0, b1):
        """The kernels' features of images [b0, b1) as float32 [b1 - b0, d_k, N] views."""
        feats = []
        if cg is not None:  # the same for every image: one copy, broadcast over the batch
            f = point_features(1, spatial, (g,) * nd, spacing=sp, device=lt.device, origin=origin)
            feats.append(f.reshape(1, nd, N).expand(b1 - b0, -1, -1))
        if cb is not None:
            f = point_features(b1 - b0, spatial, (bxy,) * nd, it[b0:b1], srgb, spacing=sp, device=lt.device,
                               origin=origin)
            feats.append(f.reshape(b1 - b0, nd + K, N))
        return feats

    # the unary (-log_softmax or -log(clip(p))) and its checks are computed by the op
    inp = lt.to(torch.float32).reshape(B, C, N).contiguous()
    ctens = [torch.from_numpy(c).to(lt.device) for c in compats]
    kind = int(UnaryKind.PROBABILITIES if probabilities else UnaryKind.LOGITS)
    if eager and lt.device.type == "cpu":
        # the op's CPU kernel, with each chunk's features made only when it runs (the op
        # receives every image's at once)
        Q = torch.empty((B, C, N), dtype=torch.float32)
        _dense_crf_cpu(inp, features_of, ctens, norms, int(iterations), nthreads, True, kind, Q)
        return to_output(Q.reshape(B, C, *spatial), was_numpy)
    Q = _dense_crf_op(inp, features_of(0, B), ctens, norms, int(iterations), nthreads, True, kind)
    return to_output(Q.reshape(B, C, *spatial), was_numpy)
