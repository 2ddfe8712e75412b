"""segengine.maxflow: flow values and cuts against PyMaxflow, scipy and the reference."""

import numpy as np
import pytest
import scipy.sparse
import scipy.sparse.csgraph
from hypothesis import given, settings
from hypothesis import strategies as st

import segengine.maxflow as smf
from segengine._reference import maxflow as ref

pmf = pytest.importorskip("maxflow")  # PyMaxflow 1.3.2, the oracle


# ---------------------------------------------------------------- helpers

def random_graph(rng, n, m, integer=True, neg_tedges=True, hi=20):
    i = rng.integers(0, n, m)
    j = rng.integers(0, n, m)
    if integer:
        c = rng.integers(0, hi, m)
        r = rng.integers(0, hi, m)
        lo = -5 if neg_tedges else 0
        s = rng.integers(lo, hi, n)
        t = rng.integers(lo, hi, n)
    else:
        c = rng.random(m) * hi
        r = rng.random(m) * hi
        s = rng.random(n) * hi - (3 if neg_tedges else 0)
        t = rng.random(n) * hi - (3 if neg_tedges else 0)
    return i, j, c, r, s, t


def build(cls, n, i, j, c, r, s, t, vectorised=True):
    g = cls()
    g.add_nodes(n)
    if vectorised and hasattr(g, "add_edges") and cls not in (pmf.GraphInt, pmf.GraphFloat):
        g.add_edges(i, j, c, r)
        g.add_tedges(np.arange(n), s, t)
    else:
        for k in range(len(i)):
            g.add_edge(int(i[k]), int(j[k]), c[k].item(), r[k].item())
        for k in range(n):
            g.add_tedge(k, s[k].item(), t[k].item())
    return g


def scipy_flow(n, i, j, c, r, s, t):
    """Max flow through scipy (integers only): terminal caps folded like PyMaxflow."""
    d = s - t
    const = np.minimum(s, t).sum()
    rows = np.concatenate([i, j, np.full(n, n), np.arange(n)])
    cols = np.concatenate([j, i, np.arange(n), np.full(n, n + 1)])
    vals = np.concatenate([c, r, np.maximum(d, 0), np.maximum(-d, 0)]).astype(np.int32)
    keep = rows != cols
    A = scipy.sparse.csr_matrix((vals[keep], (rows[keep], cols[keep])), shape=(n + 2, n + 2))
    A.sum_duplicates()
    return scipy.sparse.csgraph.maximum_flow(A, n, n + 1).flow_value + const


def cut_capacity(n, i, j, c, r, s, t, sink_side):
    edges = list(zip(i.tolist(), j.tolist(), c.tolist(), r.tolist()))
    tedges = list(zip(range(n), s.tolist(), t.tolist()))
    return ref.cut_value(n, edges, tedges, sink_side)


def unique_cut(n, i, j, c, r, s, t):
    """True when the minimum cut is unique (source-reachable set == complement of sink-reaching)."""
    C, _ = ref.dense_capacity(n, zip(i, j, c, r), zip(range(n), s, t))
    f, reach_s = ref.edmonds_karp(C, n, n + 1)
    _, reach_t = ref.edmonds_karp(C.T.copy(), n + 1, n)
    return bool(np.all(reach_s[:n] | reach_t[:n]))


# ---------------------------------------------------------------- general graphs

@pytest.mark.parametrize("n,density", [(2, 1.0), (5, 0.5), (10, 2.0), (30, 0.3), (30, 3.0),
                                       (100, 1.5), (300, 4.0), (2000, 3.0)])
