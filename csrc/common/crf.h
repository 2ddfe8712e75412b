// Dense-CRF mean-field per-point logic shared by the CPU and CUDA builds (pydensecrf numerics).
//   normalisation of kernel k (n = K·1 filtered ones):
//     SYMMETRIC (3): pre = post = float(1/sqrt(double(n) + 1e-20))
//     AFTER (2): post = float(1/(double(n) + 1e-20));  BEFORE (1): pre = that;  NONE (0): none
//   compatibility: DIAG: pairwise[c] = w[c]*s[c] (Potts weight w is passed as w[c] = -w);
//                  FULL: pairwise[c] = sum_l M[c,l]*s[l] with M already symmetrised
//   update: e = -U - sum_k pairwise_k;  Q = exp(e - max e) / sum(exp(e - max e))
#pragma once

#include "seg_common.h"

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

// exp(x) for x <= 0 (softmax arguments after subtracting the maximum): Cephes-style
// range reduction and degree-6 polynomial, relative error about 2e-7, no branches and no
// libm call so that the CPU loop vectorises. Arguments below -87 give 0 (no denormals).
SEG_HD float exp_nonpositive(float x) {
    const float keep = x < -87.0f ? 0.0f : 1.0f;
    x = x < -87.0f ? -87.0f : x;
    const float t = x * 1.44269504088896341f;
    const int n = (int)(t - 0.5f);  // t <= 0: truncation gives the nearest integer
    const float fn = (float)n;
    float r = x - fn * 0.693359375f;
    r = r - fn * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    const float y = p * r * r + r + 1.0f;
    union { int i; float f; } u;
    u.i = (n + 127) << 23;
    return y * u.f * keep;
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

}  // namespace crf
}  // namespace seg
