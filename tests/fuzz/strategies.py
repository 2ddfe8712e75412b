"""Hypothesis strategies: one per target, each drawing a :class:`~tests.fuzz.spec.Call`.

Most draws are valid or nearly valid calls (so the kernels run), mixed with shapes of
size 0 and 1, odd and "large" declared sizes (zero-stride broadcasts that allocate only
one axis), every integer/float/complex/bool/object dtype, non-contiguous, negative-stride
and Fortran-ordered layouts, NaN and infinities, extreme parameters and wrong types.
"""

from __future__ import annotations

import math

from hypothesis import strategies as st

from tests.fuzz.spec import NUMPY_DTYPES, TORCH_DTYPES, Arr, Call

__all__ = ["STRATEGIES"]

FLOATS = ("float32", "float64", "float16")
ALL_DTYPES = tuple(sorted(set(NUMPY_DTYPES) | set(TORCH_DTYPES)))
INTS = ("uint8", "int8", "int16", "int32", "int64", "uint16", "uint32", "uint64")
SMALL_SIZE = 1 << 14          # arrays above this many elements are broadcast views
# one large axis makes >= 2**31 elements: past int32 indexing, and more than any op may
# allocate under the worker's memory limit, so it must be refused, not computed for minutes
LARGE_DIMS = (2**31 + 11, 3 * 2**30, 2**32 + 1, 2**40)
NAN, INF = math.nan, math.inf
WRONG = st.sampled_from([None, "x", (1, 2), [1.5], {"a": 1}, 1j, True, b"\x00", -1, 2**63])
WEIRD_FLOATS = st.sampled_from([0.0, -1.0, 1e-30, 1e30, 1e300, NAN, INF, -INF, -0.0, 2**31])
WEIRD_INTS = st.sampled_from([0, -1, 1, 2**31, 2**63 - 1, -(2**63), 10**20])
# iteration counts: a huge one is a request for hours of work, not a bug
WEIRD_ITERS = st.sampled_from([0, -1, 1.5, "3", None, True, -(2**63)])


def mostly(good, bad, ratio: int = 6):
    """``good`` most of the time, ``bad`` about once in ``ratio`` draws.

    The bad branch is the largest integer: Hypothesis favours small values (0) when it
    generates, which would make the bad branch far more common than one in ``ratio``.
    """
    return st.integers(0, ratio - 1).flatmap(lambda k: bad if k == ratio - 1 else good)


def dim(large: bool = True):
    """One axis length: usually small (0, 1, odd, even), sometimes large."""
    small = st.sampled_from([1, 1, 2, 3, 4, 5, 7, 8, 13, 16])
    return mostly(small, st.sampled_from((0,) + (LARGE_DIMS if large else ())), 16)


def positive_float(lo=0.1, hi=100.0):
    return mostly(st.floats(lo, hi), st.one_of(WEIRD_FLOATS, WRONG))


@st.composite
def arr(draw, shape, dtypes=FLOATS, torch=None, special=True, fill=None):
    """An :class:`Arr` of ``shape``; dtype from ``dtypes`` (sometimes any dtype)."""
    shape = tuple(int(s) for s in shape)
    dtype = draw(mostly(st.sampled_from(dtypes), st.sampled_from(ALL_DTYPES), 16))
    is_torch = draw(st.booleans()) if torch is None else torch
    if is_torch and dtype not in TORCH_DTYPES:
        dtype = "float32" if dtype in ("longdouble", "object") else "int64"
    if not is_torch and dtype == "bfloat16":
        dtype = "float32"
    if fill is None:
        fill = draw(st.sampled_from(["randn", "randn", "uniform", "int", "zeros", "ones", "const"]))
    scale = draw(st.sampled_from([1.0, 1.0, 3.0, 255.0, 1e-3, 1e4, 1e30, -2.0]))
    layout = draw(st.sampled_from(["C", "C", "F", "strided", "negative", "permuted", "broadcast"]))
    if math.prod(shape) > SMALL_SIZE:
        layout = "broadcast"
    specials = ()
    if special and draw(st.integers(0, 5)) == 5:
        specials = tuple(draw(st.lists(st.tuples(st.integers(0, 10**6),
                                                 st.sampled_from([NAN, INF, -INF, 1e38, -1e38])),
                                       min_size=1, max_size=2)))
    return Arr(shape, dtype, fill, scale, draw(st.integers(0, 2**16)), layout, specials, is_torch)


