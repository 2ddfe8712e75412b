"""Trainable layers: ``DenseCRF``, the CRF-as-RNN layer (Zheng et al. 2015).

The layer unrolls mean-field inference of a fully connected CRF with a Gaussian
(appearance-free) and a bilateral kernel, both filtered on permutohedral lattices that are
built once per forward pass and reused by every iteration and by the backward pass (the
gradient of a lattice filter is the adjoint filter on the same lattice).
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint as _checkpoint

from segengine.ops._common import all_finite, check_threads
from segengine.ops._crf_norm import normalizers
from segengine.ops._memory import check_working_set
from segengine.ops.lattice import (PermutohedralLattice, check_positive_finite, lattice_working_set,
                                   point_features)

__all__ = ["DenseCRF"]

_NORMALIZATIONS = ("symmetric", "after", "none")
# the float32 C x C compatibility matrices must have a byte size below 2**63
_MAX_CLASSES = 2**30


def crf_features(image: torch.Tensor, gaussian_sxy: float, bilateral_sxy: float,
                 bilateral_srgb: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian ``[B, 2, H, W]`` (x/sxy, y/sxy) and bilateral ``[B, 2+K, H, W]``
    (x/sxy, y/sxy, image/srgb) features in pydensecrf's order, float32."""
    B, _, H, W = image.shape
    K = image.shape[1]
    g = point_features(B, (H, W), (gaussian_sxy, gaussian_sxy), device=image.device)
    b = point_features(B, (H, W), (bilateral_sxy, bilateral_sxy), image.detach(), (bilateral_srgb,) * K,
                       device=image.device)
    return g, b


class _Kernel:
    """One pairwise kernel: its lattice and the normalisation factors (no gradient)."""

    def __init__(self, features: torch.Tensor, normalization: str, dtype: torch.dtype,
                 num_threads: Optional[int]):
        # pydensecrf_padding: the extra vertices pydensecrf's build adds when the pixel count is
        # not a multiple of 4, so that the untrained layer equals dense_crf (and pydensecrf)
        self.lattice = PermutohedralLattice(features, num_threads=num_threads, pydensecrf_padding=True)
        self.normalization = normalization
        k1 = None
        if normalization != "none":
            ones = torch.ones((features.shape[0], 1) + tuple(features.shape[2:]), dtype=dtype,
                              device=features.device)
            k1 = self.lattice.filter(ones)
        self.pre, self.post = normalizers(k1, normalization)

    def apply(self, q: torch.Tensor) -> torch.Tensor:
        out = self.lattice.filter(q if self.pre is None else self.pre * q)
        return out if self.post is None else out * self.post


