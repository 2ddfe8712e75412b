"""segengine.maxflow.Graph held as an implicit grid: same answers as the general graph,
as PyMaxflow and as scipy; every call that leaves the grid form falls back correctly."""

import numpy as np
import pytest
import scipy.sparse
import scipy.sparse.csgraph

import segengine.maxflow as smf

pmf = pytest.importorskip("maxflow")  # PyMaxflow 1.3.2, the oracle

DTYPES = [np.int32, np.int64, np.float32, np.float64]

# (shape, structure): von Neumann / Moore / one-sided / weighted, 1D, 2D and 3D, odd sizes
CASES = [
    ((7, 9), None),
    ((7, 9), np.ones((3, 3))),
    ((1, 13), np.array([[0, 0, 0], [1, 0, 2], [0, 0, 0]])),
    ((11, 1), np.array([[0, 1, 0], [0, 0, 0], [0, 3, 0]])),
    ((6, 5), np.array([[0, 0, 0], [0, 0, 1], [0, 1, 0]])),
    ((6, 5), np.array([[1, 0, 0], [0, 0, 0], [0, 0, 2]])),
    ((17,), np.array([1, 0, 1])),
    ((4, 5, 3), None),
    ((3, 4, 5), smf.moore_structure(3)),
    ((3, 4, 5), smf.vonNeumann_structure(3) * np.arange(1, 28).reshape(3, 3, 3)),   # weighted faces
    ((5, 3, 4), (np.indices((3, 3, 3)).sum(0) % 2 == 0).astype(float)),           # faces and corners
    ((4, 3, 5), (np.abs(np.indices((3, 3, 3)) - 1).sum(0) == 2).astype(float)),   # edges only (18)
]


def _problem(rng, shape, dtype):
    if np.issubdtype(dtype, np.integer):
        return (rng.integers(0, 6, shape).astype(dtype), rng.integers(-3, 25, shape).astype(dtype),
                rng.integers(-3, 25, shape).astype(dtype))
    return ((rng.random(shape) * 3).astype(dtype), (rng.random(shape) * 20 - 2).astype(dtype),
            (rng.random(shape) * 20 - 2).astype(dtype))


def _build(mod, dtype, shape, w, structure, symmetric, src, snk, general=False):
    if mod is pmf:
        dtype = int if np.issubdtype(dtype, np.integer) else float
    g = mod.Graph[dtype]()
    if general:   # the same graph, but built so that it is never in grid form
        ids = g.add_nodes(int(np.prod(shape))).reshape(shape)
    else:
        ids = g.add_grid_nodes(shape)
    g.add_grid_edges(ids, weights=w, structure=structure, symmetric=symmetric)
    g.add_grid_tedges(ids, src, snk)
    return g, ids


@pytest.mark.parametrize("case", range(len(CASES)))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("symmetric", [False, True])
def test_grid_form_matches_general_graph_and_pymaxflow(case, dtype, symmetric):
    shape, structure = CASES[case]
    rng = np.random.default_rng(case * 10 + symmetric)
    w, src, snk = _problem(rng, shape, dtype)
    g, ids = _build(smf, dtype, shape, w, structure, symmetric, src, snk)
    assert g._g.is_grid()
    h, hid = _build(smf, dtype, shape, w, structure, symmetric, src, snk, general=True)
    assert not h._g.is_grid()
    f, fh = g.maxflow(), h.maxflow()
    assert g.get_edge_count() == h.get_edge_count()
    seg, segh = g.get_grid_segments(ids), h.get_grid_segments(hid)
    if np.issubdtype(dtype, np.integer):
        assert f == fh and isinstance(f, int)
    else:
        assert isinstance(f, float)
        assert f == pytest.approx(fh, rel=1e-9 if dtype == np.float64 else 1e-5)
    if dtype in (np.int64, np.float64):
        p, pid = _build(pmf, dtype, shape, w, structure, symmetric, src, snk)
        fp = p.maxflow()
        assert g.get_edge_count() == p.get_edge_count()
        if dtype == np.int64:
            assert f == fp
            # exact arithmetic: both return the sink side {nodes that reach the sink}
            assert np.array_equal(seg, p.get_grid_segments(pid))
            assert np.array_equal(seg, segh)
        else:
            assert f == pytest.approx(fp, rel=1e-9)
            # continuous capacities: the minimum cut is unique
            assert np.array_equal(seg, p.get_grid_segments(pid))
            assert np.array_equal(seg, segh)