def maybe_wrong(strategy):
    return mostly(strategy, WRONG, 20)


def threads():
    return mostly(st.none(), st.sampled_from([1, 2, 3, 0, -1, 2.5, "2"]), 4)


# ------------------------------------------------------------------------ upsampling

@st.composite
def upsample_argmax(draw):
    shape = (draw(dim()), draw(dim()), draw(dim()), draw(dim()))
    if draw(st.integers(0, 9)) == 9:
        shape = shape[: draw(st.integers(0, 3))]
    logits = draw(maybe_wrong(arr(shape, FLOATS + ("bfloat16",))))
    kwargs = {"align_corners": draw(st.booleans()),
              "return_confidence": draw(st.booleans()), "num_threads": draw(threads())}
    which = draw(st.sampled_from(["size", "scale", "both", "none"]))
    if which in ("size", "both"):
        kwargs["size"] = draw(mostly(st.tuples(st.integers(1, 40), st.integers(1, 40)),
                                     st.one_of(st.integers(-2, 10**7), WRONG,
                                               st.tuples(WEIRD_INTS, WEIRD_INTS))))
    if which in ("scale", "both"):
        kwargs["scale_factor"] = draw(mostly(st.floats(0.25, 8.0),
                                             st.one_of(WEIRD_FLOATS, WRONG, st.just((2.0, NAN)))))
    return Call("upsample_argmax", (logits,), kwargs)


@st.composite
def upsample_cross_entropy(draw):
    B, C, h, w = draw(dim()), draw(dim()), draw(dim()), draw(dim())
    H, W = draw(dim()), draw(dim())
    logits = draw(maybe_wrong(arr((B, C, h, w), FLOATS, torch=draw(mostly(st.just(True), st.booleans())))))
    target = draw(maybe_wrong(arr((B, H, W), ("int64",), fill="int", special=False)))
    kwargs = {"ignore_index": draw(mostly(st.sampled_from([-100, 0, 255]), WEIRD_INTS)),
              "reduction": draw(mostly(st.sampled_from(["mean", "sum", "none"]), WRONG)),
              "label_smoothing": draw(mostly(st.floats(0, 1), WEIRD_FLOATS)),
              "align_corners": draw(st.booleans()), "num_threads": draw(threads()),
              "backward": draw(st.booleans())}
    if draw(st.booleans()):
        kwargs["weight"] = draw(maybe_wrong(arr((C,), FLOATS, fill="uniform")))
    return Call("upsample_cross_entropy", (logits, target), kwargs)


# ------------------------------------------------------------------------ dense CRF

def compat(C=None):
    """A label compatibility: a number, None, or a vector/matrix (usually of length ``C``)."""
    n = st.integers(0, 5) if not isinstance(C, int) else mostly(st.just(C), st.integers(0, 5))
    return mostly(st.one_of(st.floats(-5, 20), st.none(),
                            st.builds(lambda c: Arr((c,), "float32"), n),
                            st.builds(lambda c: Arr((c, c), "float64"), n)), WEIRD_FLOATS)


