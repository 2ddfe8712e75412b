"""segengine: compiled segmentation kernels for Python and PyTorch.

Dense CRF on a permutohedral lattice, max-flow/min-cut graph cuts, watershed and
fused bilinear upsampling, on CPU (C++/OpenMP) and CUDA (NVRTC through CuPy).
Public functions are imported on first use so that ``import segengine`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the lazy names below, for type checkers (the package ships py.typed)
    from segengine import densecrf, maxflow, metrics, nn
    from segengine.ops.crf import dense_crf
    from segengine.ops.graphcut import graphcut
    from segengine.ops.lattice import PermutohedralLattice, bilateral_filter, permutohedral_filter
    from segengine.ops.multilabel import alpha_beta_swap, alpha_expansion
    from segengine.ops.upsample import upsample_argmax, upsample_cross_entropy
    from segengine.ops.watershed import watershed, watershed_batch

    __version__: str

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
# __version__ is read from the installed package metadata on first access (__getattr__ below),
# so that the version is written once, in pyproject.toml.


def _version() -> str:
    """The installed distribution's version (``0+unknown`` for a source tree nobody installed)."""
    from importlib import metadata

    try:
        return metadata.version("segengine")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def __getattr__(name: str):
    if name == "__version__":  # read from the package metadata on first use
        value = globals()["__version__"] = _version()
        return value
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
    return sorted(set(globals()) | set(__all__) | {"__version__"})
