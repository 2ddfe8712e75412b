"""Realistic problems shared by the benchmarks and the tests (built from data that
scikit-image ships; nothing is downloaded)."""

from __future__ import annotations

import numpy as np


def stereo_motorcycle_costs(scale: float = 0.5, disparities: int = 32, truncation: float = 0.1,
                            smoothness: float = 0.02):
    """Stereo matching costs of the Middlebury motorcycle pair (``skimage.data.stereo_motorcycle``).

    Both images are made grey and rescaled by ``scale`` with anti-aliasing; the data cost is
    ``D[y, x, d] = min(|L[y, x] - R[y, x - d]|, truncation)``, columns left of ``d`` taking
    ``R[:, 0]``, and the smoothness term is Potts, ``V = smoothness * (1 - I)``.

    Parameters
    ----------
    scale : float
        Rescaling factor of the 500x740 pair (0.5 gives 250x370).
    disparities : int
        Number of labels.
    truncation, smoothness : float
        Data-cost truncation and Potts weight.

    Returns
    -------
    D : float64 ndarray ``[H, W, disparities]``
        Unary costs, labels last (PyMaxflow's ``fastmin`` layout).
    V : float64 ndarray ``[disparities, disparities]``
        Pairwise costs.
    """
    from skimage import data
    from skimage.color import rgb2gray
    from skimage.transform import rescale

    left, right, _ = data.stereo_motorcycle()
    L, R = rgb2gray(left), rgb2gray(right)
    if scale != 1:
        L = rescale(L, scale, anti_aliasing=True)
        R = rescale(R, scale, anti_aliasing=True)
    H, W = L.shape
    D = np.empty((H, W, disparities))
    for d in range(disparities):
        shifted = np.empty_like(R)
        shifted[:, d:] = R[:, : W - d]
        shifted[:, :d] = R[:, :1]
        D[:, :, d] = np.minimum(np.abs(L - shifted), truncation)
    V = smoothness * (1 - np.eye(disparities))
    return D, V