def _scipy_grid_flow(shape, structure, w, src, snk, symmetric):
    """Max flow of the add_grid_edges graph through scipy (integer capacities)."""
    n = int(np.prod(shape))
    ids = np.arange(n).reshape(shape)
    st = smf.vonNeumann_structure(len(shape), directed=symmetric) if structure is None else structure
    c = np.array(st.shape) // 2
    rows, cols, vals = [], [], []
    for idx in zip(*np.nonzero(st)):
        o = np.array(idx) - c
        sp = tuple(slice(max(0, -d), S - max(0, d)) for S, d in zip(shape, o))
        sq = tuple(slice(max(0, d), S - max(0, -d)) for S, d in zip(shape, o))
        cap = (w[sp] * st[idx]).ravel()
        rows += [ids[sp].ravel()]; cols += [ids[sq].ravel()]; vals += [cap]
        if symmetric:
            rows += [ids[sq].ravel()]; cols += [ids[sp].ravel()]; vals += [cap]
    d = (src - snk).ravel()
    rows += [np.full(n, n), np.arange(n)]
    cols += [np.arange(n), np.full(n, n + 1)]
    vals += [np.maximum(d, 0), np.maximum(-d, 0)]
    A = scipy.sparse.csr_matrix((np.concatenate(vals).astype(np.int32),
                                 (np.concatenate(rows), np.concatenate(cols))), shape=(n + 2, n + 2))
    A.sum_duplicates()
    return int(scipy.sparse.csgraph.maximum_flow(A, n, n + 1).flow_value + np.minimum(src, snk).sum())


@pytest.mark.parametrize("case", [0, 1, 5, 8, 10])
def test_grid_form_matches_scipy(case):
    shape, structure = CASES[case]
    rng = np.random.default_rng(case)
    w, src, snk = _problem(rng, shape, np.int64)
    for symmetric in (False, True):
        g, _ = _build(smf, int, shape, w, structure, symmetric, src, snk)
        assert g._g.is_grid()
        assert g.maxflow() == _scipy_grid_flow(shape, structure, w, src, snk, symmetric)


def test_several_structures_widen_the_layout():
    # 4-connected edges first, then diagonals: the grid form switches to 8-connected slots
    rng = np.random.default_rng(5)
    shape = (9, 8)
    w1, w2 = rng.random(shape), rng.random(shape)
    src, snk = rng.random(shape) * 4, rng.random(shape) * 4
    diag = np.array([[1, 0, 0], [0, 0, 0], [0, 0, 1]])
    res = []
    for mod in (smf, pmf):
        g = mod.Graph[float]()
        ids = g.add_grid_nodes(shape)
        g.add_grid_edges(ids, w1, symmetric=True)
        g.add_grid_tedges(ids, src, snk)
        g.add_grid_edges(ids, w2, structure=diag)
        g.add_grid_edges(ids, 0.5)  # scalar weight, added to the same slots
        if mod is smf:
            assert g._g.is_grid()
        res.append((g.maxflow(), g.get_grid_segments(ids), g.get_edge_count()))
    assert res[0][0] == pytest.approx(res[1][0], rel=1e-9)
    assert np.array_equal(res[0][1], res[1][1]) and res[0][2] == res[1][2]


