"""DenseCRF layer forward + backward vs the pure-PyTorch reference on the same lattices.

Cases (issue 4): batch 8, 21 classes, 128x128 and 256x256, 5 iterations; both include
building the two lattices. The reference is segengine._reference.crf_layer (splat, blur
and slice written with torch index_add/gather, differentiated by autograd).
``python -m benchmarks --device cuda`` runs both on the GPU.
"""

from __future__ import annotations

import torch

from benchmarks.common import measure
from segengine._reference.crf_layer import dense_crf_layer_reference
from segengine.nn import DenseCRF

CASES = [("b8 21 classes 128x128, 5 it", 8, 21, 128, 128), ("b8 21 classes 256x256, 5 it", 8, 21, 256, 256)]
QUICK = [("b2 21 classes 64x64, 5 it", 2, 21, 64, 64)]


def run(quick: bool = False, device: str = "cpu") -> list[dict]:
    """Rows on ``device`` ("cpu" or "cuda"): the layer and the reference both run there."""
    rows = []
    for name, B, C, H, W in (QUICK if quick else CASES):
        g = torch.Generator().manual_seed(0)
        logits = torch.randn(B, C, H, W, generator=g).to(device)
        image = (torch.rand(B, 3, H, W, generator=g) * 255).round().to(device)
        layer = DenseCRF(C, iterations=5).to(device)
        sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

        def fast():
            layer.zero_grad()
            x = logits.clone().requires_grad_(True)
            layer(x, image).square().mean().backward()
            sync()
            return x.grad

        def reference():
            layer.zero_grad()
            x = logits.clone().requires_grad_(True)
            dense_crf_layer_reference(layer, x, image).square().mean().backward()
            sync()
            return x.grad

        err = (fast() - reference()).abs().max().item()
        check = f"max|dgrad| {err:.1e}"
        repeat = 3 if quick else 3
        rows.append(measure("DenseCRF layer fwd+bwd", name, "segengine", fast, repeat=repeat, check=check))
        rows.append(measure("DenseCRF layer fwd+bwd", name, "pure-PyTorch reference", reference,
                            repeat=repeat, check=check))
    return rows
