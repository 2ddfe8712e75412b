"""Integer max-flow never wraps around: OverflowError naming the call, exact results just
below the limits (compared with PyMaxflow's int64 graphs where it can hold the problem)."""

import numpy as np
import pytest

import segengine
import segengine.maxflow as smf

pmf = pytest.importorskip("maxflow")

INT_TYPES = [np.int32, np.int64]


def top(dtype):
    return int(np.iinfo(dtype).max)


def name(dtype):
    return np.dtype(dtype).name


def fill(g, tedges, edges, n):
    """Add n nodes, the terminal capacities (i, source, sink) and edges (i, j, cap, rev) to g."""
    g.add_nodes(n)
    for i, s, t in tedges:
        g.add_tedge(i, s, t)
    for i, j, c, r in edges:
        g.add_edge(i, j, c, r)
    return g


def their_solved_graph(tedges, edges, n):
    """PyMaxflow's int64 graph with these terminal and edge capacities and its max flow."""
    g = fill(pmf.Graph[int](), tedges, edges, n)
    return g, g.maxflow()


def their_flow(tedges, edges, n):
    return their_solved_graph(tedges, edges, n)[1]


def our_graph(dtype, tedges, edges, n):
    return fill(smf.Graph[dtype](), tedges, edges, n)


# ------------------------------------------------------------------ Graph: terminal capacities

@pytest.mark.parametrize("dtype", INT_TYPES)
def test_terminal_capacities_accumulating_past_the_type_raise(dtype):
    half = (top(dtype) + 1) // 2
    g = smf.Graph[dtype]()
    g.add_nodes(1)
    g.add_tedge(0, half, 0)
    with pytest.raises(OverflowError, match=f"add_tedge: terminal capacity of node 0 overflows {name(dtype)}"):
        g.add_tedge(0, half, 0)
    # the refused call changed nothing
    g.add_tedge(0, 0, 7)
    assert g.maxflow() == 7


def test_issue_example_no_longer_returns_a_negative_flow():
    g = smf.Graph[int]()
    g.add_nodes(1)
    g.add_tedge(0, 2**62, 0)
    with pytest.raises(OverflowError, match="add_tedge: terminal capacity of node 0 overflows int64"):
        g.add_tedge(0, 2**62, 0)
    assert g.maxflow() == 0


@pytest.mark.parametrize("dtype", INT_TYPES)
def test_add_tedges_is_all_or_nothing(dtype):
    half = (top(dtype) + 1) // 2
    g = smf.Graph[dtype]()
    g.add_nodes(2)
    with pytest.raises(OverflowError, match="add_tedges: terminal capacity of node 0"):
        g.add_tedges([0, 1, 0], [half, 5, half], [0, 0, 0])
    g.add_tedges([0, 1], [0, 0], [3, 4])
    assert g.maxflow() == 0          # no source capacity was kept from the refused call
    ids = smf.Graph[dtype]()
    nodes = ids.add_grid_nodes((2, 2))
    ids.add_grid_tedges(nodes, half, 0)
    with pytest.raises(OverflowError, match="add_grid_tedges: terminal capacity of node 0"):
        ids.add_grid_tedges(nodes, half, 0)
    ids.add_grid_tedges(nodes, 0, 1)
    assert ids.maxflow() == 4


