"""The ``segengine`` command: ``info``, ``demo [--out DIR]``, and the file-based runs over dask
``watershed IN OUT`` and ``crf LOGITS IMAGE OUT`` (zarr, ``.npy``, TIFF).

This module imports neither torch nor dask at import time: ``info``/``demo`` import what they
need, and the dask commands import :mod:`segengine.dask._cli` only when they run.
"""

from __future__ import annotations

import argparse
import platform
import sys


def info_lines() -> list[str]:
    """Versions and capabilities, one fact per line."""
    import numpy as np
    import torch

    import segengine
    from segengine import _cuda

    lines = [f"segengine {segengine.__version__}",
             f"Python {platform.python_version()} on {platform.system()} {platform.machine()}",
             f"torch {torch.__version__}, numpy {np.__version__}"]
    try:
        from segengine._cy import _runtime
        lines.append(f"compiled extensions: yes, OpenMP {'on' if _runtime.openmp_enabled() else 'off'} "
                     f"(OpenMP default threads {_runtime.max_threads()})")
    except ImportError as exc:
        lines.append(f"compiled extensions: missing ({exc})")
    lines.append(f"threads used by default (torch.get_num_threads()): {torch.get_num_threads()}")
    cuda = torch.cuda.is_available()
    lines.append(f"CUDA available to torch: {cuda}"
                 + (f" ({torch.cuda.get_device_name(0)}, CUDA {torch.version.cuda})" if cuda else ""))
    if _cuda.cupy_available():
        import cupy
        try:
            nvrtc = ".".join(map(str, cupy.cuda.nvrtc.getVersion()))
        except Exception as exc:  # no driver or no NVRTC library
            nvrtc = f"unavailable ({type(exc).__name__})"
        lines.append(f"CuPy {cupy.__version__}, NVRTC {nvrtc}")
    else:
        lines.append("CuPy: not installed (CUDA kernels need segengine[cuda12] or segengine[cuda13])")
    try:
        lines.append(f"CUDA kernel sources: {_cuda.csrc_dir()}")
    except FileNotFoundError as exc:
        lines.append(f"CUDA kernel sources: missing ({exc})")
    return lines


# --------------------------------------------------------------------------- dask commands

