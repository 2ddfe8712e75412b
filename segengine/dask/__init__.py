"""segengine over dask arrays: volumes larger than memory and whole datasets.

Optional extra ``segengine[dask]`` (dask.array, dask.distributed, zarr). ``import segengine``
never imports this package. Every function takes dask arrays (numpy arrays are wrapped with
``dask.array.from_array``), returns a **lazy** dask array, and runs under any scheduler:
a ``dask.distributed.Client`` (processes or threads; the kernels release the GIL), the
threaded scheduler, or ``synchronous``. The single-process ops in :mod:`segengine` stay the
one implementation of each algorithm; this layer adds only what blockwise work needs
(halos, seam repair, global label numbering, tree reductions).
"""

from __future__ import annotations

import importlib

from segengine.dask._common import require_dask

require_dask()

_LAZY = {
    "watershed": "segengine.dask._watershed",
    "regional_minima_markers": "segengine.dask._minima",
    "rank_table": "segengine.dask._minima",
    "relabel_sequential": "segengine.dask._minima",
    "open_array": "segengine.dask._io",
    "save_array": "segengine.dask._io",
    "is_complete": "segengine.dask._io",
    "dense_crf": "segengine.dask._crf",
    "graphcut": "segengine.dask._batch",
    "alpha_expansion": "segengine.dask._batch",
    "upsample_argmax": "segengine.dask._batch",
    "confusion_matrix": "segengine.dask._metrics",
    "mean_iou": "segengine.dask._metrics",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'segengine.dask' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
