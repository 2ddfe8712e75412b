"""segengine.dask (issue 11): out-of-core watershed, anchors, worker scaling, dataset-scale CRF.

Cases, each on a fresh process-based LocalCluster on 127.0.0.1 with 1 thread per worker:

* **Out of core.** A synthetic membrane volume (``benchmarks/dask_volume.py``: Voronoi
  cells of ~40 voxels with Gaussian walls and blurred noise, one seed per cell) is written
  block by block to zarr, then ``segengine.dask.watershed`` (default depth,
  ``spill=<folder>``: the passes exchange results through per-block files) runs zarr ->
  zarr (``segengine.dask.save_array``) on 2 workers whose memory limits add up to less than
  the volume. Reported: wall time (building the graph, which reads the markers once,
  included), each worker's peak resident memory and CPU seconds (sampled every 50 ms from
  this process with psutil: no task is sent to the workers for it), restarts, and the
  largest size on disk of the spill folders (dask's and the watershed's) during the run.
* **Scaling.** With ``scaling="volume"`` the same run on 1 worker (same per-worker limit):
  its ratio column is 1-worker / 2-worker time (issue target >= 1.7 on 2 cores), and the
  two outputs are compared voxel by voxel. ``scaling="crop"`` does it on the crop instead.
* **Anchors.** On a crop that fits in memory: whole-array ``segengine.watershed`` and
  scikit-image (time, peak memory above the baseline), ``segengine.dask.watershed`` at its
  default depth and the single-pass blockwise scikit-image watershed with the same halo
  (elf's approach, ``benchmarks/dask_baselines.py``) on 2 workers, each with its voxel
  agreement with the whole-array result.
* **Dataset scale.** ``segengine.dask.dense_crf`` over N images (batch chunks, images and
  logits made inside the tasks, ``benchmarks/dask_crf_data.py``) on 2 workers x 1 thread
  vs a loop of ``segengine.dense_crf`` in this process (torch's default threads); both
  include making the inputs and the argmax. The loop's two OpenMP threads lose the most
  when another program holds a core (measured on this machine with one core busy: 0.34 s
  per image with 2 threads, 0.26 s with 1): read this ratio with the load averages noted.

Timings are single runs (minutes each), not medians. Rows of a cluster run report in
``peak_mb`` the largest worker's peak RSS (absolute, imports included), the notes every
worker's. ``--quick`` uses a 64x256x256 volume (which does not exceed the limits: only the
full run tests out-of-core) and 16 small images.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time

import numpy as np

from benchmarks.common import peak_extra_memory_mb

OP = "dask watershed"
OP_CRF = "dask dense_crf"

# memory_fractions: dask's worker thresholds for the out-of-core run. Spilling stored results
# from 50 % of the limit (dask: 70 %) leaves room for a task (~300 MiB at 64x128x128 chunks)
# and a transfer on top of the worker's ~300 MiB of imports; with dask's defaults a worker at
# 768 MiB was restarted once during a full run. scaling: "volume" runs the out-of-core case on
# 1 worker too; "crop" times the crop's blockwise watershed on 1 worker instead (the 1-worker
# out-of-core run took over half an hour on a shared machine).
FULL = dict(shape=(512, 1024, 1024), chunks=(64, 128, 128), spacing=40.0, memory_limit=896 * 2**20,
            memory_fractions={"target": 0.4, "spill": 0.5}, scaling="crop", crop=(256, 512, 512),
            crop_memory_limit=2 * 2**30,
            crf_images=256, crf_size=(375, 500), crf_classes=21, crf_per_chunk=4, crf_iterations=5)
QUICK = dict(shape=(64, 256, 256), chunks=(32, 128, 128), spacing=32.0, memory_limit=768 * 2**20,
             memory_fractions={"target": 0.4, "spill": 0.5}, scaling="volume", crop=(64, 256, 256),
             crop_memory_limit=2 * 2**30,
             crf_images=16, crf_size=(120, 160), crf_classes=21, crf_per_chunk=2, crf_iterations=5)
CRF_PARAMS = dict(gaussian_sxy=3, gaussian_compat=3, bilateral_sxy=80, bilateral_srgb=13,
                  bilateral_compat=10)


def _row(op, case, impl, seconds, peak_mb, check="", notes=""):
    """One result row; also printed at once, so a long run's finished rows survive it."""
    row = {"op": op, "case": case, "impl": impl, "median_s": seconds, "peak_mb": peak_mb,
           "check": check, "notes": notes}
    print(f"bench_dask row: {json.dumps(row)}", file=sys.stderr, flush=True)
    return row


