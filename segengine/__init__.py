"""segengine: compiled segmentation kernels for Python and PyTorch.

Dense CRF on a permutohedral lattice, max-flow/min-cut graph cuts, watershed and
fused bilinear upsampling, on CPU (C++/OpenMP) and CUDA (NVRTC through CuPy).
Public functions are imported on first use so that ``import segengine`` stays cheap.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_LAZY = {
    "upsample_argmax": "segengine.ops.upsample",
    "upsample_cross_entropy": "segengine.ops.upsample",
    "dense_crf": "segengine.ops.crf",
    "PermutohedralLattice": "segengine.ops.lattice",
    "permutohedral_filter": "segengine.ops.lattice",
    "bilateral_filter": "segengine.ops.lattice",
    "graphcut": "segengine.ops.graphcut",
    "alpha_expansion": "segengine.ops.multilabel",
    "alpha_beta_swap": "segengine.ops.multilabel",
    "watershed": "segengine.ops.watershed",
    "watershed_batch": "segengine.ops.watershed",
}
_SUBMODULES = ("densecrf", "maxflow", "nn", "metrics")

__all__ = sorted(_LAZY) + list(_SUBMODULES)


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        module = importlib.import_module(f"segengine.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'segengine' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
