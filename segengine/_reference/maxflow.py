"""Slow, obviously-correct oracles for max-flow and grid energies (tests only).

* :func:`edmonds_karp` — shortest augmenting paths on a dense capacity matrix.
* :func:`grid_energy` / :func:`brute_force_labels` — multi-label grid energies by enumeration.
* :func:`best_expansion_energy` — the optimal alpha-expansion move by enumeration.
* :func:`graphcut` — batched binary grid cuts (segengine.graphcut's problem) by Edmonds-Karp.
* :func:`alpha_expansion` / :func:`alpha_beta_swap` — the move algorithms, every move an
  Edmonds-Karp min cut of the textbook move graph (Boykov, Veksler & Zabih 2001;
  Kolmogorov & Zabih 2004).

Every cut taken here puts on the sink side exactly the nodes that can reach the sink in the
final residual graph (the cut segengine's solver returns), so ties are broken alike.  Grid
offsets are this module's own (:func:`forward_offsets`): nothing of segengine is imported.
"""

from __future__ import annotations

import itertools
from collections import deque

import numpy as np


def dense_capacity(n, edges, tedges):
    """Capacity matrix ``[n + 2, n + 2]`` (source n, sink n + 1) and the constant flow.

    edges: iterable of (i, j, cap, rcap); tedges: iterable of (i, source, sink), applied with
    PyMaxflow's rule (the common part ``min`` of each node's totals is flow that needs no arc).
    """
    C = np.zeros((n + 2, n + 2), dtype=np.float64)
    for i, j, c, r in edges:
        if i != j:
            C[i, j] += c
            C[j, i] += r
    S = np.zeros(n)
    T = np.zeros(n)
    for i, s, t in tedges:
        S[i] += s
        T[i] += t
    const = np.minimum(S, T).sum()
    d = S - T
    C[n, :n] = np.maximum(d, 0)
    C[:n, n + 1] = np.maximum(-d, 0)
    return C, const


def edmonds_karp(C, s, t):
    """Max flow value and source-side set (bool [n]) of a dense capacity matrix."""
    flow, R, reach = _augment(C, s, t)
    return flow, reach


def _augment(C, s, t):
    """Shortest augmenting paths: (flow, residual matrix, nodes reachable from s)."""
    R = C.astype(np.float64).copy()
    n = R.shape[0]
    flow = 0.0
    while True:
        parent = np.full(n, -1)
        parent[s] = s
        q = deque([s])
        while q and parent[t] < 0:
            u = q.popleft()
            for v in np.nonzero(R[u] > 0)[0]:
                if parent[v] < 0:
                    parent[v] = u
                    q.append(v)
        if parent[t] < 0:
            break
        f = np.inf
        v = t
        while v != s:
            f = min(f, R[parent[v], v])
            v = parent[v]
        v = t
        while v != s:
            R[parent[v], v] -= f
            R[v, parent[v]] += f
            v = parent[v]
        flow += f
    reach = parent >= 0
    return flow, R, reach


def maxflow_reference(n, edges, tedges):
    """(flow, sink_side bool [n]) of a PyMaxflow-style graph; sink side = not reachable from s."""
    C, const = dense_capacity(n, edges, tedges)
    f, reach = edmonds_karp(C, n, n + 1)
    return f + const, ~reach[:n]


def cut_value(n, edges, tedges, sink_side):
    """Capacity of the cut given by ``sink_side`` (bool [n]), with the constant part."""
    C, const = dense_capacity(n, edges, tedges)
    side = np.concatenate([np.asarray(sink_side, bool), [False, True]])
    return C[~side][:, side].sum() + const


def grid_neighbours(shape, offsets):
    """List of (k, p, q) flat index pairs for forward offsets inside the grid."""
    idx = np.arange(int(np.prod(shape))).reshape(shape)
    out = []
    for k, o in enumerate(offsets):
        for p in itertools.product(*[range(s) for s in shape]):
            q = tuple(np.add(p, o))
            if all(0 <= q[d] < shape[d] for d in range(len(shape))):
                out.append((k, idx[p], idx[q]))
    return out


