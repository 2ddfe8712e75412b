"""The CUDA lattice path (csrc/cuda/permutohedral.cu + its Python drivers) run on the CPU.

The .cu file is compiled as C++ with tests/cuda_emulate.h and launched serially over a small
grid (2 blocks x 3 threads), so grid-stride loops wrap: tests/emulate.py's launcher is
installed in segengine._cuda, the one place every launch goes through. The CUDA drivers
(segengine.ops._lattice_cuda: sort-based key building, splat/blur/slice launches;
segengine.ops._crf_cuda: the torch mean field) then run unchanged on CPU tensors. Results
must equal the CPU (C++) path.
"""

import numpy as np
import pytest
import torch

from segengine import _cuda
from segengine._codes import UnaryKind
from segengine.ops import _crf_cuda, _lattice_cuda
from segengine.ops import crf as crf_ops
from segengine.ops import lattice as lattice_ops
from tests import emulate

pytestmark = pytest.mark.skipif(not emulate.have_compiler(), reason="needs g++")


@pytest.fixture(scope="module")
def emulated(tmp_path_factory):
    prev = _cuda.set_launcher(emulate.launcher(tmp_path_factory.mktemp("emu")))
    try:
        yield
    finally:
        _cuda.set_launcher(prev)


def _same_lattice_filter(cpu, gpu, values, reverse):
    out_cpu = lattice_ops._lattice_filter_op(values, *cpu[:6], reverse, 1)
    out_gpu = _lattice_cuda.filter_values(values, *gpu[:6], reverse)
    return out_cpu, out_gpu


@pytest.mark.parametrize("d", [1, 2, 5, 9])
@pytest.mark.parametrize("ghost", [False, True])
def test_emulated_build_and_filter_match_cpu(emulated, rng, d, ghost):
    B, N = 2, 45
    f = torch.from_numpy((rng.random((B, d, N)) * 3).astype(np.float32))
    cpu = lattice_ops._lattice_build_op(f, 1, ghost)
    gpu = _lattice_cuda.build(f, ghost)
    # same vertex sets: counts per image, and every entry's weight
    assert torch.equal(cpu[6], gpu[6])
    assert cpu[2].shape == gpu[2].shape
    torch.testing.assert_close(cpu[1], gpu[1], atol=0, rtol=0)
    # the vertex maps agree up to renumbering
    perm = torch.full((cpu[2].shape[1],), -1, dtype=torch.int64)
    perm[cpu[0].long().reshape(-1)] = gpu[0].long().reshape(-1)
    assert torch.equal(perm[cpu[0].long()], gpu[0].long())
    # neighbours agree under the same renumbering (where the vertex is used by a point)
    used = perm >= 0
    nb_cpu = cpu[2].long()
    mapped = torch.where(nb_cpu >= 0, perm[nb_cpu.clamp(min=0)], nb_cpu)
    # (a ghost vertex, used by no point, has no known image under perm: compare its existence)
    ghost_nb = (nb_cpu >= 0) & ~used[nb_cpu.clamp(min=0)]
    got = gpu[2].long()[:, perm[used]]
    assert torch.equal(torch.where(ghost_nb[:, used], 0, mapped[:, used]),
                       torch.where(ghost_nb[:, used], 0, got))
    assert (got[ghost_nb[:, used]] >= 0).all()
    for dtype in (torch.float32, torch.float64):
        v = torch.randn(B * N, 3, dtype=dtype)
        for reverse in (False, True):
            a, b = _same_lattice_filter(cpu, gpu, v, reverse)
            tol = 1e-5 if dtype == torch.float32 else 1e-12
            torch.testing.assert_close(b, a, atol=tol * a.abs().max().item(), rtol=0)


def test_emulated_pre_post_scaling(emulated, rng):
    f = torch.from_numpy((rng.random((1, 3, 40)) * 3).astype(np.float32))
    gpu = _lattice_cuda.build(f)
    cpu = lattice_ops._lattice_build_op(f, 1, False)
    v = torch.randn(40, 2)
    pre, post = torch.rand(40) + 0.5, torch.rand(40) + 0.5
    out = _lattice_cuda.filter_values(v, *gpu[:6], False, pre=pre, post=post)
    ref = lattice_ops._lattice_filter_op((v * pre[:, None]).contiguous(), *cpu[:6], False, 1) * post[:, None]
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_emulated_meanfield_matches_cpu(emulated, rng):
    """The CUDA dense_crf path (torch mean field over emulated kernels) vs the C++ one."""
    B, C, H, W = 2, 3, 9, 11
    unary = -torch.log_softmax(torch.randn(B, C, H * W), 1)
    img = torch.randint(0, 256, (B, 3, H, W)).float()
    g = lattice_ops.point_features(B, (H, W), (3.0, 3.0)).reshape(B, 2, -1)
    b = lattice_ops.point_features(B, (H, W), (8.0, 8.0), img, (13.0,) * 3).reshape(B, 5, -1)
    compats = [torch.full((C,), -3.0), torch.from_numpy(crf_ops.compat_array(rng.uniform(-4, 4, (C, C)), C, "m"))]
    for norm in (3, 2, 0):
        q_cpu = crf_ops._dense_crf_op(unary, [g, b], compats, [norm, norm], 3, 1, True)
        upm = unary.transpose(1, 2).reshape(B * H * W, C).contiguous()
        lats = [_lattice_cuda.build(x, True) for x in (g, b)]

        def filt(values, lat, pre, post):
            return _lattice_cuda.filter_values(values, *lat[:6], False, pre=pre, post=post)

        q = _crf_cuda.meanfield_torch(upm, lats, [norm, norm], compats, 3, filt)
        q = q.reshape(B, H * W, C).transpose(1, 2)
        torch.testing.assert_close(q, q_cpu, atol=2e-5, rtol=0)
        # the registered CUDA kernel itself (unary conversion, build, mean field)
        logits = -unary
        q_kernel = _crf_cuda.dense_crf_cuda(logits, [g, b], compats, [norm, norm], 3, 0, True,
                                            int(UnaryKind.LOGITS))
        q_cpu_logits = crf_ops._dense_crf_op(logits, [g, b], compats, [norm, norm], 3, 1, True,
                                             int(UnaryKind.LOGITS))
        torch.testing.assert_close(q_kernel, q_cpu_logits, atol=2e-5, rtol=0)


def test_emulated_reports_bad_features(emulated):
    f = torch.full((1, 2, 5), 1e9)
    with pytest.raises(ValueError, match="too large"):
        _lattice_cuda.build(f)
