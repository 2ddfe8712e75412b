"""segengine's heads in real segmentation networks: training runs and Cityscapes-resolution memory.

    python -m benchmarks.real_models [--quick] [--only train|cityscapes] [--seeds 4]
                                     [--out benchmarks/results] [--render results.json]

Needs torchvision and segmentation_models_pytorch (the examples extra); run from the
repository root. Every configuration runs in a fresh child process that holds
``/tmp/segengine-bench.lock`` (``flock``) while it runs, so its ``ru_maxrss`` is its own and no
other timing run shares the machine with it:

1. training (``examples/models``): DeepLabV3-ResNet50 and Unet (decoder cut at stride 4) x the
   plain / fused / DenseCRF heads, and the unchanged Unet (stride 1) with the plain loss; per
   run the median step time, the peak step memory and the held-out mean IoU after the drivers'
   fixed step budgets (``DEFAULTS`` in deeplab.py / unet.py); DeepLabV3's plain and fused runs
   repeated with ``--seeds`` seeds (its mIoU after 40 steps from scratch varies from run to run);
2. Cityscapes resolution (1024x2048, 19 classes, ``benchmarks/models_cityscapes.py``): the loss
   head alone, forward + backward, on the low-resolution logits DeepLabV3 (stride 8) and the cut
   Unet (stride 4) produce; and one full training step of each network at batch 1, at the
   largest of 256x512, 512x1024 and 1024x2048 whose memory (extrapolated from the 256x512 step
   by pixel count) fits in the memory available, with a hard address-space cap in the child;
   and where DeepLabV3's step reaches its peak (forward, loss head or backward).

Writes ``models-<machine>.md`` and ``.json`` (``<machine>`` = cpu<N> as ``python -m benchmarks``).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCK = "/tmp/segengine-bench.lock"
HEADS = ("plain", "fused", "crf")
CITYSCAPES = (1024, 2048)
LADDER = [(256, 512), (512, 1024), (1024, 2048)]
SAFETY_MB = 3072          # memory left to the machine's other users when sizing a full step

TRAIN = ([("deeplab", [], h) for h in HEADS]
         + [("unet", ["--output-stride", "4"], h) for h in HEADS]
         + [("unet", ["--output-stride", "1"], "plain")])


def seed_runs(seeds: int) -> list:
    """DeepLabV3 plain and fused again with seeds 1..seeds-1: trained from scratch for a few
    dozen steps, the same training (plain == fused to rounding) drifts apart by this much."""
    return [("deeplab", ["--seed", str(s)], h) for s in range(1, seeds) for h in ("plain", "fused")]
# (label, h, w) of the low-resolution logits at 1024x2048
HEAD_SHAPES = [("DeepLabV3 logits (stride 8)", 128, 256), ("Unet logits (stride 4)", 256, 512)]
STEP_MODELS = [("deeplabv3_resnet50", ("plain", "fused")), ("unet_os4", ("plain", "fused")),
               ("unet_os1", ("plain",))]


def cpu_model() -> str:
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def mem_available_mb() -> float:
    for line in open("/proc/meminfo"):
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no MemAvailable in /proc/meminfo")


def cpu_pressure() -> str:
    """``some avg60`` of /proc/pressure/cpu: the share of time runnable tasks waited for a CPU."""
    try:
        return open("/proc/pressure/cpu").readline().split()[2].split("=")[1] + " %"
    except (OSError, IndexError):
        return "n/a"


@contextmanager
def bench_lock():
    with open(LOCK, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def run_child(cmd: list[str], log) -> tuple[str, dict]:
    """Run ``cmd`` holding the lock; stdout and the load around it."""
    with bench_lock():
        load = os.getloadavg()[0]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        ctx = {"load1_before": load, "cpu_pressure_avg60_after": cpu_pressure(), "wall_s": wall}
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    log(f"    ({wall:.0f} s, load {load:.1f} before, CPU pressure {ctx['cpu_pressure_avg60_after']})")
    return proc.stdout, ctx


def train_runs(quick: bool, log, configs=TRAIN) -> list[dict]:
    rows = []
    for driver, args, head in configs:
        with tempfile.TemporaryDirectory() as d:
            out = Path(d) / "r.json"
            cmd = [sys.executable, "-m", f"examples.models.{driver}", "--head", head,
                   "--json", str(out), *args] + (["--quick"] if quick else [])
            log(f"  train {driver} {' '.join(args)} --head {head}")
            _, ctx = run_child(cmd, log)
            rep = json.loads(out.read_text())
        r = rep["results"][0]
        rows.append({"model": rep["model"], "config": rep["config"], "threads": rep["threads"],
                     "torch": rep["torch"], **r, **ctx})
        log(f"    median step {r['median_step_s']:.2f} s, peak step {r['peak_step_mb']:.0f} MiB, "
            f"held-out mIoU {r['miou']:.4f}")
    return rows


def measure(spec: dict, log) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.models_cityscapes", json.dumps(spec)]
    out, ctx = run_child(cmd, log)
    return {**json.loads(out.strip().splitlines()[-1]), **ctx}


def head_rows(quick: bool, log) -> list[dict]:
    H, W = (256, 512) if quick else CITYSCAPES
    scale = CITYSCAPES[0] // H
    rows = []
    for label, h, w in HEAD_SHAPES:
        for head in ("plain", "fused"):
            spec = {"kind": "head", "head": head, "B": 1, "C": 19, "h": h // scale, "w": w // scale,
                    "H": H, "W": W}
            log(f"  head alone: {label}, {head}")
            rows.append({"label": label, **measure(spec, log)})
    return rows


def step_rows(quick: bool, log) -> list[dict]:
    """Each model at 256x512 with each head; then the largest size that fits, by extrapolation."""
    ladder = [(64, 128), (128, 256)] if quick else LADDER
    rows = []
    for model, heads in STEP_MODELS:
        small = {}
        for head in heads:
            spec = {"kind": "step", "model": model, "head": head, "B": 1,
                    "H": ladder[0][0], "W": ladder[0][1]}
            log(f"  full step: {model}, {head}, {ladder[0][0]}x{ladder[0][1]}")
            small[head] = r = measure(spec, log)
            rows.append(r)
        need = max(r["rss_before_mb"] + r["maxrss_extra_mb"] for r in small.values())
        grow = max(r["maxrss_extra_mb"] for r in small.values())
        chosen = None
        for H, W in ladder[1:]:
            k = H * W / (ladder[0][0] * ladder[0][1])
            estimate = need - grow + grow * k
            if estimate < mem_available_mb() - SAFETY_MB:
                chosen = (H, W, estimate)
        if chosen is None:
            log(f"  {model}: no larger size fits")
            continue
        H, W, estimate = chosen
        for head in heads:
            cap = mem_available_mb() - SAFETY_MB - (need - grow)
            spec = {"kind": "step", "model": model, "head": head, "B": 1, "H": H, "W": W,
                    "limit_mb": round(cap)}
            log(f"  full step: {model}, {head}, {H}x{W} (estimated {estimate / 1024:.1f} GiB, "
                f"cap {cap / 1024:.1f} GiB)")
            rows.append({**measure(spec, log), "estimated_mb": estimate})
    return rows


def phase_rows(quick: bool, log) -> list[dict]:
    """Where DeepLabV3's step peaks (forward / loss head / backward), plain and fused at the
    ladder's first size, plain at Cityscapes resolution when the step fitted there."""
    small = [(64, 128)] if quick else LADDER[:1]
    specs = [(H, W, head) for H, W in small for head in ("plain", "fused")]
    if not quick and mem_available_mb() - SAFETY_MB > 12 * 1024:
        specs.append((*CITYSCAPES, "plain"))
    rows = []
    for H, W, head in specs:
        spec = {"kind": "phases", "model": "deeplabv3_resnet50", "head": head, "B": 1, "H": H, "W": W}
        log(f"  phases: deeplabv3_resnet50, {head}, {H}x{W}")
        rows.append(measure(spec, log))
    return rows


