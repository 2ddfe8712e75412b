"""Demo and example: train a small segmentation network, then add a DenseCRF layer and
fine-tune end to end (``examples/crf_training.py`` is its command line).

A synthetic data set is generated on the fly (coloured, textured shapes of several classes
on a noisy background); the network predicts at output stride 4 and is trained with
``segengine.upsample_cross_entropy``. On a held-out set it reports the mean IoU of

1. the network alone (``segengine.upsample_argmax``),
2. the network + ``segengine.dense_crf`` post-processing,
3. the network + a trained ``segengine.nn.DenseCRF`` layer (fine-tuned end to end).

    python examples/crf_training.py [--quick] [--out result.png]

In ``segengine demo`` it runs the quick configuration and writes ``crf_layer.png``
(image | truth | network | + dense_crf | + trained layer).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import segengine
from segengine import metrics
from segengine.nn import DenseCRF

NUM_CLASSES = 4  # background, disc, square, triangle
PALETTE = np.array([[60, 60, 60], [200, 70, 60], [60, 170, 80], [70, 90, 210]], dtype=np.float32)


@dataclass
class Config:
    size: int = 64
    train_images: int = 96
    test_images: int = 24
    net_steps: int = 300
    crf_steps: int = 60
    batch: int = 8
    seed: int = 0
    crf: dict = None

    def crf_settings(self) -> dict:
        return self.crf or dict(iterations=5, gaussian_sxy=3.0, gaussian_compat=3.0,
                                bilateral_sxy=10.0, bilateral_srgb=20.0, bilateral_compat=6.0)


QUICK = Config(size=48, train_images=48, test_images=12, net_steps=150, crf_steps=25, batch=8)


def make_dataset(n: int, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` images float32 ``[n, 3, size, size]`` in 0..255 and labels int64 ``[n, size, size]``."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    images = np.empty((n, 3, size, size), np.float32)
    labels = np.zeros((n, size, size), np.int64)
    for i in range(n):
        lab = np.zeros((size, size), np.int64)
        for _ in range(rng.integers(2, 5)):
            cls = int(rng.integers(1, NUM_CLASSES))
            cy, cx = rng.uniform(0.15, 0.85, 2) * size
            r = rng.uniform(0.1, 0.22) * size
            if cls == 1:
                m = (yy - cy) ** 2 + (xx - cx) ** 2 < r ** 2
            elif cls == 2:
                m = (np.abs(yy - cy) < r) & (np.abs(xx - cx) < r)
            else:
                m = (yy - cy > -r) & (np.abs(xx - cx) < (yy - cy + r) / 2)  & (yy - cy < r)
            lab[m] = cls
        colour = PALETTE[lab] + rng.normal(0, 25, 3).astype(np.float32)  # per-image colour shift
        texture = rng.normal(0, 30, (size, size, 3)).astype(np.float32)
        images[i] = np.clip(colour + texture, 0, 255).transpose(2, 0, 1)
        labels[i] = lab
    return torch.from_numpy(images), torch.from_numpy(labels)


class SmallNet(nn.Module):
    """Encoder-decoder predicting class logits at output stride 4."""

    def __init__(self, classes: int = NUM_CLASSES, width: int = 24):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, width, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(width, width, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=2, dilation=2), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, classes, 1))

    def forward(self, x):
        return self.body((x - 128.0) / 64.0)


def train_network(net, images, labels, cfg: Config, log=print):
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(cfg.seed)
    for step in range(cfg.net_steps):
        idx = torch.randint(0, len(images), (cfg.batch,), generator=g)
        loss = segengine.upsample_cross_entropy(net(images[idx]), labels[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0:
            log(f"  network step {step:4d}  loss {loss.item():.3f}")


def full_res_logits(net, images):
    coarse = net(images)
    return F.interpolate(coarse, size=images.shape[-2:], mode="bilinear")


def fine_tune_crf(net, crf, images, labels, cfg: Config, log=print):
    params = [{"params": crf.parameters(), "lr": 5e-2}, {"params": net.parameters(), "lr": 3e-4}]
    opt = torch.optim.Adam(params)
    g = torch.Generator().manual_seed(cfg.seed + 1)
    for step in range(cfg.crf_steps):
        idx = torch.randint(0, len(images), (cfg.batch,), generator=g)
        refined = crf(full_res_logits(net, images[idx]), images[idx])
        loss = F.cross_entropy(refined, labels[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 20 == 0:
            log(f"  CRF layer step {step:4d}  loss {loss.item():.3f}")


def evaluate(net, crf_layer, images, labels, cfg: Config) -> dict:
    s = cfg.crf_settings()
    with torch.no_grad():
        coarse = net(images)
        pred_net = segengine.upsample_argmax(coarse, tuple(images.shape[-2:]))
        logits = full_res_logits(net, images)
        q = segengine.dense_crf(logits, images, iterations=s["iterations"],
                                gaussian_sxy=s["gaussian_sxy"], gaussian_compat=s["gaussian_compat"],
                                bilateral_sxy=s["bilateral_sxy"], bilateral_srgb=s["bilateral_srgb"],
                                bilateral_compat=s["bilateral_compat"])
        pred_post = q.argmax(1)
        pred_layer = crf_layer(logits, images).argmax(1)
    return {name: float(metrics.mean_iou(p, labels, NUM_CLASSES))
            for name, p in (("network", pred_net), ("network + dense_crf", pred_post),
                            ("network + trained DenseCRF layer", pred_layer))}, \
        (pred_net, pred_post, pred_layer)


def train_and_evaluate(cfg: Config = Config(), log=print) -> tuple[dict, tuple]:
    """Train and evaluate; returns ({name: mean IoU}, (test images, labels, predictions))."""
    torch.manual_seed(cfg.seed)
    train_x, train_y = make_dataset(cfg.train_images, cfg.size, cfg.seed)
    test_x, test_y = make_dataset(cfg.test_images, cfg.size, cfg.seed + 1000)
    net = SmallNet()
    t0 = time.perf_counter()
    train_network(net, train_x, train_y, cfg, log)
    crf = DenseCRF(NUM_CLASSES, **cfg.crf_settings())
    fine_tune_crf(net, crf, train_x, train_y, cfg, log)
    log(f"  trained in {time.perf_counter() - t0:.1f} s")
    scores, preds = evaluate(net, crf, test_x, test_y, cfg)
    return scores, (test_x, test_y, preds)


def panel(images, labels, preds, n: int = 4) -> np.ndarray:
    """uint8 RGB grid: image | truth | network | + dense_crf | + trained layer, ``n`` rows."""
    rows = []
    for i in range(min(n, len(images))):
        cells = [images[i].permute(1, 2, 0).numpy().astype(np.uint8), PALETTE[labels[i].numpy()].astype(np.uint8)]
        cells += [PALETTE[p[i].numpy()].astype(np.uint8) for p in preds]
        rows.append(np.concatenate(cells, axis=1))
    return np.concatenate(rows, axis=0)


def run(image, out_dir, device: str = "cpu") -> list[tuple[str, float]]:
    """``segengine demo`` hook: quick configuration, PNG of the three predictions
    (``image`` and ``device`` are unused: the example makes its own data, on the CPU)."""
    from PIL import Image
    t0 = time.perf_counter()
    scores, (x, y, preds) = train_and_evaluate(QUICK, log=lambda *a: None)
    elapsed = time.perf_counter() - t0
    grid = Image.fromarray(panel(x, y, preds))
    grid.resize((grid.width * 3, grid.height * 3), Image.NEAREST).save(out_dir / "crf_layer.png")
    rows = [("CRF-as-RNN example: train + fine-tune", elapsed)]
    print("CRF-as-RNN example, held-out mean IoU: "
          + ", ".join(f"{k} {v:.3f}" for k, v in scores.items()))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small configuration (as in the tests)")
    ap.add_argument("--out", help="write the side-by-side PNG here")
    args = ap.parse_args(argv)
    scores, (x, y, preds) = train_and_evaluate(QUICK if args.quick else Config())
    for name, v in scores.items():
        print(f"{name:34s} mean IoU {v:.4f}")
    if args.out:
        from PIL import Image
        Image.fromarray(panel(x, y, preds)).save(args.out)
    return scores


if __name__ == "__main__":
    main()
