// 8-lane float vectors (GCC/Clang vector extensions: SSE pairs in the baseline build, AVX2
// in the multi-versioned one) for the dense-CRF update: loads/stores, exp_nonpositive on
// 8 lanes (the operations of csrc/common/fast_exp.h one for one, contracted into FMAs only
// where the including file allows it: the AVX2+FMA build of crf.cpp) and the softmax of a
// padded row. The softmax takes the max and the sum lane-wise, then combines the 8 lanes in
// a fixed order.
#pragma once

#include <cstring>

#include "../common/fast_exp.h"

#if !defined(__GNUC__)
#error "csrc/cpu/softmax_simd.h needs GCC or Clang vector extensions"
#endif

// Always inlined, so that the code takes the instruction set of its (multi-versioned) caller.
#define SEG_SIMD_INLINE inline __attribute__((always_inline))

namespace seg {

typedef float v8f __attribute__((vector_size(32)));
typedef int v8i __attribute__((vector_size(32)));

SEG_SIMD_INLINE v8f load8(const float* p) {
    v8f v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
SEG_SIMD_INLINE void store8(float* p, v8f v) { std::memcpy(p, &v, sizeof v); }

// Transposes the 8x8 block r[row][lane] in registers (unpack, pair and half shuffles).
SEG_SIMD_INLINE void transpose8(v8f* r) {
    const v8i lo1 = {0, 8, 1, 9, 4, 12, 5, 13}, hi1 = {2, 10, 3, 11, 6, 14, 7, 15};
    const v8i lo2 = {0, 1, 8, 9, 4, 5, 12, 13}, hi2 = {2, 3, 10, 11, 6, 7, 14, 15};
    const v8i lo4 = {0, 1, 2, 3, 8, 9, 10, 11}, hi4 = {4, 5, 6, 7, 12, 13, 14, 15};
    v8f t[8], s[8];
    for (int k = 0; k < 8; k += 2) {
        t[k] = __builtin_shuffle(r[k], r[k + 1], lo1);      // r_k0 r_k+1,0 r_k1 r_k+1,1 | lanes 4, 5
        t[k + 1] = __builtin_shuffle(r[k], r[k + 1], hi1);  // lanes 2, 3 | 6, 7
    }
    for (int k = 0; k < 8; k += 4) {
        s[k] = __builtin_shuffle(t[k], t[k + 2], lo2);          // lane 0 of rows k..k+3 | lane 4
        s[k + 1] = __builtin_shuffle(t[k], t[k + 2], hi2);      // lane 1 | 5
        s[k + 2] = __builtin_shuffle(t[k + 1], t[k + 3], lo2);  // lane 2 | 6
        s[k + 3] = __builtin_shuffle(t[k + 1], t[k + 3], hi2);  // lane 3 | 7
    }
    for (int k = 0; k < 4; ++k) {
        r[k] = __builtin_shuffle(s[k], s[k + 4], lo4);
        r[k + 4] = __builtin_shuffle(s[k], s[k + 4], hi4);
    }
}

// exp_nonpositive on 8 lanes (see csrc/common/fast_exp.h for the method).
SEG_SIMD_INLINE v8f exp_nonpositive8(v8f x) {
    const v8i low = x < -87.0f;
    const v8f keep = low ? (v8f){} : (v8f){} + 1.0f;
    x = low ? (v8f){} - 87.0f : x;
    const v8f t = x * 1.44269504088896341f;
    v8f tm = t - 0.5f;                       // clamped as in exp_nonpositive (NaN lanes)
    tm = tm >= -127.0f ? tm : (v8f){} - 127.0f;
    tm = tm <= 126.0f ? tm : (v8f){} + 126.0f;
    const v8i n = __builtin_convertvector(tm, v8i);  // truncation, as (int)
    const v8f fn = __builtin_convertvector(n, v8f);
    v8f r = x - fn * 0.693359375f;
    r = r - fn * -2.12194440e-4f;
    const v8f y = exp_reduced(r);
    const v8i bits = (n + 127) << 23;
    return y * (v8f)bits * keep;
}

// log_positive on 8 lanes (see csrc/common/fast_exp.h).
SEG_SIMD_INLINE v8f log_positive8(v8f x) {
    const v8i i = (v8i)x;
    v8i k = ((i >> 23) & 0xff) - 126;
    v8f m = (v8f)((i & 0x807fffff) | 0x3f000000);  // mantissa in [0.5, 1)
    const v8i low = m < 0.707106781186547524f;    // -1 in low lanes
    k = k + low;
    m = (low ? m + m : m) - 1.0f;
    return log_reduced(m, __builtin_convertvector(k, v8f));
}

// e[0..nv) (8 lanes each) -> softmax of its first C lanes; lanes C..8*nv-1 count as -3e38
// (they become 0; masked in registers).
SEG_SIMD_INLINE void softmax_rows(v8f* e, int nv, int C) {
    const v8i lane = {0, 1, 2, 3, 4, 5, 6, 7};
    for (int k = 8 * (C / 8) < 8 * nv ? C / 8 : nv; k < nv; ++k)
        e[k] = lane + 8 * k < C ? e[k] : (v8f){} - 3.0e38f;
    v8f m = e[0];
    for (int k = 1; k < nv; ++k) m = e[k] > m ? e[k] : m;
    // the lanes' maximum and sum by halving trees (a short dependency chain); the sum's
    // tree is ((s0+s4) + (s1+s5)) + ((s2+s6) + (s3+s7)) in every lane
    const v8i halves = {4, 5, 6, 7, 0, 1, 2, 3}, pairs = {1, 0, 3, 2, 5, 4, 7, 6}, quads = {2, 3, 0, 1, 6, 7, 4, 5};
    v8f t = __builtin_shuffle(m, halves);
    m = t > m ? t : m;
    t = __builtin_shuffle(m, quads);
    m = t > m ? t : m;
    t = __builtin_shuffle(m, pairs);
    m = t > m ? t : m;
    const float mx = m[0];
    v8f s = {};
    for (int k = 0; k < nv; ++k) {
        e[k] = exp_nonpositive8(e[k] - mx);
        s += e[k];
    }
    s = s + __builtin_shuffle(s, halves);  // lane i < 4: s_i + s_(i+4)
    s = s + __builtin_shuffle(s, pairs);   // lane 0: (s0+s4) + (s1+s5), lane 2: (s2+s6) + (s3+s7)
    s = s + __builtin_shuffle(s, quads);   // lane 0: their sum
    const float total = s[0];
    const float inv = 1.0f / total;
    for (int k = 0; k < nv; ++k) e[k] *= inv;
}

}  // namespace seg
