"""Training loop, held-out evaluation and command line shared by the model drivers.

A driver (``deeplab.py``, ``unet.py``) supplies ``build_net() -> nn.Module`` mapping raw images
``[B, 3, H, W]`` (float32, 0..255) to low-resolution logits ``[B, C, H/s, W/s]``; this module
trains a copy of the same initial network with each head of :mod:`.heads` for a fixed number
of steps and reports, per head: every step's wall time, peak memory (:class:`.measure.StepMeter`)
and loss, and the held-out mean IoU (:class:`segengine.metrics.ConfusionMatrix`).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import statistics
from dataclasses import dataclass
from typing import Callable, Optional

import torch
from torch import nn

from segengine.metrics import ConfusionMatrix

from .data import CLASS_NAMES, NUM_CLASSES, Split, train_and_heldout
from .heads import HEADS, make_head
from .measure import StepMeter, max_rss_mb, rss_mb


@dataclass
class Config:
    """One run: image size, split sizes, batch, the fixed step budget, learning rates, seed."""
    size: int = 64
    train_images: int = 256
    heldout_images: int = 64
    batch: int = 4
    steps: int = 40
    lr: float = 1e-3
    crf_lr: float = 1e-2      # the DenseCRF layer's compatibilities and kernel weights
    seed: int = 0
    eval_batch: int = 16


def train(net: nn.Module, head: nn.Module, data: Split, cfg: Config,
          log: Callable[[str], None] = print) -> list[dict]:
    """Train ``net`` (and the head's parameters) for ``cfg.steps`` Adam steps on random batches.

    Returns one record per step: ``time_s``, ``peak_extra_mb`` (see :mod:`.measure`),
    ``rss_before_mb`` and ``loss``.
    """
    groups = [{"params": list(net.parameters())}]
    head_params = list(head.parameters())
    if head_params:
        groups.append({"params": head_params, "lr": cfg.crf_lr})
    # fused Adam: one pass over the parameters, no parameter-sized temporaries per step
    opt = torch.optim.Adam(groups, lr=cfg.lr, fused=True)
    gen = torch.Generator().manual_seed(cfg.seed)
    net.train()
    head.train()
    records = []
    for step in range(cfg.steps):
        idx = torch.randint(0, len(data.images), (cfg.batch,), generator=gen)
        images, target = data.images[idx], data.labels[idx]
        with StepMeter() as meter:
            opt.zero_grad(set_to_none=False)   # gradients stay allocated after step 0
            loss = head.loss(net(images), images, target)
            loss.backward()
            opt.step()
        value = float(loss.detach())
        if value != value:
            raise FloatingPointError(f"step {step}: the loss is NaN")
        records.append({"time_s": meter.seconds, "peak_extra_mb": meter.peak_extra_mb,
                        "rss_before_mb": meter.rss_before_mb, "loss": value})
        log(f"    step {step:3d}  loss {value:.4f}  {meter.seconds:6.2f} s  "
            f"peak +{meter.peak_extra_mb:7.1f} MiB")
    return records


@torch.no_grad()
def evaluate(net: nn.Module, head: nn.Module, data: Split, cfg: Config) -> torch.Tensor:
    """Per-class IoU ``[NUM_CLASSES]`` (float64, NaN for a class absent from both) on ``data``."""
    net.eval()
    head.eval()
    cm = ConfusionMatrix(NUM_CLASSES)
    for start in range(0, len(data.images), cfg.eval_batch):
        images = data.images[start:start + cfg.eval_batch]
        cm.update(head.predict(net(images), images), data.labels[start:start + cfg.eval_batch])
    return cm.iou()


def summarize(records: list[dict]) -> dict:
    """Median step time and largest step peak, step 0 left out (it also allocates the gradients
    and the optimizer state, and sets up oneDNN's kernels); the first step's peak on its own."""
    later = records[1:] or records
    return {"median_step_s": statistics.median(r["time_s"] for r in later),
            "peak_step_mb": max(r["peak_extra_mb"] for r in later),
            "first_step_peak_mb": records[0]["peak_extra_mb"]}


def run_heads(build_net: Callable[[], nn.Module], heads, cfg: Config,
              log: Callable[[str], None] = print) -> list[dict]:
    """Train one copy of the same initial network per head and evaluate it on the held-out split.

    Returns one result per head: ``head``, ``steps`` (the per-step records), ``median_step_s``,
    ``peak_step_mb``, ``first_step_peak_mb``, ``miou``, ``iou`` (per class), ``rss_start_mb``
    (before the data and the network) and ``max_rss_mb`` (this process's high-water mark so far:
    a figure of the head's own for the first head of a fresh process only).
    """
    rss_start = rss_mb()
    train_split, heldout = train_and_heldout(cfg.train_images, cfg.heldout_images, cfg.size, cfg.seed)
    torch.manual_seed(cfg.seed)
    initial = build_net()
    results = []
    for name in heads:
        net = copy.deepcopy(initial)
        head = make_head(name, NUM_CLASSES)
        torch.manual_seed(cfg.seed + 1)         # the same dropout masks for every head
        log(f"  head {name}:")
        records = train(net, head, train_split, cfg, log)
        iou = evaluate(net, head, heldout, cfg)
        miou = float(iou[~iou.isnan()].mean())
        results.append({"head": name, "steps": records, **summarize(records), "miou": miou,
                        "iou": {c: float(v) for c, v in zip(CLASS_NAMES, iou)},
                        "rss_start_mb": rss_start, "max_rss_mb": max_rss_mb(), "rss_end_mb": rss_mb()})
        log(f"  head {name}: held-out mean IoU {miou:.4f}")
    return results


def parser(description: str, defaults: Config) -> argparse.ArgumentParser:
    """The options every driver shares; ``defaults`` fills the help text."""
    ap = argparse.ArgumentParser(description=description,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="tiny configuration (seconds; what the tests run)")
    ap.add_argument("--head", default="all", choices=HEADS + ("all",),
                    help="which head to train (default: all three, one after the other)")
    for field in ("steps", "batch", "size", "train_images", "heldout_images", "seed"):
        ap.add_argument("--" + field.replace("_", "-"), type=int, default=None,
                        help=f"default {getattr(defaults, field)}")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--json", help="write the results here")
    return ap


def config_from(args: argparse.Namespace, defaults: Config, quick: Config) -> Config:
    """``quick`` or ``defaults``, with the options given on the command line."""
    base = quick if args.quick else defaults
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(Config)
             if getattr(args, f.name, None) is not None}
    for name, value in given.items():
        if value < (0 if name == "seed" else 1):
            raise SystemExit(f"--{name.replace('_', '-')} must be {'>= 0' if name == 'seed' else '>= 1'}, "
                             f"got {value}")
    return dataclasses.replace(base, **given)


def run_cli(args: argparse.Namespace, cfg: Config, model: dict,
            build_net: Callable[[], nn.Module], log: Callable[[str], None] = print) -> dict:
    """Run the heads chosen by ``args``; print a summary, write ``--json``; return the report.

    ``model`` describes the network (name, output stride, ...) and goes into the report.
    """
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    heads = HEADS if args.head == "all" else (args.head,)
    log(f"{model['name']}: {cfg}")
    results = run_heads(build_net, heads, cfg, log)
    report = {"model": model, "config": dataclasses.asdict(cfg), "threads": torch.get_num_threads(),
              "torch": torch.__version__, "results": results}
    log(f"\n{'head':6s} {'median step (s)':>16s} {'peak step (MiB)':>16s} {'held-out mIoU':>14s}")
    for r in results:
        log(f"{r['head']:6s} {r['median_step_s']:16.3f} {r['peak_step_mb']:16.1f} {r['miou']:14.4f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    return report


def main_for(description: str, defaults: Config, quick: Config, describe: Callable,
             build: Callable, argv: Optional[list] = None, extra_args: Optional[Callable] = None) -> dict:
    """A driver's ``main``: parse ``argv``, then ``describe(args) -> dict`` and
    ``build(args) -> nn.Module`` give the network for :func:`run_cli`."""
    ap = parser(description, defaults)
    if extra_args is not None:
        extra_args(ap)
    args = ap.parse_args(argv)
    cfg = config_from(args, defaults, quick)
    return run_cli(args, cfg, describe(args), lambda: build(args))
