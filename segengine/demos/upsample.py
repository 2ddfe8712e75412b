"""Demo: a coarse colour-cluster "segmentation network" at 1/8 resolution, upsampled to
full size with upsample_argmax, and the loss of its upsampled logits."""

from __future__ import annotations

import time

import numpy as np
import torch

import segengine
from segengine.demo import label_colors, save_png


def coarse_logits(image: np.ndarray, classes: int = 6, stride: int = 8) -> torch.Tensor:
    """Logits ``[1, classes, H/stride, W/stride]``: negative squared distance of each
    block-averaged colour to ``classes`` colour centres picked by a few k-means steps."""
    H, W, _ = image.shape
    h, w = H // stride, W // stride
    small = image[: h * stride, : w * stride].reshape(h, stride, w, stride, 3).mean((1, 3)) / 255.0
    pix = small.reshape(-1, 3)
    rng = np.random.default_rng(0)
    centres = pix[rng.choice(len(pix), classes, replace=False)]
    for _ in range(10):
        d = ((pix[:, None, :] - centres[None]) ** 2).sum(-1)
        assign = d.argmin(1)
        for k in range(classes):
            if np.any(assign == k):
                centres[k] = pix[assign == k].mean(0)
    d = ((pix[:, None, :] - centres[None]) ** 2).sum(-1)
    logits = -20.0 * d.T.reshape(classes, h, w)
    return torch.from_numpy(logits[None].astype(np.float32))


def run(image: np.ndarray, out_dir, device: str = "cpu") -> list[tuple[str, float]]:
    logits = coarse_logits(image).to(device)
    H, W = image.shape[:2]
    segengine.upsample_argmax(logits, (H, W), return_confidence=True)  # warm-up: op registration
    t0 = time.perf_counter()
    labels, conf = segengine.upsample_argmax(logits, (H, W), return_confidence=True)
    t_argmax = time.perf_counter() - t0
    coarse = logits.argmax(1)[0].cpu().numpy()
    save_png(label_colors(np.kron(coarse, np.ones((8, 8), dtype=coarse.dtype))), out_dir / "upsample_coarse.png")
    save_png(label_colors(labels[0].cpu().numpy()), out_dir / "upsample_argmax.png")
    save_png((conf[0].cpu().numpy() * 255).astype(np.uint8), out_dir / "upsample_confidence.png")

    target = labels.clone()
    x = logits.clone().requires_grad_(True)
    t0 = time.perf_counter()
    loss = segengine.upsample_cross_entropy(x, target)
    loss.backward()
    t_ce = time.perf_counter() - t0
    return [("upsample_argmax (+confidence)", t_argmax),
            ("upsample_cross_entropy fwd+bwd", t_ce)]