class DenseCRF(nn.Module):
    """Fully connected CRF as a trainable layer (CRF-as-RNN).

    ``forward(logits, image)`` runs ``iterations`` mean-field updates and returns refined
    pre-softmax logits, ready for ``F.cross_entropy``:

    ``Q0 = softmax(logits)``, then ``z = log_softmax(logits) - sum_k a_k M_k (K_k Q)`` and
    ``Q = softmax(z)`` per iteration, ``K_k`` being the normalised Gaussian and bilateral
    lattice filters and ``M_k`` a learnable ``C x C`` compatibility matrix per kernel,
    initialised to pydensecrf's Potts compatibility ``-w_k I``; ``a_k`` are learnable kernel
    weights initialised to 1. Untrained, ``softmax(forward(...))`` equals
    :func:`segengine.dense_crf` with the same settings (scalar compat ``w_k``).

    Parameters
    ----------
    num_classes : int
    iterations : int
        Mean-field iterations (0 returns ``log_softmax(logits)``).
    gaussian_sxy, bilateral_sxy, bilateral_srgb : float
        Kernel bandwidths in pixels and intensity units (fixed hyper-parameters).
    gaussian_compat, bilateral_compat : float
        Initial Potts weights ``w_k``.
    normalization : {"symmetric", "after", "none"}
        pydensecrf's kernel normalisation.
    checkpoint : bool
        Recompute each iteration in the backward pass instead of storing its
        intermediates (memory ~ one iteration instead of ``iterations``).
    num_threads : int, optional
        CPU threads for the lattice (None: ``torch.get_num_threads()``).

    Notes
    -----
    Shapes: ``logits`` ``[B, C, H, W]`` float32/float64; ``image`` ``[B, K, H, W]`` (uint8 or
    float in 0..255, any K; no gradient flows to it). The compatibility matrices are used as
    given (pydensecrf symmetrises a matrix compat, ``(M + M^T)/2``; a trained layer need not).

    References
    ----------
    .. [1] S. Zheng et al., "Conditional Random Fields as Recurrent Neural Networks", ICCV 2015.
    .. [2] P. Krähenbühl, V. Koltun, "Efficient Inference in Fully Connected CRFs with
       Gaussian Edge Potentials", NIPS 2011.
    """

    def __init__(self, num_classes: int, iterations: int = 5, gaussian_sxy: float = 3.0,
                 bilateral_sxy: float = 80.0, bilateral_srgb: float = 13.0,
                 gaussian_compat: float = 3.0, bilateral_compat: float = 10.0,
                 normalization: str = "symmetric", checkpoint: bool = False,
                 num_threads: Optional[int] = None):
        super().__init__()
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes must be an int >= 2, got {num_classes!r}")
        if num_classes > _MAX_CLASSES:
            raise ValueError(f"num_classes must be at most 2**30 (the C x C compatibility matrices), "
                             f"got {num_classes!r}")
        # torch.eye, the two parameters and the clone: four float32 C x C matrices
        check_working_set(16.0 * num_classes * num_classes, f"DenseCRF(num_classes={num_classes})")
        if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 0:
            raise ValueError(f"iterations must be a non-negative int, got {iterations!r}")
        if normalization not in _NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {_NORMALIZATIONS}, got {normalization!r}")
        self.num_classes = num_classes
        self.iterations = iterations
        self.gaussian_sxy = check_positive_finite(gaussian_sxy, "gaussian_sxy")
        self.bilateral_sxy = check_positive_finite(bilateral_sxy, "bilateral_sxy")
        self.bilateral_srgb = check_positive_finite(bilateral_srgb, "bilateral_srgb")
        self.normalization = normalization
        self.checkpoint = bool(checkpoint)
        check_threads(num_threads)
        self.num_threads = num_threads
        eye = torch.eye(num_classes)
        self.gaussian_compat = nn.Parameter(-float(gaussian_compat) * eye)
        self.bilateral_compat = nn.Parameter(-float(bilateral_compat) * eye.clone())
        self.kernel_weights = nn.Parameter(torch.ones(2))

    def extra_repr(self) -> str:
        return (f"num_classes={self.num_classes}, iterations={self.iterations}, "
                f"gaussian_sxy={self.gaussian_sxy}, bilateral_sxy={self.bilateral_sxy}, "
                f"bilateral_srgb={self.bilateral_srgb}, normalization={self.normalization!r}, "
                f"checkpoint={self.checkpoint}")

    def _check(self, logits: torch.Tensor, image: torch.Tensor) -> None:
        if not isinstance(logits, torch.Tensor) or not isinstance(image, torch.Tensor):
            raise TypeError("logits and image must be torch tensors")
        if logits.dim() != 4:
            raise ValueError(f"logits must be [B, C, H, W], got shape {tuple(logits.shape)}")
        if logits.shape[1] != self.num_classes:
            raise ValueError(f"logits have {logits.shape[1]} classes, the layer {self.num_classes}")
        if logits.dtype not in (torch.float32, torch.float64):
            raise TypeError(f"logits must be float32 or float64, got {logits.dtype}")
        if image.dim() != 4 or image.shape[0] != logits.shape[0] or image.shape[2:] != logits.shape[2:]:
            raise ValueError(f"image must be [B, K, H, W] matching logits {tuple(logits.shape)}, "
                             f"got {tuple(image.shape)}")
        if image.device != logits.device:
            raise ValueError(f"image is on {image.device} but logits are on {logits.device}")
        if logits.numel() == 0 or image.shape[1] == 0:
            raise ValueError("logits and image must not be empty")
        # the working-set guard (host memory: CPU tensors), before any pass over the data
        if logits.device.type == "cpu" and not torch.compiler.is_compiling():
            self._check_memory(logits, image)
        # a data-dependent branch torch.compile cannot trace; traced, the lattice build raises
        if not torch.compiler.is_compiling() and not all_finite(image):
            raise ValueError("image must be finite")

    def _check_memory(self, logits: torch.Tensor, image: torch.Tensor) -> None:
        """Estimated bytes of a forward: the features (Gaussian, bilateral, colour and the
        finiteness mask), the two lattices with their value rows and normalisers, and per
        iteration about eight [B, C, H, W] tensors (all kept for autograd when it records)."""
        B, C, H, W = logits.shape
        K = image.shape[1]
        P = B * H * W
        item = logits.element_size()
        feats = 4.0 * P * (2 + (2 + K) + K) + P * K
        lattices = sum(lattice_working_set(P, d, C, item) + 4.0 * P for d in (2, 2 + K))
        kept = self.iterations if torch.is_grad_enabled() and logits.requires_grad else 1
        tensors = item * float(P) * C * (2 + 8 * max(kept, 1))
        check_working_set(feats + lattices + tensors,
                          f"DenseCRF forward on logits {tuple(logits.shape)} and image {tuple(image.shape)}")

    def kernels(self, image: torch.Tensor, dtype: torch.dtype) -> list[_Kernel]:
        """Build the Gaussian and bilateral lattices for ``image`` (once per forward).

        Parameters
        ----------
        image : torch.Tensor
            ``[B, K, H, W]``, as in :meth:`forward`.
        dtype : torch.dtype
            dtype of the values the kernels will filter.

        Returns
        -------
        list
            The two kernels (internal ``_Kernel`` objects holding a lattice and its normaliser).
        """
        g, b = crf_features(image, self.gaussian_sxy, self.bilateral_sxy, self.bilateral_srgb)
        return [_Kernel(g, self.normalization, dtype, self.num_threads),
                _Kernel(b, self.normalization, dtype, self.num_threads)]

    def _pairwise(self, kernels, q, gm, bm, kw):
        msg = kw[0] * torch.einsum("ij,bj...->bi...", gm, kernels[0].apply(q))
        return msg + kw[1] * torch.einsum("ij,bj...->bi...", bm, kernels[1].apply(q))

    def forward(self, logits: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """Run the mean-field iterations.

        Parameters
        ----------
        logits : torch.Tensor
            float32 or float64 ``[B, C, H, W]``, C = ``num_classes``.
        image : torch.Tensor
            ``[B, K, H, W]``, uint8 or float in 0..255 (the units of ``bilateral_srgb``), on
            the device of ``logits``; receives no gradient.

        Returns
        -------
        torch.Tensor
            Refined pre-softmax logits ``[B, C, H, W]``, dtype of ``logits``.
        """
        self._check(logits, image)
        kernels = self.kernels(image, logits.dtype)
        gm = self.gaussian_compat.to(logits.dtype)
        bm = self.bilateral_compat.to(logits.dtype)
        kw = self.kernel_weights.to(logits.dtype)
        neg_unary = F.log_softmax(logits, dim=1)
        z = neg_unary
        for _ in range(self.iterations):
            q = torch.softmax(z, dim=1)
            if self.checkpoint and torch.is_grad_enabled():
                msg = _checkpoint(self._pairwise, kernels, q, gm, bm, kw, use_reentrant=False)
            else:
                msg = self._pairwise(kernels, q, gm, bm, kw)
            z = neg_unary - msg
        return z
