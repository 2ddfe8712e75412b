"""Watershed demo: separate touching objects with distance-transform markers.

The shipped image is thresholded (Otsu on the grey level), the distance to the background is
computed, its regional maxima (one per object) become markers, and the watershed of the
negated distance splits objects that touch. Writes ``watershed_before.png`` (the binary
objects) and ``watershed_after.png`` (the labelled objects).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from segengine.demo import label_colors, save_png


def _otsu(gray: np.ndarray) -> float:
    hist = np.bincount(gray.ravel(), minlength=256).astype(np.float64)
    p = hist / hist.sum()
    omega = np.cumsum(p)
    mu = np.cumsum(p * np.arange(256))
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mu[-1] * omega - mu) ** 2 / (omega * (1 - omega))
    return float(np.nanargmax(between))


def run(image: np.ndarray, out_dir: Path, device: str) -> list[tuple[str, float]]:
    import torch

    import segengine

    out_dir = Path(out_dir)
    rows = []
    t0 = time.perf_counter()
    gray = image.mean(axis=2).astype(np.uint8) if image.ndim == 3 else image.astype(np.uint8)
    objects = gray > _otsu(gray)
    objects = ndi.binary_opening(objects, iterations=2)
    distance = ndi.distance_transform_edt(objects)
    peaks = (distance == ndi.maximum_filter(distance, size=15)) & (distance > 2)
    markers = ndi.label(peaks)[0].astype(np.int32)
    rows.append(("watershed: distance-transform markers", time.perf_counter() - t0))

    dev = torch.device(device)
    t0 = time.perf_counter()
    labels = segengine.watershed(torch.from_numpy(-distance).to(dev), torch.from_numpy(markers).to(dev),
                                 mask=torch.from_numpy(objects).to(dev))
    labels = labels.cpu().numpy()
    rows.append((f"watershed: flood {gray.shape[1]}x{gray.shape[0]} ({markers.max()} markers, {device})",
                 time.perf_counter() - t0))

    save_png((objects * 255).astype(np.uint8), out_dir / "watershed_before.png")
    colored = label_colors(labels)
    colored[labels == 0] = 0
    save_png(colored, out_dir / "watershed_after.png")
    return rows
