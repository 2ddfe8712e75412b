// Softmax of a padded row, 8 lanes at a time with GCC/Clang vector extensions (SSE pairs in
// the baseline build, AVX2 in the multi-versioned one). Computes exactly what
// crf::softmax_padded (csrc/common/crf.h) computes: the same lane-wise partial max and sums
// combined in the same order, and exp_nonpositive's operations one for one (no contraction
// into FMA: -ffp-contract=off). Compilers without vector extensions use that scalar code.
#pragma once

#include <cstring>

#include "../common/crf.h"
#include "../common/fast_exp.h"

// Always inlined, so that the code takes the instruction set of its (multi-versioned) caller.
#if defined(__GNUC__)
#define SEG_SIMD_INLINE inline __attribute__((always_inline))
#else
#define SEG_SIMD_INLINE inline
#endif

namespace seg {

#if defined(__GNUC__)
typedef float v8f __attribute__((vector_size(32)));
typedef int v8i __attribute__((vector_size(32)));

SEG_SIMD_INLINE v8f load8(const float* p) {
    v8f v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
SEG_SIMD_INLINE void store8(float* p, v8f v) { std::memcpy(p, &v, sizeof v); }

// exp_nonpositive on 8 lanes (see csrc/common/fast_exp.h for the method).
SEG_SIMD_INLINE v8f exp_nonpositive8(v8f x) {
    const v8i low = x < -87.0f;
    const v8f keep = low ? (v8f){} : (v8f){} + 1.0f;
    x = low ? (v8f){} - 87.0f : x;
    const v8f t = x * 1.44269504088896341f;
    const v8i n = __builtin_convertvector(t - 0.5f, v8i);  // truncation, as (int)
    const v8f fn = __builtin_convertvector(n, v8f);
    v8f r = x - fn * 0.693359375f;
    r = r - fn * -2.12194440e-4f;
    v8f p = (v8f){} + 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    const v8f y = p * r * r + r + 1.0f;
    const v8i bits = (n + 127) << 23;
    return y * (v8f)bits * keep;
}
#endif

// e[0..Cp) -> softmax of its first C entries; entries C..Cp-1 become 0. Cp % 8 == 0.
SEG_SIMD_INLINE void softmax_row(float* e, int C, int Cp) {
#if defined(__GNUC__)
    // lanes >= C count as -3e38 (exp gives 0); masked in registers, since narrow stores
    // followed by a wide load of the same bytes stall store forwarding
    const v8i lane = {0, 1, 2, 3, 4, 5, 6, 7};
    auto chunk = [&](int c0) {
        const v8f v = load8(e + c0);
        return c0 + 8 <= C ? v : (lane + c0 < C ? v : (v8f){} - 3.0e38f);
    };
    v8f m = chunk(0);
    for (int c0 = 8; c0 < Cp; c0 += 8) {
        const v8f v = chunk(c0);
        m = v > m ? v : m;
    }
    float mx = m[0];
    for (int l = 1; l < 8; ++l) mx = m[l] > mx ? m[l] : mx;
    v8f s = {};
    for (int c0 = 0; c0 < Cp; c0 += 8) {
        const v8f x = exp_nonpositive8(chunk(c0) - mx);
        store8(e + c0, x);
        s += x;
    }
    const float total = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
    const float inv = 1.0f / total;
    for (int c0 = 0; c0 < Cp; c0 += 8) store8(e + c0, load8(e + c0) * inv);
#else
    for (int c = C; c < Cp; ++c) e[c] = -3.0e38f;
    crf::softmax_padded(e, Cp);
#endif
}

}  // namespace seg