@st.composite
def dense_crf(draw):
    three_d = draw(st.integers(0, 4)) == 4
    B, C, K = draw(dim()), draw(mostly(st.integers(2, 6), dim())), draw(mostly(st.integers(1, 4), dim()))
    spatial = tuple(draw(dim()) for _ in range(3 if three_d else 2))
    logits = draw(maybe_wrong(arr((B, C) + spatial, FLOATS)))
    image = draw(maybe_wrong(arr((B, K) + spatial, ("uint8", "float32"), fill="uniform")))
    kwargs = {"probabilities": draw(st.booleans()),
              "iterations": draw(mostly(st.integers(0, 4), WEIRD_ITERS)),
              "gaussian_sxy": draw(positive_float()), "gaussian_compat": draw(compat(C)),
              "bilateral_sxy": draw(positive_float()), "bilateral_srgb": draw(positive_float()),
              "bilateral_compat": draw(compat(C)),
              "normalization": draw(mostly(st.sampled_from(["symmetric", "after", "before", "none"]),
                                           WRONG)),
              "num_threads": draw(threads())}
    if three_d or draw(st.integers(0, 5)) == 5:
        kwargs["spacing"] = draw(mostly(st.tuples(*[st.floats(0.5, 4)] * len(spatial)),
                                        st.one_of(WRONG, st.tuples(WEIRD_FLOATS, WEIRD_FLOATS,
                                                                   WEIRD_FLOATS))))
    return Call("dense_crf", (logits, image), kwargs)


@st.composite
def lattice_program(draw):
    B, d = draw(dim()), draw(mostly(st.integers(1, 6), st.sampled_from([0, 16, 17])))
    spatial = tuple(draw(dim()) for _ in range(draw(st.integers(1, 2))))
    features = draw(maybe_wrong(arr((B, d) + spatial, FLOATS + INTS)))
    ops = []
    for _ in range(draw(st.integers(1, 4))):
        C = draw(st.integers(1, 3))
        vshape = (B, C) + (spatial if draw(st.integers(0, 5)) else tuple(draw(dim()) for _ in spatial))
        values = draw(maybe_wrong(arr(vshape, FLOATS)))
        method = draw(st.sampled_from(["filter", "filter", "adjoint", "normalizer"]))
        if method == "filter":
            ops.append(("filter", (values,), {"reverse": draw(st.booleans())}))
        elif method == "adjoint":
            ops.append(("adjoint", (values,), {}))
        else:
            ops.append(("normalizer", (), {}))
    kwargs = {"num_threads": draw(threads()), "pydensecrf_padding": draw(st.booleans())}
    return Call("lattice_program", (features, tuple(ops)), kwargs)


@st.composite
def permutohedral_filter(draw):
    B, C, d = draw(dim()), draw(dim()), draw(mostly(st.integers(1, 6), st.sampled_from([0, 16, 17])))
    spatial = tuple(draw(dim()) for _ in range(draw(st.integers(1, 2))))
    values = draw(maybe_wrong(arr((B, C) + spatial, FLOATS + INTS)))
    features = draw(maybe_wrong(arr((B, d) + spatial, FLOATS)))
    norm = draw(mostly(st.sampled_from(["none", "symmetric", "after", "before"]), WRONG))
    return Call("permutohedral_filter", (values, features, norm), {"num_threads": draw(threads())})


@st.composite
def bilateral_filter(draw):
    shape = (draw(dim()), draw(mostly(st.integers(1, 4), st.sampled_from([0, 14, 15]))),
             draw(dim()), draw(dim()))
    image = draw(maybe_wrong(arr(shape, ("uint8", "float32", "float64"), fill="uniform")))
    return Call("bilateral_filter", (image, draw(positive_float()), draw(positive_float(1, 50))),
                {"num_threads": draw(threads())})


