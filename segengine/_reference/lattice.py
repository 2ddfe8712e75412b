"""Slow, obviously-correct NumPy permutohedral lattice (the oracle of the C++/CUDA lattice).

Straight from Adams, Baek & Davis (2010) with pydensecrf's float32 numerics (see
``csrc/common/permutohedral.h``): every step is a NumPy expression over all points in
float32, vertices are kept in a Python dict in order of first appearance, the splat is
``np.add.at`` in point order, the blur a loop over axes, the slice a weighted gather.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ReferenceLattice", "reference_filter", "brute_force_gaussian", "simplex", "vertex_keys"]


def _scale_factors(d: int) -> np.ndarray:
    inv_std_dev = np.float32(np.sqrt(2.0 / 3.0) * (d + 1))
    return np.array([np.float32(1.0 / np.sqrt((i + 2) * (i + 1)) * float(inv_std_dev)) for i in range(d)],
                    dtype=np.float32)


def simplex(features):
    """The enclosing simplex of every point, pydensecrf's float32 arithmetic step by step.

    Parameters
    ----------
    features : array ``[d, N]``
        Point positions (converted to float32).

    Returns
    -------
    rem0 : numpy.ndarray, int64 ``[d+1, N]``
        The nearest remainder-0 lattice point (after the wrap).
    rank : numpy.ndarray, int64 ``[d+1, N]``
        Rank of each coordinate of the difference (after the wrap).
    weights : numpy.ndarray, float32 ``[N, d+1]``
        Barycentric weight of each simplex corner.
    """
    f = np.asarray(features, dtype=np.float32)
    d, N = f.shape
    D1 = d + 1
    scale = _scale_factors(d)
    # elevate: E p, accumulated from the last coordinate as pydensecrf does
    elevated = np.zeros((D1, N), dtype=np.float32)
    sm = np.zeros(N, dtype=np.float32)
    for j in range(d, 0, -1):
        cf = f[j - 1] * scale[j - 1]
        elevated[j] = sm - np.float32(j) * cf
        sm = sm + cf
    elevated[0] = sm
    down = np.float32(1.0) / np.float32(D1)
    up = np.float32(D1)
    # nearest remainder-0 point (round half to even, as SSE's cvtps2dq)
    v = np.rint(down * elevated).astype(np.float32)
    rem0 = v * up
    total = v.sum(axis=0, dtype=np.float32).astype(np.int64)
    # rank of each coordinate of the difference
    diff = elevated - rem0
    rank = np.zeros((D1, N), dtype=np.int64)
    for i in range(d):
        for j in range(i + 1, D1):
            less = diff[i] < diff[j]
            rank[i] += less
            rank[j] += ~less
    rank += total
    low, high = rank < 0, rank > d
    rank[low] += D1
    rem0[low] += up
    rank[high] -= D1
    rem0[high] -= up
    # barycentric weights
    bary = np.zeros((d + 2, N), dtype=np.float32)
    cols = np.arange(N)
    for i in range(D1):   # one entry per column in each statement: plain fancy-index adds
        w = (elevated[i] - rem0[i]) * down
        bary[d - rank[i], cols] += w
        bary[d - rank[i] + 1, cols] -= w
    bary[0] += np.float32(1.0) + bary[d + 1]
    return rem0.astype(np.int64), rank, np.ascontiguousarray(bary[:D1].T)


def vertex_keys(rem0, rank) -> np.ndarray:
    """The d coordinates of every simplex corner: int64 ``[N, d+1, d]`` (corner r of point p:
    ``rem0_i + r`` where ``rank_i <= d - r``, else ``rem0_i + r - (d+1)``; coordinate d implied)."""
    D1, N = rank.shape
    d = D1 - 1
    r = np.arange(D1)[None, :, None]                               # [1, D1, 1]
    rk = rank[:d].T[:, None, :]                                     # [N, 1, d]
    return rem0[:d].T[:, None, :] + np.where(rk <= d - r, r, r - D1)


class ReferenceLattice:
    """Lattice of one image: ``features`` float32 ``[d, N]``.

    ``ghost_origin``: also create the vertices of an all-zero feature point (after all real
    points) that splats nothing, as pydensecrf's SSE build does for its padding points.

    Attributes: ``offsets`` int64 ``[N, d+1]``, ``weights`` float32 ``[N, d+1]``, ``keys``
    (list of d-tuples, vertex order of first appearance), ``neighbors`` int64 ``[d+1, M, 2]``.
    """

    def __init__(self, features, ghost_origin: bool = False):
        f = np.asarray(features, dtype=np.float32)
        d, N = f.shape
        if ghost_origin:
            f = np.concatenate([f, np.zeros((d, 1), np.float32)], axis=1)
            N += 1
        self.d = d
        D1 = d + 1
        rem0, rank, weights = simplex(f)
        self.weights = weights[:N - ghost_origin]
        # vertices, in order of first appearance
        r0 = rem0
        index: dict[tuple, int] = {}
        self.offsets = np.zeros((N, D1), dtype=np.int64)
        for p in range(N):
            for r in range(D1):
                key = tuple(int(r0[i, p] + (r if rank[i, p] <= d - r else r - D1)) for i in range(d))
                self.offsets[p, r] = index.setdefault(key, len(index))
        self.offsets = self.offsets[:N - ghost_origin]
        self.keys = list(index)
        M = len(self.keys)
        self.neighbors = np.full((D1, M, 2), -1, dtype=np.int64)
        for m, key in enumerate(self.keys):
            for j in range(D1):
                n1 = [k - 1 for k in key]
                n2 = [k + 1 for k in key]
                if j < d:
                    n1[j] = key[j] + d
                    n2[j] = key[j] - d
                self.neighbors[j, m, 0] = index.get(tuple(n1), -1)
                self.neighbors[j, m, 1] = index.get(tuple(n2), -1)
        self.alpha = np.float32(1.0) / (np.float32(1.0) + np.float32(2.0) ** np.float32(-d))

    @property
    def num_vertices(self) -> int:
        return len(self.keys)

    def filter(self, values, reverse: bool = False) -> np.ndarray:
        """Filter ``values`` ``[N, C]`` (float32 or float64, kept): splat, blur, slice."""
        v = np.asarray(values)
        dt = v.dtype if v.dtype in (np.float32, np.float64) else np.dtype(np.float32)
        v = v.astype(dt)
        M = self.num_vertices
        N, C = v.shape
        grid = np.zeros((M + 1, C), dtype=dt)  # row M: the missing neighbour, always 0
        for r in range(self.d + 1):
            np.add.at(grid, self.offsets[:, r], self.weights[:, r:r + 1].astype(dt) * v)
        axes = range(self.d, -1, -1) if reverse else range(self.d + 1)
        for j in axes:
            n1 = np.where(self.neighbors[j, :, 0] < 0, M, self.neighbors[j, :, 0])
            n2 = np.where(self.neighbors[j, :, 1] < 0, M, self.neighbors[j, :, 1])
            new = grid.copy()
            new[:M] = grid[:M] + dt.type(0.5) * (grid[n1] + grid[n2])
            grid = new
        out = np.zeros((N, C), dtype=dt)
        for r in range(self.d + 1):
            out += (self.weights[:, r:r + 1].astype(dt) * dt.type(self.alpha)) * grid[self.offsets[:, r]]
        return out


def reference_filter(values, features, reverse: bool = False) -> np.ndarray:
    """``values`` ``[N, C]`` filtered on the lattice of ``features`` ``[d, N]``."""
    return ReferenceLattice(features).filter(values, reverse=reverse)


def brute_force_gaussian(values, features) -> np.ndarray:
    """Exact ``sum_j exp(-|f_i - f_j|^2 / 2) v_j`` (float64, O(N^2)): what the lattice approximates."""
    f = np.asarray(features, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    d2 = ((f[:, :, None] - f[:, None, :]) ** 2).sum(axis=0)
    return np.exp(-0.5 * d2) @ v