# --------------------------------------------------------------------------------- report

def _pairs(rows, key) -> dict:
    """{group: {head: row}} with ``key(row)`` the group (rows measured with several heads)."""
    out = {}
    for r in rows:
        if r.get("fits", True):
            out.setdefault(key(r), {})[r["spec"]["head"]] = r
    return out


def _saving_lines(rows, key, field, what) -> list[str]:
    lines = []
    for group, by_head in _pairs(rows, key).items():
        if "plain" in by_head and "fused" in by_head:
            p, f = by_head["plain"][field], by_head["fused"][field]
            lines.append(f"- {group}, {what}: plain {p:.0f} MiB, fused {f:.0f} MiB "
                         f"(fused saves {p - f:.0f} MiB, {(p - f) / p:.0%}).")
    return lines


def _seed_lines(rows) -> list[str]:
    """Mean and range of the held-out mIoU over seeds, per model and head run with several."""
    by = {}
    for r in rows:
        by.setdefault((r["model"]["name"], r["head"]), []).append(r["miou"])
    return [f"- {model}, {head}: held-out mIoU over {len(v)} seeds: mean {sum(v) / len(v):.3f}, "
            f"range {min(v):.3f}-{max(v):.3f}." for (model, head), v in by.items() if len(v) > 1]


class _N(str):
    """A formatted number (a right-aligned cell)."""


