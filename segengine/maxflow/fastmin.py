"""PyMaxflow-compatible ``fastmin``: alpha-expansion and alpha-beta swap on grids.

Layout as in PyMaxflow: ``unary`` is ``[S1, ..., SN, L]`` (labels last), ``binary`` is
``[L, L]`` and the pairwise term of two face neighbours p and q = p + e_d is
``binary[labels[q], labels[p]]`` (von Neumann neighbourhood, 1 <= N <= 3).  The moves are
solved exactly by segengine's grid max-flow; a move is kept only when it lowers the energy.

References
----------
Y. Boykov, O. Veksler, R. Zabih, "Fast approximate energy minimization via graph cuts",
TPAMI 2001.
"""

from __future__ import annotations

import numpy as np

__all__ = ["aexpansion_grid", "abswap_grid", "energy_of_grid_labeling"]


def _prepare(unary, binary, labels, name):
    unary = np.asarray(unary)
    if unary.ndim == 0:
        raise ValueError("The unary term cannot be a scalar")
    L = unary.shape[-1]
    if L == 0:
        raise ValueError("The number of labels cannot be 0")
    binary = np.asarray(binary)
    if binary.shape != (L, L):
        raise ValueError(f"The binary term must be a square matrix of shape (num_labels, num_labels) = "
                         f"({L}, {L}); got {binary.shape}")
    spatial = unary.shape[:-1]
    if not 1 <= len(spatial) <= 3:
        raise ValueError(f"{name}: grids of 1 to 3 dimensions are supported, got {len(spatial)}")
    if not (np.all(np.isfinite(unary)) and np.all(np.isfinite(binary))):
        raise ValueError(f"{name}: unary and binary must be finite")
    if labels is None:
        init = unary.argmin(axis=-1)
        labels = init.astype(np.int8) if L <= 127 else init.astype(np.int64)
    else:
        labels = np.asarray(labels)
        if labels.shape != spatial:
            raise ValueError(f"labels must have shape {spatial}, got {labels.shape}")
        if not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"labels must be an integer array, got {labels.dtype}")
        if labels.size and labels.min() < 0:
            raise ValueError("Values of labels must be non-negative")
        if labels.size and labels.max() >= L:
            raise ValueError(f"Values of labels must be smaller than num_labels={L}")
    return unary, binary, labels


def _run(method, unary, binary, max_cycles, labels, name):
    from segengine._cy import _maxflow as _cy
    unary, binary, labels = _prepare(unary, binary, labels, name)
    L = unary.shape[-1]
    spatial = unary.shape[:-1]
    shape = spatial if len(spatial) > 1 else (1,) + spatial
    conn = 4 if len(shape) == 2 else 6
    # ours: C-major unary [L, N] and V[l_p, l_{p+o}] = binary[l_{p+o}, l_p]
    U = np.ascontiguousarray(np.moveaxis(unary, -1, 0).reshape(L, -1), dtype=np.float64).reshape(-1)
    V = np.ascontiguousarray(binary.T, dtype=np.float64).reshape(-1)
    lab = np.ascontiguousarray(labels, dtype=np.int64).reshape(-1).copy()
    order = np.arange(L, dtype=np.int64)
    mc = -1 if max_cycles is None else int(max_cycles)
    if mc == 0 or lab.size == 0:
        return labels
    _cy.multilabel(method, shape, conn, U, L, V, None, order, mc, lab)
    labels[...] = lab.reshape(spatial).astype(labels.dtype, copy=False)
    return labels


def aexpansion_grid(unary, binary, max_cycles=None, labels=None):
    """Minimise a grid energy by alpha-expansion (PyMaxflow layout).

    Parameters
    ----------
    unary : ndarray ``[S1, ..., SN, L]``
        ``unary[p, l]``: cost of label l at p.
    binary : ndarray ``[L, L]``
        Pairwise cost; a metric for the expansion to be well defined.
    max_cycles : int, optional
        Maximum number of cycles over all labels (None: until convergence).
    labels : ndarray of int ``[S1, ..., SN]``, optional
        Initial labelling, modified in place (default: per-pixel argmin of ``unary``).

    Returns
    -------
    labels : ndarray ``[S1, ..., SN]``
    """
    return _run(0, unary, binary, max_cycles, labels, "aexpansion_grid")


def abswap_grid(unary, binary, max_cycles=None, labels=None):
    """Minimise a grid energy by alpha-beta swap (PyMaxflow layout); see :func:`aexpansion_grid`.

    ``binary`` only needs to be a semi-metric.
    """
    return _run(1, unary, binary, max_cycles, labels, "abswap_grid")


def energy_of_grid_labeling(unary, binary, labels):
    """Energy of ``labels`` with PyMaxflow's convention (see the module docstring)."""
    unary = np.asarray(unary)
    labels = np.asarray(labels)
    L = unary.shape[-1]
    e = sum(unary[labels == i, i].sum() for i in range(L))
    for d in range(labels.ndim):
        a = [slice(None)] * labels.ndim
        b = [slice(None)] * labels.ndim
        a[d] = slice(1, None)
        b[d] = slice(None, -1)
        e += binary[labels[tuple(a)], labels[tuple(b)]].sum()
    return e