def test_int_flow_matches_pymaxflow_and_scipy(n, density):
    rng = np.random.default_rng(n * 7 + int(density * 10))
    for trial in range(4 if n < 1000 else 1):
        m = int(n * density)
        i, j, c, r, s, t = random_graph(rng, n, m, integer=True)
        g = build(smf.Graph[int], n, i, j, c, r, s, t)
        f = g.maxflow()
        assert isinstance(f, int)
        assert f == build(pmf.Graph[int], n, i, j, c, r, s, t).maxflow()
        assert f == scipy_flow(n, i, j, c, r, s, t)
        seg = g.get_grid_segments(np.arange(n))
        assert cut_capacity(n, i, j, c, r, s, t, seg) == f


@pytest.mark.parametrize("n,density", [(3, 1.0), (20, 2.0), (200, 3.0), (1500, 2.5)])
def test_float_flow_matches_pymaxflow(n, density):
    rng = np.random.default_rng(n + 99)
    for trial in range(3):
        i, j, c, r, s, t = random_graph(rng, n, int(n * density), integer=False)
        g = build(smf.Graph[float], n, i, j, c, r, s, t)
        f = g.maxflow()
        p = build(pmf.Graph[float], n, i, j, c, r, s, t)
        fp = p.maxflow()
        assert f == pytest.approx(fp, rel=1e-9, abs=1e-9)
        seg = g.get_grid_segments(np.arange(n))
        assert cut_capacity(n, i, j, c, r, s, t, seg) == pytest.approx(f, rel=1e-9, abs=1e-9)
        # continuous random capacities: the min cut is unique, segments must agree
        if n <= 200 and unique_cut(n, i, j, c, r, s, t):
            assert np.array_equal(seg, p.get_grid_segments(np.arange(n)))


def test_64bit_index_path_gives_the_same_flow():
    rng = np.random.default_rng(21)
    n = 400
    i, j, c, r, s, t = random_graph(rng, n, 1600)
    flows = []
    for wide in (False, True):
        g = smf.Graph[int]()
        g._g.set_wide_index(wide)
        g.add_nodes(n)
        g.add_edges(i, j, c, r)
        g.add_tedges(np.arange(n), s, t)
        flows.append((g.maxflow(), g.get_grid_segments(np.arange(n))))
    assert flows[0][0] == flows[1][0] == scipy_flow(n, i, j, c, r, s, t)
    assert np.array_equal(flows[0][1], flows[1][1])


@pytest.mark.parametrize("dtype", [np.int32, np.float32])
def test_narrow_dtypes(dtype):
    rng = np.random.default_rng(3)
    n = 60
    i, j, c, r, s, t = random_graph(rng, n, 200, integer=True)
    g = build(smf.Graph[dtype], n, i, j, c.astype(dtype), r.astype(dtype), s.astype(dtype), t.astype(dtype))
    assert g.maxflow() == scipy_flow(n, i, j, c, r, s, t)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 8).flatmap(lambda n: st.tuples(
    st.just(n),
    st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1), st.integers(0, 9), st.integers(0, 9)), max_size=20),
    st.lists(st.tuples(st.integers(-4, 9), st.integers(-4, 9)), min_size=n, max_size=n))))
def test_hypothesis_against_reference(case):
    n, edges, terms = case
    g = smf.Graph[int]()
    g.add_nodes(n)
    for e in edges:
        g.add_edge(*e)
    for k, (a, b) in enumerate(terms):
        g.add_tedge(k, a, b)
    f = g.maxflow()
    tedges = [(k, a, b) for k, (a, b) in enumerate(terms)]
    fr, _ = ref.maxflow_reference(n, edges, tedges)
    assert f == fr
    seg = np.array([g.get_segment(k) for k in range(n)], bool)
    assert ref.cut_value(n, edges, tedges, seg) == f


def test_pymaxflow_tedge_semantics_and_counts():
    for mod in (smf, pmf):
        g = mod.Graph[int]()
        g.add_nodes(2)
        g.add_tedge(0, 5, 3)
        g.add_tedge(0, -1, 0)
        g.add_edge(0, 1, 2.7, 1)
        assert g.get_edge_count() == 2 and g.get_node_count() == 2
        assert g.maxflow() == 3
        assert (g.get_segment(0), g.get_segment(1)) == (0, 0)
    g = smf.Graph[float]()
    assert list(g.add_nodes(3)) == [0, 1, 2]
    assert g.add_grid_nodes((2, 2)).tolist() == [[3, 4], [5, 6]]
    assert isinstance(g.maxflow(), float)


