"""A synthetic cell volume for the blockwise benchmarks, built block by block into zarr.

The image imitates a membrane-stained tissue (an electron-microscopy boundary map): cells are
the Voronoi regions of jittered grid points, their walls are bright ridges of Gaussian profile,
and the interiors carry blurred noise. The markers are the cell centres, one voxel each,
labelled by the cell's index + 1 (sparse seeds, as a detector would give).

Every voxel is a pure function of its global coordinates (the noise is a hash of the raveled
index, blurred with an exact halo), so the volume and any crop of it do not depend on the
chunking, and no block ever needs the whole volume: a 2 GiB volume is written with a few
tens of MiB per task.
"""

from __future__ import annotations

import numpy as np

NOISE_SIGMA = 1.0   # blur of the interior noise (voxels)
NOISE_DEPTH = 4     # halo for that blur (>= 4 sigma)


def cell_centres(shape, spacing: float, seed: int = 0, jitter: float = 0.25) -> np.ndarray:
    """Jittered grid points: one cell centre per grid cell of side ``spacing``.

    Returns
    -------
    float64 ndarray ``[*grid, ndim]``: the centre of grid cell ``g`` is
    ``(g + 0.5) * spacing + U(-jitter, jitter) * spacing`` on each axis.
    """
    grid = tuple(int(np.ceil(n / spacing)) for n in shape)
    rng = np.random.default_rng(seed)
    idx = np.stack(np.meshgrid(*[np.arange(g) for g in grid], indexing="ij"), -1).astype(np.float64)
    return (idx + 0.5 + rng.uniform(-jitter, jitter, idx.shape)) * spacing


def _hash_uniform(index: np.ndarray, seed: int) -> np.ndarray:
    """Uniform [0, 1) float32 from a splitmix64 hash of integer indices (chunk independent)."""
    z = index.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15) * np.uint64(seed + 1)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return ((z >> np.uint64(40)).astype(np.float32) / np.float32(1 << 24))


def noise_block(shape, origin, full_shape, seed: int) -> np.ndarray:
    """Hash noise of the block at ``origin`` (global raveled index as the key)."""
    axes = [np.arange(o, o + n, dtype=np.int64) for o, n in zip(origin, shape)]
    strides = np.cumprod((1,) + tuple(full_shape[:0:-1]))[::-1]
    index = sum(a.reshape([-1 if i == k else 1 for i in range(len(shape))]) * int(s)
                for k, (a, s) in enumerate(zip(axes, strides)))
    return _hash_uniform(index, seed)