def _numbers(text: str, kind, what: str):
    """``"a,b,c"`` -> tuple of ``kind``; argparse's error on anything else."""
    try:
        return tuple(kind(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected one {what} or several separated by commas, got {text!r}") from None


def _single(values: tuple):
    return values[0] if len(values) == 1 else values


def _ints(text: str):
    """``"128"`` -> 128, ``"64,128,128"`` -> (64, 128, 128); -1 means a whole axis."""
    values = _numbers(text, int, "integer")
    if any(v < -1 or v == 0 for v in values):
        raise argparse.ArgumentTypeError(f"values must be positive (or -1 for a whole axis), got {text!r}")
    return _single(values)


def _depths(text: str):
    """``"16"`` -> 16, ``"8,16,16"`` -> (8, 16, 16); values >= 0."""
    values = _numbers(text, int, "integer")
    if any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"depth must be >= 0, got {text!r}")
    return _single(values)


def _floats(text: str):
    """``"13"`` -> 13.0, ``"13,13,20"`` -> (13.0, 13.0, 20.0)."""
    return _single(_numbers(text, float, "number"))


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _add_run_options(p: argparse.ArgumentParser) -> None:
    """Options shared by the dask commands: chunks, where to run, output handling."""
    p.add_argument("--chunks", type=_ints, default=None, metavar="C[,C...]",
                   help="dask chunks, one value per axis of the (first) input or one for all axes; "
                        "-1: whole axis (default: a zarr store's own chunks, else dask's 'auto')")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="run on an existing dask.distributed cluster (e.g. tcp://host:8786); "
                            "its dashboard address is printed")
    where.add_argument("--workers", type=_positive_int, metavar="N",
                       help="start a local cluster of N worker processes on 127.0.0.1 "
                            "(default: threads in this process)")
    p.add_argument("--threads-per-worker", type=_positive_int, metavar="T",
                   help="threads per worker with --workers (default 1), or the thread count of "
                        "the threaded scheduler without it")
    p.add_argument("--memory-limit", metavar="BYTES",
                   help="memory limit per worker with --workers, e.g. 2GiB (default: dask's 'auto')")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def _add_dask_commands(sub) -> None:
    ws = sub.add_parser(
        "watershed", help="blockwise watershed of a zarr/.npy/TIFF image with dask",
        description="Watershed of IN (2-D or 3-D) over its dask chunks, seams repaired, labels "
                    "global; writes OUT (.zarr, or .npy/.tif when small) via a temporary name.")
    ws.add_argument("input", metavar="IN", help="image: zarr store, .npy or .tif/.tiff")
    ws.add_argument("out", metavar="OUT", help="labels: .zarr, .npy, .tif or .tiff")
    ws.add_argument("--markers", metavar="M", help="seed labels (same shape as IN; 0 = unlabelled); "
                                                   "default: the image's regional minima")
    ws.add_argument("--mask", metavar="MASK", help="only nonzero voxels of MASK are labelled")
    ws.add_argument("--depth", type=_depths, metavar="D[,D...]",
                    help="halo width per axis (default: the op's default)")
    ws.add_argument("--passes", type=_positive_int, help="seam-repair passes (default: the op's default)")
    ws.add_argument("--spill-dir", metavar="DIR",
                    help="folder for the passes' per-block files (default: OUT's folder; every "
                         "worker must see it); --no-spill keeps them in dask's memory instead")
    ws.add_argument("--no-spill", action="store_true",
                    help="hand the passes' results through dask's memory (small volumes)")
    ws.add_argument("--connectivity", type=_positive_int, default=1,
                    help="neighbourhood: 1 = faces ... ndim = all neighbours (default: %(default)s)")
    ws.add_argument("--compactness", type=float, default=0.0,
                    help="compact watershed weight (default: %(default)s)")
    ws.add_argument("--watershed-line", action="store_true", help="separate basins by a one-voxel line of 0")
    _add_run_options(ws)

    crf = sub.add_parser(
        "crf", help="dense CRF of a zarr/.npy/TIFF batch or volume with dask",
        description="Dense CRF (segengine.dense_crf) of LOGITS [B, C, *spatial] guided by IMAGE "
                    "[B, K, *spatial], blockwise with a halo when the spatial axes are chunked; "
                    "writes labels [B, *spatial] or probabilities [B, C, *spatial] to OUT.")
    crf.add_argument("logits", metavar="LOGITS", help="logits (or probabilities with --probabilities)")
    crf.add_argument("image", metavar="IMAGE", help="guide image, uint8 or float in 0..255")
    crf.add_argument("out", metavar="OUT", help="result: .zarr, .npy, .tif or .tiff")
    crf.add_argument("--probabilities", action="store_true", help="LOGITS holds probabilities")
    crf.add_argument("--iterations", type=int, default=5, help="mean-field updates (default: %(default)s)")
    crf.add_argument("--gaussian-sxy", type=float, default=3.0, help="(default: %(default)s)")
    crf.add_argument("--gaussian-compat", type=float, default=3.0,
                     help="0: no Gaussian kernel (default: %(default)s)")
    crf.add_argument("--bilateral-sxy", type=float, default=80.0, help="(default: %(default)s)")
    crf.add_argument("--bilateral-srgb", type=_floats, default=13.0, metavar="S[,S...]",
                     help="colour bandwidth, one value or one per channel (default: %(default)s)")
    crf.add_argument("--bilateral-compat", type=float, default=10.0,
                     help="0: no bilateral kernel (default: %(default)s)")
    crf.add_argument("--normalization", choices=("symmetric", "after", "before", "none"), default="symmetric")
    crf.add_argument("--spacing", type=_floats, metavar="S,S[,S]", help="voxel size per spatial axis")
    crf.add_argument("--depth", type=_depths, metavar="D[,D...]",
                     help="halo width per spatial axis (default: 3 sigma of the widest kernel)")
    crf.add_argument("--output", choices=("labels", "probabilities"), default="labels",
                     help="argmax labels (uint8 up to 256 classes, else int32) or float32 marginals "
                          "(default: %(default)s)")
    _add_run_options(crf)


def _run_dask_command(args) -> int:
    try:
        from segengine.dask._cli import run
    except ImportError as exc:
        print(f"segengine {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return run(args)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``segengine`` command."""
    parser = argparse.ArgumentParser(prog="segengine", description="segengine command line")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="versions, threads, OpenMP, CUDA/CuPy/NVRTC availability")
    demo = sub.add_parser("demo", help="run every op on a shipped image and write before/after PNGs")
    demo.add_argument("--out", default="segengine_demo", help="folder for the PNG images (default: %(default)s)")
    demo.add_argument("--device", default="cpu", help="torch device to run on (default: %(default)s)")
    _add_dask_commands(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)

    if args.command in ("watershed", "crf"):
        return _run_dask_command(args)
    if args.command == "info":
        print("\n".join(info_lines()))
        return 0
    from segengine.demo import run_demo
    return run_demo(args.out, device=args.device)


if __name__ == "__main__":
    sys.exit(main())