# ---------------------------------------------------------------- grids through the Graph API

STRUCTURES = [None, np.array([[0, 0, 0], [0, 0, 1], [0, 1, 0]]), np.array([[0, 1, 0], [4, 0, 2], [0, 3, 0]]),
              np.ones((3, 3)), np.array([[1, 0, 0], [0, 0, 0], [0, 0, 0]]),
              np.array([[0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 2], [0, 0, 0, 0, 0], [1, 0, 0, 0, 0]])]


@pytest.mark.parametrize("sidx", range(len(STRUCTURES)))
@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("periodic", [False, True, (True, False)])
def test_add_grid_edges_matches_pymaxflow(sidx, symmetric, periodic):
    rng = np.random.default_rng(sidx * 11 + symmetric)
    shape = (7, 9)
    w = rng.random(shape) * 3
    src, snk = rng.random(shape) * 4, rng.random(shape) * 4
    res = []
    for mod in (smf, pmf):
        g = mod.Graph[float]()
        ids = g.add_grid_nodes(shape)
        g.add_grid_edges(ids, weights=w, structure=STRUCTURES[sidx], symmetric=symmetric, periodic=periodic)
        g.add_grid_tedges(ids, src, snk)
        count = g.get_edge_count()
        res.append((count, g.maxflow(), g.get_grid_segments(ids)))
    assert res[0][0] == res[1][0]
    assert res[0][1] == pytest.approx(res[1][1], rel=1e-9)
    assert np.array_equal(res[0][2], res[1][2])  # continuous weights: unique cut


def test_3d_grid_graph_api_int():
    shape = (6, 7, 8)
    res = []
    for mod in (smf, pmf):
        g = mod.Graph[int]()
        ids = g.add_grid_nodes(shape)
        w = np.random.default_rng(1).integers(0, 5, shape)
        g.add_grid_edges(ids, weights=w, symmetric=True)
        g.add_grid_tedges(ids, np.random.default_rng(2).integers(0, 30, shape),
                          np.random.default_rng(3).integers(0, 30, shape))
        res.append(g.maxflow())
    assert res[0] == res[1]


# ---------------------------------------------------------------- implicit grids

def grid_as_graph(shape, conn, src, snk, fw, bw, dtype):
    """The same problem through the general-graph API (edges listed explicitly)."""
    offs = smf.grid.forward_offsets(len(shape), conn)
    g = smf.Graph[dtype]()
    ids = g.add_grid_nodes(shape)
    for k, o in enumerate(offs):
        sl_p, sl_q = [], []
        for S, d in zip(shape, o):
            sl_p.append(slice(max(0, -d), S - max(0, d)))
            sl_q.append(slice(max(0, d), S - max(0, -d)))
        g.add_edges(ids[tuple(sl_p)].ravel(), ids[tuple(sl_q)].ravel(),
                    fw[k][tuple(sl_p)].ravel(), bw[k][tuple(sl_p)].ravel())
    g.add_grid_tedges(ids, src, snk)
    return g.maxflow(), g.get_grid_segments(ids)


@pytest.mark.parametrize("shape,conn", [((9, 11), 4), ((9, 11), 8), ((4, 5, 6), 6), ((4, 5, 6), 18),
                                        ((4, 5, 6), 26), ((1, 17), 4), ((13, 1), 8)])