def _fallback_builds():
    """Graphs that must leave (or never enter) the grid form: (name, builder(mod))."""
    shape = (6, 7)
    rng = np.random.default_rng(8)
    w = rng.integers(0, 5, shape)
    src, snk = rng.integers(0, 20, shape), rng.integers(0, 20, shape)

    def periodic(mod):
        g = mod.Graph[int](); ids = g.add_grid_nodes(shape)
        g.add_grid_edges(ids, w, periodic=(False, True)); g.add_grid_tedges(ids, src, snk)
        return g, ids

    def sub_grid(mod):
        g = mod.Graph[int](); ids = g.add_grid_nodes(shape)
        g.add_grid_edges(ids[1:, 1:], w[1:, 1:], symmetric=True); g.add_grid_tedges(ids, src, snk)
        return g, ids

    def transposed(mod):
        g = mod.Graph[int](); ids = g.add_grid_nodes(shape)
        g.add_grid_edges(ids.T.copy(), w.T, symmetric=True); g.add_grid_tedges(ids, src, snk)
        return g, ids

    def far_offsets(mod):
        g = mod.Graph[int](); ids = g.add_grid_nodes(shape)
        st = np.zeros((5, 5)); st[2, 4] = 2; st[3, 2] = 1
        g.add_grid_edges(ids, w, structure=st); g.add_grid_tedges(ids, src, snk)
        return g, ids

    def extra_edge(mod):
        g = mod.Graph[int](); ids = g.add_grid_nodes(shape)
        g.add_grid_edges(ids, w, symmetric=True); g.add_grid_tedges(ids, src, snk)
        g.add_edge(0, int(ids[-1, -1]), 7, 3)
        return g, ids

    def extra_nodes(mod):
        g = mod.Graph[int](); ids = g.add_grid_nodes(shape)
        g.add_grid_edges(ids, w, symmetric=True)
        more = g.add_nodes(2)
        g.add_edge(int(more[0]), 5, 9, 9); g.add_tedge(int(more[0]), 30, 0)
        g.add_grid_tedges(ids, src, snk)
        return g, ids

    def two_grids(mod):
        g = mod.Graph[int](); ids = g.add_grid_nodes(shape); ids2 = g.add_grid_nodes(shape)
        g.add_grid_edges(ids, w, symmetric=True); g.add_grid_edges(ids2, w)
        g.add_grid_tedges(ids, src, snk); g.add_grid_tedges(ids2, snk, src)
        return g, ids

    return [periodic, sub_grid, transposed, far_offsets, extra_edge, extra_nodes, two_grids]


@pytest.mark.parametrize("build", _fallback_builds(), ids=lambda f: f.__name__)
def test_calls_outside_the_grid_form_fall_back(build):
    g, ids = build(smf)
    p, pid = build(pmf)
    f = g.maxflow()
    assert not g._g.is_grid()
    assert f == p.maxflow()
    assert g.get_edge_count() == p.get_edge_count()


def test_grid_form_after_maxflow_edges_tedges_copy_and_nx():
    rng = np.random.default_rng(9)
    shape = (8, 9)
    w, src, snk = _problem(rng, shape, np.int64)
    w2 = rng.integers(0, 4, shape)
    res = []
    for mod in (smf, pmf):
        g, ids = _build(mod, int, shape, w, None, True, src, snk)
        f1 = g.maxflow()
        g.add_grid_edges(ids, w2, symmetric=True)    # more capacity on the residual graph
        g.add_tedge(3, 5, 0)
        c = g.copy() if mod is smf else None
        f2 = g.maxflow()
        if mod is smf:
            assert g._g.is_grid() and not c._g.is_grid()
            assert c.maxflow() == f2
        res.append((f1, f2, g.get_grid_segments(ids)))
    assert res[0][:2] == res[1][:2]
    assert np.array_equal(res[0][2], res[1][2])


def test_grid_form_residual_network_for_nx():
    nx = pytest.importorskip("networkx")
    rng = np.random.default_rng(4)
    shape = (4, 5)
    w, src, snk = _problem(rng, shape, np.int64)
    g, _ = _build(smf, int, shape, w, None, False, src, snk)
    h, _ = _build(smf, int, shape, w, None, False, src, snk, general=True)
    for solved in (False, True):
        if solved:
            assert g.maxflow() == h.maxflow()
        a, b = g.get_nx_graph(), h.get_nx_graph()
        if not solved:
            assert {(u, v): d["weight"] for u, v, d in a.edges(data=True)} == \
                   {(u, v): d["weight"] for u, v, d in b.edges(data=True)}
    assert not nx.has_path(a, "s", "t")


