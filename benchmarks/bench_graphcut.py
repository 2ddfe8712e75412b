"""Graph cuts: segengine vs PyMaxflow on the same problems.

Cases (quick mode: smaller):
  * 2D 4-connected contrast-sensitive segmentation of ``skimage.data.coffee()`` (400x600) and
    of the image tiled to 1200x1200;
  * a 3D 6-connected 128^3 volume (noisy blob);
  * end to end only (PyMaxflow's Graph API against segengine's implicit grid, one thread and
    all): the coffee image 8-connected (contrast weights on all four forward offsets), the
    noisy volume 26-connected, and a noisier volume 6-connected (the hard case of issue 13,
    where most of the flow crosses the parallel slabs' borders);
  * alpha-expansion on a stereo problem (``skimage.data.stereo_motorcycle``, Potts);
  * issue 10's float-cost stereo case (the motorcycle pair at 1/2 and full size, 32
    disparities, costs truncated at 0.1, Potts 0.02, 3 cycles) through the PyMaxflow
    drop-in ``fastmin.aexpansion_grid`` against PyMaxflow's, with one thread and with all.
For the binary cases: graph construction and solve through the PyMaxflow-style Graph API
(timed separately and together), and segengine's implicit-grid path
(``segengine.maxflow.grid_maxflow``: construction + solve + segments in one call).
``check`` compares flows (and segmentations) with PyMaxflow's.
"""

from __future__ import annotations

import gc
import statistics
import time

import numpy as np

from benchmarks.common import measure, peak_extra_memory_mb

OP = "graphcut"


def _image_problem(img, lam=2.0):
    """Unaries and contrast-sensitive weights of a grey image [H, W] in [0, 1]."""
    fg, bg = np.percentile(img, 75), np.percentile(img, 25)
    src = (img - fg) ** 2 * 10.0          # cost of label 1 (sink side)
    snk = (img - bg) ** 2 * 10.0          # cost of label 0
    dr = np.zeros_like(img)
    dd = np.zeros_like(img)
    dr[:, :-1] = (img[:, 1:] - img[:, :-1]) ** 2
    dd[:-1, :] = (img[1:, :] - img[:-1, :]) ** 2
    beta = 1.0 / (2 * np.concatenate([dr[:, :-1].ravel(), dd[:-1, :].ravel()]).mean())
    w = lam * np.exp(-beta * np.stack([dr, dd]))
    return src, snk, w


def _volume_problem(n, seed=0, noise=0.6):
    rng = np.random.default_rng(seed)
    z, y, x = np.meshgrid(*[np.linspace(-1, 1, n)] * 3, indexing="ij")
    blob = (np.sqrt(x ** 2 + 1.3 * y ** 2 + 0.8 * z ** 2) < 0.6 + 0.1 * np.sin(5 * x)).astype(float)
    vol = blob + rng.normal(0, noise, blob.shape)
    return (vol - 1) ** 2, vol ** 2, 0.6


def _grid_build(module, src, snk, w):
    """The same grid graph through a PyMaxflow-style API (``maxflow`` or ``segengine.maxflow``)."""
    g = module.Graph[float]()
    ids = g.add_grid_nodes(src.shape)
    if np.ndim(w) == 0:
        g.add_grid_edges(ids, float(w), symmetric=True)
    else:
        right = np.zeros((3, 3)); right[1, 2] = 1
        down = np.zeros((3, 3)); down[2, 1] = 1
        g.add_grid_edges(ids, w[0], structure=right, symmetric=True)
        g.add_grid_edges(ids, w[1], structure=down, symmetric=True)
    g.add_grid_tedges(ids, src, snk)
    return g, ids


def _solve_only(build, repeat):
    """Median solve time and peak memory of maxflow() on freshly built graphs."""
    times, mem, flow = [], 0.0, None
    for _ in range(repeat):
        g, ids = build()
        gc.collect()
        t0 = time.perf_counter()
        flow = g.maxflow()
        times.append(time.perf_counter() - t0)
        del g, ids
    g, ids = build()
    mem = peak_extra_memory_mb(g.maxflow)
    del g, ids
    return statistics.median(times), mem, flow


def _row(case, impl, t, mem, check="", notes=""):
    return {"op": OP, "case": case, "impl": impl, "median_s": t, "peak_mb": mem,
            "check": check, "notes": notes}


