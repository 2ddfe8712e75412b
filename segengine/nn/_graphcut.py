"""Trainable layers: ``GraphCut``, binary graph-cut segmentation with a blackbox backward."""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn

from segengine.ops._common import check_threads
from segengine.ops.graphcut import graphcut

__all__ = ["GraphCut"]


class GraphCut(nn.Module):
    """Module form of :func:`segengine.graphcut`: exact binary segmentation of a batch, with
    fixed pairwise weight, connectivity, contrast parameter and blackbox lambda.

    Its forward equals :func:`segengine.graphcut` with the same settings; the gradient reaches
    ``unary`` (and what computed it) through blackbox differentiation (Vlastelica et al. 2020),
    so the layer can end a network trained with a loss on the labels.  It holds no parameters.

    Parameters
    ----------
    pairwise : float
        Non-negative Potts weight of every neighbour pair (per-pair weights: call
        :func:`segengine.graphcut` directly).
    connectivity : int, optional
        4 (default) or 8 in 2D; 6 (default), 18 or 26 in 3D.
    beta : float, optional
        Contrast parameter used when ``forward`` gets an image (None: per image,
        ``1 / (2 * mean ||I_p - I_q||^2)``).
    blackbox_lambda : float
        Interpolation strength lambda > 0 of the backward.
    num_threads : int, optional
        Threads for the batch (None: ``torch.get_num_threads()`` when the op runs).

    Notes
    -----
    Shapes of ``forward(unary, image=None)``:

    - unary: ``[B, 2, H, W]`` or ``[B, 2, D, H, W]`` (floating point), the cost of each label;
    - image (optional): ``[B, C', *spatial]``, makes the weights contrast-sensitive;
    - output: ``[B, *spatial]``, unary's dtype, values in {0, 1}.

    Examples
    --------
    >>> layer = segengine.nn.GraphCut(pairwise=0.5, blackbox_lambda=10.0)
    >>> labels = layer(torch.randn(2, 2, 32, 32, requires_grad=True))
    """

    def __init__(self, pairwise: float = 1.0, connectivity: Optional[int] = None,
                 beta: Optional[float] = None, blackbox_lambda: float = 20.0,
                 num_threads: Optional[int] = None):
        super().__init__()
        pairwise = float(pairwise)
        if not (math.isfinite(pairwise) and pairwise >= 0):
            raise ValueError(f"pairwise must be a non-negative finite number, got {pairwise!r}")
        if not (isinstance(blackbox_lambda, (int, float)) and math.isfinite(blackbox_lambda)
                and blackbox_lambda > 0):
            raise ValueError(f"blackbox_lambda must be a positive finite number, got {blackbox_lambda!r}")
        check_threads(num_threads)
        self.pairwise = pairwise
        self.connectivity = connectivity
        self.beta = beta
        self.blackbox_lambda = float(blackbox_lambda)
        self.num_threads = num_threads

    def forward(self, unary: torch.Tensor, image: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Solve the batch.

        Parameters
        ----------
        unary : torch.Tensor
            ``[B, 2, H, W]`` or ``[B, 2, D, H, W]`` floating point: the cost of each label.
        image : torch.Tensor, optional
            ``[B, C', *spatial]``: makes the weights contrast-sensitive.

        Returns
        -------
        torch.Tensor
            Labels ``[B, *spatial]`` in {0, 1}, dtype of ``unary``; see :func:`segengine.graphcut`.
        """
        return graphcut(unary, self.pairwise, image=image, beta=self.beta,
                        connectivity=self.connectivity, blackbox_lambda=self.blackbox_lambda,
                        num_threads=self.num_threads)

    def extra_repr(self) -> str:
        return (f"pairwise={self.pairwise}, connectivity={self.connectivity}, beta={self.beta}, "
                f"blackbox_lambda={self.blackbox_lambda}")
