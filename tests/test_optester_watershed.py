"""The shared op tests (tests/op_tester.py) for segengine::watershed and
segengine::watershed_batch.

Reference: segengine._reference.watershed (pure Python, scikit-image 0.26's rules spelled out),
itself checked against scikit-image where it is installed, on every case it answers.
"""

import numpy as np
import pytest
import torch

import segengine
from segengine._reference.watershed import (watershed_fast_reference, watershed_parallel_reference,
                                            watershed_reference)
from tests.op_tester import OpTester

try:
    from skimage.segmentation import watershed as sk_watershed
except ImportError:  # scikit-image is a test oracle, not a dependency
    sk_watershed = None

SHAPE = (11, 13)
DTYPES = (torch.uint8, torch.int16, torch.float32, torch.float64)


def _image(rng, shape, dtype):
    """Few grey levels (ties, plateaus) in ``dtype``."""
    return torch.from_numpy(rng.integers(0, 5, size=shape).astype(np.int16)).to(dtype)


def _markers(rng, shape, k=6, labels=(1, 2, 3)):
    m = np.zeros(shape, np.int32)
    idx = rng.choice(m.size, size=k, replace=False)
    m.flat[idx] = rng.choice(labels, size=k)
    return torch.from_numpy(m)


def _numpy(x):
    return None if x is None else x.numpy()


def reference_watershed(image, markers=None, **kwargs):
    """The pure-Python oracle on CPU tensors (and scikit-image, where installed, must agree)."""
    img = image.numpy()
    mk = _numpy(markers) if isinstance(markers, torch.Tensor) else markers
    kw = {k: _numpy(v) if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()}
    out = watershed_reference(img, mk, **kw)
    if sk_watershed is not None and img.dtype != np.float16:
        np.testing.assert_array_equal(sk_watershed(img, mk, **kw), out)
    return torch.from_numpy(out)


class TestWatershedOp(OpTester):
    """One image, integer markers, a mask: standard mode, full connectivity."""
    op_name = "watershed"
    dtypes = DTYPES
    differentiable = False
    batched = False
    threaded = False

    def fn(self, *args, **kwargs):
        return segengine.watershed(*args, **kwargs)

    def reference(self, *args, **kwargs):
        return reference_watershed(*args, **kwargs)

    def make_inputs(self, dtype, device, seed=0):
        rng = np.random.default_rng(seed)
        image = _image(rng, SHAPE, dtype).to(device)
        markers = _markers(rng, SHAPE).to(device)
        mask = torch.from_numpy(rng.random(SHAPE) > 0.15).to(device)
        return (image, markers), {"connectivity": 2, "mask": mask}

    def bad_inputs(self):
        img = torch.zeros(4, 5)
        nan = img.clone()
        nan[1, 2] = float("nan")
        m = torch.zeros(4, 5, dtype=torch.int32)
        m[0, 0] = 1
        return [
            ((img, m), {"connectivity": 0}, ValueError, "connectivity"),
            ((img, m), {"connectivity": "full"}, TypeError, "connectivity"),
            ((img, torch.zeros(4, 4, dtype=torch.int32)), {}, ValueError, r"markers.*same shape"),
            ((img, torch.zeros(4, 5)), {}, TypeError, "integer"),
            ((img, None), {"mask": torch.ones(5, 4, dtype=torch.bool)}, ValueError, r"mask.*shape"),
            ((img.to(torch.complex64), None), {}, TypeError, "real"),
            ((torch.tensor(3.0), None), {}, ValueError, "at least one dimension"),
            ((nan, m), {}, ValueError, "NaN"),
            ((img, 3), {"compactness": float("inf")}, ValueError, "compactness"),
            ((img, 0), {}, ValueError, "markers"),
            ((img, 3), {"mask": torch.zeros(4, 5, dtype=torch.bool)}, ValueError, "mask"),
            ((img, None), {"connectivity": np.ones((3, 3), bool)}, ValueError,
             "integer `connectivity`"),
        ]

    def opcheck_inputs(self):
        rng = np.random.default_rng(1)
        img = _image(rng, (9, 11), torch.float32)
        markers = _markers(rng, (9, 11))
        mask = torch.from_numpy(rng.random((9, 11)) > 0.1)
        fp = torch.tensor([[False, True, False], [True, True, True], [False, True, False]])
        return [((img, markers, None, fp, [1, 1], 0.0, 0.0, False), {}),
                ((img, markers, mask, fp, [1, 1], 0.0, 0.5, False), {}),
                ((img, None, None, fp, [1, 1], 1.0, 0.0, True), {}),
                ((img, None, mask, fp, [1, 1], 0.0, 0.0, False), {"seed_count": 7.0})]