@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.float32, np.float64])
def test_implicit_grid_matches_general_graph(shape, conn, dtype):
    rng = np.random.default_rng(hash((shape, conn)) % 1000)
    K = len(smf.grid.forward_offsets(len(shape), conn))
    if np.issubdtype(dtype, np.integer):
        fw = rng.integers(0, 6, (K,) + shape).astype(dtype)
        bw = rng.integers(0, 6, (K,) + shape).astype(dtype)
        src = rng.integers(-3, 25, shape).astype(dtype)
        snk = rng.integers(-3, 25, shape).astype(dtype)
    else:
        fw = (rng.random((K,) + shape) * 3).astype(dtype)
        bw = (rng.random((K,) + shape) * 3).astype(dtype)
        src = (rng.random(shape) * 20 - 2).astype(dtype)
        snk = (rng.random(shape) * 20 - 2).astype(dtype)
    f, seg = smf.grid_maxflow(src, snk, fw, connectivity=conn, rweights=bw)
    fg, segg = grid_as_graph(shape, conn, src, snk, fw, bw, np.float64 if dtype == np.float64 else dtype)
    # the returned cut's capacity equals the flow
    cut = np.where(seg, src.astype(np.float64), snk.astype(np.float64)).sum()
    for k, o in enumerate(smf.grid.forward_offsets(len(shape), conn)):
        sl_p = tuple(slice(max(0, -d), S - max(0, d)) for S, d in zip(shape, o))
        sl_q = tuple(slice(max(0, d), S - max(0, -d)) for S, d in zip(shape, o))
        sp, sq = seg[sl_p], seg[sl_q]
        cut += (fw[k][sl_p].astype(np.float64) * (~sp & sq)).sum()
        cut += (bw[k][sl_p].astype(np.float64) * (sp & ~sq)).sum()
    assert cut == pytest.approx(float(f), rel=1e-9 if dtype != np.float32 else 1e-5)
    if np.issubdtype(dtype, np.integer):
        assert f == fg and isinstance(f, int)
    else:
        assert f == pytest.approx(fg, rel=1e-9 if dtype == np.float64 else 1e-5)
        if dtype == np.float64:
            assert np.array_equal(seg, segg)


def test_implicit_grid_matches_pymaxflow_image():
    from skimage import data
    img = data.camera()[::4, ::4].astype(np.float64) / 255
    src, snk = (img - 0.2) ** 2 * 10, (img - 0.7) ** 2 * 10
    f, seg = smf.grid_maxflow(src, snk, 0.25)
    g = pmf.Graph[float]()
    ids = g.add_grid_nodes(img.shape)
    g.add_grid_edges(ids, 0.25, symmetric=True)
    g.add_grid_tedges(ids, src, snk)
    assert f == pytest.approx(g.maxflow(), rel=1e-9)
    assert np.array_equal(seg, g.get_grid_segments(ids))
    assert 0 < seg.sum() < seg.size


@pytest.mark.parametrize("shape,conn", [((300, 260), 4), ((260, 260), 8), ((40, 45, 50), 6),
                                        ((33, 40, 50), 26)])
def test_parallel_slabs_give_the_same_flow_and_cut(shape, conn):
    rng = np.random.default_rng(len(shape) + conn)
    K = len(smf.grid.forward_offsets(len(shape), conn))
    fw = rng.random((K,) + shape) * 0.6
    src, snk = rng.random(shape) * 2, rng.random(shape) * 2
    ref_flow, ref_seg = smf.grid_maxflow(src, snk, fw, connectivity=conn, num_threads=1)
    for nt in (2, 3, 5):
        f, seg = smf.grid_maxflow(src, snk, fw, connectivity=conn, num_threads=nt)
        assert f == pytest.approx(ref_flow, rel=1e-9)
        assert np.array_equal(seg, ref_seg)  # continuous capacities: the cut is unique
    fi, _ = smf.grid_maxflow((src * 100).astype(np.int64), (snk * 100).astype(np.int64),
                             (fw * 100).astype(np.int64), connectivity=conn, num_threads=1)
    fi2, _ = smf.grid_maxflow((src * 100).astype(np.int64), (snk * 100).astype(np.int64),
                              (fw * 100).astype(np.int64), connectivity=conn, num_threads=4)
    assert fi == fi2