def _shape(s) -> str:
    return "x".join(map(str, s))


def _mib(n) -> str:
    return f"{n / 2**20:.0f} MiB"


def _load() -> str:
    return "load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


def _once(fn):
    """(seconds, peak extra MiB of this process, result) of one call of ``fn``."""
    box = {}

    def call():
        t0 = time.perf_counter()
        box["out"] = fn()
        box["t"] = time.perf_counter() - t0

    mb = peak_extra_memory_mb(call, interval=0.005)
    return box["t"], mb, box["out"]


def _warm(client):
    """Import segengine in every worker and run a tiny watershed, so no run pays for it."""
    def warm():
        import segengine
        import segengine.dask  # noqa: F401
        segengine.watershed(np.random.default_rng(0).random((8, 8, 8)), np.eye(8, dtype=np.int32)[None].repeat(8, 0))
        return True
    client.run(warm)


def _agreement(expected, got) -> str:
    same = float(np.mean(expected == got))
    text = f"{100 * same:.4f} % voxels identical to whole-array"
    zeros = int(np.count_nonzero(got == 0)) - int(np.count_nonzero(expected == 0))
    if zeros > 0:
        text += f", {zeros} voxels left unlabelled"
    return text


# ----------------------------------------------------------------------------- cluster runs

def _cluster_run(n_workers, limit, build, out=None, preload=(), spill_dir=None, memory_fractions=None,
                 extra_dirs=()):
    """Build a lazy array with ``build()`` and compute it on a fresh cluster of ``n_workers``.

    With ``out`` the result is written there (``save_array``, zarr) and None is returned,
    else it is gathered to this process. Returns (seconds, WorkerMemory, result, error):
    a failure (a worker killed over its limit, ...) is reported in ``error``, not raised.
    ``spill_dir``: the workers' local directory (spilled data), measured while it runs, with
    ``extra_dirs`` (e.g. the watershed's ``spill=`` folder).
    """
    from benchmarks.dask_cluster import WorkerMemory, worker_cluster
    from segengine.dask import save_array

    with worker_cluster(n_workers, memory_limit=limit, local_directory=spill_dir,
                        memory_fractions=memory_fractions) as (cluster, client):
        _warm(client)
        for module in preload:
            client.run(__import__, module)
        result = error = None
        dirs = [d for d in (spill_dir, *extra_dirs) if d]
        with WorkerMemory(cluster, spill_dir=dirs or None) as mem:
            t0 = time.perf_counter()
            try:
                lazy = build()  # timed: the watershed reads the markers once to plan its passes
                if out is None:
                    result = client.compute(lazy, sync=True)
                else:
                    save_array(lazy, out, scheduler=client)
            except Exception as exc:
                error = f"{type(exc).__name__}: {str(exc)[:200]}"
            seconds = time.perf_counter() - t0
    return seconds, mem, result, error


def _peak_mb(mem) -> float:
    return max(mem.peak.values(), default=0) / 2**20


# ----------------------------------------------------------------------------- out of core

def _same_zarr(a, b) -> int:
    """Number of differing voxels of two zarr stores (compared blockwise, 2 threads)."""
    import dask.array as da
    return int((da.from_zarr(a) != da.from_zarr(b)).sum().compute(scheduler="threads", num_workers=2))


