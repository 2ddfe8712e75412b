"""Dense CRF: instructions and cache misses per pixel, segengine against pydensecrf, one thread.

    python -m benchmarks.counters [--case NAME] [--out benchmarks/results]

Hardware counters (``perf stat``) are not readable on this project's virtual machines, so
the counts come from Valgrind's callgrind with its cache simulator (``--cache-sim=yes``:
a two-level cache model, L1 and last level, sized from the host's cpuid): instructions
executed (Ir), first-level data misses (D1mr + D1mw) and last-level data misses
(DLmr + DLmw). They are exact counts of the program's work and of a model of its cache
behaviour, not hardware events; instruction counts do not depend on the load from other
processes, which wall-clock times on a shared 2-core machine do.

Method: each (case, implementation) runs in a child process under callgrind, collecting
only inside the implementation's compiled entry points (``--collect-atstart=no`` and
``--toggle-collect``): segengine's ``seg::crf_dense`` (unary conversion, both lattice
builds, normalisers, mean field) and pydensecrf's ``addPairwiseGaussian`` /
``addPairwiseBilateral`` (its lattice builds) and ``inference``. pydensecrf's unary
(``-log(clip(p))``, numpy) is outside its counts and inside segengine's. The op runs
``CALLS`` times; the totals divided by ``CALLS`` and by the pixel count are the figures.
Writes ``<machine tag>-crf-counters.md`` / ``.json`` to the output folder.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


CALLS = 2


def _crf_case(H, W, iterations):
    def setup():
        import torch

        import segengine
        from benchmarks.bench_crf import PARAMS, _inputs, _pydensecrf

        imgs, probs = _inputs(1, H, W, 21)
        image_t = torch.from_numpy(imgs).permute(0, 3, 1, 2).contiguous()
        probs_t = torch.from_numpy(probs)
        return {
            "segengine": lambda: segengine.dense_crf(probs_t, image_t, probabilities=True,
                                                     iterations=iterations, num_threads=1, **PARAMS),
            "pydensecrf": lambda: _pydensecrf(imgs, probs, iterations),
        }
    return setup


# implementation -> the functions whose calls are counted (callgrind --toggle-collect)
ENTRY_POINTS = {
    "segengine": ["seg::crf_dense*"],
    "pydensecrf": ["DenseCRF2D::addPairwiseGaussian*", "DenseCRF2D::addPairwiseBilateral*",
                   "DenseCRF::inference*"],
}

# name -> (op, case in words, pixels, set-up returning {impl: callable})
CASES = {
    "375x500-5it": ("dense_crf", "375x500 21 classes 5 it", 375 * 500, _crf_case(375, 500, 5)),
    "375x500-10it": ("dense_crf", "375x500 21 classes 10 it", 375 * 500, _crf_case(375, 500, 10)),
}

# ---------------------------------------------------------------------------- child


def _child(case: str, impl: str, calls: int) -> None:
    import torch
    torch.set_num_threads(1)
    fn = CASES[case][3]()[impl]
    for _ in range(calls):
        fn()


# ---------------------------------------------------------------------------- parent

_EVENTS = ("Ir", "D1mr", "D1mw", "DLmr", "DLmw")


def _callgrind_totals(path: str) -> dict:
    events = None
    totals = None
    with open(path) as f:
        for line in f:
            if line.startswith("events:"):
                events = line.split()[1:]
            elif line.startswith("totals:") or line.startswith("summary:"):
                totals = [int(v) for v in line.split()[1:]]
    if events is None or totals is None:
        raise RuntimeError(f"no totals in {path}")
    got = dict(zip(events, totals))
    return {e: got.get(e, 0) for e in _EVENTS}


def _run_child(case: str, impl: str, calls: int, tmp: str) -> dict:
    out = os.path.join(tmp, f"cg.{case}.{impl}")
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    cmd = ["valgrind", "--tool=callgrind", "--cache-sim=yes", "--collect-atstart=no",
           *[f"--toggle-collect={f}" for f in ENTRY_POINTS[impl]], f"--callgrind-out-file={out}",
           sys.executable, "-m", "benchmarks.counters", "--child", case, impl, str(calls)]
    subprocess.run(cmd, check=True, env=env, cwd=Path(__file__).resolve().parent.parent,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return _callgrind_totals(out)


def measure_counts(case: str, calls: int = CALLS) -> list[dict]:
    """Rows for one case: per implementation, instructions / D1 misses / LL misses per pixel."""
    op, words, pixels, _ = CASES[case]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for impl in ENTRY_POINTS:
            t0 = time.time()
            tot = _run_child(case, impl, calls, tmp)
            per = {e: tot[e] / calls / pixels for e in _EVENTS}
            rows.append(dict(op=op, case=words, impl=impl, instr_per_px=per["Ir"],
                             d1_miss_per_px=per["D1mr"] + per["D1mw"],
                             ll_miss_per_px=per["DLmr"] + per["DLmw"],
                             seconds_under_valgrind=time.time() - t0))
    se = next(r for r in rows if r["impl"] == "segengine")
    for r in rows:
        r["instr_ratio"] = r["instr_per_px"] / se["instr_per_px"]
    return rows


def write(rows: list[dict], out: Path, machine: str) -> None:
    lines = [f"# Instructions and cache misses per pixel: {machine}", "",
             f"Run on {time.strftime('%Y-%m-%d')} with `python -m benchmarks.counters`: Valgrind "
             "callgrind with its cache simulator (perf counters are not readable on this "
             "virtual machine), one thread, per call and per pixel, counted inside the "
             "compiled entry points only (segengine: `seg::crf_dense`, unary conversion "
             "included; pydensecrf: `addPairwiseGaussian`, `addPairwiseBilateral`, "
             f"`inference`; its numpy unary is not counted), {CALLS} calls. D1 = first-level "
             "data cache misses, LL = last-level data cache misses of callgrind's cache model "
             "(sized from the host's cpuid); simulated, not hardware events.", "",
             "| op | case | impl | instructions / px | x segengine | D1 misses / px | LL misses / px |",
             "|---|---|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['op']} | {r['case']} | {r['impl']} | {r['instr_per_px']:.0f} | "
                     f"{r['instr_ratio']:.2f} | {r['d1_miss_per_px']:.2f} | {r['ll_miss_per_px']:.3f} |")
    (out / f"{_tag()}-crf-counters.md").write_text("\n".join(lines) + "\n")
    (out / f"{_tag()}-crf-counters.json").write_text(
        json.dumps(dict(machine=machine, rows=rows), indent=1) + "\n")


def _tag() -> str:
    return f"cpu{os.cpu_count()}"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--case", choices=sorted(CASES), action="append")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    ap.add_argument("--child", nargs=3, metavar=("CASE", "IMPL", "CALLS"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        _child(args.child[0], args.child[1], int(args.child[2]))
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("benchmarks.counters needs valgrind (apt install valgrind)")
    from benchmarks.__main__ import machine_name
    rows = []
    for case in args.case or list(CASES):
        rows += measure_counts(case)
        print(f"{case}: done", flush=True)
    write(rows, Path(args.out), machine_name())
    print((Path(args.out) / f"{_tag()}-crf-counters.md").read_text())


if __name__ == "__main__":
    main()
