"""Demo: dense CRF refinement of a coarse colour-cluster segmentation.

A blocky 1/8-resolution segmentation (colour k-means on block averages, bilinearly
upsampled) is refined by :func:`segengine.dense_crf` with pydensecrf's default
parameters; ``crf_before.png`` / ``crf_after.png`` show the labels before and after.
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F

import segengine
from segengine.demo import label_colors, save_png
from segengine.demos.upsample import coarse_logits


def _coarse_logits(image: np.ndarray, classes: int = 6, stride: int = 8) -> torch.Tensor:
    """Logits ``[1, classes, H, W]``: the upsampling demo's k-means colour clusters of
    ``stride``-pixel blocks, upsampled bilinearly (blocky, edges in the wrong place)."""
    H, W, _ = image.shape
    logits = coarse_logits(image, classes, stride)
    return F.interpolate(logits, size=(H, W), mode="bilinear", align_corners=False)


def run(image: np.ndarray, out_dir, device: str = "cpu") -> list[tuple[str, float]]:
    """Write ``crf_before.png`` and ``crf_after.png``; return ``[(step, seconds)]``."""
    from pathlib import Path

    out_dir = Path(out_dir)
    logits = _coarse_logits(image).to(device)
    img = torch.from_numpy(np.array(image, copy=True)).permute(2, 0, 1)[None].contiguous().to(device)
    segengine.dense_crf(logits[..., :16, :16].contiguous(), img[..., :16, :16].contiguous(),
                        iterations=1)  # warm-up: op registration, CUDA compilation
    if device != "cpu":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    Q = segengine.dense_crf(logits, img, iterations=5)
    if device != "cpu":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    before = logits[0].argmax(0).cpu().numpy()
    after = Q[0].argmax(0).cpu().numpy()
    save_png(label_colors(before), out_dir / "crf_before.png")
    save_png(label_colors(after), out_dir / "crf_after.png")
    return [(f"dense_crf 5 it {image.shape[1]}x{image.shape[0]} (before/after: crf_*.png)", dt)]
