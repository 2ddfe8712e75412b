"""Multi-label grid energies: alpha-expansion and alpha-beta swap.

Both minimise

    E(l) = sum_p unary[l_p, p] + sum_k sum_p w_k(p) * V[l_p, l_(p + o_k)]

over labellings l of a 2D/3D grid, with the forward neighbour offsets o_k of
:func:`segengine.maxflow.grid.forward_offsets`, by repeated exact binary moves solved
with segengine's max-flow (a move is kept only when it lowers the energy).

Speed notes: every move is solved on the implicit grid.  A move whose labels did not change
since its last solve is skipped (same problem, same rejected answer).  Alpha-expansion keeps
each label's solved residual graph and search trees (while all of them fit in 512 MiB: 52
bytes per pixel and label on a 2D 4-connected grid); the next expansion of that label only
updates the capacities around the pixels whose label changed since and resumes the solve
from the previous flow and trees (dynamic graph cuts).  The cut returned is the same as a
fresh solve's in exact arithmetic (the sink side is the set of nodes that reach the sink in
the residual graph, the same for every maximum flow); with float costs rounding can pick a
different one of several equal-energy cuts.  The first cycle (fresh solves) then takes most
of the time.

References
----------
Y. Boykov, O. Veksler, R. Zabih, "Fast approximate energy minimization via graph cuts",
TPAMI 2001.  V. Kolmogorov, R. Zabih, "What energy functions can be minimized via graph
cuts?", TPAMI 2004.  P. Kohli, P. H. S. Torr, "Efficiently solving dynamic Markov random
fields using graph cuts", ICCV 2005.
"""

from __future__ import annotations

import numpy as np
import torch

from segengine.maxflow.grid import check_connectivity, forward_offsets

__all__ = ["alpha_expansion", "alpha_beta_swap"]


def _to_numpy(x, name):
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _run(method, name, unary, pairwise, edge_weights, connectivity, max_cycles, init, label_order):
    from segengine._cy import _maxflow as _cy
    is_tensor = isinstance(unary, torch.Tensor)
    device = unary.device if is_tensor else None
    U = _to_numpy(unary, "unary")
    if U.ndim not in (3, 4):
        raise ValueError(f"{name}: unary must have shape [C, H, W] or [C, D, H, W], got {U.shape}")
    if not (np.issubdtype(U.dtype, np.number)) or np.iscomplexobj(U):
        raise TypeError(f"{name}: unary must be real numeric, got dtype {U.dtype}")
    C = U.shape[0]
    if C < 1:
        raise ValueError(f"{name}: unary needs at least one label, got C = 0")
    spatial = U.shape[1:]
    ndim = len(spatial)
    conn = check_connectivity(ndim, connectivity)
    K = len(forward_offsets(ndim, conn))
    U = np.ascontiguousarray(U, dtype=np.float64)
    if not np.all(np.isfinite(U)):
        raise ValueError(f"{name}: unary contains NaN or infinity")
    P = _to_numpy(pairwise, "pairwise")
    if P.ndim == 0:
        V = float(P) * (1.0 - np.eye(C))
    elif P.shape == (C, C):
        V = np.array(P, dtype=np.float64)
    else:
        raise ValueError(f"{name}: pairwise must be a scalar (Potts) or a [C, C] = [{C}, {C}] matrix, got {P.shape}")
    if not np.all(np.isfinite(V)):
        raise ValueError(f"{name}: pairwise contains NaN or infinity")
    if V.min() < 0:
        raise ValueError(f"{name}: pairwise costs must be non-negative, got minimum {V.min()}")
    ew = None
    if edge_weights is not None:
        ew = np.ascontiguousarray(_to_numpy(edge_weights, "edge_weights"), dtype=np.float64)
        if ew.shape != (K,) + spatial:
            raise ValueError(f"{name}: edge_weights must have shape {(K,) + spatial} (K={K} for "
                             f"connectivity {conn}), got {ew.shape}")
        if not np.all(np.isfinite(ew)):
            raise ValueError(f"{name}: edge_weights contains NaN or infinity")
        if ew.size and ew.min() < 0:
            raise ValueError(f"{name}: edge_weights must be non-negative, got minimum {ew.min()}")
        ew = ew.reshape(-1)
    if init is None:
        lab = U.argmin(axis=0).astype(np.int64)
    else:
        lab = _to_numpy(init, "init")
        if lab.shape != spatial:
            raise ValueError(f"{name}: init must have shape {spatial}, got {lab.shape}")
        if not np.issubdtype(lab.dtype, np.integer):
            raise TypeError(f"{name}: init must be an integer array, got {lab.dtype}")
        if lab.size and (lab.min() < 0 or lab.max() >= C):
            raise ValueError(f"{name}: init labels must lie in [0, {C - 1}]")
        lab = lab.astype(np.int64)
    lab = np.ascontiguousarray(lab).reshape(-1).copy()
    if label_order is None:
        order = np.arange(C, dtype=np.int64)
    else:
        order = np.asarray(_to_numpy(label_order, "label_order")).reshape(-1)
        if not np.issubdtype(order.dtype, np.integer):
            raise TypeError(f"{name}: label_order must hold integers, got {order.dtype}")
        if order.size and (order.min() < 0 or order.max() >= C):
            raise ValueError(f"{name}: label_order entries must lie in [0, {C - 1}]")
        if len(set(order.tolist())) != order.size:
            raise ValueError(f"{name}: label_order must not repeat labels")
        order = order.astype(np.int64)
    if max_cycles is None:
        mc = -1
    else:
        mc = int(max_cycles)
        if mc < 0:
            raise ValueError(f"{name}: max_cycles must be >= 0 or None, got {max_cycles}")
    Uf = U.reshape(-1)
    Vf = np.ascontiguousarray(V).reshape(-1)
    if lab.size == 0 or order.size == 0 or mc == 0:
        energy = float(_cy.energy(spatial, conn, Uf, C, Vf, ew, lab)) if lab.size else 0.0
    else:
        energy, _ = _cy.multilabel(method, spatial, conn, Uf, C, Vf, ew, order, mc, lab)
    labels = lab.reshape(spatial)
    if is_tensor:
        return torch.from_numpy(labels).to(device), float(energy)
    return labels, float(energy)