def _binary_cases(rows, name, src, snk, w, repeat):
    import maxflow as pmf
    import torch
    import segengine.maxflow as smf

    nvox = src.size
    # reference result
    g, ids = _grid_build(pmf, src, snk, w)
    pm_flow = g.maxflow()
    pm_seg = g.get_grid_segments(ids)
    del g, ids
    gw = w if np.ndim(w) == 0 else np.ascontiguousarray(w)
    if np.ndim(w) and src.ndim == 2:
        gw = w  # [2, H, W]: right, down = forward offsets (0, 1), (1, 0)
    se_flow, se_seg = smf.grid_maxflow(src, snk, gw)
    rel = abs(se_flow - pm_flow) / max(abs(pm_flow), 1e-300)
    same = "same flow" if rel < 1e-9 else f"flow rel diff {rel:.1e}"
    same_seg = "same segments" if np.array_equal(se_seg, pm_seg) else \
        f"{int((se_seg != pm_seg).sum())} segments differ"

    # construction only
    rows.append(measure(OP, f"{name}: build (Graph API)", "segengine",
                        lambda: _grid_build(smf, src, snk, w), repeat=repeat))
    rows.append(measure(OP, f"{name}: build (Graph API)", "PyMaxflow",
                        lambda: _grid_build(pmf, src, snk, w), repeat=repeat))
    # solve only
    t, m, f = _solve_only(lambda: _grid_build(smf, src, snk, w), repeat)
    rows.append(_row(f"{name}: solve (Graph API)", "segengine", t, m,
                     "same flow" if abs(f - pm_flow) <= 1e-9 * abs(pm_flow) else "flow differs"))
    t, m, _ = _solve_only(lambda: _grid_build(pmf, src, snk, w), repeat)
    rows.append(_row(f"{name}: solve (Graph API)", "PyMaxflow", t, m))

    # build + solve + segments through the Graph API
    def se_graph():
        g, ids = _grid_build(smf, src, snk, w)
        g.maxflow()
        return g.get_grid_segments(ids)

    def pm_graph():
        g, ids = _grid_build(pmf, src, snk, w)
        g.maxflow()
        return g.get_grid_segments(ids)

    r_se = measure(OP, f"{name}: end to end (Graph API)", "segengine", se_graph, repeat=repeat,
                   check=same)
    r_pm = measure(OP, f"{name}: end to end (Graph API)", "PyMaxflow", pm_graph, repeat=repeat)
    rows += [r_se, r_pm]
    # implicit grid: one call
    r = measure(OP, f"{name}: end to end (implicit grid)", "segengine",
                lambda: smf.grid_maxflow(src, snk, gw), repeat=repeat, check=f"{same}, {same_seg}")
    r["notes"] = (f"{r['peak_mb'] * 2**20 / nvox:.0f} B/voxel peak vs PyMaxflow "
                  f"{r_pm['peak_mb'] * 2**20 / nvox:.0f} B/voxel; {torch.get_num_threads()} threads")
    rows.append(r)
    rows.append(dict(r_pm, case=f"{name}: end to end (implicit grid)"))
    r = measure(OP, f"{name}: end to end (implicit grid, 1 thread)", "segengine",
                lambda: smf.grid_maxflow(src, snk, gw, num_threads=1), repeat=repeat, check=same)
    rows.append(r)
    rows.append(dict(r_pm, case=f"{name}: end to end (implicit grid, 1 thread)"))
    # the same in float32 (what segengine.graphcut runs for float32 tensors)
    s32, t32 = src.astype(np.float32), snk.astype(np.float32)
    w32 = np.float32(gw) if np.ndim(gw) == 0 else gw.astype(np.float32)
    f32, seg32 = smf.grid_maxflow(s32, t32, w32)
    rel32 = abs(f32 - pm_flow) / max(abs(pm_flow), 1e-300)
    r = measure(OP, f"{name}: end to end (implicit grid, float32)", "segengine",
                lambda: smf.grid_maxflow(s32, t32, w32), repeat=repeat,
                check=f"flow rel diff {rel32:.1e}, {int((seg32 != pm_seg).sum())} segments differ")
    r["notes"] = f"{r['peak_mb'] * 2**20 / nvox:.0f} B/voxel peak; PyMaxflow has no float32 graph"
    rows.append(r)
    rows.append(dict(r_pm, case=f"{name}: end to end (implicit grid, float32)"))


