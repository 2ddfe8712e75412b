"""Issue 10's float-cost stereo case timed in a plain process (glibc's default malloc).

``python -m benchmarks`` pins glibc's mmap threshold to 1 MiB so that resident memory
tracks live memory (benchmarks/common.py); that makes every large allocation a fresh mmap,
which slows PyMaxflow (a new graph per move) more than segengine (kept move graphs).  This
script times the same calls without that setting, as a user's process runs them:

    python -m benchmarks.stereo_plain [--scale 0.5] [--repeat 4]

and writes ``benchmarks/results/<machine>-stereo-plain.md``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=0.5)
    ap.add_argument("--repeat", type=int, default=4)
    args = ap.parse_args()
    import maxflow
    import torch

    import segengine.maxflow.fastmin as fm
    from benchmarks.__main__ import machine_name, machine_tag
    from benchmarks.problems import stereo_motorcycle_costs

    D, V = stereo_motorcycle_costs(args.scale)
    threads = sorted({1, torch.get_num_threads()})
    runs = {"PyMaxflow": lambda: maxflow.fastmin.aexpansion_grid(D, V, max_cycles=3)}
    for nt in threads:
        runs[f"segengine, {nt} thread(s)"] = lambda nt=nt: fm.aexpansion_grid(D, V, max_cycles=3, num_threads=nt)
    times = {k: [] for k in runs}
    energies = {}
    for _ in range(args.repeat):   # interleaved, so that drifts of the machine hit all alike
        for k, fn in runs.items():
            t = time.perf_counter()
            lab = fn()
            times[k].append(time.perf_counter() - t)
            energies[k] = float(fm.energy_of_grid_labeling(D, V, lab))
    peer = statistics.median(times["PyMaxflow"])
    H, W, L = D.shape
    lines = [f"# Float-cost stereo alpha-expansion in a plain process: {machine_name()}", "",
             f"`python -m benchmarks.stereo_plain --scale {args.scale} --repeat {args.repeat}`: "
             f"{H}x{W}, {L} labels, 3 cycles, `fastmin.aexpansion_grid`, median of {args.repeat} "
             f"interleaved runs, glibc's default malloc.", "",
             "| impl | median | runs | speed-up | energy |", "|---|---:|---|---:|---|"]
    for k, v in times.items():
        m = statistics.median(v)
        lines.append(f"| {k} | {m * 1e3:.0f} ms | {', '.join(f'{x:.2f}' for x in v)} s | "
                     f"{peer / m:.2f}x | {energies[k]:.4f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    out = Path(__file__).resolve().parent / "results" / f"{machine_tag()}-stereo-plain.md"
    out.write_text(text)


if __name__ == "__main__":
    main()
