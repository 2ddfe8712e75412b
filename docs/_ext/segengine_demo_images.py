"""Sphinx extension: the user guide's pictures, made by ``segengine demo`` at build time.

When the builder starts, the quick demo modules of :mod:`segengine.demos` run on the image
shipped with the package and write their PNGs to ``docs/_generated/demo/`` (ignored by git),
so the pictures in the pages always show what the installed code does. Pages use them as
``/_generated/demo/<name>.png``.

One demo is too slow for every docs build: ``crf_layer`` trains a small network and then a
CRF-as-RNN layer (1.5-2 minutes on 2 cores). Its picture is a snapshot committed under
``docs/_static/demo/`` (regenerate it with ``segengine demo --out demo_out`` and copy
``demo_out/crf_layer.png``). A demo module that is in neither list is reported as a warning
(an error under ``-W``), so a new demo gets a decision instead of silently missing pictures.
"""

from __future__ import annotations

import pkgutil
import time
from importlib import import_module
from pathlib import Path

from sphinx.util import logging

logger = logging.getLogger(__name__)

QUICK = ("crf", "graphcut", "upsample", "watershed")
SNAPSHOT = {"crf_layer": "trains a network and a CRF layer (1.5-2 minutes): picture committed "
                         "in docs/_static/demo/crf_layer.png"}


def generate(out_dir: Path) -> list[tuple[str, float]]:
    """Run the quick demos into ``out_dir``; return their ``(step, seconds)`` rows."""
    import segengine.demos as demos
    from segengine.demo import load_image, save_png

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir.parent / ".gitignore").write_text("*\n")
    image = load_image()
    save_png(image, out_dir / "input.png")
    rows = []
    for name in sorted(m.name for m in pkgutil.iter_modules(demos.__path__)):
        if name in QUICK:
            rows += import_module(f"segengine.demos.{name}").run(image, out_dir, "cpu")
        elif name not in SNAPSHOT:
            logger.warning(f"segengine.demos.{name} is neither run by the docs build nor "
                           f"snapshotted: add it to QUICK or SNAPSHOT in {Path(__file__).name}")
    return rows


def _builder_inited(app) -> None:
    out_dir = Path(app.srcdir) / "_generated" / "demo"
    t0 = time.perf_counter()
    rows = generate(out_dir)
    logger.info(f"segengine demo pictures: {len(rows)} steps in {time.perf_counter() - t0:.1f} s "
                f"-> {out_dir}")


def setup(app):
    app.connect("builder-inited", _builder_inited)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