def grid_energy(unary, V, labels, offsets, edge_weights=None):
    """E = sum_p unary[l_p, p] + sum_(k,p,q) w_k(p) V[l_p, l_q] for one or many labellings.

    unary: [C, *S]; labels: [*S] or [M, *S] (M labellings at once).
    """
    shape = unary.shape[1:]
    C = unary.shape[0]
    U = unary.reshape(C, -1)
    lab = np.asarray(labels).reshape(-1, int(np.prod(shape)))
    e = U[lab, np.arange(U.shape[1])].sum(axis=1)
    W = None if edge_weights is None else np.asarray(edge_weights).reshape(len(offsets), -1)
    for k, p, q in grid_neighbours(shape, offsets):
        w = 1.0 if W is None else W[k, p]
        e = e + w * V[lab[:, p], lab[:, q]]
    return e if np.ndim(labels) > len(shape) else e[0]


def brute_force_labels(unary, V, offsets, edge_weights=None):
    """Global minimum energy of a tiny multi-label grid problem, by enumeration."""
    C = unary.shape[0]
    N = int(np.prod(unary.shape[1:]))
    allv = np.array(list(itertools.product(range(C), repeat=N)))
    e = grid_energy(unary, V, allv.reshape((-1,) + unary.shape[1:]), offsets, edge_weights)
    return e.min(), allv[np.argmin(e)].reshape(unary.shape[1:])


def best_expansion_energy(unary, V, labels, alpha, offsets, edge_weights=None):
    """Lowest energy reachable from ``labels`` by one alpha-expansion, by enumeration."""
    lab = np.asarray(labels).reshape(-1)
    N = lab.size
    masks = np.array(list(itertools.product((0, 1), repeat=N)), dtype=bool)
    cand = np.where(masks, alpha, lab[None, :])
    e = grid_energy(unary, V, cand.reshape((-1,) + unary.shape[1:]), offsets, edge_weights)
    return e.min()


# ------------------------------------------------------------------ grid cuts and moves

def forward_offsets(ndim, connectivity):
    """Forward neighbour offsets: every offset in {-1, 0, 1}^ndim whose first non-zero
    component is positive and whose L1 norm is at most 1 (connectivity 4, 6), 2 (8, 18) or
    3 (26), in C order of the 3^ndim neighbourhood."""
    max_l1 = {4: 1, 6: 1, 8: 2, 18: 2, 26: 3}[connectivity]
    out = []
    for o in itertools.product((-1, 0, 1), repeat=ndim):
        nz = [v for v in o if v]
        if nz and nz[0] > 0 and sum(map(abs, o)) <= max_l1:
            out.append(o)
    return out


def min_cut_sink_side(n, edges, tedges):
    """Sink side (bool [n]) of a minimum cut: the nodes that reach the sink in the residual
    graph of a maximum flow.  edges: (i, j, cap, rcap); tedges: (i, source, sink)."""
    C, _ = dense_capacity(n, edges, tedges)
    _, R, _ = _augment(C, n, n + 1)
    side = np.zeros(n + 2, dtype=bool)
    side[n + 1] = True
    queue = deque([n + 1])
    while queue:
        v = queue.popleft()
        for u in np.nonzero(R[:, v] > 0)[0]:
            if not side[u]:
                side[u] = True
                queue.append(u)
    return side[:n]


def graphcut(unary, weights, connectivity):
    """Labels of segengine.graphcut's problem, one item at a time.

    unary: [B, 2, *S]; weights: a scalar or [B, K, *S] (pair (p, p + o_k)).  Returns [B, *S]
    in unary's dtype, 1 where the label-1 cost is paid (the sink side of the cut whose
    source arcs carry unary[:, 1] and sink arcs unary[:, 0])."""
    unary = np.asarray(unary)
    B, spatial = unary.shape[0], unary.shape[2:]
    n = int(np.prod(spatial))
    offs = forward_offsets(len(spatial), connectivity)
    pairs = grid_neighbours(spatial, offs)
    out = np.zeros((B,) + spatial, dtype=unary.dtype)
    for b in range(B):
        u = unary[b].reshape(2, n).astype(np.float64)
        w = (np.full((len(offs), n), float(np.asarray(weights).reshape(-1)[0])) if np.size(weights) == 1
             else np.asarray(weights[b], dtype=np.float64).reshape(-1, n))
        edges = [(p, q, w[k, p], w[k, p]) for k, p, q in pairs]
        tedges = [(p, u[1, p], u[0, p]) for p in range(n)]
        out[b] = min_cut_sink_side(n, edges, tedges).reshape(spatial)
    return out