class TestWatershedLocalMinimaLinesOp(TestWatershedOp):
    """markers=None (local minima under the connectivity) and watershed lines."""

    def make_inputs(self, dtype, device, seed=0):
        rng = np.random.default_rng(seed)
        return (_image(rng, SHAPE, dtype).to(device), None), {"watershed_line": True}


class TestWatershedCompactSeedsOp(TestWatershedOp):
    """markers as a number of regularly spaced seeds, compact watershed."""

    def make_inputs(self, dtype, device, seed=0):
        rng = np.random.default_rng(seed)
        return (_image(rng, SHAPE, dtype).to(device), 5), {"compactness": 0.3}

    def reference(self, image, count, **kwargs):
        # the oracle takes the regular seeds as markers; scikit-image, where installed, places
        # its own seeds from the count and must agree
        from segengine.ops._watershed_inputs import regular_seeds
        out = reference_watershed(image, torch.from_numpy(regular_seeds(image.shape, count)),
                                  **kwargs)
        if sk_watershed is not None:
            np.testing.assert_array_equal(sk_watershed(image.numpy(), count, **kwargs), out.numpy())
        return out


class TestWatershedBatchOp(OpTester):
    """A batch of images, per-item markers and masks; batch == per item; 1/2/3 threads."""
    op_name = "watershed_batch"
    dtypes = DTYPES
    differentiable = False
    batched = True
    threaded = True

    def fn(self, *args, **kwargs):
        return segengine.watershed_batch(*args, **kwargs)

    def reference(self, images, markers=None, mask=None, **kwargs):
        return torch.stack([
            reference_watershed(images[b], None if markers is None else markers[b],
                                mask=None if mask is None else mask[b], **kwargs)
            for b in range(images.shape[0])])

    def make_inputs(self, dtype, device, seed=0):
        rng = np.random.default_rng(seed)
        B = 3
        images = _image(rng, (B,) + SHAPE, dtype).to(device)
        markers = torch.stack([_markers(rng, SHAPE) for _ in range(B)]).to(device)
        mask = torch.from_numpy(rng.random((B,) + SHAPE) > 0.15).to(device)
        return (images, markers), {"mask": mask, "watershed_line": True}

    def bad_inputs(self):
        imgs = torch.zeros(2, 4, 4)
        return [
            ((torch.zeros(5), None), {}, ValueError, "images"),
            ((imgs, torch.zeros(2, 4, 5, dtype=torch.int64)), {}, ValueError, "same shape"),
            ((imgs, None), {"num_threads": 0}, ValueError, "num_threads"),
            ((imgs, None), {"num_threads": 2.5}, TypeError, "num_threads"),
            ((imgs, None), {"mask": torch.ones(3, 3, dtype=torch.bool)}, ValueError, "mask"),
            ((torch.full((2, 3, 3), float("nan")), None), {}, ValueError, "NaN"),
        ]

    def opcheck_inputs(self):
        rng = np.random.default_rng(2)
        imgs = _image(rng, (2, 7, 8), torch.float32)
        markers = torch.stack([_markers(rng, (7, 8)) for _ in range(2)])
        fp = torch.ones(3, 3, dtype=torch.bool)
        mask = torch.from_numpy(rng.random((7, 8)) > 0.1).expand(2, 7, 8)
        return [((imgs, markers, None, fp, [1, 1], 0.0, 0.0, False, None, 0), {}),
                ((imgs, None, mask, fp, [1, 1], 1.0, 0.0, True, None, 2), {}),
                ((imgs, None, None, fp, [1, 1], 0.0, 0.2, False, 4.0, 1), {})]


