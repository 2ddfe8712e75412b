"""A dataset of RGB images with class logits for the dataset-scale dense-CRF benchmark.

Item ``b`` is a crop of one of scikit-image's astronaut / coffee / chelsea pictures (scaled
up once, then cropped at an offset that depends on ``b``) with smooth random 21-class
logits (low-resolution Gaussian noise upsampled bilinearly, seeded by ``b``). Items are
made on demand, so 256 images x 21 classes (4 GiB of float32 logits at 375x500) never exist
at once: the dask version builds each batch chunk inside its task, the loop one item at a
time.
"""

from __future__ import annotations

import functools

import numpy as np

NAMES = ("astronaut", "coffee", "chelsea")


@functools.lru_cache(maxsize=8)
def _source(name: str, H: int, W: int) -> np.ndarray:
    """The picture scaled to at least (H + 64) x (W + 64), uint8 [3, h, w]."""
    import skimage.data
    import skimage.transform

    im = getattr(skimage.data, name)()
    scale = max((H + 64) / im.shape[0], (W + 64) / im.shape[1])
    shape = (int(np.ceil(im.shape[0] * scale)), int(np.ceil(im.shape[1] * scale)))
    big = skimage.transform.resize(im, shape, preserve_range=True, anti_aliasing=False)
    return np.ascontiguousarray(big.astype(np.uint8).transpose(2, 0, 1))


def item_image(b: int, H: int, W: int) -> np.ndarray:
    """Image of item ``b``: uint8 [3, H, W]."""
    src = _source(NAMES[b % len(NAMES)], H, W)
    dy = (b * 7) % (src.shape[1] - H + 1)
    dx = (b * 13) % (src.shape[2] - W + 1)
    return np.ascontiguousarray(src[:, dy:dy + H, dx:dx + W])


def item_logits(b: int, H: int, W: int, C: int) -> np.ndarray:
    """Logits of item ``b``: float32 [C, H, W]."""
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(1000 + b)
    low = torch.randn(1, C, max(2, H // 32), max(2, W // 32), generator=g) * 3
    return F.interpolate(low, (H, W), mode="bilinear", align_corners=False)[0].numpy()


def dask_dataset(n: int, H: int, W: int, C: int, per_chunk: int):
    """Lazy (images [n, 3, H, W] uint8, logits [n, C, H, W] float32) dask arrays, ``per_chunk``
    items per batch chunk; each chunk is made inside its own task."""
    import dask.array as da

    chunks_b = da.core.normalize_chunks((per_chunk,), (n,))[0]

    def images_part(block_info=None):
        lo, hi = block_info[None]["array-location"][0]
        return np.stack([item_image(b, H, W) for b in range(lo, hi)])

    def logits_part(block_info=None):
        lo, hi = block_info[None]["array-location"][0]
        return np.stack([item_logits(b, H, W, C) for b in range(lo, hi)])

    images = da.map_blocks(images_part, chunks=(chunks_b, (3,), (H,), (W,)), dtype=np.uint8,
                           meta=np.empty((0, 0, 0, 0), np.uint8))
    logits = da.map_blocks(logits_part, chunks=(chunks_b, (C,), (H,), (W,)), dtype=np.float32,
                           meta=np.empty((0, 0, 0, 0), np.float32))
    return images, logits