def _binary_move(unary, V, lab, l0, l1, free, pairs, W):
    """The labelling chosen by one binary move: pixel p with free[p] takes l1[p] (sink side)
    or l0[p]; the others keep lab[p].  Pair terms of two free pixels are split as
    A + (C - A) x_p + (D - C) x_q + (B + C - A - D) (1 - x_p) x_q (submodular: B + C >= A + D)."""
    n = lab.size
    s_cap = np.zeros(n)        # cost of x_p = 1, paid by cutting the source arc
    t_cap = np.zeros(n)        # cost of x_p = 0
    for p in np.nonzero(free)[0]:
        t_cap[p] += unary[l0[p], p]
        s_cap[p] += unary[l1[p], p]
    edges = []
    for k, p, q in pairs:
        w = W[k, p]
        fp, fq = free[p], free[q]
        if fp and fq:
            A, Bc = w * V[l0[p], l0[q]], w * V[l0[p], l1[q]]
            Cc, D = w * V[l1[p], l0[q]], w * V[l1[p], l1[q]]
            t_cap[p] += A
            s_cap[p] += Cc
            s_cap[q] += D - Cc
            edges.append((p, q, Bc + Cc - A - D, 0.0))
        elif fp:
            t_cap[p] += w * V[l0[p], lab[q]]
            s_cap[p] += w * V[l1[p], lab[q]]
        elif fq:
            t_cap[q] += w * V[lab[p], l0[q]]
            s_cap[q] += w * V[lab[p], l1[q]]
    sink = min_cut_sink_side(n, edges, [(p, s_cap[p], t_cap[p]) for p in range(n)])
    return np.where(free, np.where(sink, l1, l0), lab)


def _moves(method, unary, V, connectivity, edge_weights, init, order, max_cycles):
    unary = np.asarray(unary, dtype=np.float64)
    C, spatial = unary.shape[0], unary.shape[1:]
    n = int(np.prod(spatial))
    offs = forward_offsets(len(spatial), connectivity)
    pairs = grid_neighbours(spatial, offs)
    V = np.asarray(V, dtype=np.float64)
    if V.ndim == 0:
        V = float(V) * (1.0 - np.eye(C))
    W = (np.ones((len(offs), n)) if edge_weights is None
         else np.asarray(edge_weights, dtype=np.float64).reshape(len(offs), n))
    U = unary.reshape(C, n)
    lab = (U.argmin(axis=0) if init is None else np.asarray(init).reshape(n)).astype(np.int64)
    order = list(range(C)) if order is None else [int(a) for a in order]
    moves = ([(a, None) for a in order] if method == 0
             else [(a, b) for i, a in enumerate(order) for b in order[i + 1:]])
    energy = lambda x: grid_energy(unary, V, x.reshape(spatial), offs, W.reshape((-1,) + spatial))  # noqa: E731
    cycles = 0
    while max_cycles is None or cycles < max_cycles:
        cycles += 1
        improved = False
        for a, b in moves:
            if b is None:      # expansion of a: x = 1 takes a
                free = lab != a
                prop = _binary_move(U, V, lab, lab, np.full(n, a), free, pairs, W)
            else:              # swap of a and b: x = 1 takes b
                free = (lab == a) | (lab == b)
                prop = _binary_move(U, V, lab, np.full(n, a), np.full(n, b), free, pairs, W)
            if not np.array_equal(prop, lab) and energy(prop) < energy(lab):
                lab = prop
                improved = True
        if not improved:
            break
    return lab.reshape(spatial), float(energy(lab))


def alpha_expansion(unary, V, connectivity, edge_weights=None, init=None, order=None,
                    max_cycles=None):
    """Alpha-expansion of one item: cycles over ``order`` (default 0..C-1), each move the
    optimal expansion (an Edmonds-Karp cut), kept when it lowers the energy; stops after a
    cycle without a kept move or ``max_cycles`` cycles.  unary [C, *S]; V [C, C] or a Potts
    scalar; edge_weights [K, *S].  Returns (labels int64 [*S], energy)."""
    return _moves(0, unary, V, connectivity, edge_weights, init, order, max_cycles)


def alpha_beta_swap(unary, V, connectivity, edge_weights=None, init=None, order=None,
                    max_cycles=None):
    """Alpha-beta swap of one item (pairs (a, b) of ``order`` with a before b), as
    :func:`alpha_expansion`."""
    return _moves(1, unary, V, connectivity, edge_weights, init, order, max_cycles)