class TestWatershedBatchMinimaOp(TestWatershedBatchOp):
    """markers=None per item, one mask shared by every item."""

    def make_inputs(self, dtype, device, seed=0):
        rng = np.random.default_rng(seed)
        images = _image(rng, (3,) + SHAPE, dtype).to(device)
        mask = torch.from_numpy(rng.random(SHAPE) > 0.15).to(device)
        return (images, None), {"mask": mask, "connectivity": 2}

    def reference(self, images, markers=None, mask=None, **kwargs):
        return torch.stack([reference_watershed(images[b], None, mask=mask, **kwargs)
                            for b in range(images.shape[0])])


def reference_fast(image, markers=None, **kwargs):
    """The fast or parallel tie order's oracle (as kwargs["tie_order"] says) on CPU tensors
    (segengine._reference, numpy only)."""
    kw = {k: _numpy(v) if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()
          if k != "tie_order"}
    mk = _numpy(markers) if isinstance(markers, torch.Tensor) else markers
    ref = watershed_parallel_reference if kwargs.get("tie_order") == "parallel" else watershed_fast_reference
    return torch.from_numpy(ref(image.numpy(), mk, **kw))


class TestWatershedFastOp(TestWatershedOp):
    """tie_order="fast" on TestWatershedOp's inputs (few grey levels: ties between labels);
    vs the reference of its tie rule; 1/2/3 threads identical."""
    threaded = True
    tie_order, tie_code = "fast", 1

    def reference(self, *args, **kwargs):
        return reference_fast(*args, **kwargs)

    def make_inputs(self, dtype, device, seed=0):
        args, kwargs = super().make_inputs(dtype, device, seed)
        return args, {**kwargs, "tie_order": self.tie_order}

    def bad_inputs(self):
        img = torch.zeros(4, 5)
        nan = img.clone()
        nan[1, 2] = float("nan")
        m = torch.zeros(4, 5, dtype=torch.int32)
        m[0, 0] = 1
        return [
            ((img, m), {"tie_order": "fastest"}, ValueError, "tie_order"),
            ((img, m), {"tie_order": None}, ValueError, "tie_order"),
            ((img, m), {"tie_order": "fast", "compactness": 0.5}, ValueError, "compactness"),
            ((img, m), {"tie_order": "fast", "watershed_line": True}, ValueError,
             "watershed_line"),
            ((img, m), {"tie_order": "fast", "num_threads": 0}, ValueError, "num_threads"),
            ((nan, m), {"tie_order": "fast"}, ValueError, "NaN"),
            ((img, torch.zeros(4, 4, dtype=torch.int32)), {"tie_order": "fast"}, ValueError,
             r"markers.*same shape"),
        ]

    def opcheck_inputs(self):
        rng = np.random.default_rng(6)
        img = _image(rng, (9, 11), torch.float32)
        markers = _markers(rng, (9, 11))
        mask = torch.from_numpy(rng.random((9, 11)) > 0.1)
        fp = torch.ones(3, 3, dtype=torch.bool)
        tie = self.tie_code
        return [((img, markers, None, fp, [1, 1], 0.0, 0.0, False, None, tie, 2), {}),
                ((img, markers, mask, fp, [1, 1], 0.0, 0.0, False), {"tie": tie}),
                ((img, None, None, fp, [1, 1], 1.0, 0.0, False, None, tie, 0), {}),
                ((img, None, mask, fp, [1, 1], 0.0, 0.0, False, 7.0, tie, 1), {})]


class TestWatershedFastMinimaOp(TestWatershedFastOp):
    """tie_order="fast" with markers=None (local minima), face connectivity."""

    def make_inputs(self, dtype, device, seed=0):
        rng = np.random.default_rng(seed)
        return (_image(rng, SHAPE, dtype).to(device), None), {"tie_order": self.tie_order}


class TestWatershedParallelOp(TestWatershedFastOp):
    """tie_order="parallel" on the same inputs, vs the reference of its tie rule."""
    tie_order, tie_code = "parallel", 2


class TestWatershedParallelMinimaOp(TestWatershedFastMinimaOp):
    tie_order, tie_code = "parallel", 2


