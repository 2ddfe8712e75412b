"""python -m benchmarks.gpu_profile [OUT]: where the CUDA paths spend their time (GPU only).

Prints, for the dense CRF (375x500, 21 labels, 5 iterations) and the fused upsampling
(Cityscapes b1 and a tiny input, where only the fixed cost per call is left), the wall time
per call next to the GPU time of its kernels (torch.profiler), so the host-side share
(launches, host-device copies, synchronisations) is visible; writes the profiler's tables to
``OUT/gpu-profile-*.txt``.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import segengine
from benchmarks.bench_crf import PARAMS, _inputs


def _wall(fn, repeat=20):
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _profile(name, fn, out: Path, repeat=5):
    try:
        _profile_one(name, fn, out, repeat)
    except Exception as e:   # one failing case must not hide the others
        print(f"{name}: {type(e).__name__}: {e}", flush=True)


def _profile_one(name, fn, out: Path, repeat):
    from torch.profiler import ProfilerActivity, profile

    fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(repeat):
            fn()
        torch.cuda.synchronize()
    events = prof.key_averages()
    # kernels only: an operator's row (segengine::dense_crf, aten::...) also carries the
    # device time of the kernels it launched, which would count them twice
    gpu_us = sum(getattr(e, "self_device_time_total", getattr(e, "self_cuda_time_total", 0)) for e in events
                 if e.device_type == torch.autograd.DeviceType.CUDA)
    try:
        table = events.table(sort_by="self_device_time_total", row_limit=25)
    except Exception:   # older torch names it after CUDA
        table = events.table(sort_by="self_cuda_time_total", row_limit=25)
    (out / f"gpu-profile-{name}.txt").write_text(table)
    wall = _wall(fn)
    print(f"{name:40s} wall {wall * 1e3:8.2f} ms   kernels {gpu_us / repeat / 1e3:8.2f} ms", flush=True)


def main(argv=None):
    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0] if args else "benchmarks/results")
    out.mkdir(parents=True, exist_ok=True)
    dev = "cuda"
    imgs, probs = _inputs(1, 375, 500, 21)
    image = torch.from_numpy(imgs).permute(0, 3, 1, 2).contiguous().to(dev)
    p = torch.from_numpy(probs).to(dev)
    _profile("dense_crf-375x500-5it", lambda: segengine.dense_crf(p, image, probabilities=True,
                                                                   iterations=5, **PARAMS), out)
    _profile("dense_crf-375x500-0it", lambda: segengine.dense_crf(p, image, probabilities=True,
                                                                   iterations=0, **PARAMS), out)
    for name, shape, size in (("upsample-cityscapes-b1", (1, 19, 256, 512), (1024, 2048)),
                              ("upsample-tiny", (1, 19, 8, 16), (32, 64))):
        x = torch.randn(*shape, device=dev)
        t = torch.randint(0, 19, (shape[0], *size), device=dev)
        _profile(f"{name}-argmax", lambda: segengine.upsample_argmax(x, size), out)
        _profile(f"{name}-argmax-torch", lambda: F.interpolate(x, size, mode="bilinear").argmax(1), out)
        xg = x.clone().requires_grad_(True)
        _profile(f"{name}-ce", lambda: segengine.upsample_cross_entropy(xg, t).backward(), out)
        _profile(f"{name}-ce-torch",
                 lambda: F.cross_entropy(F.interpolate(xg, size, mode="bilinear"), t).backward(), out)


if __name__ == "__main__":
    main()