def _contrast_weights(img, offsets, lam=2.0):
    """Contrast-sensitive weights ``[K, H, W]`` of a grey image for the forward offsets
    (``lam / |o| * exp(-beta * dI^2)``, 0 where p + o leaves the image)."""
    H, W = img.shape
    diffs = []
    for dy, dx in offsets:
        d = np.zeros_like(img)
        ys, xs = slice(0, H - dy), slice(max(0, -dx), W - max(0, dx))
        yt, xt = slice(dy, H), slice(max(0, dx), W - max(0, -dx))
        d[ys, xs] = (img[yt, xt] - img[ys, xs]) ** 2
        diffs.append((d, (ys, xs)))
    beta = 1.0 / (2 * np.concatenate([d[sl].ravel() for d, sl in diffs]).mean())
    w = np.zeros((len(offsets), H, W))
    for k, ((d, sl), o) in enumerate(zip(diffs, offsets)):
        w[k][sl] = lam / np.hypot(*o) * np.exp(-beta * d[sl])
    return w


def _pm_grid_e2e(src, snk, w, offsets):
    """PyMaxflow end to end: add_grid_edges per forward offset, maxflow, segments."""
    import maxflow as pmf

    g = pmf.Graph[float]()
    ids = g.add_grid_nodes(src.shape)
    for k, o in enumerate(offsets):
        st = np.zeros((3,) * src.ndim)
        st[tuple(1 + np.asarray(o))] = 1
        g.add_grid_edges(ids, w if np.ndim(w) == 0 else w[k], structure=st, symmetric=True)
    g.add_grid_tedges(ids, src, snk)
    flow = g.maxflow()
    return flow, g.get_grid_segments(ids)


def _end_to_end_case(rows, name, src, snk, w, connectivity, repeat):
    """End-to-end rows only: PyMaxflow's Graph API vs segengine's implicit grid (1 and all threads)."""
    import torch

    import segengine.maxflow as smf
    from segengine.ops._grid import forward_offsets

    offsets = [tuple(int(v) for v in o) for o in forward_offsets(src.ndim, connectivity)]
    nvox = src.size
    pm_flow, pm_seg = _pm_grid_e2e(src, snk, w, offsets)
    r_pm = measure(OP, name, "PyMaxflow", lambda: _pm_grid_e2e(src, snk, w, offsets), repeat=repeat,
                   warmup=0)
    threads = torch.get_num_threads()
    for nt in sorted({1, threads}):
        flow, seg = smf.grid_maxflow(src, snk, w, connectivity=connectivity, num_threads=nt)
        rel = abs(flow - pm_flow) / max(abs(pm_flow), 1e-300)
        check = ("same flow" if rel < 1e-9 else f"flow rel diff {rel:.1e}") + (
            ", same segments" if np.array_equal(seg, pm_seg) else f", {int((seg != pm_seg).sum())} segments differ")
        case = f"{name}, {nt} thread{'s' if nt > 1 else ''}"
        r = measure(OP, case, "segengine",
                    lambda: smf.grid_maxflow(src, snk, w, connectivity=connectivity, num_threads=nt),
                    repeat=repeat, check=check)
        r["notes"] = (f"{r['peak_mb'] * 2**20 / nvox:.0f} B/voxel peak vs PyMaxflow "
                      f"{r_pm['peak_mb'] * 2**20 / nvox:.0f} B/voxel")
        rows += [r, dict(r_pm, case=case)]


def _stereo(quick):
    from benchmarks.problems import stereo_motorcycle_costs
    s = 0.125 if quick else 0.25
    D, _ = stereo_motorcycle_costs(s, disparities=int(round(260 * s / 4)), truncation=0.08)
    return np.ascontiguousarray(np.moveaxis(D, -1, 0)) * 100