class TestWatershedBatchFastOp(TestWatershedBatchOp):
    """watershed_batch with tie_order="fast": per-item markers and masks."""
    tie_order, tie_code = "fast", 1

    def reference(self, images, markers=None, mask=None, **kwargs):
        return torch.stack([
            reference_fast(images[b], None if markers is None else markers[b],
                           mask=None if mask is None else mask[b], **kwargs)
            for b in range(images.shape[0])])

    def make_inputs(self, dtype, device, seed=0):
        rng = np.random.default_rng(seed)
        B = 3
        images = _image(rng, (B,) + SHAPE, dtype).to(device)
        markers = torch.stack([_markers(rng, SHAPE) for _ in range(B)]).to(device)
        mask = torch.from_numpy(rng.random((B,) + SHAPE) > 0.15).to(device)
        return (images, markers), {"mask": mask, "connectivity": 2, "tie_order": self.tie_order}

    def bad_inputs(self):
        imgs = torch.zeros(2, 4, 4)
        return super().bad_inputs() + [
            ((imgs, None), {"tie_order": "Fast"}, ValueError, "tie_order"),
            ((imgs, None), {"tie_order": "fast", "compactness": 1.0}, ValueError,
             "compactness"),
        ]

    def opcheck_inputs(self):
        rng = np.random.default_rng(7)
        imgs = _image(rng, (2, 7, 8), torch.float64)
        markers = torch.stack([_markers(rng, (7, 8)) for _ in range(2)])
        fp = torch.ones(3, 3, dtype=torch.bool)
        mask = torch.from_numpy(rng.random((7, 8)) > 0.1).expand(2, 7, 8)
        tie = self.tie_code
        return [((imgs, markers, None, fp, [1, 1], 0.0, 0.0, False, None, 0, tie), {}),
                ((imgs, None, mask, fp, [1, 1], 1.0, 0.0, False, None, 2, tie), {}),
                ((imgs[:1], None, None, fp, [1, 1], 0.0, 0.0, False, 4.0, 1), {"tie": tie})]


class TestWatershedBatchParallelOp(TestWatershedBatchFastOp):
    """watershed_batch with tie_order="parallel"."""
    tie_order, tie_code = "parallel", 2


def test_cuda_kernels_copy_round_trip():
    """The "cuda" kernels are a copy to the CPU and back around the CPU kernels: on CPU
    tensors (where both copies are no-ops) they give the CPU kernels' result."""
    from segengine.ops import _watershed_cuda
    from segengine.ops.watershed import watershed_batch_cpu, watershed_cpu
    rng = np.random.default_rng(3)
    img = _image(rng, (9, 10), torch.float32)
    markers = _markers(rng, (9, 10))
    fp = torch.ones(3, 3, dtype=torch.bool)
    args = (img, markers, None, fp, [1, 1], 0.0, 0.0, False)
    assert torch.equal(_watershed_cuda.watershed_cuda(*args), watershed_cpu(*args))
    bargs = (img[None].expand(2, 9, 10), None, None, fp, [1, 1], 1.0, 0.0, True, None, 2)
    assert torch.equal(_watershed_cuda.watershed_batch_cuda(*bargs), watershed_batch_cpu(*bargs))
    fargs = args + (None, True, 2)
    assert torch.equal(_watershed_cuda.watershed_cuda(*fargs), watershed_cpu(*fargs))
    fbargs = (img[None].expand(2, 9, 10), markers[None].expand(2, 9, 10).contiguous(), None, fp,
              [1, 1], 0.0, 0.0, False, None, 2, True)
    assert torch.equal(_watershed_cuda.watershed_batch_cuda(*fbargs),
                       watershed_batch_cpu(*fbargs))


def test_num_threads_not_frozen_by_compile():
    """num_threads=None reaches the kernel as 0 and is resolved there at call time."""
    rng = np.random.default_rng(4)
    images = _image(rng, (2, 6, 7), torch.float32)
    compiled = torch.compile(segengine.watershed_batch, fullgraph=True, backend="aot_eager")
    before = torch.get_num_threads()
    try:
        expected = segengine.watershed_batch(images, None)
        torch.set_num_threads(1)
        assert torch.equal(compiled(images, None), expected)
        torch.set_num_threads(2)
        assert torch.equal(compiled(images, None), expected)
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("markers", [None, 4])
def test_compile_markers_none_and_count(markers):
    rng = np.random.default_rng(5)
    img = _image(rng, (8, 9), torch.float64)
    compiled = torch.compile(segengine.watershed, fullgraph=True, backend="aot_eager")
    expected = segengine.watershed(img, markers, connectivity=2)
    assert torch.equal(compiled(img, markers, connectivity=2), expected)
