"""Fused upsampling vs the PyTorch composite (interpolate + argmax / cross_entropy).

Cases (issue 2): Cityscapes-sized logits 19x256x512 -> 1024x2048 at batch 1 and 4, and
VOC-sized 21x64x64 -> 512x512 at batch 8. Cross-entropy is timed forward + backward.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

import segengine
from benchmarks.common import measure

CASES = [  # (name, B, C, h, w, H, W)
    ("Cityscapes 19x256x512->1024x2048 b1", 1, 19, 256, 512, 1024, 2048),
    ("Cityscapes 19x256x512->1024x2048 b4", 4, 19, 256, 512, 1024, 2048),
    ("VOC 21x64x64->512x512 b8", 8, 21, 64, 64, 512, 512),
]
QUICK = [
    ("Cityscapes/4 19x64x128->256x512 b1", 1, 19, 64, 128, 256, 512),
    ("VOC 21x64x64->512x512 b2", 2, 21, 64, 64, 512, 512),
]


def _ce_step(fn, x, t):
    def step():
        x.grad = None
        loss = fn(x, t)
        loss.backward()
    return step


def _composite_ce(x, t):
    return F.cross_entropy(F.interpolate(x, size=t.shape[-2:], mode="bilinear"), t)


def _synced(fn, device):
    """``fn`` followed by a device synchronisation, so GPU timings include the kernels."""
    if device != "cuda":
        return fn

    def call():
        out = fn()
        torch.cuda.synchronize()
        return out
    return call


def run(quick: bool = False, device: str = "cpu") -> list[dict]:
    """Rows on ``device`` ("cpu" or "cuda"): both sides run there."""
    rows = []
    repeat = 3 if quick else 5
    for name, B, C, h, w, H, W in (QUICK if quick else CASES):
        g = torch.Generator().manual_seed(0)
        x = torch.randn(B, C, h, w, generator=g).to(device)
        same = torch.equal(segengine.upsample_argmax(x, (H, W)),
                           F.interpolate(x, (H, W), mode="bilinear").argmax(1))
        check = "labels identical" if same else "LABELS DIFFER"
        rows.append(measure("upsample_argmax", name, "segengine",
                            _synced(lambda: segengine.upsample_argmax(x, (H, W)), device),
                            repeat=repeat, check=check))
        rows.append(measure("upsample_argmax", name, "torch interpolate+argmax",
                            _synced(lambda: F.interpolate(x, (H, W), mode="bilinear").argmax(1),
                                    device), repeat=repeat, check=check))

        t = torch.randint(0, C, (B, H, W), generator=g).to(device)
        xs = x.clone().requires_grad_(True)
        xt = x.clone().requires_grad_(True)
        _ce_step(segengine.upsample_cross_entropy, xs, t)()
        _ce_step(_composite_ce, xt, t)()
        err = (xs.grad - xt.grad).abs().max().item()
        dl = abs(segengine.upsample_cross_entropy(x, t).item() - _composite_ce(x, t).item())
        check = f"|dloss| {dl:.1e}, max|dgrad| {err:.1e}"
        rows.append(measure("upsample_cross_entropy fwd+bwd", name, "segengine",
                            _synced(_ce_step(segengine.upsample_cross_entropy, xs, t), device),
                            repeat=repeat, check=check))
        rows.append(measure("upsample_cross_entropy fwd+bwd", name, "torch interpolate+cross_entropy",
                            _synced(_ce_step(_composite_ce, xt, t), device), repeat=repeat,
                            check=check))
    return rows