@st.composite
def densecrf_program(draw):
    w, h, n = draw(dim()), draw(dim()), draw(mostly(st.integers(2, 5), WEIRD_INTS))
    two_d = draw(st.booleans())
    nvar = w * h
    ctor, ctor_args = ("DenseCRF2D", (w, h, n)) if two_d else ("DenseCRF", (nvar, n))
    nl = n if isinstance(n, int) and 0 <= n < 64 else 3
    ops = []
    for _ in range(draw(st.integers(1, 5))):
        m = draw(st.sampled_from(["setUnaryEnergy", "addPairwiseGaussian", "addPairwiseBilateral",
                                  "addPairwiseEnergy", "inference", "startInference",
                                  "stepInference", "klDivergence"]))
        if m == "setUnaryEnergy":
            ops.append((m, (draw(maybe_wrong(arr((nl, nvar), ("float32",), torch=False))),), {}))
        elif m == "addPairwiseGaussian" and two_d:
            ops.append((m, (draw(positive_float()), draw(compat(nl))), {}))
        elif m == "addPairwiseBilateral" and two_d:
            img = draw(maybe_wrong(arr((h, w, 3), ("uint8",), torch=False, fill="int")))
            ops.append((m, (draw(positive_float()), draw(positive_float()), img, draw(compat(nl))), {}))
        elif m == "addPairwiseEnergy":
            d = draw(mostly(st.integers(1, 5), st.sampled_from([0, 17])))
            feats = draw(maybe_wrong(arr((d, nvar), ("float32",), torch=False)))
            ops.append((m, (feats, draw(compat(nl))),
                        {"normalization": draw(mostly(st.integers(0, 3), WEIRD_INTS))}))
        elif m in ("inference",):
            ops.append((m, (draw(mostly(st.integers(0, 3), WEIRD_ITERS)),), {}))
        elif m in ("stepInference", "klDivergence"):
            ops.append((m, ("$Q",), {}))
        else:
            ops.append(("startInference", (), {}))
    return Call("densecrf_program", (ctor, ctor_args, tuple(ops)))


@st.composite
def densecrf_utils(draw):
    fn = draw(st.sampled_from(["unary_from_labels", "unary_from_softmax", "create_pairwise_gaussian",
                               "create_pairwise_bilateral"]))
    h, w = draw(dim()), draw(dim())
    if fn == "unary_from_labels":
        args = (draw(maybe_wrong(arr((h, w), INTS, torch=False, fill="int", special=False))),
                draw(mostly(st.integers(2, 5), WEIRD_INTS)), draw(mostly(st.floats(0.05, 0.95), WEIRD_FLOATS)))
        kwargs = {"zero_unsure": draw(st.booleans())}
    elif fn == "unary_from_softmax":
        args = (draw(maybe_wrong(arr((draw(dim()), h, w), FLOATS, torch=False, fill="uniform"))),)
        kwargs = {"scale": draw(st.one_of(st.none(), st.floats(0.1, 1), WEIRD_FLOATS)),
                  "clip": draw(st.one_of(st.just(1e-5), WEIRD_FLOATS))}
    elif fn == "create_pairwise_gaussian":
        args = (draw(maybe_wrong(st.tuples(positive_float(), positive_float()))), (h, w))
        kwargs = {}
    else:
        img = draw(maybe_wrong(arr((h, w, 3), ("uint8", "float32"), torch=False, fill="int")))
        args = (draw(maybe_wrong(st.tuples(positive_float(), positive_float()))),
                draw(maybe_wrong(st.tuples(positive_float(), positive_float(), positive_float()))), img)
        kwargs = {"chdim": draw(mostly(st.just(-1), st.sampled_from([0, 1, 2, 3, -4])))}
    kwargs["fn"] = fn
    return Call("densecrf_utils", args, kwargs)


@st.composite
def nn_densecrf(draw):
    C = draw(mostly(st.integers(2, 4), WEIRD_INTS))
    nC = C if isinstance(C, int) and 0 <= C < 16 else 3
    shape = (draw(dim()), draw(mostly(st.just(nC), st.integers(0, 6))), draw(dim()), draw(dim()))
    ctor = {"num_classes": C, "iterations": draw(mostly(st.integers(0, 3), WEIRD_ITERS)),
            "gaussian_sxy": draw(positive_float()), "bilateral_sxy": draw(positive_float()),
            "bilateral_srgb": draw(positive_float()),
            "gaussian_compat": draw(mostly(st.floats(-3, 10), WEIRD_FLOATS)),
            "bilateral_compat": draw(mostly(st.floats(-3, 10), WEIRD_FLOATS)),
            "normalization": draw(mostly(st.sampled_from(["symmetric", "after", "none"]), WRONG)),
            "checkpoint": draw(st.booleans()), "num_threads": draw(threads())}
    logits = draw(maybe_wrong(arr(shape, ("float32", "float64"), torch=True)))
    image = draw(maybe_wrong(arr((shape[0], draw(st.integers(1, 3))) + shape[2:], ("uint8", "float32"),
                                 torch=True, fill="uniform")))
    return Call("nn_densecrf", (ctor, logits, image, draw(st.booleans())))


