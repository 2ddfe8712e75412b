"""pydensecrf-compatible API on segengine's lattice: change the import, keep the code.

    import segengine.densecrf as dcrf            # was: import pydensecrf.densecrf as dcrf
    from segengine.densecrf.utils import unary_from_softmax

    d = dcrf.DenseCRF2D(W, H, n_labels)
    d.setUnaryEnergy(unary_from_softmax(probs))   # float32 [n_labels, W*H]
    d.addPairwiseGaussian(sxy=3, compat=3)
    d.addPairwiseBilateral(sxy=80, srgb=13, rgbim=image_hwc_uint8, compat=10)
    Q = np.array(d.inference(5))                  # float32 [n_labels, W*H]

Same class and method names, signatures, defaults, constants and array layouts as
pydensecrf 1.1 (``DenseCRF``, ``DenseCRF2D``, ``setUnaryEnergy``, ``addPairwiseEnergy``,
``addPairwiseGaussian``, ``addPairwiseBilateral``, ``inference``, ``startInference``,
``stepInference``, ``klDivergence``; ``NO_NORMALIZATION``... and ``CONST_KERNEL``...).
``inference`` returns a numpy array (pydensecrf returns an Eigen matrix that ``np.array``
converts; both work with ``np.array(...)``). Bad parameters raise ``ValueError``/``TypeError``
instead of crashing. Not supported: the logistic unary (``setUnaryEnergy(u, f)``) and learning.
"""

from segengine.densecrf._densecrf import (CONST_KERNEL, DIAG_KERNEL, FULL_KERNEL, NO_NORMALIZATION,
                                          NORMALIZE_AFTER, NORMALIZE_BEFORE, NORMALIZE_SYMMETRIC,
                                          DenseCRF, DenseCRF2D, KernelType, NormalizationType)
from segengine.densecrf import utils

__all__ = ["DenseCRF", "DenseCRF2D", "NO_NORMALIZATION", "NORMALIZE_BEFORE", "NORMALIZE_AFTER",
           "NORMALIZE_SYMMETRIC", "CONST_KERNEL", "DIAG_KERNEL", "FULL_KERNEL", "NormalizationType",
           "KernelType", "utils"]