def alpha_expansion(unary, pairwise=1.0, edge_weights=None, connectivity=None, max_cycles=None,
                    init=None, label_order=None):
    """Multi-label grid segmentation by alpha-expansion.

    Parameters
    ----------
    unary : Tensor or ndarray ``[C, H, W]`` or ``[C, D, H, W]``
        ``unary[c, p]``: cost of label c at p (finite).
    pairwise : float or ``[C, C]``
        Potts weight (cost ``pairwise`` for differing labels) or a label-cost matrix
        ``V[a, b]`` (non-negative; a metric for expansion moves to be exact).
    edge_weights : ``[K, *spatial]``, optional
        Non-negative weight of each forward neighbour pair (p, p + o_k); default 1.  K and the
        offsets as in :func:`segengine.graphcut` (2/4 in 2D, 3/9/13 in 3D).
    connectivity : int, optional
        4 (default) or 8 in 2D; 6 (default), 18 or 26 in 3D.
    max_cycles : int, optional
        Maximum number of cycles over the labels (None: until no move lowers the energy).
    init : ``[*spatial]`` int, optional
        Initial labelling (default: per-pixel argmin of ``unary``).
    label_order : sequence of int, optional
        Labels to expand, in order (default: 0..C-1).

    Returns
    -------
    labels : int64 ``[*spatial]`` (tensor on the input's device for tensor input)
    energy : float
        Energy of the returned labelling.
    """
    return _run(0, "alpha_expansion", unary, pairwise, edge_weights, connectivity, max_cycles,
                init, label_order)


def alpha_beta_swap(unary, pairwise=1.0, edge_weights=None, connectivity=None, max_cycles=None,
                    init=None, label_order=None):
    """Multi-label grid segmentation by alpha-beta swap moves (for semi-metrics).

    Same parameters and returns as :func:`alpha_expansion`; each cycle visits every pair
    (alpha, beta) of ``label_order`` with alpha before beta.
    """
    return _run(1, "alpha_beta_swap", unary, pairwise, edge_weights, connectivity, max_cycles,
                init, label_order)
