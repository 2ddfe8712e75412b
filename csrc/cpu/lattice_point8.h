// lattice::point (csrc/common/permutohedral.h) for 8 consecutive points at once, one point
// per vector lane, with the feature dimension D known at compile time. Every lane performs
// the same float operations in the same order as the scalar version (no contraction: the
// including file is compiled with -ffp-contract=off), so the simplex, ranks and weights are
// bit for bit those of lattice::point. The data-dependent writes of the barycentric weights
// (bary[d - rank] += v) become selects over the d + 2 slots, applied in the same order.
// Internal to permutohedral.cpp (the lattice build).
#pragma once

#include <cstdint>

#include "../common/permutohedral.h"
#include "softmax_simd.h"

namespace seg {
namespace lattice {

// One lattice::point result per lane: rem0[i][lane], rank[i][lane], bary[i][lane] for
// i = 0..D, and ok[lane] (false: an elevated coordinate not finite or too large).
template <int D>
struct Points8 {
    int32_t rem0[D + 1][8];
    int32_t rank[D + 1][8];
    float bary[D + 1][8];
    int32_t ok[8];
};

// Points n .. n+7 of features f (feature k of point n + l at f[k * fstride + l]).
template <int D>
SEG_SIMD_INLINE void point8(const float* f, int64_t fstride, const float* scale, Points8<D>& out) {
    v8f elevated[D + 1], rem0[D + 1], bary[D + 2];
    v8i rank[D + 1];
    v8f sm = {};
    for (int j = D; j > 0; --j) {
        const v8f cf = load8(f + (int64_t)(j - 1) * fstride) * scale[j - 1];
        elevated[j] = sm - (float)j * cf;
        sm = sm + cf;
    }
    elevated[0] = sm;
    const float down = 1.0f / (float)(D + 1);
    const float up = (float)(D + 1);
    v8f sum = {};
    v8i ok = (v8i){} - 1;
    for (int i = 0; i <= D; ++i) {
        const v8f a = (v8f)((v8i)elevated[i] & 0x7fffffff);  // fabsf
        ok &= a < SEG_LATTICE_MAX_COORD;                       // false for NaN
        const v8f v = ((down * elevated[i]) + 12582912.0f) - 12582912.0f;  // SEG_RINT
        rem0[i] = v * up;
        sum = sum + v;
    }
    for (int i = 0; i <= D; ++i) rank[i] = (v8i){};
    for (int i = 0; i < D; ++i) {
        const v8f di = elevated[i] - rem0[i];
        for (int j = i + 1; j <= D; ++j) {
            const v8f dj = elevated[j] - rem0[j];
            const v8i lt = di < dj;  // -1 where di < dj
            rank[i] -= lt;
            rank[j] += 1 + lt;
        }
    }
    // sum is an integer of |sum| < 2^22 wherever ok; elsewhere the conversion must stay defined
    const v8f clamped = ok ? sum : (v8f){};
    const v8i isum = __builtin_convertvector(clamped, v8i);
    for (int i = 0; i <= D; ++i) {
        rank[i] += isum;
        const v8i neg = rank[i] < 0, pos = rank[i] > D;
        rank[i] = neg ? rank[i] + (D + 1) : (pos ? rank[i] - (D + 1) : rank[i]);
        rem0[i] = neg ? rem0[i] + up : (pos ? rem0[i] - up : rem0[i]);
    }
    for (int t = 0; t <= D + 1; ++t) bary[t] = (v8f){};
    for (int i = 0; i <= D; ++i) {
        const v8f v = (elevated[i] - rem0[i]) * down;
        const v8i slot = D - rank[i];
        for (int t = 0; t <= D; ++t) bary[t] = slot == t ? bary[t] + v : bary[t];
        for (int t = 1; t <= D + 1; ++t) bary[t] = slot + 1 == t ? bary[t] - v : bary[t];
    }
    bary[0] = bary[0] + (1.0f + bary[D + 1]);
    for (int i = 0; i <= D; ++i) {
        const v8i r0 = __builtin_convertvector(ok ? rem0[i] : (v8f){}, v8i);
        for (int l = 0; l < 8; ++l) {
            out.rem0[i][l] = r0[l];
            out.rank[i][l] = rank[i][l];
            out.bary[i][l] = bary[i][l];
        }
    }
    for (int l = 0; l < 8; ++l) out.ok[l] = ok[l] != 0;
}

}  // namespace lattice
}  // namespace seg
