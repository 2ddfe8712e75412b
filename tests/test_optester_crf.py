"""The shared op tests (tests/op_tester.py) for the dense CRF and the permutohedral lattice:
``segengine.dense_crf`` (op ``segengine::dense_crf``), ``segengine.permutohedral_filter``
(``segengine::lattice_build`` + ``segengine::lattice_filter``, differentiable) and the
trainable layer ``segengine.nn.DenseCRF``.

References: segengine._reference.crf (NumPy mean field on the NumPy ReferenceLattice),
segengine._reference.lattice (ReferenceLattice), segengine._reference.crf_layer (pure-PyTorch
layer with its own lattice). They agree with the library to float rounding, not bitwise (a
different order of float additions), so ``assert_same`` has a stated tolerance here;
tests/test_crf.py and tests/test_lattice.py check the bitwise properties (any thread count,
batch == single image) of the CPU kernels directly.
"""

import numpy as np
import torch

import segengine
from segengine._reference.crf import reference_dense_crf_features, reference_meanfield
from segengine._reference.crf_layer import dense_crf_layer_reference
from segengine._reference.lattice import ReferenceLattice
from tests.op_tester import OpTester, to_cpu_tensor


def _close(got, expected, atol, rtol=0.0):
    got, expected = to_cpu_tensor(got), to_cpu_tensor(expected)
    assert isinstance(got, torch.Tensor) and got.dtype == expected.dtype and got.shape == expected.shape
    torch.testing.assert_close(got, expected, atol=atol, rtol=rtol)


# ----------------------------------------------------------------------------- dense_crf

CRF_SETTINGS = dict(iterations=3, gaussian_sxy=3.0, gaussian_compat=3.0, bilateral_sxy=10.0,
                    bilateral_srgb=13.0, bilateral_compat=10.0)


class TestDenseCrfOp(OpTester):
    op_name = "dense_crf"
    dtypes = (torch.float32, torch.float64)
    channels_last_inputs = True

    def fn(self, logits, image, **kwargs):
        return segengine.dense_crf(logits, image, **kwargs)

    def reference(self, logits, image, *, normalization="symmetric", num_threads=None, **kw):
        """Per image: -log_softmax of the float32 logits, pydensecrf's features, Potts
        compatibilities as [-w] * C, the NumPy mean field."""
        s = {**CRF_SETTINGS, **kw}
        B, C, H, W = logits.shape
        U = -torch.log_softmax(logits.to(torch.float32), 1).reshape(B, C, -1).transpose(1, 2).numpy()
        out = []
        for b in range(B):
            g, f = reference_dense_crf_features(image[b].numpy().transpose(1, 2, 0), s["gaussian_sxy"],
                                                s["bilateral_sxy"], s["bilateral_srgb"])
            kernels = [(g, np.full(C, -s["gaussian_compat"], np.float32), normalization),
                       (f, np.full(C, -s["bilateral_compat"], np.float32), normalization)]
            q = reference_meanfield(U[b], kernels, s["iterations"])
            out.append(torch.from_numpy(q.T.reshape(C, H, W)))
        return torch.stack(out)

    def assert_same(self, got, expected):
        # the C++ mean field vs the NumPy one: float rounding (2e-6 measured); the CUDA path
        # (torch pointwise ops, sorted lattice numbering) 2e-5
        gpu = isinstance(got, torch.Tensor) and got.is_cuda
        _close(got, expected, atol=2e-5 if gpu else 2e-6)

    def make_inputs(self, dtype, device, seed=0):
        g = torch.Generator().manual_seed(seed)
        logits = (torch.randn(2, 4, 9, 11, generator=g, dtype=torch.float64) * 2).to(dtype)
        image = torch.randint(0, 256, (2, 3, 9, 11), generator=g, dtype=torch.uint8)
        return (logits.to(device), image.to(device)), dict(CRF_SETTINGS)   # 99 pixels: padding

    def bad_inputs(self):
        logits = torch.randn(1, 3, 8, 9)
        img = torch.randint(0, 256, (1, 3, 8, 9), dtype=torch.uint8)
        nan = logits.clone()
        nan[0, 1, 2, 3] = float("nan")
        return [
            ((logits, img), {"normalization": "l2"}, ValueError, "normalization"),
            ((logits, img), {"bilateral_srgb": 0}, ValueError, "bilateral_srgb"),
            ((nan, img), {}, ValueError, "finite"),
            ((logits[:, :1], img), {}, ValueError, "C >= 2"),
            ((logits, img[..., :-1]), {}, ValueError, "image must be"),
            ((logits, img), {"gaussian_compat": np.ones(4)}, ValueError, "length C = 3"),
            ((logits, img), {"num_threads": 0}, ValueError, "num_threads"),
            ((logits, img), {"num_threads": 2.5}, TypeError, "num_threads"),
            ((torch.zeros(1, 3, 8, 9, dtype=torch.int64), img), {}, TypeError, "floating-point"),
        ]

    def opcheck_inputs(self):
        g = torch.Generator().manual_seed(1)
        unary = torch.rand(1, 3, 30, generator=g)
        feats = [torch.rand(1, 2, 30, generator=g) * 3, torch.rand(1, 5, 30, generator=g) * 3]
        compats = [torch.full((3,), -3.0), torch.rand(3, 3, generator=g)]
        return [((unary, feats, compats, [3, 2], 2, 1), {}),
                ((torch.cat([unary, unary]), [torch.cat([f, f]) for f in feats], compats, [1, 0], 1, 0),
                 {"pydensecrf_padding": False, "unary_kind": 1})]


