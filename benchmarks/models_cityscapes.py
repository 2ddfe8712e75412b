"""One Cityscapes-resolution memory/time measurement, in a fresh process (called by
``benchmarks/real_models.py``; needs torchvision / segmentation_models_pytorch for ``step``).

    python -m benchmarks.models_cityscapes '{"kind": "head", "head": "fused", "B": 1, "C": 19,
                                             "h": 128, "w": 256, "H": 1024, "W": 2048}'
    python -m benchmarks.models_cityscapes '{"kind": "step", "model": "deeplabv3_resnet50",
                                             "head": "plain", "B": 1, "H": 1024, "W": 2048}'

Prints one JSON object. ``kind="head"``: the loss head alone, forward + backward from
low-resolution logits ``[B, C, h, w]`` (requires_grad) to a loss on ``[B, H, W]`` labels;
``kind="step"``: one full training step (forward, loss, backward, fused Adam) of the real
network on a ``[B, 3, H, W]`` image, after a warm-up step at 64x128 that allocates the gradients
and the optimizer state; ``kind="phases"``: the memory at the end of the forward, at the loss
head's peak and at the backward's peak of one step (where the step's peak comes from).
Memory, both ways (examples/models/measure.py):
``peak_extra_mb``: the sampled peak RSS during the step above the RSS before it;
``maxrss_extra_mb``: ``ru_maxrss`` at the end above the RSS before the first (warm-up) call.
An allocation that would pass ``limit_mb`` above the current address space fails (RLIMIT_AS)
and is reported as ``fits: false`` instead of taking the machine's memory.
"""

from __future__ import annotations

import json
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F

import segengine
from examples.models.measure import StepMeter, max_rss_mb, rss_mb


def _vsz_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * resource.getpagesize()


def _limit_address_space(limit_mb: float) -> None:
    """Let the address space grow by at most ``limit_mb`` from here (RLIMIT_AS)."""
    cap = _vsz_bytes() + int(limit_mb * 2**20)
    resource.setrlimit(resource.RLIMIT_AS, (cap, resource.getrlimit(resource.RLIMIT_AS)[1]))


def head_only(spec: dict) -> dict:
    B, C, h, w, H, W = (spec[k] for k in ("B", "C", "h", "w", "H", "W"))
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(B, C, h, w, generator=g).requires_grad_(True)
    target = torch.randint(0, C, (B, H, W), generator=g)

    def step():
        logits.grad = None
        if spec["head"] == "plain":
            up = F.interpolate(logits, size=(H, W), mode="bilinear", align_corners=False)
            loss = F.cross_entropy(up, target)
        else:
            loss = segengine.upsample_cross_entropy(logits, target)
        loss.backward()
        return float(loss.detach())

    base = rss_mb()
    loss = step()                                   # warm-up (and the ru_maxrss figure)
    with StepMeter() as meter:
        step()
    times = []
    for _ in range(spec.get("repeat", 3)):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return {"loss": loss, "median_s": statistics.median(times), "peak_extra_mb": meter.peak_extra_mb,
            "maxrss_extra_mb": max_rss_mb() - base}


def _build(model: str, num_classes: int):
    if model == "deeplabv3_resnet50":
        from examples.models.deeplab import DeepLabV3LowRes
        return DeepLabV3LowRes(num_classes)
    if model.startswith("unet_os"):
        from examples.models.unet import UnetAtStride
        return UnetAtStride(num_classes, int(model[len("unet_os"):]), "resnet34")
    raise ValueError(f"unknown model {model!r}")


def full_step(spec: dict) -> dict:
    from examples.models.heads import make_head
    C, B, H, W = spec.get("C", 19), spec["B"], spec["H"], spec["W"]
    torch.manual_seed(0)
    net = _build(spec["model"], C)
    head = make_head(spec["head"], C)
    # batch 1: BatchNorm in eval mode (frozen statistics; DeepLab's image-pooling branch has
    # one value per channel at batch 1, which training-mode BatchNorm rejects)
    net.train()
    for m in net.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eval()
    opt = torch.optim.Adam(net.parameters(), lr=1e-4, fused=True)
    g = torch.Generator().manual_seed(0)

    def step(x, t):
        opt.zero_grad(set_to_none=False)
        loss = head.loss(net(x), x, t)
        loss.backward()
        opt.step()
        return float(loss.detach())

    step(torch.rand(B, 3, 64, 128, generator=g) * 255, torch.randint(0, C, (B, 64, 128), generator=g))
    x = torch.rand(B, 3, H, W, generator=g) * 255
    t = torch.randint(0, C, (B, H, W), generator=g)
    base = rss_mb()
    if spec.get("limit_mb"):
        _limit_address_space(spec["limit_mb"])
    try:
        with StepMeter() as meter:
            loss = step(x, t)
    except (RuntimeError, MemoryError) as e:
        return {"fits": False, "error": f"{type(e).__name__}: {str(e)[:200]}"}
    return {"fits": True, "loss": loss, "step_s": meter.seconds, "peak_extra_mb": meter.peak_extra_mb,
            "maxrss_extra_mb": max_rss_mb() - base, "rss_before_mb": base}


def phases(spec: dict) -> dict:
    """Where a full step's memory peaks: resident memory above the pre-step level at the end of
    the forward, at the peak of the loss head, and at the peak of the backward."""
    from examples.models.heads import make_head
    C, B, H, W = spec.get("C", 19), spec["B"], spec["H"], spec["W"]
    torch.manual_seed(0)
    net = _build(spec["model"], C)
    head = make_head(spec["head"], C)
    net.eval()                                      # frozen BatchNorm, no dropout (batch 1)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(B, 3, H, W, generator=g) * 255
    t = torch.randint(0, C, (B, H, W), generator=g)
    small = (slice(None), slice(None), slice(0, 64), slice(0, 128))
    head.loss(net(x[small]), x[small], t[small[:1] + small[2:]]).backward()   # gradients allocated
    base = rss_mb()
    with StepMeter() as fwd:
        logits = net(x)
    with StepMeter() as loss_phase:
        loss = head.loss(logits, x, t)
    with StepMeter() as bwd:
        loss.backward()
    return {"after_forward_mb": fwd.rss_before_mb + fwd.peak_extra_mb - base,
            "head_peak_mb": loss_phase.rss_before_mb + loss_phase.peak_extra_mb - base,
            "backward_peak_mb": bwd.rss_before_mb + bwd.peak_extra_mb - base}


KINDS = {"head": head_only, "step": full_step, "phases": phases}


def main(argv=None) -> dict:
    spec = json.loads((argv or sys.argv[1:])[0])
    if "threads" in spec:
        torch.set_num_threads(spec["threads"])
    out = KINDS[spec["kind"]](spec)
    out.update(spec=spec, threads=torch.get_num_threads())
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
