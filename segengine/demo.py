"""``segengine demo``: every op end to end on the image shipped with the package.

Each module in :mod:`segengine.demos` exposes ``run(image, out_dir, device)`` that
writes its before/after PNGs and returns timing rows ``(step, seconds)``.
"""

from __future__ import annotations

import importlib
import pkgutil
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image


def load_image() -> np.ndarray:
    """The shipped demo image: uint8 RGB ``[H, W, 3]``."""
    with resources.files("segengine.data").joinpath("astronaut.png").open("rb") as f:
        return np.asarray(Image.open(f).convert("RGB"))


def save_png(array: np.ndarray, path: Path) -> None:
    """Write a uint8 ``[H, W]`` or ``[H, W, 3]`` array as PNG."""
    Image.fromarray(np.ascontiguousarray(array)).save(path)


def label_colors(labels: np.ndarray, seed: int = 7) -> np.ndarray:
    """Colour an integer label image ``[H, W]`` with a fixed random palette (uint8 RGB)."""
    labels = np.asarray(labels)
    lo = int(labels.min()) if labels.size else 0
    n = int(labels.max()) - lo + 1 if labels.size else 1
    palette = np.random.default_rng(seed).integers(40, 256, size=(n, 3), dtype=np.uint8)
    return palette[labels - lo]


def run_demo(out: str, device: str = "cpu") -> int:
    import segengine.demos as demos

    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    image = load_image()
    save_png(image, out_dir / "input.png")
    rows = []
    for mod in sorted(m.name for m in pkgutil.iter_modules(demos.__path__)):
        module = importlib.import_module(f"segengine.demos.{mod}")
        rows += module.run(image, out_dir, device)
    width = max(len(r[0]) for r in rows) if rows else 10
    print(f"segengine demo on a {image.shape[1]}x{image.shape[0]} image, device {device}; PNGs in {out_dir}/")
    print(f"{'step':<{width}}  time (ms)")
    for name, seconds in rows:
        print(f"{name:<{width}}  {seconds * 1e3:9.1f}")
    return 0
