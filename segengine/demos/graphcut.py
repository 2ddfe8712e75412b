"""Demo: binary graph cut and alpha-expansion on the shipped image.

Writes ``graphcut_unary.png`` (per-pixel decision, no smoothing), ``graphcut.png`` (graph
cut with contrast-sensitive Potts weights), ``alpha_expansion_unary.png`` and
``alpha_expansion.png`` (4 colour classes before/after alpha-expansion).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from segengine.demo import label_colors, save_png


def _kmeans(x: np.ndarray, k: int, iters: int = 10, seed: int = 0) -> np.ndarray:
    """Centres ``[k, d]`` of ``x`` ``[n, d]`` (plain Lloyd iterations, deterministic)."""
    rng = np.random.default_rng(seed)
    c = x[rng.choice(len(x), k, replace=False)]
    for _ in range(iters):
        lab = ((x[:, None, :] - c[None]) ** 2).sum(-1).argmin(1)
        for j in range(k):
            if np.any(lab == j):
                c[j] = x[lab == j].mean(0)
    return c


def run(image: np.ndarray, out_dir: Path, device: str = "cpu"):
    import segengine
    from segengine.ops.graphcut import contrast_weights

    out_dir = Path(out_dir)
    rows = []
    img = image.astype(np.float64) / 255.0
    H, W, _ = img.shape
    flat = img.reshape(-1, 3)

    # binary: two colour classes, cost = squared distance to the class colour
    c2 = _kmeans(flat[::7].copy(), 2)
    d = ((img[None] - c2[:, None, None, :]) ** 2).sum(-1) * 20.0          # [2, H, W]
    unary = torch.from_numpy(d)[None].to(device)
    im_t = torch.from_numpy(img.transpose(2, 0, 1).copy())[None].to(device)
    t0 = time.perf_counter()
    y = segengine.graphcut(unary, pairwise=6.0, image=im_t)
    rows.append((f"graphcut {H}x{W} contrast-sensitive", time.perf_counter() - t0))
    before = (d[1] < d[0]).astype(np.uint8) * 255
    after = (y[0].cpu().numpy() > 0.5).astype(np.uint8) * 255
    save_png(before, out_dir / "graphcut_unary.png")
    save_png(after, out_dir / "graphcut.png")

    # multi-label: four colour classes, Potts weighted by contrast
    c4 = _kmeans(flat[::7].copy(), 4)
    u4 = ((img[None] - c4[:, None, None, :]) ** 2).sum(-1) * 20.0         # [4, H, W]
    ew = contrast_weights(torch.from_numpy(img.transpose(2, 0, 1).copy())[None], 4)[0].numpy()
    t0 = time.perf_counter()
    lab, energy = segengine.alpha_expansion(torch.from_numpy(u4).to(device), pairwise=5.0,
                                            edge_weights=ew)
    rows.append((f"alpha_expansion {H}x{W}, 4 labels", time.perf_counter() - t0))
    save_png(label_colors(u4.argmin(0)), out_dir / "alpha_expansion_unary.png")
    save_png(label_colors(lab.cpu().numpy()), out_dir / "alpha_expansion.png")
    return rows
