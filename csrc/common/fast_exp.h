// exp(x) for x <= 0 in float, without libm calls or branches so that CPU loops vectorise:
// Cephes-style range reduction and a degree-6 polynomial, relative error about 2e-7.
// Arguments below -87 give 0 (no denormals); NaN gives NaN. Used for softmax arguments
// after subtracting the maximum (dense CRF mean field, fused cross-entropy).
#pragma once
#include "seg_common.h"

namespace seg {

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

}  // namespace seg