def _multilabel_case(rows, quick, repeat):
    import maxflow as pmf
    import segengine

    cost = _stereo(quick)
    D, H, W = cost.shape
    V = 3.0 * (1 - np.eye(D))
    un_pm = np.ascontiguousarray(np.moveaxis(cost, 0, -1))
    init = cost.argmin(0)
    lab_se, e_se = segengine.alpha_expansion(cost, V, init=init)
    lab_pm = pmf.fastmin.aexpansion_grid(un_pm, V, labels=init.astype(np.int8))
    e_pm = float(pmf.fastmin.energy_of_grid_labeling(un_pm, V, lab_pm))
    check = f"energy {e_se:.1f} vs PyMaxflow {e_pm:.1f}"
    name = f"alpha-expansion stereo {H}x{W}, {D} labels, Potts"
    rows.append(measure(OP, name, "segengine",
                        lambda: segengine.alpha_expansion(cost, V, init=init), repeat=repeat, check=check))
    rows.append(measure(OP, name, "PyMaxflow",
                        lambda: pmf.fastmin.aexpansion_grid(un_pm, V, labels=init.astype(np.int8)),
                        repeat=repeat))


def _float_stereo_case(rows, scale, repeat):
    import maxflow as pmf
    import torch

    import segengine.maxflow as smf
    from benchmarks.problems import stereo_motorcycle_costs

    D, V = stereo_motorcycle_costs(scale)
    H, W, L = D.shape
    name = f"alpha-expansion float stereo {H}x{W}, {L} labels, 3 cycles (fastmin)"
    lab_pm = pmf.fastmin.aexpansion_grid(D, V, max_cycles=3)
    e_pm = float(pmf.fastmin.energy_of_grid_labeling(D, V, lab_pm))
    all_threads = torch.get_num_threads()
    for nt in sorted({1, all_threads}):
        lab = smf.fastmin.aexpansion_grid(D, V, max_cycles=3, num_threads=nt)
        e = float(pmf.fastmin.energy_of_grid_labeling(D, V, lab))
        case = f"{name}, {nt} thread{'s' if nt > 1 else ''}"
        rows.append(measure(OP, case, "segengine",
                            lambda: smf.fastmin.aexpansion_grid(D, V, max_cycles=3, num_threads=nt),
                            repeat=repeat, check=f"energy {e:.4f} vs PyMaxflow {e_pm:.4f} "
                                                  f"({e / e_pm:.6f}x)"))
        rows.append(measure(OP, case, "PyMaxflow",
                            lambda: pmf.fastmin.aexpansion_grid(D, V, max_cycles=3), repeat=repeat))


def run(quick: bool) -> list[dict]:
    from skimage import data
    from skimage.color import rgb2gray

    rows: list[dict] = []
    repeat = 3 if quick else 5
    img = rgb2gray(data.coffee())                       # 400 x 600
    if quick:
        img = img[::2, ::2]
    src, snk, w = _image_problem(img)
    _binary_cases(rows, f"2D 4-conn coffee {img.shape[0]}x{img.shape[1]}", src, snk, w, repeat)
    big = np.tile(img, (3, 2))[:1200, :1200] if not quick else np.tile(img, (2, 2))
    src, snk, w = _image_problem(big)
    _binary_cases(rows, f"2D 4-conn coffee tiled {big.shape[0]}x{big.shape[1]}", src, snk, w,
                  max(2, repeat - 2))
    n = 48 if quick else 128
    src, snk, w = _volume_problem(n)
    _binary_cases(rows, f"3D 6-conn volume {n}^3", src, snk, w, 2 if not quick else repeat)
    from segengine.ops._grid import forward_offsets
    w8 = _contrast_weights(img, [tuple(o) for o in forward_offsets(2, 8)])
    src, snk, _ = _image_problem(img)
    _end_to_end_case(rows, f"2D 8-conn coffee {img.shape[0]}x{img.shape[1]}: end to end", src, snk, w8, 8,
                     repeat)
    src, snk, _ = _volume_problem(n)
    _end_to_end_case(rows, f"3D 26-conn volume {n}^3: end to end", src, snk, 0.25, 26, 3 if not quick else 2)
    src, snk, _ = _volume_problem(n, noise=1.0)
    _end_to_end_case(rows, f"3D 6-conn noisier volume {n}^3 (noise sd 1.0): end to end", src, snk, 0.6, 6,
                     3 if not quick else 2)
    _multilabel_case(rows, quick, 2 if not quick else repeat)
    _float_stereo_case(rows, 0.5, repeat)
    if not quick:
        _float_stereo_case(rows, 1.0, 3)
    return rows
