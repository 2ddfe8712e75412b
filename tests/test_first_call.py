"""A script's first segengine call must not pay for the compiler stack: no op imports
``torch._dynamo`` on its first call (it did through ``torch.library.custom_op``'s kernel
wrapper: 1-2 s and 70-90 MB). Run in a fresh child process; the timing itself is a benchmark
row (benchmarks/bench_first_call.py), not a test."""

import subprocess
import sys

from benchmarks.bench_first_call import CASES

CHILD = """
import sys
import numpy as np
import torch
rng = np.random.default_rng(0)
{body}
heavy = sorted(m for m in sys.modules if m.startswith(("torch._dynamo", "torch._inductor", "scipy")))
print("HEAVY", heavy)
"""


def test_first_calls_import_neither_dynamo_nor_scipy():
    bodies = "\n".join(body for op, impl, body in CASES if impl == "segengine")
    res = subprocess.run([sys.executable, "-c", CHILD.format(body=bodies)], capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    line = [ln for ln in res.stdout.splitlines() if ln.startswith("HEAVY")][-1]
    assert line == "HEAVY []", line


def test_every_public_op_has_a_first_call_case():
    import segengine
    ops = {op for op, impl, body in CASES if impl == "segengine"}
    public = {name for name in segengine.__all__ if callable(getattr(segengine, name))
              and not isinstance(getattr(segengine, name), type)}
    assert public - {"PermutohedralLattice", "bilateral_filter", "alpha_beta_swap"} <= ops, \
        public - ops
