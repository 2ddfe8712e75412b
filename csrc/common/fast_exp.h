// exp(x) for x <= 0 and log(x) for normal x > 0 in float, without libm calls or branches so that CPU loops vectorise:
// Cephes-style range reduction and a degree-6 polynomial, relative error about 2e-7.
// Arguments below -87 give 0 (no denormals); NaN gives NaN (without undefined conversions). Used for softmax arguments
// after subtracting the maximum (dense CRF mean field, fused cross-entropy).
#pragma once
#include "seg_common.h"

namespace seg {

// exp(r) - for the reduced argument |r| <= ln(2)/2: 1 + r + r^2 * P(r). F is float or an
// 8-lane vector of floats (csrc/cpu/softmax_simd.h); the same operations in the same order.
template <class F>
SEG_HD F exp_reduced(F r) {
    F p = F() + 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    return p * r * r + r + 1.0f;
}

SEG_HD float exp_nonpositive(float x) {
    const float keep = x < -87.0f ? 0.0f : 1.0f;
    x = x < -87.0f ? -87.0f : x;
    const float t = x * 1.44269504088896341f;
    // t <= 0: truncation gives the nearest integer.  The clamp changes no finite result; it
    // keeps the conversion defined for NaN (-> -127: a zero scale, and y is NaN anyway).
    float tm = t - 0.5f;
    tm = tm >= -127.0f ? tm : -127.0f;
    tm = tm <= 126.0f ? tm : 126.0f;
    const int n = (int)tm;
    const float fn = (float)n;
    float r = x - fn * 0.693359375f;
    r = r - fn * -2.12194440e-4f;
    const float y = exp_reduced(r);
    union { int i; float f; } u;
    u.i = (n + 127) << 23;
    return y * u.f * keep;
}

// log(1 + m) + k log(2) for the reduced m in [sqrt(1/2) - 1, sqrt(2) - 1) and fk = k: the
// Cephes-style degree-9 polynomial. F as in exp_reduced.
template <class F>
SEG_HD F log_reduced(F m, F fk) {
    const F z = m * m;
    F y = F() + 7.0376836292e-2f;
    y = y * m - 1.1514610310e-1f;
    y = y * m + 1.1676998740e-1f;
    y = y * m - 1.2420140846e-1f;
    y = y * m + 1.4249322787e-1f;
    y = y * m - 1.6668057665e-1f;
    y = y * m + 2.0000714765e-1f;
    y = y * m - 2.4999993993e-1f;
    y = y * m + 3.3333331174e-1f;
    y = y * m * z;
    y = y + fk * -2.12194440e-4f;
    y = y - 0.5f * z;
    return m + y + fk * 0.693359375f;
}

// log(x) for a positive normal float x, branch-free (vectorises): x = m * 2^k with m in
// [sqrt(1/2), sqrt(2)), then log_reduced; relative error about 1e-7. Used for the dense-CRF
// unary -log(clip(p, 1e-5, 1)).
SEG_HD float log_positive(float x) {
    union { float f; int i; } u;
    u.f = x;
    int k = ((u.i >> 23) & 0xff) - 126;
    u.i = (u.i & 0x807fffff) | 0x3f000000;  // mantissa in [0.5, 1)
    float m = u.f;
    const bool low = m < 0.707106781186547524f;
    k = low ? k - 1 : k;
    m = (low ? m + m : m) - 1.0f;
    return log_reduced(m, (float)k);
}

}  // namespace seg
