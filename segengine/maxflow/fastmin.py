"""PyMaxflow-compatible ``fastmin``: alpha-expansion and alpha-beta swap on grids.

Layout as in PyMaxflow: ``unary`` is ``[S1, ..., SN, L]`` (labels last), ``binary`` is
``[L, L]`` and the pairwise term of two face neighbours p and q = p + e_d is
``binary[labels[q], labels[p]]`` (von Neumann neighbourhood, 1 <= N <= 3).  The moves are
solved exactly by segengine's grid max-flow; a move is kept only when it lowers the energy.

Unlike PyMaxflow, a ``binary`` matrix for which a move is not a graph cut is refused
(ValueError naming the labels): PyMaxflow 1.3.2 builds the expansion graph of Boykov et
al. (extra nodes between differently labelled neighbours), which is exact only for metrics,
and applies its cut unconditionally, so a non-metric ``binary`` silently yields labellings
whose energy can rise.  Integer costs whose energy bound exceeds 2**53 raise OverflowError
(the moves are solved in float64).

References
----------
Y. Boykov, O. Veksler, R. Zabih, "Fast approximate energy minimization via graph cuts",
TPAMI 2001.
"""

from __future__ import annotations

import numpy as np

from segengine._codes import MoveKind

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


def _run(method, unary, binary, max_cycles, labels, name, num_threads):
    from segengine._cy import _maxflow as _cy
    from segengine.ops import multilabel as ml
    from segengine.ops._common import resolve_threads
    from segengine.ops._memory import check_working_set
    num_threads = resolve_threads(num_threads)
    full = np.shape(unary)
    if len(full) >= 2:   # before any pass over the data
        N = 1
        for s in full[:-1]:
            N *= int(s)
        L = int(full[-1])
        n_moves = L if method == MoveKind.EXPANSION else L * (L - 1) // 2
        check_working_set(ml.multilabel_working_set(N, 2 * max(2, len(full) - 1), L, n_moves, method == MoveKind.EXPANSION, 0)
                          + 10.0 * N, f"{name} on unary of shape {full}")
    unary, binary, labels = _prepare(unary, binary, labels, name)
    L = unary.shape[-1]
    spatial = unary.shape[:-1]
    shape = spatial if len(spatial) > 1 else (1,) + spatial
    conn = 4 if len(shape) == 2 else 6
    unit = [tuple(int(i == d) for i in range(len(spatial))) for d in range(len(spatial))]
    ml.check_exact_energy(unary, -1, binary, None, len(shape), ml.neighbour_pairs(spatial, unit), name)
    if labels.size and max_cycles != 0:
        # the conditions are the same for binary and its transpose (our V), so the labels
        # named are binary's own
        ml.check_moves(method, np.asarray(binary, dtype=np.float64), np.arange(L), labels.reshape(-1),
                       name, "binary")
    # ours: C-major unary [L, N] and V[l_p, l_{p+o}] = binary[l_{p+o}, l_p]
    U = np.ascontiguousarray(np.moveaxis(unary, -1, 0).reshape(L, -1), dtype=np.float64).reshape(-1)
    V = np.ascontiguousarray(binary.T, dtype=np.float64).reshape(-1)
    lab = np.ascontiguousarray(labels, dtype=np.int64).reshape(-1).copy()
    order = np.arange(L, dtype=np.int64)
    mc = -1 if max_cycles is None else int(max_cycles)
    if mc == 0 or lab.size == 0:
        return labels
    try:
        _cy.multilabel(method, shape, conn, U, L, V, None, order, mc, lab, True, num_threads)
    except OverflowError as e:   # float costs beyond the fixed-point graphs' range
        raise OverflowError(f"{name}: {e}") from None
    labels[...] = lab.reshape(spatial).astype(labels.dtype, copy=False)
    return labels


def aexpansion_grid(unary, binary, max_cycles=None, labels=None, num_threads=None):
    """Minimise a grid energy by alpha-expansion (PyMaxflow layout).

    Parameters
    ----------
    unary : ndarray ``[S1, ..., SN, L]``
        ``unary[p, l]``: cost of label l at p.
    binary : ndarray ``[L, L]``
        Pairwise cost.  Every expansion move must be a graph cut:
        ``binary[b, c] + binary[a, a] <= binary[b, a] + binary[a, c]`` for all labels a, b, c
        that can meet (a metric satisfies it); ValueError otherwise.
    max_cycles : int, optional
        Maximum number of cycles over all labels (None: until convergence).
    labels : ndarray of int ``[S1, ..., SN]``, optional
        Initial labelling, modified in place (default: per-pixel argmin of ``unary``).
    num_threads : int, optional
        segengine extension: threads (None: ``torch.get_num_threads()``) for the fresh moves
        of large grids, solved in parallel slabs.  The result does not depend on it.

    Returns
    -------
    labels : ndarray ``[S1, ..., SN]``
    """
    return _run(MoveKind.EXPANSION, unary, binary, max_cycles, labels, "aexpansion_grid", num_threads)


def abswap_grid(unary, binary, max_cycles=None, labels=None, num_threads=None):
    """Minimise a grid energy by alpha-beta swap (PyMaxflow layout).

    Parameters
    ----------
    unary : ndarray ``[S1, ..., SN, L]``
        ``unary[p, l]``: cost of label l at p.
    binary : ndarray ``[L, L]``
        Pairwise cost; needs only ``binary[a, b] + binary[b, a] >= binary[a, a] + binary[b, b]``
        for all a != b (a semi-metric satisfies it); ValueError otherwise.
    max_cycles, labels, num_threads
        As in :func:`~segengine.maxflow.fastmin.aexpansion_grid`.

    Returns
    -------
    labels : ndarray ``[S1, ..., SN]``
    """
    return _run(MoveKind.SWAP, unary, binary, max_cycles, labels, "abswap_grid", num_threads)


def energy_of_grid_labeling(unary, binary, labels):
    """Energy of a labelling with PyMaxflow's convention (see the module docstring).

    Parameters
    ----------
    unary : ndarray ``[S1, ..., SN, L]``
        Unary costs.
    binary : ndarray ``[L, L]``
        Pairwise costs: a face-neighbour pair (p, q = p + e_d) costs
        ``binary[labels[q], labels[p]]``.
    labels : ndarray of int ``[S1, ..., SN]``
        The labelling.

    Returns
    -------
    number
        ``sum_p unary[p, labels[p]] + sum_(p, q) binary[labels[q], labels[p]]``.
    """
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