def _out_of_core(cfg, tmp, ipath, mpath, n_seeds, gen_s):
    """The volume zarr -> zarr on 2 workers (and on 1 with ``scaling == "volume"``)."""
    import segengine.dask as sdask

    shape, limit = cfg["shape"], cfg["memory_limit"]
    vol_bytes = int(np.prod(shape)) * 4
    fractions = ", ".join(f"{k} {v}" for k, v in cfg["memory_fractions"].items())
    case = (f"out of core: {_shape(shape)} float32 zarr ({vol_bytes / 2**30:.2f} GiB), {n_seeds} seeds, "
            f"chunks {_shape(cfg['chunks'])}, default depth, zarr -> int32 zarr, workers x 1 thread, "
            f"memory_limit {_mib(limit)} each ({fractions})")
    rows, outs = [], {}
    for n in ((2, 1) if cfg["scaling"] == "volume" else (2,)):
        out = os.path.join(tmp, f"labels_{n}w.zarr")
        spill = os.path.join(tmp, f"spill_{n}w")
        os.makedirs(spill, exist_ok=True)
        load = _load()
        seconds, mem, _, error = _cluster_run(
            n, limit, lambda: sdask.watershed(sdask.open_array(ipath), sdask.open_array(mpath), spill=spill),
            out=out, spill_dir=os.path.join(tmp, f"workers_{n}w"), extra_dirs=(spill,),
            memory_fractions=cfg["memory_fractions"])
        outs[n] = None if error else out
        if error:
            check = f"FAILED ({error})"
        else:
            check = "completed, " + ("a worker exceeded its limit or restarted" if mem.over_limit(limit)
                                     else "no worker over its limit, no restart")
            if n == 1 and outs.get(2):
                diff = _same_zarr(outs[2], out)
                check += ", labels identical to the 2-worker run" if diff == 0 else \
                    f", {diff} voxels differ from the 2-worker run"
        total = n * limit
        fits = "total limit {} {} volume {}".format(_mib(total), "<" if total < vol_bytes else ">=",
                                                   _mib(vol_bytes))
        notes = f"{n} worker(s): {mem.summary(limit)}; {fits}; {load} before, {_load()} after"
        if n == 2:
            notes += f"; volume written to zarr in {gen_s:.0f} s (not timed)"
        rows.append(_row(OP, case, "segengine" if n == 2 else "segengine, 1 worker", seconds,
                         _peak_mb(mem), check, notes))
    return rows


# ----------------------------------------------------------------------------- anchors

def _anchors(cfg, ipath, mpath):
    """Whole-array and blockwise watersheds of a crop that fits in memory."""
    import segengine
    import segengine.dask as sdask
    from segengine.dask._watershed import DEFAULT_DEPTH
    from skimage.segmentation import watershed as sk_watershed

    from benchmarks.dask_baselines import blockwise_skimage_watershed

    crop = tuple(slice(0, n) for n in cfg["crop"])
    image, markers = sdask.open_array(ipath)[crop], sdask.open_array(mpath)[crop]
    img, mk = image.compute(scheduler="threads"), markers.compute(scheduler="threads")
    n_seeds = int(np.count_nonzero(mk))
    depth = tuple(min(DEFAULT_DEPTH, min(c)) for c in image.chunks)
    limit = cfg["crop_memory_limit"]
    case = (f"crop {_shape(cfg['crop'])} float32 (fits in memory), {n_seeds} seeds, chunks "
            f"{_shape(cfg['chunks'])}, depth {depth[0]} (default); blockwise rows on workers x 1 thread "
            f"(memory_limit {_mib(limit)} each)")
    rows = []
    t, mb, ref = _once(lambda: segengine.watershed(img, mk))
    rows.append(_row(OP, case, "segengine.watershed (whole array)", t, mb, "reference",
                     f"one process; {_load()}"))
    t, mb, sk = _once(lambda: sk_watershed(img, mk))
    same = "identical" if np.array_equal(sk, ref) else f"DIFFERENT ({int(np.count_nonzero(sk != ref))} voxels)"
    rows.append(_row(OP, case, "scikit-image (whole array)", t, mb, f"{same} to segengine.watershed",
                     "one process"))
    del sk, img, mk
    runs = [("segengine", 2, lambda: sdask.watershed(image, markers), ()),
            ("scikit-image blockwise, single pass (elf's approach)", 2,
             lambda: blockwise_skimage_watershed(image, markers.astype(np.int32), depth),
             ("skimage.segmentation",))]
    if cfg["scaling"] == "crop":
        runs.append(("segengine, 1 worker", 1, lambda: sdask.watershed(image, markers), ()))
    results = {}
    for impl, n, build, preload in runs:
        load = _load()
        t, mem, got, error = _cluster_run(n, limit, build, preload=preload)
        results[impl] = got
        check = f"FAILED ({error})" if error else _agreement(ref, got)
        if n == 1 and results.get("segengine") is not None and got is not None:
            check += ("; identical to the 2-worker result" if np.array_equal(got, results["segengine"])
                      else "; DIFFERENT from the 2-worker result")
        rows.append(_row(OP, case, impl, t, _peak_mb(mem), check,
                         f"{n} worker(s): {mem.summary(limit)}; result gathered to this process; "
                         f"{load} before"))
    return rows


