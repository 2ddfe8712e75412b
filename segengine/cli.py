"""The ``segengine`` command: ``info``, ``demo [--out DIR]``, and the file-based runs over dask
``watershed IN OUT`` and ``crf LOGITS IMAGE OUT`` (zarr, ``.npy``, TIFF).

This module imports neither torch nor dask at import time: ``info``/``demo`` import what they
need, and the dask commands import :mod:`segengine.dask._cli` only when they run.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from collections.abc import Sequence
from pathlib import Path


def _bundled_libraries(package_dir: Path) -> list[str]:
    """Shared libraries a wheel repair tool copied in: ``segengine.libs/`` beside the package
    (auditwheel, delvewheel) or ``segengine/.dylibs/`` inside it (delocate)."""
    names = []
    for folder in (package_dir.parent / "segengine.libs", package_dir / ".dylibs"):
        if folder.is_dir():
            names += sorted(p.name for p in folder.iterdir() if p.is_file())
    return names


def describe_build(kind: str, *, location: str = "", wheel_tags: Sequence[str] = (),
                   direct_url: dict | None = None, bundled: Sequence[str] = ()) -> str:
    """One line saying which build of segengine this is.

    Parameters
    ----------
    kind : {"editable", "installed", "source"}
        ``editable``: an editable install of a checkout; ``installed``: a copy installed from
        a wheel (the wheel pip built from an sdist or a folder counts as that, see below);
        ``source``: a source tree on ``sys.path`` that no installed distribution describes.
    location : str
        The checkout (editable, source) or the folder of the installed package.
    wheel_tags : sequence of str
        The ``Tag:`` lines of the installed ``.dist-info/WHEEL`` file, e.g.
        ``["cp311-cp311-manylinux_2_34_x86_64"]``.
    direct_url : dict or None
        The installed ``direct_url.json`` (PEP 610): present when pip installed from a URL or
        a local file or folder, absent for an install from an index.
    bundled : sequence of str
        File names of the libraries the wheel repair tool bundled.

    Returns
    -------
    str
        e.g. ``"binary wheel cp311-cp311-manylinux_2_34_x86_64 (bundled: libgomp-....so.1.0.0)"``.
    """
    if kind == "editable":
        return f"editable install of the source tree {location} (compiled in place)"
    if kind == "source":
        return f"source tree {location} (not installed; compiled in place)"
    tags = ", ".join(wheel_tags) or "unknown tag"
    url = (direct_url or {}).get("url", "")
    origin = f", installed from {url.rsplit('/', 1)[-1]}" if url else ""
    repaired = any(("manylinux" in t or "musllinux" in t) for t in wheel_tags)
    if repaired or bundled:
        extra = f" (bundled: {', '.join(bundled)})" if bundled else ""
        return f"binary wheel {tags}{extra}{origin}"
    # pip builds a wheel from an sdist or a folder and installs it: a platform tag that no
    # repair tool made portable (linux_x86_64, or macOS/Windows without bundled libraries).
    if url.endswith((".tar.gz", ".zip")):
        return f"built from the sdist {url.rsplit('/', 1)[-1]} on this machine ({tags})"
    if "dir_info" in (direct_url or {}):
        return f"built from the source folder {url} on this machine ({tags})"
    if url.endswith(".whl"):
        return f"wheel built on a machine like this one, not repaired ({tags}{origin})"
    return f"built from source on this machine ({tags})"


def build_kind() -> str:
    """Which build of segengine is imported: wheel, built from an sdist, editable, or a source tree."""
    from importlib import metadata
    from urllib.parse import urlparse
    from urllib.request import url2pathname

    import segengine

    package_dir = Path(segengine.__file__).resolve().parent
    dists = list(metadata.distributions(name="segengine"))
    for dist in dists:  # an editable install whose source tree holds the imported package
        info = json.loads(dist.read_text("direct_url.json") or "{}")
        if info.get("dir_info", {}).get("editable"):
            root = Path(url2pathname(urlparse(info.get("url", "")).path)).resolve()
            if package_dir.is_relative_to(root):
                return describe_build("editable", location=str(root))
    for dist in dists:  # an installed copy whose files are the imported ones
        wheel = dist.read_text("WHEEL")
        here = Path(dist.locate_file("segengine/__init__.py")).resolve().parent
        if wheel and here == package_dir:
            tags = [line.split(":", 1)[1].strip() for line in wheel.splitlines() if line.startswith("Tag:")]
            return describe_build("installed", location=str(package_dir), wheel_tags=tags,
                                  direct_url=json.loads(dist.read_text("direct_url.json") or "null"),
                                  bundled=_bundled_libraries(package_dir))
    return describe_build("source", location=str(package_dir.parent))


def compiled_lines() -> list[str]:
    """The compiled extensions' facts: compiler, OpenMP, instruction sets, run-time dispatch."""
    try:
        from segengine._cy import _runtime
    except ImportError as exc:
        return [f"compiled extensions: missing ({exc})"]
    f = _runtime.build_facts()
    lines = [f"compiled extensions: yes, {f['compiler']}, C++ {f['cplusplus']}"]
    if f["openmp"]:
        lines.append(f"OpenMP: on, specification {f['openmp_spec']}, runtime "
                     f"{f['openmp_library'] or 'unknown'}, default threads {_runtime.max_threads()}")
    else:
        lines.append("OpenMP: off (serial kernels)")
    cpu = ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in f["cpu"].items())
    lines.append(f"instruction sets compiled for: {' '.join(f['isa']) or 'compiler default'}"
                 + (f"; this processor: {cpu}" if cpu else ""))
    if f["dispatch"]:
        lines.append("run-time dispatch (other kernels: the instruction sets above only):")
        lines += [f"  - {d}" for d in f["dispatch"]]
    else:
        lines.append("run-time dispatch: none (every kernel runs the instruction sets above)")
    return lines


def info_lines() -> list[str]:
    """Versions, build, and capabilities, one fact per line."""
    import numpy as np
    import torch

    import segengine
    from segengine import _cuda

    lines = [f"segengine {segengine.__version__}",
             f"build: {build_kind()}",
             f"Python {platform.python_version()} on {platform.system()} {platform.machine()}",
             f"torch {torch.__version__}, numpy {np.__version__}"]
    lines += compiled_lines()
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
    sub.add_parser("info", help="versions, build (wheel/sdist/editable, compiler, OpenMP, instruction "
                                "sets), threads, CUDA/CuPy/NVRTC availability")
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
