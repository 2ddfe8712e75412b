"""python -m benchmarks.launch_overhead: Python-side cost of one _cuda.launch with a stub CuPy (no GPU here): the seam's own work
(argument conversion, cache lookups, context enter/exit), old vs new."""
import sys, time, types, warnings
import numpy as np, torch
from segengine import _cuda

class Ctx:
    def __init__(self, *a): pass
    def __enter__(self): return self
    def __exit__(self, *e): return False

fake = types.SimpleNamespace(cuda=types.SimpleNamespace(Device=Ctx, ExternalStream=Ctx))
sys.modules["cupy"] = fake
_cuda.cupy_available.cache_clear()
class S:
    cuda_stream = 123
    device = torch.device("cuda", 0)
torch.cuda.current_stream = lambda device=None: S()
_cuda._kernel = lambda i, s, n: (lambda grid, block, args, shared_mem=0: None)
dev = torch.device("cuda", 0)
t = torch.zeros(10)
args = [t, None, np.int64(5), np.int32(3), np.float32(1.0), t, t]

def old_launch(kernel, device, grid, block, args):  # the seam before this change
    cupy = _cuda._require_cupy()
    stream = torch.cuda.current_stream(device)
    index = stream.device.index
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ext = cupy.cuda.ExternalStream(stream.cuda_stream, index)
    with cupy.cuda.Device(index), ext:
        kernel(tuple(grid), tuple(block), tuple(args))

k = _cuda._kernel(0, "x", "y")
raw = [_cuda._raw(a) for a in args]
n = 20000
for name, fn in (("old", lambda: old_launch(k, dev, (4,), (256,), [(_cuda.ptr(a) if a is None or isinstance(a, torch.Tensor) else a) for a in args])),
                 ("new", lambda: _cuda.launch(dev, "permutohedral", "k", (4,), (256,), args))):
    fn()
    t0 = time.perf_counter()
    for _ in range(n): fn()
    print(name, "%.2f us per launch (stub CuPy: excludes CuPy's own ExternalStream/Device cost)" % ((time.perf_counter() - t0) / n * 1e6))
