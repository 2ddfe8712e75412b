"""Slow, obviously-correct oracles for max-flow and grid energies (tests only).

* :func:`edmonds_karp` — shortest augmenting paths on a dense capacity matrix.
* :func:`grid_energy` / :func:`brute_force_labels` — multi-label grid energies by enumeration.
* :func:`best_expansion_energy` — the optimal alpha-expansion move by enumeration.
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
    return flow, reach


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
