// Permutohedral lattice (Adams, Baek & Davis 2010): per-element logic shared by the
// CPU (csrc/cpu/permutohedral.cpp) and CUDA (csrc/cuda/permutohedral.cu) builds.
//
// Numerics follow pydensecrf (Kraehenbuehl's densecrf, SSE build) fact for fact:
//   scale_i   = float( (d+1)*sqrt(2/3) [as float] / sqrt((i+1)(i+2)) )  (double, then float)
//   elevate   : sm = 0; for j = d..1: cf = f[j-1]*scale[j-1]; e[j] = sm - j*cf; sm += cf;  e[0] = sm
//   rounding  : r_i = nearest-even( e_i * float(1/(d+1)) ),  rem0_i = r_i*(d+1),  sum = sum_i r_i
//   rank      : pairwise comparison of (e_i - rem0_i), "<" counts for i, otherwise for j
//   wrap      : rank += sum; rank < 0 -> +(d+1) (rem0 too); rank > d -> -(d+1) (rem0 too)
//   weights   : v_i = (e_i - rem0_i)*float(1/(d+1)); b[d-rank_i] += v_i; b[d-rank_i+1] -= v_i;
//               b[0] += 1 + b[d+1]
//   vertex r  : key_i = rem0_i + (rank_i <= d-r ? r : r-(d+1))   for i < d (coordinate d implied)
//   blur axis j (0..d): new[v] = old[v] + 0.5*(old[n1] + old[n2]), a missing neighbour is 0;
//               n1 = key - 1 (all coords) with coord j + d;  n2 = key + 1 with coord j - d
//   slice     : out = sum_r (b_r * alpha) * V[vertex_r],  alpha = 1/(1 + 2^-d)
//
// All arithmetic on lattice coordinates is float32 without contraction into FMA (CUDA:
// __fmul_rn/__fadd_rn), so that CPU and GPU find the same simplex for every point.
// Feature dimension d is 1..SEG_LATTICE_MAX_D. Keys are int32; callers must make sure
// |elevated| < SEG_LATTICE_MAX_COORD (checked by seg_lattice_point, which then returns false).
#pragma once

#include "seg_common.h"

#define SEG_LATTICE_MAX_D 16
// Largest |elevated coordinate| accepted: keeps rem0 exact in float32 and keys in int32.
#define SEG_LATTICE_MAX_COORD 4194304.0f

#if defined(__CUDA_ARCH__)
#define SEG_FMUL(a, b) __fmul_rn((a), (b))
#define SEG_FADD(a, b) __fadd_rn((a), (b))
#define SEG_FSUB(a, b) __fsub_rn((a), (b))
#define SEG_RINT(a) rintf(a)
#else
#if !defined(__CUDACC_RTC__)
#include <math.h>
#endif
#define SEG_FMUL(a, b) ((a) * (b))
#define SEG_FADD(a, b) ((a) + (b))
#define SEG_FSUB(a, b) ((a) - (b))
// Round to nearest, ties to even, for |a| < 2^22: adding and subtracting 1.5*2^23 leaves
// the integer part (float spacing is 1 there). Equal to nearbyintf under the default
// rounding mode, but inline: without SSE4.1 the compiler calls libm for nearbyintf.
#define SEG_RINT(a) (((a) + 12582912.0f) - 12582912.0f)
#endif