# ------------------------------------------------------------------------ graph cuts

@st.composite
def graphcut(draw):
    three_d = draw(st.integers(0, 3)) == 3
    spatial = tuple(draw(dim()) for _ in range(3 if three_d else 2))
    B = draw(dim())
    unary = draw(maybe_wrong(arr((B, draw(mostly(st.just(2), st.integers(0, 3)))) + spatial,
                                FLOATS, torch=draw(mostly(st.just(True), st.just(False))))))
    conn = draw(mostly(st.sampled_from([None, 6, 18, 26] if three_d else [None, 4, 8]),
                       st.sampled_from([0, 4, 5, 6, 8, 27, -1, 2.0])))
    K = {None: 3 if three_d else 2, 4: 2, 8: 4, 6: 3, 18: 9, 26: 13}.get(conn, 2)
    kwargs = {"pairwise": draw(st.one_of(positive_float(0, 5),
                                         arr((B, K) + spatial, FLOATS, torch=True, fill="uniform"))),
              "connectivity": conn, "blackbox_lambda": draw(positive_float(0.1, 50)),
              "num_threads": draw(threads()), "backward": draw(st.booleans())}
    if draw(st.booleans()):
        kwargs["image"] = draw(maybe_wrong(arr((B, draw(st.integers(1, 3))) + spatial,
                                               ("uint8", "float32"), torch=True)))
        kwargs["beta"] = draw(st.one_of(st.none(), positive_float(0, 1)))
    return Call("graphcut", (unary,), kwargs)


@st.composite
def multilabel(draw, name):
    three_d = draw(st.integers(0, 3)) == 3
    spatial = tuple(draw(dim()) for _ in range(3 if three_d else 2))
    C = draw(mostly(st.integers(1, 5), st.sampled_from([0, 40])))
    unary = draw(maybe_wrong(arr((C,) + spatial, FLOATS + INTS)))
    conn = draw(mostly(st.sampled_from([None, 6, 18, 26] if three_d else [None, 4, 8]),
                       st.sampled_from([0, 5, 27, -1])))
    K = {None: 3 if three_d else 2, 4: 2, 8: 4, 6: 3, 18: 9, 26: 13}.get(conn, 2)
    kwargs = {"pairwise": draw(st.one_of(positive_float(0, 5),
                                         arr((C, C), FLOATS, fill="uniform"))),
              "connectivity": conn,
              "max_cycles": draw(mostly(st.sampled_from([None, 1, 3]), WEIRD_INTS))}
    if draw(st.booleans()):
        kwargs["edge_weights"] = draw(maybe_wrong(arr((K,) + spatial, FLOATS, fill="uniform")))
    if draw(st.booleans()):
        kwargs["init"] = draw(maybe_wrong(arr(spatial, ("int64", "int32"), fill="int", special=False)))
    if draw(st.booleans()):
        kwargs["label_order"] = draw(maybe_wrong(st.lists(st.integers(-1, C), max_size=6).map(tuple)))
    return Call(name, (unary,), kwargs)


@st.composite
def fastmin(draw):
    spatial = tuple(draw(dim()) for _ in range(draw(st.integers(1, 3))))
    L = draw(mostly(st.integers(2, 5), st.sampled_from([0, 1])))
    unary = draw(maybe_wrong(arr(spatial + (L,), FLOATS + INTS, torch=False)))
    binary = draw(maybe_wrong(arr((L, L), FLOATS + INTS, torch=False, fill="uniform")))
    kwargs = {"method": draw(st.sampled_from(["aexpansion_grid", "abswap_grid"])),
              "max_cycles": draw(mostly(st.sampled_from([None, 1, 2]), WEIRD_INTS))}
    if draw(st.booleans()):
        kwargs["labels"] = draw(maybe_wrong(arr(spatial, INTS, torch=False, fill="int", special=False)))
    return Call("fastmin", (unary, binary), kwargs)


