// Dense-CRF mean-field per-point logic shared by the CPU and CUDA builds (pydensecrf numerics).
//   normalisation of kernel k (n = K·1 filtered ones):
//     SYMMETRIC (3): pre = post = float(1/sqrt(double(n) + 1e-20))
//     AFTER (2): post = float(1/(double(n) + 1e-20));  BEFORE (1): pre = that;  NONE (0): none
//   compatibility: DIAG: pairwise[c] = w[c]*s[c] (Potts weight w is passed as w[c] = -w);
//                  FULL: pairwise[c] = sum_l M[c,l]*s[l] with M already symmetrised
//   update: e = -U - sum_k pairwise_k;  Q = exp(e - max e) / sum(exp(e - max e))
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

// e[c] -= compat applied to s.
SEG_HD void apply_compat(float* e, const float* s, const float* compat, int kind, int C) {
    if (kind == 0) {
        for (int c = 0; c < C; ++c) e[c] -= compat[c] * s[c];
    } else {
        for (int c = 0; c < C; ++c) {
            float acc = 0.0f;
            for (int l = 0; l < C; ++l) acc += compat[c * C + l] * s[l];
            e[c] -= acc;
        }
    }
}

// In place: e -> softmax(e) as pydensecrf's expAndNormalize (max-subtracted, divided by sum).
SEG_HD void softmax(float* e, int C) {
    float m = e[0];
    for (int c = 1; c < C; ++c) m = e[c] > m ? e[c] : m;
    for (int c = 0; c < C; ++c) e[c] = exp_nonpositive(e[c] - m);
    float s = 0.0f;
    for (int c = 0; c < C; ++c) s += e[c];
    const float inv = 1.0f / s;
    for (int c = 0; c < C; ++c) e[c] = e[c] * inv;
}

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