def _n(value, fmt: str) -> _N:
    return _N(format(value, fmt))


def _section(title: str, intro: str, columns: list[str], rows: list[list], after=()) -> list[str]:
    """A Markdown section: title, intro, a table (columns whose first cell is a number,
    :class:`_N`, right-aligned), then ``after`` lines."""
    numeric = [isinstance(c, _N) for c in rows[0]] if rows else [False] * len(columns)
    align = "|" + "|".join("---:" if n else "---" for n in numeric) + "|"
    body = ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return [f"## {title}", "", intro, "", "| " + " | ".join(columns) + " |", align, *body,
            "", *after, *([""] if after else [])]


def _train_section(rows) -> list[str]:
    cfg = rows[0]["config"]
    cells = [[r["model"]["name"], _n(r["model"]["output_stride"], "d"), r["head"],
              _n(r["config"]["seed"], "d"), _n(r["config"]["steps"], "d"), _n(r["median_step_s"], ".2f"),
              _n(r["peak_step_mb"], ".0f"), _n(r["first_step_peak_mb"], ".0f"),
              _n(r["max_rss_mb"] - r["rss_start_mb"], ".0f"), _n(r["miou"], ".3f")] for r in rows]
    return _section(
        "Training from scratch on synthetic scenes (examples/models)",
        f"Fixed budget, same initial weights and batches for every head of a model; "
        f"{cfg['size']}x{cfg['size']} images, batch {cfg['batch']}, Adam (fused), 6 classes, "
        f"{cfg['train_images']} training scenes, a held-out split of {cfg['heldout_images']}. Median "
        f"step time and peak step memory leave out step 0 (it allocates the gradients and the "
        f"optimizer state).",
        ["model", "output stride", "head", "seed", "steps", "median step (s)", "peak step memory (MiB)",
         "first step peak (MiB)", "process peak (MiB)", "held-out mIoU"], cells, _seed_lines(rows))


