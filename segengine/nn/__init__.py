"""Trainable layers built on segengine's ops.

- :class:`DenseCRF`: CRF-as-RNN (Zheng et al. 2015), mean field on the permutohedral lattice.
- :class:`GraphCut`: binary graph-cut segmentation with a blackbox backward.
"""

from segengine.nn._crf import DenseCRF
from segengine.nn._graphcut import GraphCut

__all__ = ["DenseCRF", "GraphCut"]
