"""The CUDA kernels of the graph-cut ops (``segengine::graphcut``, ``segengine::alpha_expansion``,
``segengine::alpha_beta_swap``): for now a copy to the CPU and back.

There is no GPU max-flow solver yet.  Each kernel makes the round trip explicit, in one
function a GPU kernel can later replace: the inputs are copied to the CPU, solved by the op's
CPU kernel and the outputs copied back to the input's device.  No CuPy is imported.

Imported at the end of :mod:`segengine.ops.graphcut` and :mod:`segengine.ops.multilabel`;
it imports both first, so that all three ops are defined before their kernels register,
whichever of the two modules is imported first.
"""

from __future__ import annotations

import torch

from segengine.ops import graphcut as _graphcut, multilabel as _multilabel   # noqa: F401 (define the ops)
from segengine.ops._library import register_kernel

__all__ = ["graphcut_cuda", "alpha_expansion_cuda", "alpha_beta_swap_cuda"]


def _cpu(t):
    return None if t is None else t.detach().cpu()


@register_kernel("graphcut", "cuda")
def graphcut_cuda(unary: torch.Tensor, weights: torch.Tensor, connectivity: int,
                  blackbox_lambda: float, num_threads: int) -> torch.Tensor:
    """Labels ``[B, *S]`` on ``unary``'s device (arguments as
    :func:`segengine.ops.graphcut.graphcut_cpu`'s)."""
    labels = _graphcut.graphcut_cpu(_cpu(unary), _cpu(weights), connectivity, blackbox_lambda,
                                    num_threads)
    return labels.to(unary.device)


@register_kernel("alpha_expansion", "cuda")
def alpha_expansion_cuda(unary: torch.Tensor, pairwise, edge_weights, init, label_order,
                         connectivity: int, max_cycles: int, num_threads: int):
    """Labels ``[B, *S]`` and energies ``[B]`` on ``unary``'s device (arguments as
    :func:`segengine.ops.multilabel.alpha_expansion_cpu`'s)."""
    labels, energy = _multilabel.alpha_expansion_cpu(
        _cpu(unary), _cpu(pairwise), _cpu(edge_weights), _cpu(init), _cpu(label_order),
        connectivity, max_cycles, num_threads)
    return labels.to(unary.device), energy.to(unary.device)


@register_kernel("alpha_beta_swap", "cuda")
def alpha_beta_swap_cuda(unary: torch.Tensor, pairwise, edge_weights, init, label_order,
                         connectivity: int, max_cycles: int, num_threads: int):
    """As :func:`alpha_expansion_cuda`, for swap moves."""
    labels, energy = _multilabel.alpha_beta_swap_cpu(
        _cpu(unary), _cpu(pairwise), _cpu(edge_weights), _cpu(init), _cpu(label_order),
        connectivity, max_cycles, num_threads)
    return labels.to(unary.device), energy.to(unary.device)
