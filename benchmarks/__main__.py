"""Run every benchmarks/bench_<op>.py against its peers and write the results.

    python -m benchmarks [--quick] [--op NAME] [--device cpu|cuda] [--out benchmarks/results]

``--device cuda`` runs the benchmarks that have a CUDA path (``run(..., device=)``) on the GPU
and skips the others.

Writes ``<machine>.md``, ``<machine>.json`` and ``<machine>.png`` (or with the op
name appended when ``--op`` is given) to the output folder.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import platform
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent


def machine_name() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return cpu


def machine_tag() -> str:
    import os
    tag = f"cpu{os.cpu_count()}"
    if torch.cuda.is_available():
        tag = torch.cuda.get_device_name(0).replace(" ", "-")
    return tag


def discover(op=None):
    names = sorted(p.stem[len("bench_"):] for p in HERE.glob("bench_*.py"))
    if op:
        if op not in names:
            raise SystemExit(f"unknown op {op!r}; known: {', '.join(names)}")
        names = [op]
    return names


def add_ratios(rows):
    """ratio = peer time / segengine time, per (op, case)."""
    se = {(r["op"], r["case"]): r for r in rows if r["impl"] == "segengine"}
    for r in rows:
        base = se.get((r["op"], r["case"]))
        r["ratio"] = (r["median_s"] / base["median_s"]) if base and base["median_s"] > 0 else None
        r["mem_ratio"] = (r["peak_mb"] / base["peak_mb"]) if base and base["peak_mb"] > 0.5 else None


def markdown(rows, header) -> str:
    gpu = any("gpu_peak_mb" in r for r in rows)
    out = [header, "",
           "| op | case | impl | median (ms) | speed-up of segengine | peak extra memory (MiB) | "
           + ("peak GPU memory (MiB) | " if gpu else "") + "check |",
           "|---|---|---|---:|---:|---:|" + ("---:|" if gpu else "") + "---|"]
    for r in rows:
        ratio = "" if r["ratio"] is None or r["impl"] == "segengine" else f"{r['ratio']:.1f}x"
        gpu_mb = (f"{r['gpu_peak_mb']:.0f} | " if "gpu_peak_mb" in r else "| ") if gpu else ""
        out.append(f"| {r['op']} | {r['case']} | {r['impl']} | {r['median_s'] * 1e3:.1f} | {ratio} | "
                   f"{r['peak_mb']:.0f} | {gpu_mb}{r['check']} |")
    notes = [f"- {r['op']} / {r['case']} / {r['impl']}: {r['notes']}" for r in rows if r.get("notes")]
    if notes:
        out += ["", "Notes:", *notes]
    return "\n".join(out) + "\n"


def chart(rows, path: Path) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no chart", file=sys.stderr)
        return
    peers = [r for r in rows if r["impl"] != "segengine" and r["ratio"]]
    if not peers:
        return
    labels = [f"{r['op']}: {r['case']} vs {r['impl']}" for r in peers]
    fig, ax = plt.subplots(figsize=(10, 0.35 * len(peers) + 1.5))
    ax.barh(range(len(peers)), [r["ratio"] for r in peers], color="tab:blue")
    ax.set_yticks(range(len(peers)), labels, fontsize=7)
    ax.axvline(1.0, color="k", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("speed-up of segengine (peer time / segengine time)")
    ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller inputs and fewer repeats")
    ap.add_argument("--op", help="run only benchmarks/bench_<OP>.py")
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                    help="where segengine runs (cuda: only benchmarks with a CUDA path)")
    ap.add_argument("--out", default=str(HERE / "results"), help="output folder")
    args = ap.parse_args(argv)

    rows = []
    for name in discover(args.op):
        mod = importlib.import_module(f"benchmarks.bench_{name}")
        takes_device = "device" in inspect.signature(mod.run).parameters
        if args.device != "cpu" and not takes_device:
            print(f"bench_{name}: no {args.device} path, skipped", flush=True)
            continue
        t0 = time.perf_counter()
        got = mod.run(quick=args.quick, device=args.device) if takes_device else mod.run(quick=args.quick)
        print(f"bench_{name}: {len(got)} rows in {time.perf_counter() - t0:.0f} s", flush=True)
        rows += got
    add_ratios(rows)

    import segengine
    from segengine.cli import info_lines
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = (machine_tag() + (f"-{args.op}" if args.op else "") + ("-quick" if args.quick else "")
            + ("-cuda" if args.device == "cuda" else ""))
    header = (f"# segengine {segengine.__version__} benchmarks: {machine_name()}\n\n"
              f"Run on {time.strftime('%Y-%m-%d')} with `python -m benchmarks"
              f"{' --quick' if args.quick else ''}{' --op ' + args.op if args.op else ''}"
              f"{' --device ' + args.device if args.device != 'cpu' else ''}`.\n\n"
              + "\n".join(f"- {line}" for line in info_lines()))
    (out / f"{stem}.md").write_text(markdown(rows, header))
    (out / f"{stem}.json").write_text(json.dumps({"machine": machine_name(), "rows": rows}, indent=1))
    chart(rows, out / f"{stem}.png")
    print(markdown(rows, header))


if __name__ == "__main__":
    main()
