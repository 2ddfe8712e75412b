"""Blockwise watershed of a zarr volume on a dask.distributed cluster, with a picture of a
slice and the block seams.

    python examples/dask_watershed.py [--out DIR] [--shape Z Y X] [--chunks Z Y X]
                                      [--large] [--workers N | --scheduler ADDRESS]

1. Writes a synthetic volume to ``DIR/image.zarr`` block by block (smoothed noise: dark
   valleys between bright ridges) and sparse seeds to ``DIR/markers.zarr`` (one seed per
   24^3 voxels on a jittered grid, labelled 1, 2, ...).
2. Runs ``segengine.dask.watershed`` zarr -> zarr (``DIR/labels.zarr``) on a LocalCluster
   of ``N`` worker processes on 127.0.0.1 (or on an existing cluster: ``--scheduler
   tcp://host:8786``; its workers must see ``DIR``).
3. Writes ``DIR/slice.png``: the middle slice, its basins' outlines, and the chunk
   boundaries (dashed): basins run across them, one label on both sides.
4. For volumes that fit comfortably in memory, compares with whole-array
   ``segengine.watershed`` and prints the share of identical voxels.

Default size 64x256x256 (16 MiB, seconds); ``--large`` makes 256x1024x1024 (1 GiB, minutes).
Needs ``pip install 'segengine[dask]' matplotlib``.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time

import numpy as np

SEED_SPACING = 24
SMOOTHING = 3.0


def make_volume(folder, shape, chunks, client):
    """Write ``image.zarr`` (float32 smoothed noise) and ``markers.zarr`` (int32 seeds)."""
    import dask.array as da
    from scipy import ndimage as ndi

    from segengine.dask import save_array

    noise = da.random.default_rng(0).random(shape, chunks=chunks, dtype=np.float32)
    depth = int(4 * SMOOTHING)
    image = noise.map_overlap(ndi.gaussian_filter, depth=depth, boundary="reflect", sigma=SMOOTHING,
                              dtype=np.float32)

    grid = [np.arange(SEED_SPACING // 2, n, SEED_SPACING) for n in shape]
    seeds = np.stack(np.meshgrid(*grid, indexing="ij"), -1).reshape(-1, len(shape))
    jitter = np.random.default_rng(1).integers(-SEED_SPACING // 4, SEED_SPACING // 4 + 1, seeds.shape)
    seeds = np.clip(seeds + jitter, 0, np.asarray(shape) - 1)

    def place(block_info=None):
        loc = block_info[None]["array-location"]
        out = np.zeros(block_info[None]["chunk-shape"], np.int32)
        inside = np.all([(seeds[:, k] >= a) & (seeds[:, k] < b) for k, (a, b) in enumerate(loc)], axis=0)
        local = seeds[inside] - np.asarray([a for a, _ in loc])
        out[tuple(local.T)] = np.flatnonzero(inside) + 1
        return out

    markers = da.map_blocks(place, chunks=image.chunks, dtype=np.int32)
    save_array(image, os.path.join(folder, "image.zarr"), overwrite=True, scheduler=client)
    save_array(markers, os.path.join(folder, "markers.zarr"), overwrite=True, scheduler=client)
    return len(seeds)


def draw_slice(folder, z, chunks, path):
    """PNG of slice ``z``: the image, basin outlines (red) and chunk boundaries (dashed)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from skimage.segmentation import find_boundaries

    from segengine.dask import open_array

    image = np.asarray(open_array(os.path.join(folder, "image.zarr"))[z])
    labels = np.asarray(open_array(os.path.join(folder, "labels.zarr"))[z])
    rng = np.random.default_rng(0)
    palette = rng.random((int(labels.max()) + 1, 3)) * 0.7 + 0.3
    H, W = image.shape
    fig, axes = plt.subplots(1, 2, figsize=(12, 6.4 * H / W + 0.6))
    grey = (image - image.min()) / max(float(np.ptp(image)), 1e-12)
    overlay = np.repeat(grey[..., None], 3, axis=2)
    overlay[find_boundaries(labels, mode="inner")] = (1.0, 0.1, 0.1)
    axes[0].imshow(overlay)
    axes[0].set_title(f"slice z={z}: image and basin outlines")
    axes[1].imshow(palette[labels])
    axes[1].set_title("labels (one colour per basin)")
    for ax in axes:
        for y in np.cumsum(chunks[1])[:-1]:
            ax.axhline(y - 0.5, color="white", ls="--", lw=1.2)
        for x in np.cumsum(chunks[2])[:-1]:
            ax.axvline(x - 0.5, color="white", ls="--", lw=1.2)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("segengine.dask.watershed: dashed lines are block seams; basins cross them with one label")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def compare_whole(folder):
    """Share of voxels equal to whole-array segengine.watershed."""
    import segengine
    from segengine.dask import open_array

    image = np.asarray(open_array(os.path.join(folder, "image.zarr")))
    markers = np.asarray(open_array(os.path.join(folder, "markers.zarr")))
    blockwise = np.asarray(open_array(os.path.join(folder, "labels.zarr")))
    return float(np.mean(segengine.watershed(image, markers) == blockwise))


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", help="output folder (default: a new temporary folder)")
    ap.add_argument("--shape", type=int, nargs=3, default=(64, 256, 256), metavar=("Z", "Y", "X"))
    ap.add_argument("--chunks", type=int, nargs=3, metavar=("Z", "Y", "X"),
                    help="chunk shape (default: shape // (1, 2, 2), at most 128 per axis)")
    ap.add_argument("--large", action="store_true", help="256x1024x1024 float32 (1 GiB)")
    ap.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes (default 2)")
    ap.add_argument("--scheduler", help="address of an existing dask scheduler instead of a LocalCluster")
    args = ap.parse_args(argv)

    import distributed

    import segengine.dask as sdask
    from segengine.dask import open_array, save_array

    shape = (256, 1024, 1024) if args.large else tuple(args.shape)
    chunks = tuple(args.chunks) if args.chunks else (min(shape[0], 128),) + tuple(
        min(128, max(1, n // 2)) for n in shape[1:])
    folder = args.out or tempfile.mkdtemp(prefix="segengine-dask-example-")
    os.makedirs(folder, exist_ok=True)

    if args.scheduler:
        client = distributed.Client(args.scheduler)
        cluster = None
    else:
        cluster = distributed.LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                                           host="127.0.0.1", dashboard_address=None,
                                           worker_dashboard_address=None, silence_logs=logging.ERROR)
        client = distributed.Client(cluster)
    try:
        t0 = time.perf_counter()
        n_seeds = make_volume(folder, shape, chunks, client)
        print(f"volume {shape} float32 ({np.prod(shape) * 4 / 2**20:.0f} MiB), chunks {chunks}, "
              f"{n_seeds} seeds: written in {time.perf_counter() - t0:.1f} s")

        t0 = time.perf_counter()
        image = open_array(os.path.join(folder, "image.zarr"))
        markers = open_array(os.path.join(folder, "markers.zarr"))
        labels = sdask.watershed(image, markers)                       # lazy, chunked like image
        save_array(labels, os.path.join(folder, "labels.zarr"), overwrite=True, scheduler=client)
        seconds = time.perf_counter() - t0
        print(f"blockwise watershed, zarr -> zarr, on {len(client.scheduler_info()['workers'])} "
              f"worker(s): {seconds:.1f} s")
    finally:
        client.close()
        if cluster is not None:
            cluster.close()

    z = shape[0] // 2
    png = os.path.join(folder, "slice.png")
    draw_slice(folder, z, image.chunks, png)
    result = {"folder": folder, "png": png, "seconds": seconds, "seeds": n_seeds}
    if np.prod(shape) <= 64 * 2**20:
        result["identical"] = compare_whole(folder)
        print(f"identical to whole-array segengine.watershed: {100 * result['identical']:.3f} % of voxels")
    print(f"picture: {png}")
    return result


if __name__ == "__main__":
    main()
