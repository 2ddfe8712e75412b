"""Multi-label grid energies: alpha-expansion and alpha-beta swap.

Both minimise

    E(l) = sum_p unary[l_p, p] + sum_k sum_p w_k(p) * V[l_p, l_(p + o_k)]

over labellings l of a 2D/3D grid, with the forward neighbour offsets o_k of
``segengine.ops._grid.offsets``, by repeated exact binary moves solved
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

from segengine._codes import MoveKind
from segengine.ops._common import as_tensor, op_threads, run_threads, to_output
from segengine.ops._grid import check_connectivity, offsets
from segengine.ops._library import define, register_fake, register_kernel
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


# --------------------------------------------------------------------------- the kernel

_NAMES = {MoveKind.EXPANSION: "alpha_expansion", MoveKind.SWAP: "alpha_beta_swap"}


def _solve_item(method: int, name: str, U0: np.ndarray, V: np.ndarray, P: np.ndarray,
                ew0, init, order: np.ndarray, conn: int, max_cycles: int, num_threads: int):
    """Labels int64 ``[*S]`` and energy of one item, after the checks of its values.

    ``U0`` ``[C, *S]`` and ``ew0`` ``[K, *S]`` (or None) in their own dtypes, ``V`` the float64
    ``[C, C]`` costs built from ``P`` (the pairwise as given: its dtype decides the integer
    checks), ``init`` ``[*S]`` integer or None, ``order`` int64."""
    from segengine._cy import _maxflow as _cy
    C, spatial = U0.shape[0], U0.shape[1:]
    offs = offsets(len(spatial), conn)
    U = np.ascontiguousarray(U0, dtype=np.float64)
    if not np.all(np.isfinite(U)):
        raise ValueError(f"{name}: unary contains NaN or infinity")
    ew = None
    if ew0 is not None:
        ew = np.ascontiguousarray(ew0, dtype=np.float64)
        if not np.all(np.isfinite(ew)):
            raise ValueError(f"{name}: edge_weights contains NaN or infinity")
        if ew.size and ew.min() < 0:
            raise ValueError(f"{name}: edge_weights must be non-negative, got minimum {ew.min()}")
        ew = ew.reshape(-1)
    check_exact_energy(U0, 0, P, ew0, len(offs), neighbour_pairs(spatial, offs), name)
    if init is None:
        lab = U.argmin(axis=0).astype(np.int64)
    else:
        if init.size and (init.min() < 0 or init.max() >= C):
            raise ValueError(f"{name}: init labels must lie in [0, {C - 1}]")
        lab = init.astype(np.int64)
    lab = np.ascontiguousarray(lab).reshape(-1).copy()
    if P.ndim != 0 and lab.size and max_cycles != 0:
        check_moves(method, V, order, lab, name)
    Uf = U.reshape(-1)
    Vf = np.ascontiguousarray(V).reshape(-1)
    if lab.size == 0 or order.size == 0 or max_cycles == 0:
        energy = float(_cy.energy(spatial, conn, Uf, C, Vf, ew, lab)) if lab.size else 0.0
    else:
        try:
            energy, _ = _cy.multilabel(method, spatial, conn, Uf, C, Vf, ew, order, max_cycles, lab,
                                       True, num_threads)
        except OverflowError as e:   # float costs beyond the fixed-point graphs' range
            raise OverflowError(f"{name}: {e}") from None
    return lab.reshape(spatial), float(energy)


def _check_order(order: np.ndarray, C: int, name: str) -> np.ndarray:
    if not np.issubdtype(order.dtype, np.integer):
        raise TypeError(f"{name}: label_order must hold integers, got {order.dtype}")
    if order.size and (order.min() < 0 or order.max() >= C):
        raise ValueError(f"{name}: label_order entries must lie in [0, {C - 1}]")
    if len(set(order.tolist())) != order.size:
        raise ValueError(f"{name}: label_order must not repeat labels")
    return order.astype(np.int64)


def _multilabel_cpu(method: int, unary, pairwise, edge_weights, init, label_order, connectivity,
                    max_cycles, num_threads):
    """The CPU kernel of both ops: labels int64 ``[B, *S]`` and energies float64 ``[B]``.

    ``unary`` ``[B, C, *S]``, ``pairwise`` ``[C, C]`` (or 0-d: Potts), ``edge_weights``
    ``[B, K, *S]`` or None, ``init`` ``[B, *S]`` or None, ``label_order`` 1-D, in any real
    dtypes; shapes checked by the public function, values here (they need the data, which
    torch.compile does not have while tracing).  ``max_cycles`` -1: until no move lowers the
    energy; ``num_threads`` 0: ``torch.get_num_threads()``.  Items are solved one after the
    other, each exactly as a call on that item alone."""
    name = _NAMES[method]
    npy = lambda t: None if t is None else t.detach().numpy()   # noqa: E731
    U0, P = npy(unary), npy(pairwise)
    B, C, spatial = U0.shape[0], U0.shape[1], U0.shape[2:]
    V = float(P) * (1.0 - np.eye(C)) if P.ndim == 0 else np.array(P, dtype=np.float64)
    if not np.all(np.isfinite(V)):
        raise ValueError(f"{name}: pairwise contains NaN or infinity")
    if V.size and V.min() < 0:
        raise ValueError(f"{name}: pairwise costs must be non-negative, got minimum {V.min()}")
    order = _check_order(npy(label_order).reshape(-1), C, name)
    ew, ini = npy(edge_weights), npy(init)
    threads = run_threads(num_threads)
    labels = np.zeros((B,) + tuple(spatial), dtype=np.int64)
    energies = np.zeros(B, dtype=np.float64)
    for b in range(B):
        labels[b], energies[b] = _solve_item(method, name, U0[b], V, P, None if ew is None else ew[b],
                                             None if ini is None else ini[b], order, connectivity,
                                             max_cycles, threads)
    return torch.from_numpy(labels), torch.from_numpy(energies)


def _multilabel_fake(unary, pairwise, edge_weights, init, label_order, connectivity, max_cycles,
                     num_threads):
    return (unary.new_empty((unary.shape[0],) + tuple(unary.shape[2:]), dtype=torch.int64),
            unary.new_empty((unary.shape[0],), dtype=torch.float64))


_SCHEMA = ("(Tensor unary, Tensor pairwise, Tensor? edge_weights, Tensor? init, Tensor label_order, "
           "int connectivity, int max_cycles, int num_threads) -> (Tensor, Tensor)")
_alpha_expansion_op = define("alpha_expansion" + _SCHEMA)
_alpha_beta_swap_op = define("alpha_beta_swap" + _SCHEMA)


@register_kernel("alpha_expansion", "cpu")
def alpha_expansion_cpu(unary, pairwise, edge_weights, init, label_order, connectivity, max_cycles,
                        num_threads):
    """CPU kernel of ``segengine::alpha_expansion`` (see :func:`_multilabel_cpu`)."""
    return _multilabel_cpu(MoveKind.EXPANSION, unary, pairwise, edge_weights, init, label_order, connectivity,
                           max_cycles, num_threads)


@register_kernel("alpha_beta_swap", "cpu")
def alpha_beta_swap_cpu(unary, pairwise, edge_weights, init, label_order, connectivity, max_cycles,
                        num_threads):
    """CPU kernel of ``segengine::alpha_beta_swap`` (see :func:`_multilabel_cpu`)."""
    return _multilabel_cpu(MoveKind.SWAP, unary, pairwise, edge_weights, init, label_order, connectivity,
                           max_cycles, num_threads)


register_fake("alpha_expansion")(_multilabel_fake)
register_fake("alpha_beta_swap")(_multilabel_fake)

# the CUDA kernels (a copy to the CPU and back) register on import (see _graphcut_cuda)
from segengine.ops import _graphcut_cuda  # noqa: E402,F401


# --------------------------------------------------------------------------- the public ops

def _real(x, name: str, fname: str):
    """``x`` as a tensor or ndarray (no copy) of a real numeric dtype; TypeError otherwise."""
    if isinstance(x, torch.Tensor):
        if x.dtype == torch.bool or x.dtype.is_complex:
            raise TypeError(f"{fname}: {name} must be real numeric, got dtype {x.dtype}")
        return x
    a = np.asarray(x)
    if not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a):
        raise TypeError(f"{fname}: {name} must be real numeric, got dtype {a.dtype}")
    return a


def _array(x, name: str, fname: str) -> torch.Tensor:
    return as_tensor(_real(x, name, fname), name)[0]


def _run(method, unary, pairwise, edge_weights, connectivity, max_cycles, init, label_order,
         num_threads, batched):
    name = _NAMES[method]
    was_numpy = not isinstance(unary, torch.Tensor)
    unary = _real(unary, "unary", name)   # shape checks and the memory guard before any copy
    lead = "B, " if batched else ""
    if unary.ndim - bool(batched) not in (3, 4):
        raise ValueError(f"{name}: unary must have shape [{lead}C, H, W] or [{lead}C, D, H, W], "
                         f"got {tuple(unary.shape)}")
    shape = tuple(unary.shape) if batched else (1,) + tuple(unary.shape)
    B, C, spatial = shape[0], shape[1], shape[2:]
    if C < 1:
        raise ValueError(f"{name}: unary needs at least one label, got C = 0")
    ndim = len(spatial)
    conn = check_connectivity(ndim, connectivity)
    K = len(offsets(ndim, conn))
    N = int(np.prod(spatial, dtype=np.int64))
    order = (torch.arange(C, dtype=torch.int64) if label_order is None
             else _array(label_order, "label_order", name).reshape(-1))
    if not torch.compiler.is_compiling():   # the guard reads the machine: not while tracing
        check_working_set(multilabel_working_set(N, 2 * K, C, order.numel(), method == MoveKind.EXPANSION,
                                                 K if edge_weights is not None else 0),
                          f"{name} on unary of shape {tuple(unary.shape)}")
    unary = unary if isinstance(unary, torch.Tensor) else as_tensor(unary, "unary")[0]
    if not batched:
        unary = unary.unsqueeze(0)
    P = _array(pairwise, "pairwise", name)
    if P.dim() != 0 and tuple(P.shape) != (C, C):
        raise ValueError(f"{name}: pairwise must be a scalar (Potts) or a [C, C] = [{C}, {C}] matrix, "
                         f"got {tuple(P.shape)}")
    ew = None
    if edge_weights is not None:
        ew = _array(edge_weights, "edge_weights", name)
        want = (K,) + spatial
        if not batched:
            if tuple(ew.shape) != want:
                raise ValueError(f"{name}: edge_weights must have shape {want} (K={K} for "
                                 f"connectivity {conn}), got {tuple(ew.shape)}")
            ew = ew.unsqueeze(0)
        elif tuple(ew.shape) != (B,) + want:
            raise ValueError(f"{name}: edge_weights must have shape {(B,) + want} (K={K} for "
                             f"connectivity {conn}), got {tuple(ew.shape)}")
    ini = None
    if init is not None:
        ini = init if isinstance(init, torch.Tensor) else as_tensor(np.asarray(init), "init")[0]
        want = (B,) + spatial if batched else spatial
        if tuple(ini.shape) != want:
            raise ValueError(f"{name}: init must have shape {want}, got {tuple(ini.shape)}")
        if ini.dtype.is_floating_point or ini.dtype.is_complex or ini.dtype == torch.bool:
            raise TypeError(f"{name}: init must be an integer array, got {ini.dtype}")
        if not batched:
            ini = ini.unsqueeze(0)
    if max_cycles is None:
        mc = -1
    else:
        mc = int(max_cycles)
        if mc < 0:
            raise ValueError(f"{name}: max_cycles must be >= 0 or None, got {max_cycles}")
    op = _alpha_expansion_op if method == MoveKind.EXPANSION else _alpha_beta_swap_op
    dev = unary.device
    labels, energy = op(unary, P.to(dev), None if ew is None else ew.to(dev),
                        None if ini is None else ini.to(dev), order.to(dev), conn, mc,
                        op_threads(num_threads))
    if not batched:
        return to_output(labels[0], was_numpy), float(energy[0])
    return to_output(labels, was_numpy), to_output(energy, was_numpy)


def check_moves(method: int, V: np.ndarray, order: np.ndarray, lab: np.ndarray, name: str,
                what: str = "pairwise") -> None:
    """The moves' representability checks: expansion (MoveKind.EXPANSION) of the labels in ``order``
    against every label that can occur (present in ``lab`` or expanded), swap (1) between
    the labels of ``order``."""
    if method == MoveKind.EXPANSION:
        present = np.union1d(np.unique(lab), order)
        check_expansion_representable(V, order, present, name, what)
    else:
        check_swap_representable(V, order, name, what)


def alpha_expansion(unary, pairwise=1.0, edge_weights=None, connectivity=None, max_cycles=None,
                    init=None, label_order=None, num_threads=None, batched: bool = False):
    """Multi-label grid segmentation by alpha-expansion.

    Parameters
    ----------
    unary : Tensor or ndarray ``[C, H, W]`` or ``[C, D, H, W]``; with ``batched=True``
        ``[B, C, H, W]`` or ``[B, C, D, H, W]``
        ``unary[c, p]``: cost of label c at p (finite; any real dtype: integer costs are
        minimised exactly, see Raises).  The batched layout is :func:`segengine.graphcut`'s
        (batch first, labels second).
    pairwise : float or ``[C, C]``
        Potts weight (cost ``pairwise`` for differing labels) or a label-cost matrix
        ``V[a, b]`` (non-negative), shared by the batch.  Every expansion move must be a
        graph cut: ``V[b, c] + V[a, a] <= V[b, a] + V[a, c]`` for each expanded label a and
        labels b, c that can occur (a metric satisfies it); otherwise ValueError names a
        violating (a, b, c).
    edge_weights : ``[K, *spatial]`` (batched: ``[B, K, *spatial]``), optional
        Non-negative weight of each forward neighbour pair (p, p + o_k); default 1.  K and the
        offsets as in :func:`segengine.graphcut` (2/4 in 2D, 3/9/13 in 3D).
    connectivity : int, optional
        4 (default) or 8 in 2D; 6 (default), 18 or 26 in 3D.
    max_cycles : int, optional
        Maximum number of cycles over the labels (None: until no move lowers the energy).
    init : ``[*spatial]`` (batched: ``[B, *spatial]``) int, optional
        Initial labelling (default: per-pixel argmin of ``unary``).
    label_order : sequence of int, optional
        Labels to expand, in order (default: 0..C-1), shared by the batch.
    num_threads : int, optional
        Threads (None: ``torch.get_num_threads()`` when the op runs): fresh moves on large
        grids are solved in parallel slabs.  Batch items are solved one after the other.
    batched : bool
        False (default): one problem, ``unary`` ``[C, *spatial]``.  True: a leading batch
        axis on ``unary``, ``edge_weights`` and ``init``; each item's result is the one a
        separate call on that item gives.

    Returns
    -------
    labels : int64 ``[*spatial]`` (batched: ``[B, *spatial]``)
        A tensor on ``unary``'s device for tensor input (CUDA inputs are solved on the CPU),
        an ndarray otherwise.
    energy : float (batched: float64 ``[B]``, tensor or ndarray like ``labels``)
        Energy of the returned labelling (per item).

    Raises
    ------
    ValueError
        Bad shapes or values, or a pairwise matrix for which a move is not a graph cut.
    OverflowError
        Integer-dtype costs whose energy bound exceeds 2**53 (the float64 solve could not
        be exact).
    MemoryError
        The estimated working set exceeds the available memory (checked before allocating).

    Notes
    -----
    Shapes and keywords are checked here; the values (finite, non-negative, label ranges,
    representable moves, exact integer costs) by the op's kernel, so they are checked under
    ``torch.compile`` too.
    """
    return _run(MoveKind.EXPANSION, unary, pairwise, edge_weights, connectivity, max_cycles, init, label_order,
                num_threads, batched)


def alpha_beta_swap(unary, pairwise=1.0, edge_weights=None, connectivity=None, max_cycles=None,
                    init=None, label_order=None, num_threads=None, batched: bool = False):
    """Multi-label grid segmentation by alpha-beta swap moves (for semi-metrics).

    Same parameters and returns as :func:`alpha_expansion` (``batched=True`` included); each
    cycle visits every pair (alpha, beta) of ``label_order`` with alpha before beta.
    ``pairwise`` needs only ``V[a, b] + V[b, a] >= V[a, a] + V[b, b]`` for the labels a != b
    of ``label_order`` (ValueError otherwise).
    """
    return _run(MoveKind.SWAP, unary, pairwise, edge_weights, connectivity, max_cycles, init, label_order,
                num_threads, batched)