def _head_section(rows) -> list[str]:
    cells = [[f"{r['label']} [1,19,{r['spec']['h']},{r['spec']['w']}] -> {r['spec']['H']}x{r['spec']['W']}",
              r["spec"]["head"], _n(r["median_s"] * 1e3, ".0f"), _n(r["peak_extra_mb"], ".0f"),
              _n(r["maxrss_extra_mb"], ".0f")] for r in rows]
    return _section(
        "Cityscapes resolution: the loss head alone",
        "Forward + backward from the network's low-resolution logits (batch 1, 19 classes, "
        "requires_grad) to the loss on 1024x2048 labels: plain = `F.interpolate` + "
        "`F.cross_entropy`, fused = `segengine.upsample_cross_entropy`.",
        ["logits", "head", "median fwd+bwd (ms)", "peak memory (MiB)", "process peak (MiB)"], cells,
        _saving_lines(rows, lambda r: r["label"], "peak_extra_mb", "peak memory"))


def _step_section(rows) -> list[str]:
    cells, notes = [], []
    for r in rows:
        s = r["spec"]
        if not r.get("fits", True):
            cells.append([s["model"], f"{s['H']}x{s['W']}", s["head"], f"did not fit: {r['error']}",
                          "", "", ""])
            continue
        cells.append([s["model"], f"{s['H']}x{s['W']}", s["head"], _n(r["step_s"], ".1f"),
                      _n(r["peak_extra_mb"], ".0f"), _n(r["maxrss_extra_mb"], ".0f"),
                      _N(r["cpu_pressure_avg60_after"])])
        if "earlier_run" in r:
            e = r["earlier_run"]
            notes.append(f"- {s['model']} {s['H']}x{s['W']} {s['head']}: measured twice; the first "
                         f"run: {e['step_s']:.1f} s, {e['peak_extra_mb']:.0f} MiB, CPU pressure "
                         f"{e['cpu_pressure_avg60_after']} (the table: the second).")
    savings = _saving_lines(rows, lambda r: f"{r['spec']['model']} at {r['spec']['H']}x{r['spec']['W']}",
                            "peak_extra_mb", "peak step memory")
    return _section(
        "Cityscapes resolution: one full training step of the real network",
        "Batch 1, 19 classes, BatchNorm in eval mode (batch 1), after a warm-up step at 64x128 "
        "(gradients and Adam state already allocated); one measured step each.",
        ["model", "image", "head", "step (s)", "peak step memory (MiB)", "process peak (MiB)",
         "CPU pressure after (avg60)"], cells, savings + notes)


def _phase_section(rows) -> list[str]:
    cells = [[f"{r['spec']['H']}x{r['spec']['W']}", r["spec"]["head"], _n(r["after_forward_mb"], ".0f"),
              _n(r["head_peak_mb"], ".0f"), _n(r["backward_peak_mb"], ".0f")] for r in rows]
    return _section(
        "Where DeepLabV3's training step peaks",
        "Resident memory above the level before the step (batch 1, eval-mode BatchNorm, gradients "
        "already allocated): at the end of the forward, at the loss head's peak, at the backward's peak.",
        ["image", "head", "after forward (MiB)", "head peak (MiB)", "backward peak (MiB)"], cells)


def markdown(data: dict) -> str:
    env = data["environment"]
    lines = [f"# segengine's heads in real segmentation models: {env['cpu']}", "",
             f"Run on {env['date']} with `python -m benchmarks.real_models` "
             f"(examples/models, benchmarks/models_cityscapes.py).", "",
             f"- CPU: {env['cpu']}, {env['cpus']} logical CPUs; torch threads: {env['threads']}",
             f"- torch {env['torch']}, torchvision {env['torchvision']}, "
             f"segmentation_models_pytorch {env['smp']}, Python {env['python']}",
             "- Time: wall clock. Memory (MiB): peak resident memory during the step above the "
             "resident memory before it, sampled every 1 ms from /proc/self/statm (glibc set to "
             "return freed blocks >= 1 MiB to the OS), each configuration in a fresh process; "
             "\"process peak\" is ru_maxrss above the resident memory before the first step.",
             f"- The machine is shared: the 1-minute load average before each run was "
             f"{env['load_range']}, so step times are indicative (medians); memory is not "
             f"affected by load.", ""]
    for part, section in (("train", _train_section), ("head", _head_section),
                          ("step", _step_section), ("phases", _phase_section)):
        if data.get(part):
            lines += section(data[part])
    return "\n".join(lines)