@pytest.mark.parametrize("dtype", [np.float64, np.int64])
def test_grid_form_reuse_trees(dtype):
    rng = np.random.default_rng(21)
    shape = (30, 40)
    w, src, snk = _problem(rng, shape, dtype)
    g, ids = _build(smf, dtype, shape, w, None, True, src, snk)
    g.maxflow()
    for step in range(3):
        sel = rng.choice(ids.size, 50, replace=False)
        ds, dt = [(rng.integers(-3, 8, 50) if dtype == np.int64 else rng.random(50) * 4 - 1)
                  for _ in range(2)]
        g.add_tedges(sel, ds, dt)
        g.mark_grid_nodes(sel)
        np.add.at(src.reshape(-1), sel, ds.astype(dtype))
        np.add.at(snk.reshape(-1), sel, dt.astype(dtype))
        f = g.maxflow(reuse_trees=True)
        h, _ = _build(pmf, dtype, shape, w, None, True, src, snk)
        assert f == pytest.approx(h.maxflow(), rel=1e-9)
        assert g._g.is_grid()


@pytest.mark.parametrize("shape", [(300, 231), (41, 40, 45)])
def test_grid_form_threads_same_flow_and_cut(shape):
    rng = np.random.default_rng(len(shape))
    w = rng.random(shape) * 0.6
    src, snk = rng.random(shape) * 2, rng.random(shape) * 2
    out = []
    for nt in (1, 2, 3):
        g, ids = _build(smf, float, shape, w, None, True, src, snk)
        out.append((g.maxflow(num_threads=nt), g.get_grid_segments(ids)))
    for f, seg in out[1:]:
        assert f == pytest.approx(out[0][0], rel=1e-9)
        assert np.array_equal(seg, out[0][1])  # continuous capacities: the cut is unique
    gi = [_build(smf, int, shape, (w * 100).astype(np.int64), None, True, (src * 100).astype(np.int64),
                 (snk * 100).astype(np.int64))[0] for _ in range(2)]
    assert gi[0].maxflow(num_threads=1) == gi[1].maxflow(num_threads=2)


def test_grid_form_bad_input():
    g = smf.Graph[float]()
    ids = g.add_grid_nodes((3, 4))
    with pytest.raises(ValueError, match="non-negative"):
        g.add_grid_edges(ids, -1.0)
    with pytest.raises(ValueError, match="NaN"):
        g.add_grid_edges(ids, np.full((3, 4), np.nan))
    with pytest.raises(ValueError, match="broadcast"):
        g.add_grid_edges(ids, np.ones((2, 4)))
    with pytest.raises(ValueError, match="num_threads"):
        g.maxflow(num_threads=0)
    assert g._g.is_grid()   # rejected calls leave the graph as it was
    gi = smf.Graph[np.int32]()
    ids = gi.add_grid_nodes((3, 3))
    with pytest.raises(OverflowError, match=r"add_grid_edges: edge capacity weight \* structure overflows int32"):
        gi.add_grid_edges(ids, 2**30, structure=np.full((3, 3), 4.0))
    assert gi._g.is_grid() and gi.get_edge_count() == 0


def test_empty_and_degenerate_grids():
    g = smf.Graph[float]()
    ids = g.add_grid_nodes((0, 5))
    assert ids.shape == (0, 5) and g.maxflow() == 0.0
    g = smf.Graph[int]()
    ids = g.add_grid_nodes((1, 1))
    g.add_grid_edges(ids, 3)
    g.add_grid_tedges(ids, 4, 1)
    assert g._g.is_grid() and g.maxflow() == 1 and g.get_edge_count() == 0
    g = smf.Graph[int]()
    ids = g.add_grid_nodes((2, 2))
    g.add_grid_tedges(ids, [[3, 0], [0, 1]], [[0, 2], [2, 0]])
    assert g.maxflow() == 0   # no edges at all