# ------------------------------------------------------------------ permutohedral_filter

def _reference_filter(values, features, normalization):
    """Per image, ReferenceLattice's filter with the normalisation written out."""
    B, C = values.shape[:2]
    v = values.reshape(B, C, -1).numpy()
    f = features.reshape(B, features.shape[1], -1).to(torch.float32).numpy()
    out = []
    for b in range(B):
        lat = ReferenceLattice(f[b])
        x = v[b].T
        if normalization == "none":
            y = lat.filter(x)
        else:
            n = lat.filter(np.ones((x.shape[0], 1), x.dtype))[:, 0].astype(np.float64)
            s = ((1 / np.sqrt(n + 1e-20)) if normalization == "symmetric" else 1 / (n + 1e-20))
            s = s.astype(x.dtype)[:, None]
            y = {"symmetric": lambda: lat.filter(x * s) * s, "after": lambda: lat.filter(x) * s,
                 "before": lambda: lat.filter(x * s)}[normalization]()
        out.append(torch.from_numpy(np.ascontiguousarray(y.T)))
    return torch.stack(out).reshape(values.shape)


class TestPermutohedralFilterOp(OpTester):
    op_name = "lattice_filter"
    dtypes = (torch.float32, torch.float64)
    differentiable = True
    channels_last_inputs = True

    def fn(self, values, features, **kwargs):
        return segengine.permutohedral_filter(values, features, **kwargs)

    def reference(self, values, features, *, normalization="none", num_threads=None):
        return _reference_filter(values, features, normalization)

    def assert_same(self, got, expected):
        # different float summation orders (and the batch's lattice vs one image's): a
        # relative tolerance of float32 (1e-5) or float64 (1e-12) rounding
        e = to_cpu_tensor(expected)
        tol = 1e-5 if e.dtype == torch.float32 else 1e-12
        _close(got, expected, atol=tol * max(float(e.abs().max()), 1.0), rtol=tol)

    def make_inputs(self, dtype, device, seed=0):
        g = torch.Generator().manual_seed(seed)
        values = torch.randn(2, 3, 7, 9, generator=g, dtype=torch.float64).to(dtype)
        features = torch.rand(2, 4, 7, 9, generator=g) * 3
        return (values.to(device), features.to(device)), {"normalization": "symmetric"}

    def gradcheck_inputs(self):
        g = torch.Generator().manual_seed(3)
        values = torch.randn(2, 2, 4, 5, generator=g, dtype=torch.float64).requires_grad_(True)
        features = torch.rand(2, 3, 4, 5, generator=g) * 3
        return (values, features), {"normalization": "symmetric"}

    def bad_inputs(self):
        v = np.zeros((1, 2, 10), np.float32)
        f = np.random.default_rng(0).random((1, 2, 10)).astype(np.float32)
        bad = f.copy()
        bad[0, 0, 3] = np.nan
        return [
            ((v, f), {"normalization": "sideways"}, ValueError, "normalization"),
            ((v, np.zeros((1, 17, 10), np.float32)), {}, ValueError, "1..16 channels"),
            ((np.zeros((1, 2, 11), np.float32), f), {}, ValueError, "points"),
            ((v, bad), {}, ValueError, "finite"),
            ((v, f * 1e7), {}, ValueError, "too large"),
            ((v.astype(np.float16), f), {}, TypeError, "float32 or float64"),
            ((v, f), {"num_threads": 0}, ValueError, "num_threads"),
        ]

    def opcheck_inputs(self):
        g = torch.Generator().manual_seed(2)
        lat = segengine.PermutohedralLattice(torch.rand(2, 3, 30, generator=g) * 3)
        v = torch.randn(60, 2, generator=g)
        return [((v, *lat.tensors, False, 1), {}),
                ((v.double().requires_grad_(), *lat.tensors, True, 0), {})]

    def test_opcheck_lattice_build(self):
        """The other op of the family: its fake kernel has a data-dependent vertex count."""
        f = torch.rand(2, 3, 30, generator=torch.Generator().manual_seed(4)) * 3
        for ghost in (False, True):
            torch.library.opcheck(torch.ops.segengine.lattice_build.default, (f, 0, ghost),
                                  test_utils=("test_schema", "test_faketensor"))


