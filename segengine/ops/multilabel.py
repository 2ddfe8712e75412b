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
from segengine.ops._common import resolve_threads
from segengine.ops._memory import check_working_set

__all__ = ["alpha_expansion", "alpha_beta_swap"]

# Per-label residual graphs of expansion moves are kept while they need at most this many
# bytes (kDynamicBudget in csrc/cpu/maxflow_multilabel.cpp).
_DYNAMIC_BUDGET = 512 * 2**20
# Energies of integer costs are summed in float64: exact while they stay within 2**53.
_EXACT_LIMIT = 2**53
# Integer costs stay exact in the moves' int64 fixed-point graphs while this bound holds
# (fixed_point_scale in csrc/cpu/maxflow_multilabel.cpp keeps the scale >= 1).
_FIXED_POINT_LIMIT = 2**61
# Elements of the [labels, labels, labels] violation table computed at once.
_CHUNK = 1 << 20


def _to_numpy(x, name):
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _tolerance(V: np.ndarray) -> float:
    """Slack for float rounding in the move conditions: 1e-12 of the largest cost."""
    return 1e-12 * float(np.abs(V).max()) if V.size else 0.0


def check_expansion_representable(V: np.ndarray, alphas, labels, name: str, what: str = "pairwise") -> None:
    """Raise ValueError unless every expansion move of ``alphas`` is a graph cut.

    An expansion move of label a is exactly representable (Kolmogorov & Zabih 2004) when, for
    every pair of neighbouring labels (b, c) it can meet,
    ``V[b, c] + V[a, a] <= V[b, a] + V[a, c]``; a metric satisfies it.  Otherwise the move's
    pair term is not submodular and the solver would silently clip it.  ``labels``: the
    labels b, c can take (those present at the start and the expanded ones).  The table
    [a, b, c] is computed in chunks of alphas (memory bounded, vectorised).
    """
    alphas = np.asarray(alphas, dtype=np.int64)
    labels = np.asarray(labels, dtype=np.int64)
    if alphas.size == 0 or labels.size == 0:
        return
    tol = _tolerance(V)
    Vbc = V[np.ix_(labels, labels)]
    step = max(1, _CHUNK // (labels.size * labels.size))
    for start in range(0, alphas.size, step):
        a = alphas[start:start + step]
        Vba = V[np.ix_(labels, a)].T          # [a, b]
        Vac = V[np.ix_(a, labels)]            # [a, c]
        excess = np.add(Vbc[None, :, :], V[a, a][:, None, None])   # V[b, c] + V[a, a]
        excess -= Vba[:, :, None]
        excess -= Vac[:, None, :]
        if not (excess > tol).any():
            continue
        i, jb, jc = (int(v) for v in np.argwhere(excess > tol)[0])
        ka, kb, kc = int(a[i]), int(labels[jb]), int(labels[jc])
        lhs, rhs = V[kb, kc] + V[ka, ka], V[kb, ka] + V[ka, kc]
        raise ValueError(
            f"{name}: {what} does not allow the expansion move of label {ka}: "
            f"{what}[{kb}, {kc}] + {what}[{ka}, {ka}] = {lhs:g} > "
            f"{what}[{kb}, {ka}] + {what}[{ka}, {kc}] = {rhs:g} (labels a={ka}, b={kb}, "
            f"c={kc}; expansion needs V[b, c] + V[a, a] <= V[b, a] + V[a, c], e.g. a metric such "
            f"as Potts or truncated linear; alpha-beta swap needs only a semi-metric)")


def check_swap_representable(V: np.ndarray, labels, name: str, what: str = "pairwise") -> None:
    """Raise ValueError unless every swap move between two of ``labels`` is a graph cut:
    ``V[a, b] + V[b, a] >= V[a, a] + V[b, b]`` for all a != b (a semi-metric satisfies it;
    the swap's pair term ``V[a, b] + V[b, a] - V[a, a] - V[b, b]`` is the arc capacity)."""
    labels = np.asarray(labels, dtype=np.int64)
    if labels.size < 2:
        return
    O = V[np.ix_(labels, labels)]
    d = np.diag(O)
    slack = O + O.T - d[:, None] - d[None, :]
    np.fill_diagonal(slack, 0.0)
    bad = np.argwhere(slack < -_tolerance(V))
    if bad.size:
        ka, kb = (int(labels[v]) for v in bad[0])
        raise ValueError(
            f"{name}: {what} does not allow the swap move of labels {ka} and {kb}: "
            f"{what}[{ka}, {kb}] + {what}[{kb}, {ka}] = {O[bad[0][0], bad[0][1]] + O[bad[0][1], bad[0][0]]:g} < "
            f"{what}[{ka}, {ka}] + {what}[{kb}, {kb}] = {V[ka, ka] + V[kb, kb]:g} (a swap needs "
            f"V[a, b] + V[b, a] >= V[a, a] + V[b, b])")


def _abs_max_sum(a: np.ndarray, axis: int) -> float | int:
    """sum over pixels of max over labels |a| (exact Python int for integer arrays that stay
    far below int64, a float otherwise)."""
    est = float(np.abs(a.astype(np.float64)).max(axis=axis).sum()) if a.size else 0.0
    if a.dtype.kind not in "iub" or est >= 2.0**62:
        return est
    hi = a.max(axis=axis).astype(np.int64)
    lo = a.min(axis=axis).astype(np.int64)
    return int(np.maximum(hi, -lo).sum())


def _abs_max(a) -> float | int:
    if a is None:
        return 1
    a = np.asarray(a)
    if a.size == 0:
        return 0
    if a.dtype.kind in "iub":
        return max(abs(int(a.max())), abs(int(a.min())))
    return float(max(a.max(), -a.min()))   # no |a| temporary


def check_exact_energy(unary, label_axis: int, pairwise, edge_weights, n_offsets: int,
                       n_pairs: int, name: str) -> None:
    """Integer costs must be minimised exactly; raise OverflowError where they cannot be.

    Any dtype: the move graphs' bound below must be finite in float64.  Two limits apply to
    integer-dtype ``unary``, ``pairwise`` or ``edge_weights``:

    * energies and move acceptance are summed in float64: the energy bound
      ``sum_p max_l |unary| + n_pairs * max|V| * max(edge weight)`` must stay within 2**53;
    * the move graphs hold the costs in int64 fixed point with a power-of-two scale chosen
      so that ``(2 max|unary| + 8 K max|V| max(edge weight)) * N`` times the scale stays
      within 2**61 (``fixed_point_scale`` in csrc/cpu/maxflow_multilabel.cpp); integer costs
      are exact only while that scale is at least 1, i.e. the product is at most 2**61.
    """
    U = np.asarray(unary)
    max_v, max_w = _abs_max(pairwise), _abs_max(edge_weights)
    n = U.size // max(U.shape[label_axis], 1) if U.ndim else 0
    graph = (2 * _abs_max(U) + 8 * n_offsets * max_v * max_w) * n
    if not np.isfinite(float(graph)):
        # any dtype: the fixed-point scale of the move graphs needs a finite bound
        raise OverflowError(f"{name}: costs too large: (2 * max|unary| + 8 * {n_offsets} * max pairwise "
                            f"* max edge weight) * {n} pixels overflows float64; scale them down")
    arrays = [np.asarray(x) for x in (unary, pairwise, edge_weights) if x is not None]
    if not any(a.dtype.kind in "iu" for a in arrays):
        return
    bound = _abs_max_sum(U, label_axis) + n_pairs * max_v * max_w
    if bound > _EXACT_LIMIT:
        raise OverflowError(
            f"{name}: integer costs whose energy can reach {float(bound):.4g} (sum of the largest "
            f"|unary| per pixel + {n_pairs} neighbour pairs * max pairwise * max edge weight) "
            f"exceed 2**53 and cannot be minimised exactly in float64; scale them down")
    if graph > _FIXED_POINT_LIMIT:
        raise OverflowError(
            f"{name}: integer costs too large for exact move graphs: (2 * max|unary| + 8 * {n_offsets} "
            f"* max pairwise * max edge weight) * {n} pixels = {float(graph):.4g} exceeds 2**61, so "
            f"the int64 fixed-point graphs would round them; scale them down")


def neighbour_pairs(spatial, offsets) -> int:
    """Number of neighbour pairs (p, p + o) inside a grid of shape ``spatial``."""
    total = 0
    for o in offsets:
        n = 1
        for S, d in zip(spatial, o):
            n *= max(0, int(S) - abs(int(d)))
        total += n
    return total


def multilabel_working_set(n: int, n_slots: int, n_labels: int, n_moves: int, expansion: bool,
                           n_edge_weights: int) -> float:
    """Bytes of one alpha-expansion / swap run on n pixels (the C++ run_moves plus the
    float64 copies made here): per-label kept residual graphs (expansion, while they fit
    the 512 MiB budget) or one move graph, the proposal buffers, unary and edge weights."""
    state = float(n) * (n_slots * 8 + 16 + 4)
    kept = n_moves * state if expansion and n_moves * state <= _DYNAMIC_BUDGET else float(n) * (n_slots * 8 + 16)
    return kept + float(n) * (8 + 1 + 8 + 16 + 8 * n_labels + 8 * n_edge_weights)


def _run(method, name, unary, pairwise, edge_weights, connectivity, max_cycles, init, label_order,
         num_threads):
    from segengine._cy import _maxflow as _cy
    is_tensor = isinstance(unary, torch.Tensor)
    device = unary.device if is_tensor else None
    num_threads = resolve_threads(num_threads)
    U0 = _to_numpy(unary, "unary")
    if U0.ndim not in (3, 4):
        raise ValueError(f"{name}: unary must have shape [C, H, W] or [C, D, H, W], got {U0.shape}")
    if not (np.issubdtype(U0.dtype, np.number)) or np.iscomplexobj(U0):
        raise TypeError(f"{name}: unary must be real numeric, got dtype {U0.dtype}")
    C = U0.shape[0]
    if C < 1:
        raise ValueError(f"{name}: unary needs at least one label, got C = 0")
    spatial = U0.shape[1:]
    ndim = len(spatial)
    conn = check_connectivity(ndim, connectivity)
    offs = forward_offsets(ndim, conn)
    K = len(offs)
    N = int(np.prod(spatial, dtype=np.int64))
    n_order = C if label_order is None else int(np.size(_to_numpy(label_order, "label_order")))
    check_working_set(multilabel_working_set(N, 2 * K, C, n_order, method == 0, K if edge_weights is not None else 0),
                      f"{name} on unary of shape {tuple(U0.shape)}")
    U = np.ascontiguousarray(U0, dtype=np.float64)
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
    ew = ew0 = None
    if edge_weights is not None:
        ew0 = _to_numpy(edge_weights, "edge_weights")
        ew = np.ascontiguousarray(ew0, dtype=np.float64)
        if ew.shape != (K,) + spatial:
            raise ValueError(f"{name}: edge_weights must have shape {(K,) + spatial} (K={K} for "
                             f"connectivity {conn}), got {ew.shape}")
        if not np.all(np.isfinite(ew)):
            raise ValueError(f"{name}: edge_weights contains NaN or infinity")
        if ew.size and ew.min() < 0:
            raise ValueError(f"{name}: edge_weights must be non-negative, got minimum {ew.min()}")
        ew = ew.reshape(-1)
    check_exact_energy(U0, 0, P, ew0, K, neighbour_pairs(spatial, offs), name)
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
    if P.ndim != 0 and lab.size and mc != 0:
        check_moves(method, V, order, lab, name)
    Uf = U.reshape(-1)
    Vf = np.ascontiguousarray(V).reshape(-1)
    if lab.size == 0 or order.size == 0 or mc == 0:
        energy = float(_cy.energy(spatial, conn, Uf, C, Vf, ew, lab)) if lab.size else 0.0
    else:
        try:
            energy, _ = _cy.multilabel(method, spatial, conn, Uf, C, Vf, ew, order, mc, lab, True, num_threads)
        except OverflowError as e:   # float costs beyond the fixed-point graphs' range
            raise OverflowError(f"{name}: {e}") from None
    labels = lab.reshape(spatial)
    if is_tensor:
        return torch.from_numpy(labels).to(device), float(energy)
    return labels, float(energy)


def check_moves(method: int, V: np.ndarray, order: np.ndarray, lab: np.ndarray, name: str,
                what: str = "pairwise") -> None:
    """The moves' representability checks: expansion (method 0) of the labels in ``order``
    against every label that can occur (present in ``lab`` or expanded), swap (1) between
    the labels of ``order``."""
    if method == 0:
        present = np.union1d(np.unique(lab), order)
        check_expansion_representable(V, order, present, name, what)
    else:
        check_swap_representable(V, order, name, what)


def alpha_expansion(unary, pairwise=1.0, edge_weights=None, connectivity=None, max_cycles=None,
                    init=None, label_order=None, num_threads=None):
    """Multi-label grid segmentation by alpha-expansion.

    Parameters
    ----------
    unary : Tensor or ndarray ``[C, H, W]`` or ``[C, D, H, W]``
        ``unary[c, p]``: cost of label c at p (finite).
    pairwise : float or ``[C, C]``
        Potts weight (cost ``pairwise`` for differing labels) or a label-cost matrix
        ``V[a, b]`` (non-negative).  Every expansion move must be a graph cut:
        ``V[b, c] + V[a, a] <= V[b, a] + V[a, c]`` for each expanded label a and labels b, c
        that can occur (a metric satisfies it); otherwise ValueError names a violating
        (a, b, c).
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
    num_threads : int, optional
        Threads (None: ``torch.get_num_threads()``): fresh moves on large grids are solved
        in parallel slabs.

    Returns
    -------
    labels : int64 ``[*spatial]`` (tensor on the input's device for tensor input)
    energy : float
        Energy of the returned labelling.

    Raises
    ------
    ValueError
        Bad shapes or values, or a pairwise matrix for which a move is not a graph cut.
    OverflowError
        Integer-dtype costs whose energy bound exceeds 2**53 (the float64 solve could not
        be exact).
    MemoryError
        The estimated working set exceeds the available memory (checked before allocating).
    """
    return _run(0, "alpha_expansion", unary, pairwise, edge_weights, connectivity, max_cycles,
                init, label_order, num_threads)


def alpha_beta_swap(unary, pairwise=1.0, edge_weights=None, connectivity=None, max_cycles=None,
                    init=None, label_order=None, num_threads=None):
    """Multi-label grid segmentation by alpha-beta swap moves (for semi-metrics).

    Same parameters and returns as :func:`alpha_expansion`; each cycle visits every pair
    (alpha, beta) of ``label_order`` with alpha before beta.  ``pairwise`` needs only
    ``V[a, b] + V[b, a] >= V[a, a] + V[b, b]`` for the labels a != b of ``label_order``
    (ValueError otherwise).
    """
    return _run(1, "alpha_beta_swap", unary, pairwise, edge_weights, connectivity, max_cycles,
                init, label_order, num_threads)
