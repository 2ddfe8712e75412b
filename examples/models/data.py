"""Synthetic segmentation scenes: textured shapes on a textured background, per-pixel labels.

Nothing is downloaded: every image is drawn from a seeded generator, so a split is the same
on every machine. Six classes::

    0 background   smooth colour gradient + noise
    1 disc         flat colour
    2 square       flat colour
    3 triangle     flat colour
    4 stripes      an ellipse filled with oriented stripes
    5 checkers     a rotated rectangle filled with a checkerboard

Colours are jittered per image and per object, so the colour alone does not give the
class: the networks must use shape and texture too. Objects may overlap (later ones on top).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

NUM_CLASSES = 6
CLASS_NAMES = ("background", "disc", "square", "triangle", "stripes", "checkers")
# base colour of each class (RGB, 0..255); jittered per object
PALETTE = np.array([[90, 90, 90], [200, 80, 60], [70, 170, 90], [70, 100, 210],
                    [190, 170, 60], [150, 80, 170]], dtype=np.float32)
# ImageNet statistics on the 0..255 scale, for the networks' input normalisation
_MEAN = torch.tensor([0.485, 0.456, 0.406]).mul(255).view(1, 3, 1, 1)
_STD = torch.tensor([0.229, 0.224, 0.225]).mul(255).view(1, 3, 1, 1)


class Split(NamedTuple):
    """``images`` float32 ``[N, 3, H, W]`` in 0..255; ``labels`` int64 ``[N, H, W]``."""
    images: torch.Tensor
    labels: torch.Tensor


def normalize(images: torch.Tensor) -> torch.Tensor:
    """float32 ``[B, 3, H, W]`` in 0..255 -> ImageNet-normalised network input."""
    return (images - _MEAN.to(images.device)) / _STD.to(images.device)


def _object_mask(cls: int, yy: np.ndarray, xx: np.ndarray, rng: np.random.Generator,
                 size: int) -> np.ndarray:
    cy, cx = rng.uniform(0.15, 0.85, 2) * size
    r = rng.uniform(0.12, 0.25) * size
    dy, dx = yy - cy, xx - cx
    if cls == 1:
        return dy ** 2 + dx ** 2 < r ** 2
    if cls == 2:
        return (np.abs(dy) < r) & (np.abs(dx) < r)
    if cls == 3:
        return (dy > -r) & (dy < r) & (np.abs(dx) < (dy + r) / 2)
    theta = rng.uniform(0, np.pi)
    u = dx * np.cos(theta) + dy * np.sin(theta)
    v = -dx * np.sin(theta) + dy * np.cos(theta)
    if cls == 4:
        return (u / r) ** 2 + (v / (0.6 * r)) ** 2 < 1
    return (np.abs(u) < r) & (np.abs(v) < 0.7 * r)


def _texture(cls: int, yy: np.ndarray, xx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Multiplicative texture in about [0.55, 1.45] for a class (1 for flat classes)."""
    if cls == 4:
        theta, period = rng.uniform(0, np.pi), rng.uniform(4, 7)
        phase = (xx * np.cos(theta) + yy * np.sin(theta)) * 2 * np.pi / period
        return 1 + 0.45 * np.sign(np.sin(phase))
    if cls == 5:
        cell = rng.integers(3, 6)
        return 1 + 0.45 * np.where(((yy // cell) + (xx // cell)) % 2 == 0, 1.0, -1.0)
    return np.ones_like(yy)


def make_scenes(n: int, size: int, seed: int) -> Split:
    """``n`` scenes of ``size`` x ``size`` pixels drawn from ``np.random.default_rng(seed)``.

    Parameters
    ----------
    n : int
        Number of images (>= 1).
    size : int
        Height and width in pixels (>= 16).
    seed : int
        Seed of the generator; the same seed gives the same scenes.

    Returns
    -------
    Split
        ``images`` float32 ``[n, 3, size, size]`` in 0..255 and ``labels`` int64
        ``[n, size, size]`` in ``[0, NUM_CLASSES)``.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an int >= 1, got {n!r}")
    if isinstance(size, bool) or not isinstance(size, int) or size < 16:
        raise ValueError(f"size must be an int >= 16, got {size!r}")
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    images = np.empty((n, size, size, 3), np.float32)
    labels = np.empty((n, size, size), np.int64)
    for i in range(n):
        # background: a random linear gradient around the background colour
        g = rng.normal(0, 1, 2) * 40 / size
        base = PALETTE[0] + rng.normal(0, 20, 3)
        img = base + ((yy - size / 2) * g[0] + (xx - size / 2) * g[1])[..., None]
        lab = np.zeros((size, size), np.int64)
        for _ in range(rng.integers(2, 6)):
            cls = int(rng.integers(1, NUM_CLASSES))
            mask = _object_mask(cls, yy, xx, rng, size)
            colour = PALETTE[cls] + rng.normal(0, 22, 3)
            img[mask] = (colour * _texture(cls, yy, xx, rng)[..., None])[mask]
            lab[mask] = cls
        img += rng.normal(0, 18, img.shape)
        images[i] = np.clip(img, 0, 255)
        labels[i] = lab
    return Split(torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(labels))


def train_and_heldout(train_images: int, heldout_images: int, size: int, seed: int) -> tuple[Split, Split]:
    """The training split (seed ``seed``) and the held-out split (seed ``seed + 10_000``)."""
    return make_scenes(train_images, size, seed), make_scenes(heldout_images, size, seed + 10_000)