namespace seg {
namespace lattice {

// Scale factor of feature i for dimension d (pydensecrf: computed in double, stored as float).
SEG_HD float scale_factor(int i, int d) {
    const float inv_std_dev = (float)(sqrt(2.0 / 3.0) * (double)(d + 1));
    return (float)(1.0 / sqrt((double)((i + 2) * (i + 1))) * (double)inv_std_dev);
}

// Slice constant alpha = 1/(1 + 2^-d) (float, as pydensecrf's powf version).
SEG_HD float slice_alpha(int d) {
    float p = 1.0f;
    for (int i = 0; i < d; ++i) p *= 0.5f;  // exact power of two
    return 1.0f / (1.0f + p);
}

// One point: features f (d values, feature k at f[k*fstride]), scales (d floats).
// Outputs rem0[d+1] (ints), rank[d+1] (0..d) and bary[d+1] (weight of vertex r = bary[r]).
// Returns false when an elevated coordinate is not finite or too large for int32 keys.
SEG_HD bool point(const float* f, int64_t fstride, const float* scale, int d,
                  int* rem0_out, int* rank_out, float* bary_out) {
    float elevated[SEG_LATTICE_MAX_D + 1];
    float rem0[SEG_LATTICE_MAX_D + 1];
    int rank[SEG_LATTICE_MAX_D + 1];
    float bary[SEG_LATTICE_MAX_D + 2];
    float sm = 0.0f;
    for (int j = d; j > 0; --j) {
        const float cf = SEG_FMUL(f[(int64_t)(j - 1) * fstride], scale[j - 1]);
        elevated[j] = SEG_FSUB(sm, SEG_FMUL((float)j, cf));
        sm = SEG_FADD(sm, cf);
    }
    elevated[0] = sm;
    const float down = 1.0f / (float)(d + 1);
    const float up = (float)(d + 1);
    float sum = 0.0f;
    for (int i = 0; i <= d; ++i) {
        if (!(fabsf(elevated[i]) < SEG_LATTICE_MAX_COORD)) return false;  // also NaN
        const float v = SEG_RINT(SEG_FMUL(down, elevated[i]));
        rem0[i] = SEG_FMUL(v, up);
        sum = SEG_FADD(sum, v);
    }
    for (int i = 0; i <= d; ++i) rank[i] = 0;
    for (int i = 0; i < d; ++i) {
        const float di = SEG_FSUB(elevated[i], rem0[i]);
        for (int j = i + 1; j <= d; ++j) {
            const float dj = SEG_FSUB(elevated[j], rem0[j]);
            const int lt = di < dj ? 1 : 0;  // branch-free: the outcome is unpredictable
            rank[i] += lt;
            rank[j] += 1 - lt;
        }
    }
    const int isum = (int)sum;
    for (int i = 0; i <= d; ++i) {
        rank[i] += isum;
        if (rank[i] < 0) {
            rank[i] += d + 1;
            rem0[i] = SEG_FADD(rem0[i], up);
        } else if (rank[i] > d) {
            rank[i] -= d + 1;
            rem0[i] = SEG_FSUB(rem0[i], up);
        }
    }
    for (int i = 0; i <= d + 1; ++i) bary[i] = 0.0f;
    for (int i = 0; i <= d; ++i) {
        const float v = SEG_FMUL(SEG_FSUB(elevated[i], rem0[i]), down);
        bary[d - rank[i]] = SEG_FADD(bary[d - rank[i]], v);
        bary[d - rank[i] + 1] = SEG_FSUB(bary[d - rank[i] + 1], v);
    }
    bary[0] = SEG_FADD(bary[0], SEG_FADD(1.0f, bary[d + 1]));
    for (int i = 0; i <= d; ++i) {
        rem0_out[i] = (int)rem0[i];
        rank_out[i] = rank[i];
        bary_out[i] = bary[i];
    }
    return true;
}

// Key (d ints) of vertex `r` (0..d) of the simplex given by rem0/rank.
SEG_HD void vertex_key(const int* rem0, const int* rank, int r, int d, int* key) {
    for (int i = 0; i < d; ++i) key[i] = rem0[i] + (rank[i] <= d - r ? r : r - (d + 1));
}

// Key of the neighbour of `key` along lattice axis j (0..d); dir = -1 gives n1, +1 gives n2.
SEG_HD void neighbor_key(const int* key, int j, int d, int dir, int* out) {
    for (int i = 0; i < d; ++i) out[i] = key[i] + dir;
    if (j < d) out[j] = key[j] - dir * d;
}

// 64-bit hash of (batch, key[0..d-1]): a linear form with pseudo-random odd multipliers
// (mod 2^64), then the splitmix64 finaliser. Linear, so that the d+1 vertices of a simplex
// can be hashed incrementally (simplex_hashes); identical on host and device. `mult` holds
// the d multipliers from hash_multipliers().
SEG_HD uint64_t hash_finish(uint64_t h) {
    h ^= h >> 30;
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 27;
    h *= 0x94D049BB133111EBull;
    h ^= h >> 31;
    return h;
}
SEG_HD void hash_multipliers(int d, uint64_t* mult) {
    for (int i = 0; i < d; ++i) mult[i] = hash_finish(0x9E3779B97F4A7C15ull * (uint64_t)(i + 1)) | 1ull;
}
// The linear form of key_hash, before its finaliser (mod 2^64).
SEG_HD uint64_t key_form(int64_t batch, const int* key, int d, const uint64_t* mult) {
    uint64_t h = (uint64_t)batch * 0xD6E8FEB86659FD93ull;
    for (int i = 0; i < d; ++i) h += (uint64_t)(int64_t)key[i] * mult[i];
    return h;
}
SEG_HD uint64_t key_hash(int64_t batch, const int* key, int d, const uint64_t* mult) {
    return hash_finish(key_form(batch, key, d, mult));
}

// key_hash of the d+1 vertex keys of the simplex rem0/rank (vertex_key), in O(d) for all:
// key_i(r) = rem0_i + r - (d+1)*[rank_i > d-r], and the set {i: rank_i > d-r} gains the
// coordinate of rank d-r+1 at each step. rank[0..d] must be a permutation of 0..d (it is,
// for point()'s output); otherwise the keys are hashed one by one.
SEG_HD void simplex_hashes(int64_t batch, const int* rem0, const int* rank, int d, const uint64_t* mult,
                           uint64_t* h) {
    int coord_of_rank[SEG_LATTICE_MAX_D + 1];
    for (int k = 0; k <= d; ++k) coord_of_rank[k] = -1;
    bool perm = true;
    for (int i = 0; i <= d; ++i) {
        if (rank[i] < 0 || rank[i] > d || coord_of_rank[rank[i]] >= 0) perm = false;
        else coord_of_rank[rank[i]] = i;
    }
    if (!perm) {
        int key[SEG_LATTICE_MAX_D];
        for (int r = 0; r <= d; ++r) {
            vertex_key(rem0, rank, r, d, key);
            h[r] = key_hash(batch, key, d, mult);
        }
        return;
    }
    uint64_t base = (uint64_t)batch * 0xD6E8FEB86659FD93ull, sum_m = 0;
    for (int i = 0; i < d; ++i) {
        base += (uint64_t)(int64_t)rem0[i] * mult[i];
        sum_m += mult[i];
    }
    uint64_t t = 0;
    for (int r = 0; r <= d; ++r) {
        if (r > 0) {
            const int j = coord_of_rank[d - r + 1];
            if (j < d) t += mult[j];
        }
        h[r] = hash_finish(base + (uint64_t)r * sum_m - (uint64_t)(d + 1) * t);
    }
}

// Lexicographic comparison of two keys of length n: -1, 0, 1.
SEG_HD int key_compare(const int* a, const int* b, int n) {
    for (int i = 0; i < n; ++i) {
        if (a[i] < b[i]) return -1;
        if (a[i] > b[i]) return 1;
    }
    return 0;
}

// Channels are processed in chunks of SEG_LATTICE_CHUNK with a local accumulator that the
// compiler keeps in registers (a fixed trip count), then a tail.
#define SEG_LATTICE_CHUNK 8

// The weight of CSR entry k (point p) in a splat: w[k], times the point's pre-factor if any.
template <typename T>
SEG_HD T splat_weight(int64_t k, int64_t p, const float* w, const T* pre) {
    return pre ? (T)w[k] * pre[p] : (T)w[k];
}

// Channel c of the splat into vertex v: the sum over its CSR entries k (in point order) of
// splat_weight * in[pt[k], c], added in the order splat_vertex adds it (the GPU's splat,
// one thread per vertex and channel).
template <typename T>
SEG_HD T splat_channel(int64_t v, int c, const int64_t* ptr, const int32_t* pt, const float* w,
                       const T* in, const T* pre, int C) {
    T acc = T(0);
    for (int64_t k = ptr[v], e = ptr[v + 1]; k < e; ++k) {
        const int64_t p = pt[k];
        acc += splat_weight<T>(k, p, w, pre) * in[p * C + c];
    }
    return acc;
}

// Splat into one vertex v: V[v, :] = sum over its CSR entries k (in point order) of
// w[k] * in[pt[k], :] * (pre ? pre[pt[k]] : 1).  C values per row.
template <typename T>
SEG_HD void splat_vertex(int64_t v, const int64_t* ptr, const int32_t* pt, const float* w,
                         const T* in, const T* pre, int C, T* out_row) {
    const int64_t b = ptr[v], e = ptr[v + 1];
    int c0 = 0;
    for (; c0 + SEG_LATTICE_CHUNK <= C; c0 += SEG_LATTICE_CHUNK) {
        T acc[SEG_LATTICE_CHUNK];
        for (int c = 0; c < SEG_LATTICE_CHUNK; ++c) acc[c] = T(0);
        for (int64_t k = b; k < e; ++k) {
            const int64_t p = pt[k];
#if !defined(__CUDA_ARCH__) && defined(__GNUC__)
            if (k + 4 < e) __builtin_prefetch(in + (int64_t)pt[k + 4] * C + c0);
#endif
            const T wk = splat_weight<T>(k, p, w, pre);
            const T* src = in + p * C + c0;
            for (int c = 0; c < SEG_LATTICE_CHUNK; ++c) acc[c] += wk * src[c];
        }
        for (int c = 0; c < SEG_LATTICE_CHUNK; ++c) out_row[c0 + c] = acc[c];
    }
    if (c0 < C) {
        for (int c = c0; c < C; ++c) out_row[c] = T(0);
        for (int64_t k = b; k < e; ++k) {
            const int64_t p = pt[k];
            const T wk = splat_weight<T>(k, p, w, pre);
            const T* src = in + p * C;
            for (int c = c0; c < C; ++c) out_row[c] += wk * src[c];
        }
    }
}

// Scatter one point's row: V[offsets[p, r], :] += weights[p, r] * row  for r = 0..d.
template <typename T>
SEG_HD void scatter_point(int64_t p, const int32_t* offsets, const float* weights, int d,
                          const T* row, int C, T* V) {
    for (int r = 0; r <= d; ++r) {
        const T w = (T)weights[p * (d + 1) + r];
        T* dst = V + (int64_t)offsets[p * (d + 1) + r] * C;
        for (int c = 0; c < C; ++c) dst[c] += w * row[c];
    }
}

// Blur one vertex along one axis: out = V[v] + 0.5*(V[n1] + V[n2]) (missing = -1 = 0).
template <typename T>
SEG_HD void blur_vertex(int64_t v, int32_t n1, int32_t n2, const T* V, int C, T* out_row) {
    const T* self = V + v * C;
    const T* a = n1 >= 0 ? V + (int64_t)n1 * C : nullptr;
    const T* b = n2 >= 0 ? V + (int64_t)n2 * C : nullptr;
    for (int c = 0; c < C; ++c) {
        const T s = (a ? a[c] : T(0)) + (b ? b[c] : T(0));
        out_row[c] = self[c] + T(0.5) * s;
    }
}

// Slice one point p: out[c] = sum_r (weights[p,r]*alpha) * V[offsets[p,r], c] (* post[p]).
template <typename T>
SEG_HD void slice_point(int64_t p, const int32_t* offsets, const float* weights, const T* V,
                        const T* post, T alpha, int d, int C, T* out_row) {
    const int64_t base = p * (d + 1);
    const T s = post ? post[p] : T(1);
    int c0 = 0;
    for (; c0 + SEG_LATTICE_CHUNK <= C; c0 += SEG_LATTICE_CHUNK) {
        T acc[SEG_LATTICE_CHUNK];
        for (int c = 0; c < SEG_LATTICE_CHUNK; ++c) acc[c] = T(0);
        for (int r = 0; r <= d; ++r) {
            const T w = (T)weights[base + r] * alpha;
            const T* src = V + (int64_t)offsets[base + r] * C + c0;
            for (int c = 0; c < SEG_LATTICE_CHUNK; ++c) acc[c] += w * src[c];
        }
        for (int c = 0; c < SEG_LATTICE_CHUNK; ++c) out_row[c0 + c] = post ? acc[c] * s : acc[c];
    }
    if (c0 < C) {
        for (int c = c0; c < C; ++c) out_row[c] = T(0);
        for (int r = 0; r <= d; ++r) {
            const T w = (T)weights[base + r] * alpha;
            const T* src = V + (int64_t)offsets[base + r] * C;
            for (int c = c0; c < C; ++c) out_row[c] += w * src[c];
        }
        if (post)
            for (int c = c0; c < C; ++c) out_row[c] *= s;
    }
}

}  // namespace lattice
}  // namespace seg
