"""The CUDA kernels of ``segengine::watershed`` and ``segengine::watershed_batch``: for now a
copy to the CPU and back.

There is no GPU watershed yet. Each kernel makes the round trip explicit, in one function a
GPU kernel can later replace: the inputs are copied to the CPU, flooded by the CPU kernel
(:func:`segengine.ops.watershed.watershed_cpu` / ``watershed_batch_cpu``) and the labels
copied back to the image's device. Schemas and fake kernels live in
:mod:`segengine.ops.watershed`, which imports this module once the ops are defined; imports
no CuPy.
"""

from __future__ import annotations

import torch

from segengine.ops._library import register_kernel

__all__ = ["watershed_cuda", "watershed_batch_cuda"]


def _host(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.detach().cpu()


@register_kernel("watershed", "cuda")
def watershed_cuda(image, markers, mask, footprint, offset, minima_connectivity, compactness,
                   watershed_line, seed_count=None, tie=0, num_threads=0):
    """Labels of ``image.shape`` on ``image``'s CUDA device (arguments as the CPU kernel's;
    ``num_threads`` is the CPU kernel's thread count for the fast and parallel tie orders)."""
    from segengine.ops.watershed import watershed_cpu
    out = watershed_cpu(_host(image), _host(markers), _host(mask), _host(footprint), offset,
                        minima_connectivity, compactness, watershed_line, seed_count, tie,
                        num_threads)
    return out.to(image.device)


@register_kernel("watershed_batch", "cuda")
def watershed_batch_cuda(images, markers, mask, footprint, offset, minima_connectivity,
                         compactness, watershed_line, seed_count, num_threads, tie=0):
    """Labels of ``images.shape`` on ``images``' CUDA device (arguments as the CPU kernel's;
    ``num_threads`` is the CPU kernel's thread count)."""
    from segengine.ops.watershed import watershed_batch_cpu
    out = watershed_batch_cpu(_host(images), _host(markers), _host(mask), _host(footprint), offset,
                              minima_connectivity, compactness, watershed_line, seed_count,
                              num_threads, tie)
    return out.to(images.device)
