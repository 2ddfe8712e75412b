// Dense-CRF mean-field per-point logic shared by the CPU and CUDA builds (pydensecrf numerics).
//   normalisation of kernel k (n = K·1 filtered ones):
//     SYMMETRIC (3): pre = post = float(1/sqrt(double(n) + 1e-20))
//     AFTER (2): post = float(1/(double(n) + 1e-20));  BEFORE (1): pre = that;  NONE (0): none
//   compatibility: DIAG: pairwise[c] = w[c]*s[c] (Potts weight w is passed as w[c] = -w);
//                  FULL: pairwise[c] = sum_l M[c,l]*s[l] (l in order) with M already symmetrised
//                  (applied in csrc/cpu/crf.cpp, 8 lanes at a time)
//   update: e = -U - sum_k pairwise_k;  Q = exp(e - max e) / sum(exp(e - max e))  (softmax_padded;
//           csrc/cpu/softmax_simd.h computes the same in vector registers)
#pragma once

#include "seg_common.h"
#include "fast_exp.h"

#if !defined(__CUDACC_RTC__)
#include <math.h>
#endif

namespace seg {
namespace crf {

SEG_HD float norm_symmetric(float n) { return (float)(1.0 / sqrt((double)n + 1e-20)); }
SEG_HD float norm_inverse(float n) { return (float)(1.0 / ((double)n + 1e-20)); }

// In place: softmax of a row of Cp values (Cp a multiple of SEG_SOFTMAX_LANES) whose unused
// entries hold a large negative number (they become 0). Max and sum are taken in
// SEG_SOFTMAX_LANES interleaved partial results combined in a fixed order, so the loops
// vectorise; the sum therefore differs from a sequential one by float rounding only.
#define SEG_SOFTMAX_LANES 8
SEG_HD void softmax_padded(float* e, int Cp) {
    float m[SEG_SOFTMAX_LANES], s[SEG_SOFTMAX_LANES];
    for (int l = 0; l < SEG_SOFTMAX_LANES; ++l) m[l] = e[l];
    for (int c0 = SEG_SOFTMAX_LANES; c0 < Cp; c0 += SEG_SOFTMAX_LANES)
        for (int l = 0; l < SEG_SOFTMAX_LANES; ++l) m[l] = e[c0 + l] > m[l] ? e[c0 + l] : m[l];
    float mx = m[0];
    for (int l = 1; l < SEG_SOFTMAX_LANES; ++l) mx = m[l] > mx ? m[l] : mx;
    for (int l = 0; l < SEG_SOFTMAX_LANES; ++l) s[l] = 0.0f;
    for (int c0 = 0; c0 < Cp; c0 += SEG_SOFTMAX_LANES)
        for (int l = 0; l < SEG_SOFTMAX_LANES; ++l) {
            const float x = exp_nonpositive(e[c0 + l] - mx);
            e[c0 + l] = x;
            s[l] += x;
        }
    const float total = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
    const float inv = 1.0f / total;
    for (int c = 0; c < Cp; ++c) e[c] = e[c] * inv;
}

}  // namespace crf
}  // namespace seg