# ----------------------------------------------------------------------------- dense CRF

def _crf(cfg):
    import segengine
    import segengine.dask as sdask
    import torch

    from benchmarks.dask_crf_data import dask_dataset, item_image, item_logits

    n, (H, W), C = cfg["crf_images"], cfg["crf_size"], cfg["crf_classes"]
    it, per = cfg["crf_iterations"], cfg["crf_per_chunk"]
    case = (f"{n} images {H}x{W}, {C} classes, {it} it; dask: batch chunks of {per}, "
            f"2 workers x 1 thread")
    kw = dict(iterations=it, **CRF_PARAMS)

    def loop():
        out = np.empty((n, H, W), np.uint8)
        for b in range(n):
            q = segengine.dense_crf(item_logits(b, H, W, C)[None], item_image(b, H, W)[None], **kw)
            out[b] = q[0].argmax(0)
        return out

    load = _load()
    t_loop, mb_loop, ref = _once(loop)
    limit = 4 * 2**30

    def build():
        images, logits = dask_dataset(n, H, W, C, per)
        return sdask.dense_crf(logits, images, num_threads=1, **kw).argmax(axis=1).astype(np.uint8)

    t, mem, got, error = _cluster_run(2, limit, build)
    if error:
        check = f"FAILED ({error})"
    elif np.array_equal(got, ref):
        check = "labels identical to the loop"
    else:
        check = f"{100 * np.mean(got == ref):.4f} % labels identical to the loop"
    return [
        _row(OP_CRF, case, "segengine", t, _peak_mb(mem), check,
             f"{n / t:.2f} images/s on 2 workers x 1 thread (num_threads=1); {mem.summary(limit)}; "
             f"inputs made inside the tasks"),
        _row(OP_CRF, case, "segengine.dense_crf loop (one process)", t_loop, mb_loop, "reference",
             f"{n / t_loop:.2f} images/s, one image at a time, {torch.get_num_threads()} torch threads, "
             f"inputs made in the loop; {load} before the loop"),
    ]


# ----------------------------------------------------------------------------- entry point

def run(quick: bool = False) -> list[dict]:
    from benchmarks.dask_cluster import worker_cluster
    from benchmarks.dask_volume import write_cell_volume

    cfg = dict(QUICK if quick else FULL)
    # SEGENGINE_BENCH_DASK_PARTS=out_of_core,anchors,crf selects parts (default: all);
    # SEGENGINE_BENCH_DASK_SCALING=crop leaves the 1-worker run to the crop (anchor) rows
    parts = os.environ.get("SEGENGINE_BENCH_DASK_PARTS", "out_of_core,anchors,crf").split(",")
    cfg["scaling"] = os.environ.get("SEGENGINE_BENCH_DASK_SCALING", cfg["scaling"])
    tmp = tempfile.mkdtemp(prefix="segengine-bench-dask-")
    try:
        with worker_cluster(2, memory_limit="auto") as (_, client):
            t0 = time.perf_counter()
            ipath, mpath, n_seeds = write_cell_volume(tmp, cfg["shape"], cfg["chunks"],
                                                      spacing=cfg["spacing"], client=client)
            gen_s = time.perf_counter() - t0
        print(f"bench_dask: volume {_shape(cfg['shape'])} written in {gen_s:.0f} s", flush=True)
        rows = []
        if "out_of_core" in parts:
            rows += _out_of_core(cfg, tmp, ipath, mpath, n_seeds, gen_s)
            print("bench_dask: out-of-core rows done", flush=True)
        if "anchors" in parts:
            rows += _anchors(cfg, ipath, mpath)
            print("bench_dask: anchor rows done", flush=True)
        if "crf" in parts:
            rows += _crf(cfg)
        return rows
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