def membrane_block(shape, origin, centres: np.ndarray, spacing: float, width: float) -> np.ndarray:
    """Ridge ``exp(-((r2 - r1) / width)^2 / 2)`` where r1, r2 are the distances to the nearest
    and second-nearest cell centres, searched among the 3^ndim grid cells around each voxel's
    own grid cell (float32, ``shape``)."""
    ndim = len(shape)
    grid = centres.shape[:-1]
    out = np.empty(shape, np.float32)
    first = [int(o // spacing) for o in origin]
    last = [int((o + n - 1) // spacing) for o, n in zip(origin, shape)]
    offsets = np.stack(np.meshgrid(*[np.arange(-1, 2)] * ndim, indexing="ij"), -1).reshape(-1, ndim)
    for cell in np.ndindex(*[b - a + 1 for a, b in zip(first, last)]):
        g = [a + c for a, c in zip(first, cell)]
        lo = [max(o, int(np.ceil(gi * spacing))) for o, gi in zip(origin, g)]
        hi = [min(o + n, int(np.ceil((gi + 1) * spacing))) for o, n, gi in zip(origin, shape, g)]
        if any(h <= l for l, h in zip(lo, hi)):
            continue
        coords = [np.arange(l, h, dtype=np.float32) for l, h in zip(lo, hi)]
        d1 = np.full([h - l for l, h in zip(lo, hi)], np.inf, np.float32)
        d2 = d1.copy()
        for off in offsets:
            nb = [gi + o for gi, o in zip(g, off)]
            if any(n < 0 or n >= m for n, m in zip(nb, grid)):
                continue
            c = centres[tuple(nb)]
            d = sum(((x - np.float32(ci)) ** 2).reshape([-1 if i == k else 1 for i in range(ndim)])
                    for k, (x, ci) in enumerate(zip(coords, c)))
            np.minimum(d2, np.maximum(d1, d), out=d2)
            np.minimum(d1, d, out=d1)
        gap = (np.sqrt(d2) - np.sqrt(d1)) / np.float32(width)
        out[tuple(slice(l - o, h - o) for l, h, o in zip(lo, hi, origin))] = np.exp(-0.5 * gap * gap)
    return out


def cell_volume(shape, chunks, spacing: float = 40.0, width: float = 1.5, noise: float = 0.35,
                seed: int = 0):
    """The lazy image (float32 dask array) and the centres it was built from.

    Parameters
    ----------
    shape, chunks : tuples
        Volume shape and dask chunk shape.
    spacing : float
        Cell size in voxels (grid pitch of the centres).
    width : float
        Membrane half-width parameter.
    noise : float
        Amplitude of the blurred interior noise.
    """
    import dask.array as da
    from scipy import ndimage as ndi

    centres = cell_centres(shape, spacing, seed)

    def raw(block_info=None):
        info = block_info[None]
        origin = tuple(s for s, _ in info["array-location"])
        bshape = info["chunk-shape"]
        return noise_block(bshape, origin, shape, seed)

    base = da.map_blocks(raw, chunks=da.core.normalize_chunks(chunks, shape), dtype=np.float32,
                         meta=np.empty((0,) * len(shape), np.float32))
    blurred = base.map_overlap(lambda b: ndi.gaussian_filter(b, NOISE_SIGMA, mode="reflect",
                                                            truncate=NOISE_DEPTH / NOISE_SIGMA),
                               depth=NOISE_DEPTH, boundary="none", dtype=np.float32)

    def compose(b, block_info=None):
        origin = tuple(s for s, _ in block_info[None]["array-location"])
        m = membrane_block(b.shape, origin, centres, spacing, width)
        m += np.float32(noise) * (b - np.float32(0.5)) * np.float32(4.0)
        return m

    image = blurred.map_blocks(compose, dtype=np.float32)
    return image, centres


def marker_volume(shape, chunks, centres: np.ndarray):
    """int32 dask array with the label ``i + 1`` at the rounded position of centre ``i``
    (raveled grid order) and 0 elsewhere."""
    import dask.array as da

    flat = centres.reshape(-1, centres.shape[-1])
    pos = np.floor(flat).astype(np.int64)
    inside = np.all((pos >= 0) & (pos < np.asarray(shape)), axis=1)
    labels = np.arange(1, len(flat) + 1, dtype=np.int32)[inside]
    pos = pos[inside]

    def place(block_info=None):
        info = block_info[None]
        loc = info["array-location"]
        out = np.zeros(info["chunk-shape"], np.int32)
        sel = np.all([(pos[:, k] >= a) & (pos[:, k] < b) for k, (a, b) in enumerate(loc)], axis=0)
        local = pos[sel] - np.asarray([a for a, _ in loc])
        out[tuple(local.T)] = labels[sel]
        return out

    return da.map_blocks(place, chunks=da.core.normalize_chunks(chunks, shape), dtype=np.int32,
                         meta=np.empty((0,) * len(shape), np.int32))


def write_cell_volume(folder, shape, chunks, spacing: float = 40.0, seed: int = 0, client=None):
    """Compute the image and markers block by block into ``folder/image.zarr`` and
    ``folder/markers.zarr`` (under ``client`` if given, else the current scheduler).

    Returns
    -------
    (image_path, markers_path, n_seeds)
    """
    import dask
    import dask.array as da

    image, centres = cell_volume(shape, chunks, spacing=spacing, seed=seed)
    markers = marker_volume(shape, chunks, centres)
    ipath, mpath = f"{folder}/image.zarr", f"{folder}/markers.zarr"
    tasks = [da.to_zarr(image, ipath, overwrite=True, compute=False),
             da.to_zarr(markers, mpath, overwrite=True, compute=False)]
    if client is not None:
        client.compute(tasks, sync=True)
    else:
        dask.compute(*tasks)
    n_seeds = int(np.all((np.floor(centres.reshape(-1, len(shape))) >= 0)
                         & (np.floor(centres.reshape(-1, len(shape))) < np.asarray(shape)), axis=1).sum())
    return ipath, mpath, n_seeds
