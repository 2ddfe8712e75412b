"""The ``segengine`` command: ``segengine info`` and ``segengine demo [--out DIR]``."""

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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="segengine", description="segengine command line")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="versions, threads, OpenMP, CUDA/CuPy/NVRTC availability")
    demo = sub.add_parser("demo", help="run every op on a shipped image and write before/after PNGs")
    demo.add_argument("--out", default="segengine_demo", help="folder for the PNG images (default: %(default)s)")
    demo.add_argument("--device", default="cpu", help="torch device to run on (default: %(default)s)")
    args = parser.parse_args(argv)

    if args.command == "info":
        print("\n".join(info_lines()))
        return 0
    from segengine.demo import run_demo
    return run_demo(args.out, device=args.device)


if __name__ == "__main__":
    sys.exit(main())