# ---------------------------------------------------------------- dynamic use

def test_reuse_trees_equals_fresh_solve():
    rng = np.random.default_rng(11)
    shape = (25, 30)
    w = rng.random(shape)
    src, snk = rng.random(shape) * 3, rng.random(shape) * 3
    g = smf.Graph[float]()
    ids = g.add_grid_nodes(shape)
    g.add_grid_edges(ids, w, symmetric=True)
    g.add_grid_tedges(ids, src, snk)
    g.maxflow()
    for step in range(4):
        sel = rng.choice(ids.size, 40, replace=False)
        ds, dt = rng.random(40) * 3 - 1, rng.random(40) * 3 - 1  # capacities also decrease
        g.add_tedges(ids.ravel()[sel], ds, dt)
        g.mark_grid_nodes(ids.ravel()[sel])
        f = g.maxflow(reuse_trees=True)
        np.add.at(src.reshape(-1), sel, ds)
        np.add.at(snk.reshape(-1), sel, dt)
        h = pmf.Graph[float]()
        hid = h.add_grid_nodes(shape)
        h.add_grid_edges(hid, w, symmetric=True)
        h.add_grid_tedges(hid, src, snk)
        assert f == pytest.approx(h.maxflow(), rel=1e-9)
        assert np.array_equal(g.get_grid_segments(ids), h.get_grid_segments(hid))


def test_reuse_trees_general_int_graph():
    rng = np.random.default_rng(13)
    n = 120
    i, j, c, r, s, t = random_graph(rng, n, 500, neg_tedges=False)
    g = build(smf.Graph[int], n, i, j, c, r, s, t)
    assert g.maxflow() == scipy_flow(n, i, j, c, r, s, t)
    for step in range(8):
        sel = rng.choice(n, 10, replace=False)
        ds, dt = rng.integers(-3, 8, 10), rng.integers(-3, 8, 10)
        g.add_tedges(sel, ds, dt)
        g.mark_grid_nodes(sel)
        s[sel] += ds
        t[sel] += dt
        f = g.maxflow(reuse_trees=True)
        assert f == scipy_flow(n, i, j, c, r, s, t)
        seg = g.get_grid_segments(np.arange(n))
        assert cut_capacity(n, i, j, c, r, s, t, seg) == f


def test_edges_and_nodes_added_after_maxflow():
    rng = np.random.default_rng(12)
    n = 50
    i, j, c, r, s, t = random_graph(rng, n, 150)
    g = build(smf.Graph[int], n, i[:100], j[:100], c[:100], r[:100], s, t)
    g.maxflow()
    g.add_edges(i[100:], j[100:], c[100:], r[100:])
    extra = g.add_nodes(2)
    g.add_edge(int(extra[0]), 3, 5, 5)
    g.add_tedge(int(extra[0]), 7, 0)
    f = g.maxflow()
    i2 = np.concatenate([i, [n]]); j2 = np.concatenate([j, [3]])
    c2 = np.concatenate([c, [5]]); r2 = np.concatenate([r, [5]])
    s2 = np.concatenate([s, [7, 0]]); t2 = np.concatenate([t, [0, 0]])
    assert f == scipy_flow(n + 2, i2, j2, c2, r2, s2, t2)
    assert g.maxflow() == f  # solving again adds nothing