def summary(data: dict) -> list[dict]:
    """One flat row per measurement (the first list of the JSON file: what a generic table of
    its scalar fields shows)."""
    rows = []
    for r in data.get("train", []):
        rows.append({"part": "training (64x64, batch 4)", "model": r["model"]["name"],
                     "input": f"stride {r['model']['output_stride']}, {r['config']['steps']} steps, "
                              f"seed {r['config']['seed']}",
                     "head": r["head"], "time_s": r["median_step_s"], "peak_mb": r["peak_step_mb"],
                     "miou": r["miou"]})
    for r in data.get("head", []):
        s = r["spec"]
        rows.append({"part": "loss head alone, fwd+bwd", "model": r["label"],
                     "input": f"[{s['B']},{s['C']},{s['h']},{s['w']}] -> {s['H']}x{s['W']}",
                     "head": s["head"], "time_s": r["median_s"], "peak_mb": r["peak_extra_mb"],
                     "miou": None})
    for r in data.get("step", []):
        s = r["spec"]
        rows.append({"part": "full training step, batch 1", "model": s["model"],
                     "input": f"{s['H']}x{s['W']}", "head": s["head"], "time_s": r.get("step_s"),
                     "peak_mb": r.get("peak_extra_mb"), "miou": None})
    return rows


def environment(rows) -> dict:
    import torch
    env = {"cpu": cpu_model(), "cpus": os.cpu_count(), "threads": torch.get_num_threads(),
           "torch": torch.__version__, "python": platform.python_version(),
           "date": time.strftime("%Y-%m-%d")}
    for key, mod in (("torchvision", "torchvision"), ("smp", "segmentation_models_pytorch")):
        try:
            env[key] = __import__(mod).__version__
        except Exception as e:  # noqa: BLE001
            env[key] = f"not importable ({type(e).__name__})"
    loads = [r["load1_before"] for r in rows if "load1_before" in r]
    env["load_range"] = f"{min(loads):.1f}-{max(loads):.1f}" if loads else "n/a"
    return env


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.real_models", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny configurations (a smoke run)")
    ap.add_argument("--only", choices=("train", "cityscapes"), help="run one part")
    ap.add_argument("--seeds", type=int, default=4,
                    help="DeepLabV3 plain/fused trained with this many seeds (default 4; 1: seed 0 only)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--render", metavar="JSON", help="measure nothing: rewrite the .md (and the "
                    "JSON's summary) from this results file")
    args = ap.parse_args(argv)
    log = lambda msg: print(msg, flush=True)  # noqa: E731
    if args.render:
        path = Path(args.render)
        data = json.loads(path.read_text())
        data = {"summary": summary(data), **{k: v for k, v in data.items() if k != "summary"}}
        path.write_text(json.dumps(data, indent=1))
        path.with_suffix(".md").write_text(markdown(data))
        return data
    data = {}
    if args.only in (None, "train"):
        log("training runs")
        data["train"] = train_runs(args.quick, log, TRAIN[:3] + seed_runs(args.seeds) + TRAIN[3:])
    if args.only in (None, "cityscapes"):
        log("Cityscapes resolution")
        data["head"] = head_rows(args.quick, log)
        data["step"] = step_rows(args.quick, log)
        data["phases"] = phase_rows(args.quick, log)
    data["environment"] = environment([r for part in ("train", "head", "step") for r in data.get(part, [])])
    data = {"summary": summary(data), **data}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"models-cpu{os.cpu_count()}" + ("-quick" if args.quick else "")
    (out / f"{stem}.json").write_text(json.dumps(data, indent=1))
    (out / f"{stem}.md").write_text(markdown(data))
    print(markdown(data))
    return data


if __name__ == "__main__":
    main()
