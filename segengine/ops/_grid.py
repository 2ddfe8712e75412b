"""Grid connectivities of the graph-cut ops: the forward neighbour offsets, read from the kernel.

The one definition of the offsets is ``seg::mf::forward_offsets`` in csrc/cpu/maxflow.cpp
(every offset in {-1, 0, 1}^ndim whose first non-zero component is positive, restricted to
the connectivity, in C order of the 3^ndim neighbourhood).  This module reads that table once,
at import, through the binding ``segengine._cy._maxflow.forward_offsets``, and keeps it as
plain tuples, so that lookups are constants torch.compile can trace.

Offsets ``(d_0, ..., d_{ndim-1})`` per connectivity, in the order of the K per-pair weights
(``pairwise[b, k]`` of :func:`segengine.graphcut`, ``edge_weights[k]`` of
:func:`segengine.alpha_expansion`, ``weights[k]`` of :func:`segengine.maxflow.grid_maxflow`):

==== ===== == ===========================================================
ndim conn  K  offsets
==== ===== == ===========================================================
2    4     2  (0, 1), (1, 0)
2    8     4  (0, 1), (1, -1), (1, 0), (1, 1)
3    6     3  (0, 0, 1), (0, 1, 0), (1, 0, 0)
3    18    9  the 6 above and the 12 with two non-zero components, forward half
3    26    13 every forward offset of the 3x3x3 neighbourhood
==== ===== == ===========================================================
"""

from __future__ import annotations

import numpy as np

from segengine._cy import _maxflow as _cy

__all__ = ["VALID_CONNECTIVITY", "DEFAULT_CONNECTIVITY", "check_connectivity", "forward_offsets",
           "offsets", "num_offsets"]

# Connectivities per number of spatial dimensions, the first being the default.
VALID_CONNECTIVITY = {2: (4, 8), 3: (6, 18, 26)}
DEFAULT_CONNECTIVITY = {nd: conns[0] for nd, conns in VALID_CONNECTIVITY.items()}

# (ndim, connectivity) -> tuple of K offset tuples, read from the kernel's table.
_OFFSETS = {(nd, conn): tuple(tuple(int(v) for v in row) for row in _cy.forward_offsets(nd, conn))
            for nd, conns in VALID_CONNECTIVITY.items() for conn in conns}


def check_connectivity(ndim: int, connectivity) -> int:
    """The connectivity to use on a grid of ``ndim`` (2 or 3) spatial dimensions.

    Parameters
    ----------
    ndim : int
        Number of spatial dimensions.
    connectivity : int or None
        4 or 8 in 2D, 6, 18 or 26 in 3D; None: 4 in 2D, 6 in 3D.

    Returns
    -------
    int

    Raises
    ------
    ValueError
        ``ndim`` is not 2 or 3, or ``connectivity`` is not one of its connectivities.
    """
    if ndim not in VALID_CONNECTIVITY:
        raise ValueError(f"grids must be 2D or 3D, got {ndim} spatial dimensions")
    if connectivity is None:
        return DEFAULT_CONNECTIVITY[ndim]
    if connectivity not in VALID_CONNECTIVITY[ndim]:
        raise ValueError(f"connectivity must be one of {VALID_CONNECTIVITY[ndim]} for a {ndim}D grid, "
                         f"got {connectivity}")
    return int(connectivity)


def offsets(ndim: int, connectivity: int) -> tuple:
    """The K forward offsets of a connectivity as a tuple of ``ndim``-tuples (see the table
    above); ValueError for a connectivity the grid does not have."""
    key = (ndim, connectivity)
    if key not in _OFFSETS:
        raise ValueError(f"connectivity must be one of "
                         f"{VALID_CONNECTIVITY.get(ndim, (4, 8, 6, 18, 26))} for a {ndim}D grid, "
                         f"got {connectivity}")
    return _OFFSETS[key]


def forward_offsets(ndim: int, connectivity: int) -> np.ndarray:
    """Forward neighbour offsets, ``int64 [K, ndim]``, in the order of the per-pair weights.

    Parameters
    ----------
    ndim : int
        2 or 3.
    connectivity : int
        4 or 8 (2D), 6, 18 or 26 (3D).

    Returns
    -------
    ndarray of int64, shape ``[K, ndim]`` (K = 2, 4 in 2D; 3, 9, 13 in 3D)
    """
    return np.array(offsets(ndim, connectivity), dtype=np.int64).reshape(-1, ndim)


def num_offsets(ndim: int, connectivity: int) -> int:
    """K, the number of forward offsets (2, 4 in 2D; 3, 9, 13 in 3D)."""
    return len(offsets(ndim, connectivity))
