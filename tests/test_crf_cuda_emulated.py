"""The CUDA lattice path (csrc/cuda/permutohedral.cu + its Python driver) run on the CPU.

The .cu file is compiled as C++ with tests/cuda_emulate.h (tests/emulate.py) and launched
serially over a small grid, so grid-stride loops wrap; segengine.ops.lattice's CUDA driver
(sort-based key building, splat/blur/slice launches, the torch mean field) runs unchanged on
CPU tensors through the launch hook. Results must equal the CPU (C++) path.
"""

import ctypes

import numpy as np
import pytest
import torch

from segengine.ops import crf as crf_ops
from segengine.ops import lattice as lattice_ops
from tests import emulate

pytestmark = pytest.mark.skipif(not emulate.have_compiler(), reason="needs g++")


@pytest.fixture(scope="module")
def emulated(tmp_path_factory):
    lib = emulate.build("permutohedral", tmp_path_factory.mktemp("emu"))

    def launch(name, n, args):
        raw = []
        for a in args:
            if a is None:
                raw.append(ctypes.c_void_p(0))
            elif isinstance(a, torch.Tensor):
                assert a.is_contiguous() and a.device.type == "cpu"
                raw.append(ctypes.c_void_p(a.data_ptr()))
            elif isinstance(a, np.int64):
                raw.append(ctypes.c_int64(int(a)))
            elif isinstance(a, np.int32):
                raw.append(ctypes.c_int32(int(a)))
            elif isinstance(a, np.float32):
                raw.append(ctypes.c_float(float(a)))
            else:
                raise TypeError(f"untyped kernel argument {a!r}")
        emulate.launch(lib, name, (2,), (3,), raw)  # 6 threads: grid-stride loops wrap

    old = lattice_ops._launch_override
    lattice_ops._launch_override = launch
    try:
        yield launch
    finally:
        lattice_ops._launch_override = old


def _same_lattice_filter(cpu, gpu, values, reverse):
    out_cpu = lattice_ops._lattice_filter_op(values, *cpu[:6], reverse, 1)
    out_gpu = lattice_ops._filter_cuda(values, *gpu[:6], reverse)
    return out_cpu, out_gpu


@pytest.mark.parametrize("d", [1, 2, 5, 9])
@pytest.mark.parametrize("ghost", [False, True])
def test_emulated_build_and_filter_match_cpu(emulated, rng, d, ghost):
    B, N = 2, 45
    f = torch.from_numpy((rng.random((B, d, N)) * 3).astype(np.float32))
    cpu = lattice_ops._lattice_build_op(f, 1, ghost)
    gpu = lattice_ops._build_cuda(f, ghost)
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
    gpu = lattice_ops._build_cuda(f)
    cpu = lattice_ops._lattice_build_op(f, 1, False)
    v = torch.randn(40, 2)
    pre, post = torch.rand(40) + 0.5, torch.rand(40) + 0.5
    out = lattice_ops._filter_cuda(v, *gpu[:6], False, pre=pre, post=post)
    ref = lattice_ops._lattice_filter_op((v * pre[:, None]).contiguous(), *cpu[:6], False, 1) * post[:, None]
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_emulated_meanfield_matches_cpu(emulated, rng):
    """The CUDA dense_crf path (torch mean field over emulated kernels) vs the C++ one."""
    B, C, H, W = 2, 3, 9, 11
    unary = -torch.log_softmax(torch.randn(B, C, H * W), 1)
    img = torch.randint(0, 256, (B, 3, H, W)).float()
    g = lattice_ops.features_xy(B, (H, W), (3.0, 3.0)).reshape(B, 2, -1).contiguous()
    xy = lattice_ops.features_xy(B, (H, W), (8.0, 8.0))
    b = torch.cat([xy, img / 13.0], 1).reshape(B, 5, -1).contiguous()
    compats = [torch.full((C,), -3.0), torch.from_numpy(crf_ops.compat_array(rng.uniform(-4, 4, (C, C)), C, "m"))]
    for norm in (3, 2, 0):
        q_cpu = crf_ops._dense_crf_op(unary, [g, b], compats, [norm, norm], 3, 1, True)
        upm = unary.transpose(1, 2).reshape(B * H * W, C).contiguous()
        lats = [lattice_ops._build_cuda(x, True) for x in (g, b)]

        def filt(values, lat, pre, post):
            return lattice_ops._filter_cuda(values, *lat[:6], False, pre=pre, post=post)

        q = crf_ops._meanfield_torch(upm, lats, [norm, norm], compats, 3, filt)
        q = q.reshape(B, H * W, C).transpose(1, 2)
        torch.testing.assert_close(q, q_cpu, atol=2e-5, rtol=0)


def test_emulated_reports_bad_features(emulated):
    f = torch.full((1, 2, 5), 1e9)
    with pytest.raises(ValueError, match="too large"):
        lattice_ops._build_cuda(f)