def test_get_nx_graph_matches_pymaxflow():
    pytest.importorskip("networkx")
    rng = np.random.default_rng(17)
    w = rng.integers(0, 4, (4, 5))
    src, snk = rng.integers(0, 9, (4, 5)), rng.integers(0, 9, (4, 5))
    out = []
    for mod in (smf, pmf):
        g = mod.Graph[int]()
        ids = g.add_grid_nodes((4, 5))
        g.add_grid_edges(ids, w)
        g.add_grid_tedges(ids, src, snk)
        before = g.get_nx_graph()
        g.maxflow()
        out.append((before, g.get_nx_graph()))
    for k in range(2):
        a, b = out[0][k], out[1][k]
        assert set(a.nodes) == set(b.nodes)
        if k == 0:  # before the solve the residual network is the input: identical
            assert {(u, v): d["weight"] for u, v, d in a.edges(data=True)} == \
                   {(u, v): d["weight"] for u, v, d in b.edges(data=True)}
    # after the solve: the residual network leaves no source-sink path
    import networkx as nx
    assert not nx.has_path(out[0][1], "s", "t")


def test_copy_and_reset():
    g = smf.Graph[int]()
    g.add_nodes(2)
    g.add_edge(0, 1, 3, 0)
    g.add_tedge(0, 10, 0)
    g.add_tedge(1, 0, 10)
    h = g.copy()
    assert g.maxflow() == 3
    assert h.get_node_count() == 2 and h.maxflow() == 3
    h2 = g.copy()  # copy after the solve keeps residuals and flow
    assert h2.maxflow() == 3
    g.reset()
    assert g.get_node_count() == 0 and g.get_edge_count() == 0 and g.maxflow() == 0


# ---------------------------------------------------------------- bad input

def test_bad_input_raises():
    g = smf.Graph[float]()
    g.add_nodes(3)
    with pytest.raises(ValueError, match="not in the graph"):
        g.add_edge(0, 3, 1, 1)
    with pytest.raises(RuntimeError, match="node id -1 is not in the graph"):  # PyMaxflow users catch RuntimeError
        g.add_edge(-1, 0, 1, 1)
    with pytest.raises(ValueError, match="non-negative"):
        g.add_edge(0, 1, -1, 0)
    with pytest.raises(ValueError, match="NaN"):
        g.add_edge(0, 1, np.nan, 0)
    with pytest.raises(ValueError, match="NaN"):
        g.add_tedge(0, np.inf, 0)
    with pytest.raises(ValueError, match="not in the graph"):
        g.add_tedge(5, 1, 0)
    with pytest.raises(ValueError, match="same length"):
        g.add_edges([0, 1], [1], 1, 1)
    with pytest.raises(ValueError, match="not in the graph"):
        g.get_segment(7)
    with pytest.raises(ValueError, match="odd"):
        g.add_grid_edges(np.arange(3).reshape(1, 3), structure=np.ones((2, 2)))
    with pytest.raises(ValueError, match="dimensions"):
        g.add_grid_edges(np.arange(3).reshape(1, 3), structure=np.ones(3))
    with pytest.raises(ValueError, match="broadcast"):
        g.add_grid_tedges(np.arange(3), np.ones(2), 0)
    with pytest.raises(ValueError, match="connectivity"):
        smf.grid_maxflow(np.ones((3, 3)), 0, connectivity=6)
    with pytest.raises(ValueError, match="shape"):
        smf.grid_maxflow(np.ones((3, 3)), 0, weights=np.ones((3, 3, 3)))
    with pytest.raises(ValueError, match="non-negative"):
        smf.grid_maxflow(np.ones((3, 3)), 0, weights=-1.0)
    with pytest.raises(ValueError, match="NaN"):
        smf.grid_maxflow(np.full((3, 3), np.nan), 0)
    with pytest.raises(ValueError, match="2D or 3D"):
        smf.grid_maxflow(np.ones(3), 0)
    with pytest.raises(MemoryError, match=r"add_nodes\(2305843009213693952\) needs about|bad_alloc"):
        smf.Graph[float]().add_nodes(2**61)
    from segengine._cy import _maxflow as _cy
    a = np.zeros(1)
    with pytest.raises(MemoryError):  # a grid too large to allocate: no overflow, no crash
        _cy.grid_solve(a, 0, a, 0, a, 0, 0, a, 0, 0, (2**40, 2**40), 4, np.zeros(1, np.uint8), 1)
