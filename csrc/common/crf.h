// Dense-CRF mean-field per-point logic shared by the CPU and CUDA builds (pydensecrf numerics).
//   normalisation of kernel k (n = K·1 filtered ones):
//     SYMMETRIC (3): pre = post = float(1/sqrt(double(n) + 1e-20))
//     AFTER (2): post = float(1/(double(n) + 1e-20));  BEFORE (1): pre = that;  NONE (0): none
//   compatibility: DIAG: pairwise[c] = w[c]*s[c] (Potts weight w is passed as w[c] = -w);
//                  FULL: pairwise[c] = sum_l M[c,l]*s[l] (l in order) with M already symmetrised
//                  (applied in csrc/cpu/crf.cpp, 8 lanes at a time)
//   update: e = -U - sum_k pairwise_k;  Q = exp(e - max e) / sum(exp(e - max e))
//           (csrc/cpu/softmax_simd.h: 8 lanes at a time, exp_nonpositive from fast_exp.h)
#pragma once

#include "seg_common.h"

#if !defined(__CUDACC_RTC__)
#include <math.h>
#endif

namespace seg {
namespace crf {

SEG_HD float norm_symmetric(float n) { return (float)(1.0 / sqrt((double)n + 1e-20)); }
SEG_HD float norm_inverse(float n) { return (float)(1.0 / ((double)n + 1e-20)); }

}  // namespace crf
}  // namespace seg