IDS = st.one_of(st.integers(-1, 12), st.just("$ids"))


@st.composite
def graph_op(draw):
    m = draw(st.sampled_from(["add_nodes", "add_grid_nodes", "add_edge", "add_edges", "add_tedge",
                              "add_tedges", "add_grid_edges", "add_grid_tedges", "maxflow", "maxflow",
                              "mark_node", "mark_grid_nodes", "get_segment", "get_grid_segments",
                              "reset", "copy", "get_node_count", "get_edge_count"]))
    cap = mostly(st.one_of(st.integers(0, 100), st.floats(0, 100)),
                 st.one_of(WEIRD_FLOATS, WEIRD_INTS, WRONG))
    n = draw(st.integers(1, 8))
    caps = mostly(arr((n,), FLOATS + INTS, torch=False, fill="uniform"),
                  st.one_of(cap, arr((n,), ALL_DTYPES, torch=False)))
    if m == "add_nodes":
        return (m, (draw(mostly(st.integers(0, 12), WEIRD_INTS)),), {})
    if m == "add_grid_nodes":
        shape = tuple(draw(mostly(st.integers(0, 5), st.sampled_from([-1, 10**6]))) for _ in
                      range(draw(st.integers(1, 3))))
        return (m, (shape,), {})
    if m in ("add_edge", "add_tedge"):
        first = draw(IDS.filter(lambda x: x != "$ids"))
        second = draw(IDS.filter(lambda x: x != "$ids")) if m == "add_edge" else draw(cap)
        return (m, (first, second, draw(cap), draw(cap)) if m == "add_edge"
                else (first, second, draw(cap)), {})
    ids = st.one_of(st.just("$ids"), arr((n,), INTS, torch=False, fill="int", special=False))
    if m == "add_edges":
        return (m, (draw(ids), draw(ids), draw(caps), draw(caps)), {})
    if m == "add_tedges":
        return (m, (draw(ids), draw(caps), draw(caps)), {})
    if m == "add_grid_edges":
        kw = {"weights": draw(st.one_of(cap, st.just(1.0))), "symmetric": draw(st.booleans()),
              "periodic": draw(st.booleans())}
        if draw(st.booleans()):
            kw["structure"] = draw(arr(draw(st.sampled_from([(3, 3), (3,), (3, 3, 3), (2, 2), (5, 5)])),
                                       ("float64", "int64"), torch=False, fill="int"))
        return (m, ("$ids",), kw)
    if m == "add_grid_tedges":
        return (m, ("$ids", draw(st.one_of(cap, st.just(1.0))), draw(st.one_of(cap, st.just(2.0)))), {})
    if m == "maxflow":
        return (m, (), {"reuse_trees": draw(st.booleans())})
    if m in ("mark_node", "get_segment"):
        return (m, (draw(IDS.filter(lambda x: x != "$ids")),), {})
    if m in ("mark_grid_nodes", "get_grid_segments"):
        return (m, (draw(ids),), {})
    return (m, (), {})


@st.composite
def maxflow_graph(draw):
    kind = draw(st.sampled_from(["float", "int", "float32", "int32"]))
    first = ("add_grid_nodes", ((draw(st.integers(1, 5)), draw(st.integers(1, 5))),), {}) \
        if draw(st.booleans()) else ("add_nodes", (draw(st.integers(1, 10)),), {})
    ops = [first] + draw(st.lists(graph_op(), min_size=1, max_size=12))
    return Call("maxflow_graph", (kind, tuple(ops)))


# ------------------------------------------------------------------------ watershed