# ----------------------------------------------------------------------- nn.DenseCRF

class TestDenseCRFLayer(OpTester):
    """The layer as an op: one fixed, perturbed DenseCRF per (dtype, device, num_threads)."""
    op_name = "lattice_filter"      # the custom op the layer runs on
    dtypes = (torch.float32, torch.float64)
    differentiable = True
    channels_last_inputs = True
    numpy_io = False                # an nn.Module: tensors in, tensors out
    _layers: dict = {}

    def _layer(self, dtype, device, num_threads):
        key = (dtype, str(device), num_threads)
        if key not in self._layers:
            layer = segengine.nn.DenseCRF(4, iterations=2, bilateral_sxy=5.0, bilateral_srgb=30.0,
                                          num_threads=num_threads)
            g = torch.Generator().manual_seed(1)
            with torch.no_grad():
                for p in layer.parameters():
                    p.add_(0.3 * torch.randn(p.shape, generator=g, dtype=p.dtype))
            self._layers[key] = layer.to(dtype).to(device)
        return self._layers[key]

    def fn(self, logits, image, num_threads=None):
        return self._layer(logits.dtype, logits.device, num_threads)(logits, image)

    def reference(self, logits, image, num_threads=None):
        layer = self._layer(logits.dtype, "cpu", None)
        with torch.no_grad():
            return dense_crf_layer_reference(layer, logits, image)

    def assert_same(self, got, expected):
        e = to_cpu_tensor(expected)
        _close(got.detach(), expected, atol=1e-5 if e.dtype == torch.float32 else 1e-10,
               rtol=1e-5 if e.dtype == torch.float32 else 1e-10)

    def make_inputs(self, dtype, device, seed=0):
        g = torch.Generator().manual_seed(seed)
        logits = torch.randn(2, 4, 7, 9, generator=g, dtype=torch.float64).to(dtype)
        image = (torch.rand(2, 3, 7, 9, generator=g) * 255).round()
        return (logits.to(device), image.to(device)), {}

    def gradcheck_inputs(self):
        logits, image = self.make_inputs(torch.float64, "cpu", seed=5)[0]
        return (logits[:, :, :4, :5].clone().requires_grad_(True), image[:, :, :4, :5].clone()), {}

    def bad_inputs(self):
        return [
            ((torch.zeros(2, 3, 5, 5), torch.zeros(2, 3, 5, 5)), {}, ValueError, "classes"),
            ((torch.zeros(2, 4, 5), torch.zeros(2, 3, 5, 5)), {}, ValueError, r"\[B, C, H, W\]"),
            ((torch.zeros(2, 4, 5, 5), torch.zeros(2, 3, 5, 6)), {}, ValueError, "image must be"),
            ((torch.zeros(2, 4, 5, 5, dtype=torch.float16), torch.zeros(2, 3, 5, 5)), {}, TypeError,
             "float32"),
            ((torch.zeros(2, 4, 5, 5), torch.full((2, 3, 5, 5), float("nan"))), {}, ValueError, "finite"),
        ]

    def opcheck_inputs(self):
        return TestPermutohedralFilterOp().opcheck_inputs()
