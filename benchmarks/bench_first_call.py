"""Time to first result: ``import segengine`` plus the first call of each op, in a fresh process.

A script that refines one image pays this every run. Each case runs in its own new Python
process (median of ``REPEAT`` processes): the child imports torch and numpy, then measures the
wall time and the resident-memory growth of ``import segengine`` + the first call on a small
input. Peers are measured the same way (their import + first call, after ``import torch``).

Target (issue 12): at most 0.15 s and 15 MB over ``import torch`` for every segengine op.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import textwrap

TARGET_S = 0.15
TARGET_MB = 15.0
REPEAT = 5

_CHILD = """
import json, time
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * {page}
import numpy as np
import torch
m0, t0 = rss(), time.perf_counter()
{body}
t1 = time.perf_counter()
print(json.dumps({{"s": t1 - t0, "mb": (rss() - m0) / 2**20}}))
"""

_INPUTS = """
rng = np.random.default_rng(0)
"""

# (op, impl, body): the body imports the library and makes the first call on small inputs
CASES = [
    ("dense_crf", "segengine", """
import segengine
img = (rng.random((64, 64, 3)) * 255).astype(np.uint8)
unary = torch.from_numpy(rng.random((1, 5, 64, 64), dtype=np.float32))
segengine.dense_crf(unary, torch.from_numpy(img).permute(2, 0, 1)[None], iterations=5)
"""),
    ("dense_crf", "pydensecrf2", """
import pydensecrf.densecrf as dcrf
img = (rng.random((64, 64, 3)) * 255).astype(np.uint8)
d = dcrf.DenseCRF2D(64, 64, 5)
d.setUnaryEnergy(np.ascontiguousarray(rng.random((5, 64 * 64), dtype=np.float32)))
d.addPairwiseGaussian(sxy=3, compat=3)
d.addPairwiseBilateral(sxy=80, srgb=13, rgbim=img, compat=10)
d.inference(5)
"""),
    ("nn.DenseCRF", "segengine", """
import segengine.nn
layer = segengine.nn.DenseCRF(num_classes=5, iterations=5)
img = torch.from_numpy((rng.random((1, 3, 64, 64)) * 255).astype(np.float32))
layer(torch.randn(1, 5, 64, 64), img)
"""),
    ("permutohedral_filter", "segengine", """
import segengine
segengine.permutohedral_filter(torch.randn(1, 4, 64, 64), torch.randn(1, 3, 64, 64))
"""),
    ("upsample_argmax", "segengine", """
import segengine
segengine.upsample_argmax(torch.randn(1, 19, 64, 128), (256, 512))
"""),
    ("upsample_argmax", "torch interpolate+argmax", """
import torch.nn.functional as F
F.interpolate(torch.randn(1, 19, 64, 128), (256, 512), mode="bilinear").argmax(1)
"""),
    ("upsample_cross_entropy", "segengine", """
import segengine
segengine.upsample_cross_entropy(torch.randn(1, 19, 64, 128), torch.randint(0, 19, (1, 256, 512)))
"""),
    ("graphcut", "segengine", """
import segengine
segengine.graphcut(torch.randn(1, 2, 64, 64), torch.rand(1, 2, 64, 64))
"""),
    ("graphcut", "PyMaxflow", """
import maxflow
g = maxflow.Graph[float]()
ids = g.add_grid_nodes((64, 64))
g.add_grid_edges(ids, rng.random((64, 64)))
u = rng.standard_normal((2, 64, 64))
g.add_grid_tedges(ids, u[1], u[0])
g.maxflow()
g.get_grid_segments(ids)
"""),
    ("alpha_expansion", "segengine", """
import segengine
segengine.alpha_expansion(torch.rand(4, 64, 64), 1.0 - torch.eye(4))
"""),
    ("watershed", "segengine", """
import segengine
image = rng.random((64, 64))
markers = np.zeros((64, 64), np.int32)
markers[8, 8], markers[50, 40], markers[30, 60] = 1, 2, 3
segengine.watershed(image, markers)
"""),
    ("watershed", "scikit-image", """
from skimage.segmentation import watershed
image = rng.random((64, 64))
markers = np.zeros((64, 64), np.int32)
markers[8, 8], markers[50, 40], markers[30, 60] = 1, 2, 3
watershed(image, markers)
"""),
    ("watershed_batch", "segengine", """
import segengine
segengine.watershed_batch(torch.rand(2, 64, 64), 5)
"""),
]


def _page() -> int:
    import os
    return os.sysconf("SC_PAGE_SIZE")


def first_call(body: str, repeat: int = REPEAT) -> tuple[float, float]:
    """Median (seconds, MiB) over ``repeat`` fresh processes."""
    code = _CHILD.format(page=_page(), body=textwrap.dedent(_INPUTS + body))
    times, mems = [], []
    for _ in range(repeat):
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=300)
        if res.returncode != 0:
            raise RuntimeError(f"first-call child failed:\n{res.stderr[-2000:]}")
        got = json.loads(res.stdout.strip().splitlines()[-1])
        times.append(got["s"])
        mems.append(got["mb"])
    return statistics.median(times), statistics.median(mems)


def run(quick: bool = False) -> list[dict]:
    rows = []
    for op, impl, body in CASES:
        try:
            s, mb = first_call(body, repeat=3 if quick else REPEAT)
        except RuntimeError as exc:
            if impl == "segengine":
                raise
            print(f"first_call: peer {impl} unavailable: {exc}", file=sys.stderr)
            continue
        check = ""
        if impl == "segengine":
            met = s <= TARGET_S and mb <= TARGET_MB
            check = f"target {TARGET_S} s / {TARGET_MB:.0f} MB: {'met' if met else 'MISSED'}"
        rows.append({"op": "time to first result", "case": op, "impl": impl, "median_s": s,
                     "peak_mb": mb, "check": check, "notes": ""})
    if rows:
        rows[0]["notes"] = ("every row: median of fresh processes; time and resident-memory growth "
                            "(the memory column) of importing the library + its first call, "
                            "measured after import torch")
    return rows
