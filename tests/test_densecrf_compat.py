"""segengine.densecrf is a drop-in for pydensecrf.densecrf (same calls, same answers)."""

import numpy as np
import pytest

import segengine.densecrf as sdcrf
from segengine.densecrf import utils as sutils

pdcrf = pytest.importorskip("pydensecrf.densecrf")
putils = pytest.importorskip("pydensecrf.utils")


def _setup(rng, H=30, W=37, C=4):
    img = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    img[:, W // 2:] //= 3
    prob = rng.dirichlet(np.ones(C) * 0.7, size=(H, W)).transpose(2, 0, 1).astype(np.float32)
    return img, prob


def _run(mod, util, img, prob, build):
    C, H, W = prob.shape
    d = mod.DenseCRF2D(W, H, C)
    d.setUnaryEnergy(np.ascontiguousarray(util.unary_from_softmax(prob)))
    build(mod, util, d, img)
    return np.array(d.inference(5)), d


BUILDS = {
    "defaults": lambda m, u, d, img: (d.addPairwiseGaussian(sxy=3, compat=3),
                                      d.addPairwiseBilateral(sxy=80, srgb=13, rgbim=img, compat=10)),
    "tuples_and_normalizations": lambda m, u, d, img: (
        d.addPairwiseGaussian(sxy=(2, 4), compat=2, kernel=m.DIAG_KERNEL, normalization=m.NORMALIZE_AFTER),
        d.addPairwiseBilateral(sxy=(30, 40), srgb=(10, 20, 30), rgbim=img, compat=5, kernel=m.FULL_KERNEL,
                               normalization=m.NORMALIZE_BEFORE)),
    "vector_matrix_compat": lambda m, u, d, img: (
        d.addPairwiseGaussian(sxy=3, compat=np.array([-1, -2, -3, -4], np.float32)),
        d.addPairwiseBilateral(sxy=50, srgb=13, rgbim=img,
                               compat=np.array([[-5, 1, 0, 2], [1, -5, 1, 0], [3, 1, -4, 1], [2, 0, 1, -6]],
                                               np.float32))),
    "utils_features": lambda m, u, d, img: (
        d.addPairwiseEnergy(u.create_pairwise_gaussian(sdims=(3, 3), shape=img.shape[:2]), compat=3),
        d.addPairwiseEnergy(u.create_pairwise_bilateral(sdims=(60, 60), schan=(13, 13, 13), img=img, chdim=2),
                            compat=10, normalization=m.NORMALIZE_SYMMETRIC),
        d.addPairwiseEnergy(u.create_pairwise_bilateral(sdims=(5, 5), schan=20, img=img[..., 0], chdim=-1),
                            compat=1, normalization=m.NO_NORMALIZATION)),
}


@pytest.mark.parametrize("build", list(BUILDS), ids=list(BUILDS))
def test_same_answer_as_pydensecrf(rng, build):
    img, prob = _setup(rng)
    q_ref, _ = _run(pdcrf, putils, img, prob, BUILDS[build])
    q, _ = _run(sdcrf, sutils, img, prob, BUILDS[build])
    assert q.shape == q_ref.shape == (prob.shape[0], prob.shape[1] * prob.shape[2]) and q.dtype == np.float32
    assert np.abs(q - q_ref).max() <= 1e-3
    assert (q.argmax(0) == q_ref.argmax(0)).mean() >= 0.999
    assert np.abs(q_ref - prob.reshape(q.shape)).max() > 0.05


def test_generic_densecrf_step_inference_and_kl(rng):
    img, prob = _setup(rng, 12, 15, 3)
    feats = putils.create_pairwise_bilateral(sdims=(10, 10), schan=(20, 20, 20), img=img, chdim=2)
    results = []
    for mod, util in ((pdcrf, putils), (sdcrf, sutils)):
        d = mod.DenseCRF(12 * 15, 3)
        d.setUnaryEnergy(np.ascontiguousarray(util.unary_from_softmax(prob)))
        d.addPairwiseEnergy(np.ascontiguousarray(feats), compat=5)
        Q, t1, t2 = d.startInference()
        for _ in range(3):
            d.stepInference(Q, t1, t2)
        results.append((np.array(Q), d.klDivergence(Q), np.array(d.inference(3))))
    np.testing.assert_allclose(results[1][0], results[0][0], atol=1e-5)
    np.testing.assert_allclose(results[1][2], results[0][2], atol=1e-5)
    assert abs(results[1][1] - results[0][1]) <= 1e-4 * abs(results[0][1])


def test_utils_match(rng):
    labels = rng.integers(0, 5, (9, 11))
    for zero_unsure in (True, False):
        np.testing.assert_array_equal(sutils.unary_from_labels(labels, 5, 0.7, zero_unsure=zero_unsure),
                                      putils.unary_from_labels(labels, 5, 0.7, zero_unsure=zero_unsure))
    sm = rng.dirichlet(np.ones(4), size=(6, 7)).transpose(2, 0, 1)
    sm[0, 0, 0] = 0.0
    for scale in (None, 0.8):
        np.testing.assert_array_equal(sutils.unary_from_softmax(sm, scale=scale),
                                      putils.unary_from_softmax(sm, scale=scale))
    np.testing.assert_array_equal(sutils.create_pairwise_gaussian((2, 3), (5, 6)),
                                  putils.create_pairwise_gaussian((2, 3), (5, 6)))
    img = rng.integers(0, 256, (5, 6, 3)).astype(np.uint8)
    np.testing.assert_array_equal(sutils.create_pairwise_bilateral((2, 3), (10, 20, 30), img, chdim=2),
                                  putils.create_pairwise_bilateral((2, 3), (10, 20, 30), img, chdim=2))
    np.testing.assert_array_equal(sutils.create_pairwise_bilateral((2, 3), 7, img[..., 1], chdim=-1),
                                  putils.create_pairwise_bilateral((2, 3), 7, img[..., 1], chdim=-1))
    assert sdcrf.NORMALIZE_SYMMETRIC == pdcrf.NORMALIZE_SYMMETRIC == 3
    assert sdcrf.NO_NORMALIZATION == pdcrf.NO_NORMALIZATION and sdcrf.FULL_KERNEL == pdcrf.FULL_KERNEL


def test_bad_parameters_raise_instead_of_crashing(rng):
    img, prob = _setup(rng, 8, 9, 3)
    d = sdcrf.DenseCRF2D(9, 8, 3)
    for bad in (0, -2, 1e-45 * 0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="srgb"):
            d.addPairwiseBilateral(sxy=80, srgb=bad, rgbim=img, compat=10)
        with pytest.raises(ValueError, match="sxy"):
            d.addPairwiseGaussian(sxy=bad, compat=3)
    with pytest.raises(ValueError, match="Bad shape for unary"):
        d.setUnaryEnergy(np.zeros((3, 71), np.float32))
    with pytest.raises(TypeError, match="float32"):
        d.setUnaryEnergy(np.zeros((3, 72), np.float64))
    u = np.zeros((3, 72), np.float32)
    u[1, 5] = np.nan
    with pytest.raises(ValueError, match="finite"):
        d.setUnaryEnergy(u)
    with pytest.raises(ValueError, match="Bad shape for pairwise bilateral"):
        d.addPairwiseBilateral(sxy=80, srgb=13, rgbim=img[:-1], compat=10)
    with pytest.raises(ValueError, match="RGB"):
        d.addPairwiseBilateral(sxy=80, srgb=13, rgbim=np.zeros((8, 9, 4), np.uint8), compat=10)
    with pytest.raises(TypeError, match="uint8"):
        d.addPairwiseBilateral(sxy=80, srgb=13, rgbim=img.astype(np.float32), compat=10)
    with pytest.raises(ValueError, match="Bad shape for pairwise energy"):
        d.addPairwiseEnergy(np.zeros((2, 71), np.float32), compat=3)
    with pytest.raises(ValueError, match="length C = 3"):
        d.addPairwiseGaussian(sxy=3, compat=np.ones(4, np.float32))
    with pytest.raises(ValueError, match="nlabels"):
        sdcrf.DenseCRF2D(9, 8, 1)
    with pytest.raises(NotImplementedError):
        d.setUnaryEnergy(np.zeros((3, 72), np.float32), np.zeros((2, 72), np.float32))