@st.composite
def watershed(draw, batch=False):
    nd = draw(mostly(st.integers(2, 3), st.sampled_from([1, 4])))
    spatial = tuple(draw(dim()) for _ in range(nd))
    lead = (draw(dim()),) if batch else ()
    is_torch = draw(st.booleans())
    image = draw(maybe_wrong(arr(lead + spatial, ALL_DTYPES, torch=is_torch)))
    markers = draw(st.one_of(st.none(), st.integers(-1, 10), WEIRD_INTS,
                             arr(lead + spatial, INTS + ("bool",), torch=is_torch, fill="int", special=False),
                             arr(lead + spatial, FLOATS, torch=is_torch, fill="int")))
    kwargs = {"connectivity": draw(mostly(st.integers(1, nd), st.one_of(WEIRD_INTS, WRONG))),
              "compactness": draw(mostly(st.sampled_from([0.0, 0.01, 1.0]), WEIRD_FLOATS)),
              "watershed_line": draw(st.booleans())}
    if draw(st.integers(0, 3)) == 3:
        kwargs["mask"] = draw(arr(lead + spatial, ("bool",), torch=is_torch, special=False))
    if draw(st.integers(0, 5)) == 5:
        kwargs["offset"] = draw(maybe_wrong(st.tuples(*[st.integers(-1, 2)] * nd)))
    if batch:
        kwargs["num_threads"] = draw(threads())
    if draw(st.integers(0, 2)) == 2:  # the fast and parallel tie orders (and their threads)
        kwargs["tie_order"] = draw(mostly(st.sampled_from(["fast", "parallel"]), WRONG))
        kwargs["num_threads"] = draw(threads())
    return Call("watershed_batch" if batch else "watershed", (image, markers), kwargs)


# ------------------------------------------------------------------------ metrics

@st.composite
def metrics(draw):
    shape = tuple(draw(dim()) for _ in range(draw(st.integers(1, 3))))
    n = draw(mostly(st.integers(1, 5), WEIRD_INTS))
    is_torch = draw(st.booleans())
    pred = draw(maybe_wrong(arr(shape, INTS, torch=is_torch, fill="int", special=False)))
    target = draw(maybe_wrong(arr(shape if draw(st.integers(0, 5)) else (draw(dim()),), INTS,
                                  torch=is_torch, fill="int", special=False)))
    fn = draw(st.sampled_from(["confusion_matrix", "iou", "mean_iou", "pixel_accuracy"]))
    return Call("metrics", (pred, target, n),
                {"ignore_index": draw(st.one_of(st.none(), st.integers(-1, 5), WEIRD_INTS)), "fn": fn})


@st.composite
def confusion_program(draw):
    n = draw(mostly(st.integers(1, 5), WEIRD_INTS))
    ops = []
    for _ in range(draw(st.integers(1, 5))):
        m = draw(st.sampled_from(["update", "update", "compute", "iou", "mean_iou", "pixel_accuracy",
                                  "reset"]))
        if m == "update":
            shape = tuple(draw(dim()) for _ in range(draw(st.integers(1, 2))))
            is_torch = draw(st.booleans())
            ops.append((m, (draw(maybe_wrong(arr(shape, INTS, torch=is_torch, fill="int", special=False))),
                            draw(maybe_wrong(arr(shape, INTS, torch=is_torch, fill="int", special=False)))),
                        {}))
        else:
            ops.append((m, (), {}))
    return Call("confusion_program", ((n, draw(st.one_of(st.none(), st.integers(-1, 5)))), tuple(ops)))


STRATEGIES = {
    "upsample_argmax": upsample_argmax(),
    "upsample_cross_entropy": upsample_cross_entropy(),
    "dense_crf": dense_crf(),
    "lattice_program": lattice_program(),
    "permutohedral_filter": permutohedral_filter(),
    "bilateral_filter": bilateral_filter(),
    "densecrf_program": densecrf_program(),
    "densecrf_utils": densecrf_utils(),
    "nn_densecrf": nn_densecrf(),
    "graphcut": graphcut(),
    "alpha_expansion": multilabel("alpha_expansion"),
    "alpha_beta_swap": multilabel("alpha_beta_swap"),
    "maxflow_graph": maxflow_graph(),
    "fastmin": fastmin(),
    "watershed": watershed(),
    "watershed_batch": watershed(batch=True),
    "metrics": metrics(),
    "confusion_program": confusion_program(),
}