@pytest.mark.parametrize("dtype", INT_TYPES)
def test_terminal_capacities_just_below_the_limit_equal_pymaxflow(dtype):
    m = top(dtype)
    tedges = [(0, m // 2 + 1, 0), (0, m // 2, 0),       # tr = m exactly
              (0, m, m),                                 # min(2m, m) = m to the flow, tr stays m
              (1, 0, m), (2, -m, 0)]                     # negative capacities as PyMaxflow
    edges = [(0, 1, m, 0), (0, 2, 3, 0)]
    g = our_graph(dtype, tedges, edges, 3)
    assert g.maxflow() == m
    if dtype == np.int32:
        assert their_flow(tedges, edges, 3) == m
        assert list(g.get_grid_segments(np.arange(3))) == [bool(v) for v in _their_segments(tedges, edges, 3)]
    else:
        # PyMaxflow's int64 graph wraps here (source 2**63 - 1 plus the residual 2**63 - 1)
        assert their_flow(tedges, edges, 3) != m


def _their_segments(tedges, edges, n):
    g, _ = their_solved_graph(tedges, edges, n)
    return [g.get_segment(i) for i in range(n)]


@pytest.mark.parametrize("dtype", INT_TYPES)
@pytest.mark.parametrize("value", ["int", "float"])
def test_capacity_values_that_do_not_fit_the_type_raise(dtype, value):
    big = 2 ** (np.iinfo(dtype).bits - 1)
    g = smf.Graph[dtype]()
    g.add_nodes(2)
    v = big if value == "int" else float(big)
    with pytest.raises(OverflowError, match=f"add_tedge: cap_source value .* does not fit in {name(dtype)}"):
        g.add_tedge(0, v, 0)
    with pytest.raises(OverflowError, match=f"add_edge: capacities value .* does not fit in {name(dtype)}"):
        g.add_edge(0, 1, v, 0)
    with pytest.raises(OverflowError, match="add_tedges: cap_sink value"):
        g.add_tedges([0], [0], np.array([-big - 1 if dtype == np.int32 else -2.0**64]))
    g.add_tedge(0, big - 1, 0)     # the largest value still fits
    g.add_tedge(1, 0, big - 1)
    g.add_edge(0, 1, big - 1, 0)
    assert g.maxflow() == big - 1


def test_uint64_values_do_not_wrap():
    g = smf.Graph[int]()
    g.add_nodes(1)
    with pytest.raises(OverflowError, match="does not fit in int64"):
        g.add_tedges([0], np.array([2**63], dtype=np.uint64), [0])


# ------------------------------------------------------------------ Graph: edges and the flow

@pytest.mark.parametrize("dtype", INT_TYPES)
def test_edge_capacity_plus_reverse_must_fit(dtype):
    m = top(dtype)
    g = smf.Graph[dtype]()
    g.add_nodes(2)
    with pytest.raises(OverflowError, match=f"add_edge: capacity \\+ reverse capacity of edge 0 -> 1 overflows {name(dtype)}"):
        g.add_edge(0, 1, m, 1)
    with pytest.raises(OverflowError, match="add_edges: capacity"):
        g.add_edges([0, 1], [1, 0], [1, m // 2 + 1], [1, m // 2 + 1])
    assert g.get_edge_count() == 0   # refused calls add nothing
    tedges = [(0, m, 0), (1, 0, m)]
    edges = [(0, 1, m - 1, 1), (1, 0, 0, m)]   # parallel arcs between one pair are separate
    for i, s, t in tedges:
        g.add_tedge(i, s, t)
    for e in edges:
        g.add_edge(*e)
    assert g.maxflow() == their_flow(tedges, edges, 2) == m


def test_flow_that_could_pass_int64_raises_and_just_below_solves():
    q = 2**61
    # three source nodes of 2**61 + three sink nodes: the flow could reach 3 * 2**61 ... fits;
    # four of each could reach 2**63: refused before solving
    for k, ok in ((3, True), (4, False)):
        tedges = [(i, q, 0) for i in range(k)] + [(k + i, 0, q) for i in range(k)]
        edges = [(i, k + i, q, 0) for i in range(k)]
        g = our_graph(np.int64, tedges, edges, 2 * k)
        if ok:
            assert g.maxflow() == their_flow(tedges, edges, 2 * k) == 3 * q
        else:
            with pytest.raises(OverflowError, match="maxflow: the maximum flow can exceed int64"):
                g.maxflow()
    # the flow already moved into the graph by add_tedge counts as well
    g = smf.Graph[int]()
    g.add_nodes(2)
    g.add_tedges([0, 1], [2**62, 2**62], [2**62, 2**62 - 1])   # 2**63 - 1 straight into the flow
    with pytest.raises(OverflowError, match="add_tedge: the flow overflows int64"):
        g.add_tedge(0, 1, 1)
    assert g.maxflow() == 2**63 - 1


def test_flow_bound_counts_only_what_arcs_can_carry():
    """Terminal capacities that no arc can pass on do not count: eight isolated nodes of
    2**61 each solve (flow 0, as PyMaxflow); with arcs between them they are refused."""
    q = 2**61
    tedges = [(i, q, 0) for i in range(4)] + [(4 + i, 0, q) for i in range(4)]
    g = our_graph(np.int64, tedges, [(0, 4, 1, 0)], 8)
    assert g.maxflow() == their_flow(tedges, [(0, 4, 1, 0)], 8) == 1
    g = smf.Graph[int]()
    ids = g.add_grid_nodes((2, 4))
    g.add_grid_tedges(ids, np.array([[q] * 4, [0] * 4]), np.array([[0] * 4, [q] * 4]))
    assert g.maxflow() == 0                      # grid form without arcs
    g.add_grid_edges(ids, q, symmetric=False)
    assert g._g.is_grid()
    with pytest.raises(OverflowError, match="maxflow: the maximum flow can exceed int64"):
        g.maxflow()


@pytest.mark.parametrize("dtype", INT_TYPES)
def test_terminal_capacities_added_after_a_solve_are_checked(dtype):
    m = top(dtype)
    for grid in (False, True):
        g = smf.Graph[dtype]()
        if grid:
            g.add_grid_nodes((1, 2))
            g.add_grid_edges(np.arange(2).reshape(1, 2), 5, symmetric=True)
        else:
            g.add_nodes(2)
            g.add_edge(0, 1, 5, 5)
        g.add_tedges([0, 1], [m, 0], [0, 3])
        assert g.maxflow() == 3                   # node 0 keeps a source residual of m - 3
        with pytest.raises(OverflowError, match="add_tedge: terminal capacity of node 0"):
            g.add_tedge(0, 4, 0)
        g.add_tedge(0, 3, 0)                      # exactly m again
        g.add_tedge(1, 0, 2)
        g.mark_node(0)
        g.mark_node(1)
        assert g.maxflow(reuse_trees=True) == 5


@pytest.mark.parametrize("dtype", INT_TYPES)
def test_grid_form_leaves_mid_call_when_one_offset_overflows(dtype):
    """The first offset of a call fits its slot, the second does not: the call finishes as a
    general graph and the result equals PyMaxflow's."""
    m = top(dtype)
    w = m // 2 + 1
    down = np.array([[0, 0, 0], [0, 0, 0], [0, 1, 0]])
    both = np.array([[0, 0, 0], [0, 0, 1], [0, 1, 0]])
    rng = np.random.default_rng(4)
    src = rng.integers(0, m // 64, (3, 3))
    snk = rng.integers(0, m // 64, (3, 3))
    ours, theirs = smf.Graph[dtype](), pmf.Graph[int]()
    for g in (ours, theirs):
        ids = g.add_grid_nodes((3, 3))
        g.add_grid_edges(ids, w, structure=down)
        g.add_grid_edges(ids, w, structure=both)
        g.add_grid_tedges(ids, src, snk)
    assert not ours._g.is_grid() and ours.get_edge_count() == theirs.get_edge_count()
    assert ours.maxflow() == theirs.maxflow()
    assert np.array_equal(ours.get_grid_segments(ids), theirs.get_grid_segments(ids))


@pytest.mark.parametrize("dtype", INT_TYPES)
def test_grid_form_parallel_arcs_past_a_slot_become_separate_arcs(dtype):
    """Grid calls add parallel arcs up in one slot: when the sum would not fit, the graph
    continues as a general graph with separate arcs, as PyMaxflow keeps them."""
    m = top(dtype)
    w = m // 2 + 1
    rng = np.random.default_rng(3)
    src = rng.integers(0, m // 64, (3, 4))
    snk = rng.integers(0, m // 64, (3, 4))
    ours = smf.Graph[dtype]()
    theirs = pmf.Graph[int]()
    for g in (ours, theirs):
        ids = g.add_grid_nodes((3, 4))
        g.add_grid_edges(ids, w, symmetric=False)
        g.add_grid_edges(ids, w, symmetric=False)
        g.add_grid_tedges(ids, src, snk)
    assert not ours._g.is_grid()
    assert ours.maxflow() == theirs.maxflow()
    assert np.array_equal(ours.get_grid_segments(ids), theirs.get_grid_segments(ids))


@pytest.mark.parametrize("dtype", INT_TYPES)
@pytest.mark.parametrize("periodic", [False, True])
def test_grid_weight_times_structure_overflow_raises(dtype, periodic):
    m = top(dtype)
    g = smf.Graph[dtype]()
    ids = g.add_grid_nodes((3, 3))
    with pytest.raises(OverflowError, match=f"add_grid_edges: edge capacity weight \\* structure overflows {name(dtype)}"):
        g.add_grid_edges(ids, m // 2 + 1, structure=np.full((3, 3), 2), periodic=periodic)
    assert g.get_edge_count() == 0
    g.add_grid_edges(ids, m // 2, structure=np.full((3, 3), 2), periodic=periodic)   # fits
    assert g.get_edge_count() > 0


@pytest.mark.parametrize("dtype", INT_TYPES)
def test_symmetric_grid_edges_whose_pair_cannot_fit_raise(dtype):
    m = top(dtype)
    g = smf.Graph[dtype]()
    ids = g.add_grid_nodes((2, 3))
    # capacity and reverse capacity m // 2 + 1 each: cap + rev > m even as separate arcs
    with pytest.raises(OverflowError, match="add_grid_edges: capacity \\+ reverse capacity"):
        g.add_grid_edges(ids, m // 2 + 1, symmetric=True)
    g.add_grid_edges(ids, m // 2, symmetric=True)
    g.add_grid_tedges(ids, np.array([[m, 0, 0], [0, 0, 0]]), np.array([[0, 0, 0], [0, 0, m]]))
    assert g._g.is_grid() and g.maxflow() == 2 * (m // 2)


# ------------------------------------------------------------------ grid_maxflow

@pytest.mark.parametrize("dtype", INT_TYPES)
def test_grid_maxflow_terminal_difference_overflow(dtype):
    m = top(dtype)
    src = np.zeros((3, 3), dtype=dtype)
    snk = np.zeros((3, 3), dtype=dtype)
    src[1, 1], snk[1, 1] = m, -1
    with pytest.raises(OverflowError, match=f"grid_maxflow: terminal capacity of node 4 overflows {name(dtype)}"):
        smf.grid_maxflow(src, snk, np.ones(1, dtype=dtype)[0])
    snk[1, 1] = 0
    snk[0, 0] = m
    flow, seg = smf.grid_maxflow(src, snk, dtype(m // 2))
    assert flow == m // 2 * 2 or flow == _their_grid_flow(src, snk, m // 2)
    assert flow == _their_grid_flow(src, snk, m // 2)


def _their_grid_flow(src, snk, w):
    g = pmf.Graph[int]()
    ids = g.add_grid_nodes(src.shape)
    g.add_grid_edges(ids, int(w), symmetric=True)
    g.add_grid_tedges(ids, src.astype(np.int64), snk.astype(np.int64))
    return g.maxflow()


@pytest.mark.parametrize("dtype", INT_TYPES)
def test_grid_maxflow_arc_pair_overflow(dtype):
    m = top(dtype)
    src = np.zeros((2, 3), dtype=dtype)
    snk = np.zeros((2, 3), dtype=dtype)
    src[0, 0], snk[1, 2] = m, m
    with pytest.raises(OverflowError, match=f"grid_maxflow: weights \\+ rweights .* overflows {name(dtype)}"):
        smf.grid_maxflow(src, snk, dtype(m // 2 + 1))       # reverse = weights: 2 * (m//2 + 1) > m
    flow, _ = smf.grid_maxflow(src, snk, dtype(m // 2))
    assert flow == _their_grid_flow(src, snk, m // 2)


def test_grid_maxflow_flow_bound_int64():
    q = 2**61
    for k, ok in ((3, True), (4, False)):
        src = np.zeros((2, 4), dtype=np.int64)
        snk = np.zeros((2, 4), dtype=np.int64)
        src[0, :k] = q
        snk[1, :k] = q
        if ok:
            flow, _ = smf.grid_maxflow(src, snk, np.int64(q), connectivity=4)
            assert flow == _their_grid_flow(src, snk, q) == 3 * q
        else:
            with pytest.raises(OverflowError, match="grid_maxflow: the maximum flow can exceed int64"):
                smf.grid_maxflow(src, snk, np.int64(q), connectivity=4)


@pytest.mark.parametrize("dtype", INT_TYPES)
def test_grid_maxflow_inputs_that_do_not_fit_the_dtype(dtype):
    big = 2 ** (np.iinfo(dtype).bits - 1)
    src = np.zeros((3, 3), dtype=np.float64)
    src[0, 0] = big
    with pytest.raises(OverflowError, match=f"grid_maxflow: source value .* does not fit in {name(dtype)}"):
        smf.grid_maxflow(src, 0, 1, dtype=dtype)
    w = np.ones((2, 3, 3), dtype=np.uint64)
    w[1, 1, 1] = np.uint64(2**63)
    with pytest.raises(OverflowError, match="grid_maxflow: weights value"):
        smf.grid_maxflow(np.zeros((3, 3), dtype=np.int64), 0, w, dtype=dtype)
    src = np.zeros((3, 3), dtype=np.int64)
    src[0, 0] = big - 1
    flow, _ = smf.grid_maxflow(src, np.eye(3, dtype=np.int64), 1, dtype=dtype)
    assert flow == 3


def test_grid_maxflow_int32_default_dtype_stays_exact():
    # int32 inputs keep int32 capacities; their sums beyond int32 still come out exact
    m = top(np.int32)
    src = np.full((4, 4), m, dtype=np.int32)
    snk = np.full((4, 4), m, dtype=np.int32)
    flow, _ = smf.grid_maxflow(src, snk, np.int32(1))
    assert flow == 16 * m


def test_graphcut_has_no_integer_path():
    """graphcut solves in float32/float64 only: integer unary is refused, not converted."""
    import torch
    with pytest.raises(TypeError, match="floating-point"):
        segengine.graphcut(torch.zeros(1, 2, 3, 3, dtype=torch.int64))


@pytest.mark.parametrize("dtype", INT_TYPES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_capacities_near_int32_max_equal_scipy(dtype, seed):
    """Arc capacities up to 2**31 - 1 (scipy's maximum_flow takes int32): every sum of them
    that the graph keeps fits, so nothing is refused and the flow, beyond int32, is exact."""
    sparse = pytest.importorskip("scipy.sparse")
    from scipy.sparse.csgraph import maximum_flow
    rng = np.random.default_rng(seed)
    m = 2**31 - 1
    n = 10
    edges = [(i, j, int(rng.integers(2**30, m))) for i in range(n) for j in range(n)
             if i != j and rng.random() < 0.4]
    src = [(i, int(rng.integers(2**29, 2**30))) for i in range(n) if rng.random() < 0.6]
    snk = [(i, int(rng.integers(2**29, 2**30))) for i in range(n) if rng.random() < 0.6]
    rows = [e[0] for e in edges] + [n] * len(src) + [i for i, _ in snk]
    cols = [e[1] for e in edges] + [i for i, _ in src] + [n + 1] * len(snk)
    data = np.array([e[2] for e in edges] + [c for _, c in src] + [c for _, c in snk], dtype=np.int32)
    expected = maximum_flow(sparse.csr_matrix((data, (rows, cols)), shape=(n + 2, n + 2)), n, n + 1).flow_value
    g = smf.Graph[dtype]()
    g.add_nodes(n)
    g.add_edges([e[0] for e in edges], [e[1] for e in edges], [e[2] for e in edges], 0)
    for i, c in src:
        g.add_tedge(i, c, 0)
    for i, c in snk:
        g.add_tedge(i, 0, c)
    assert g.maxflow() == expected
    assert expected > 2**31 or seed != 0
