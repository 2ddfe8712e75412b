// CPU dense-CRF mean field, fused: one pass over the points per iteration slices every
// kernel, applies normalisation and compatibility, takes the softmax and at once splats
// the new marginals into the next iteration's vertex buffers (the slice and the splat read
// the same vertex indices and weights); then the buffers are reduced and blurred. The
// marginals themselves are only written out by the last update, straight into the
// channel-major output.
//
// Determinism: each image's points are cut into parts that depend on its size only (never
// on the thread count or the batch). Each part scatters, in point order, into a buffer of its own, except the
// first part of each image, which writes the image's vertex range directly; the other parts
// are then added in part order. So the sum at every vertex is the same for any number of
// threads, and no float accumulation is shared between threads.
//
// FP exceptions are never trapped here: let GCC if-convert and vectorise the conditional
// float loops (clamps, selects). Results are unchanged (this is not -ffast-math).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math", "fp-contract=fast")
#endif
#include "crf.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "big_alloc.h"
#include "cpu_features.h"
#include "parallel.h"
#include "permutohedral.h"
#include "../common/crf.h"
#include "../common/permutohedral.h"
#include "softmax_simd.h"

// SEG_CRF_FMA_DISPATCH (crf.h): the update passes and the unary conversion are also compiled
// for AVX2+FMA and chosen at run time when the processor has both (pick_update, unary_rows):
// with the contraction allowed above (values only; the lattice coordinates are computed in
// permutohedral.cpp, uncontracted), their multiply-adds and the exp/log polynomials become FMAs.

namespace seg {

namespace {

constexpr int64_t kRows = 256;           // vertices per scheduling chunk (reduce, blur)
constexpr int kPartsPerImage = 4;        // an image's points are cut into at most this many parts
constexpr int64_t kMinPartPoints = 4096; // of at least this many points

// A contiguous range of points of one image, with the vertex range it touches per kernel.
struct Part {
    int64_t lo, hi;   // points
    int64_t image;
    bool first;       // first part of its image: writes the image's vertex range directly
};

// Zero-filled float array on big_array (huge pages for large ones: page faults cost
// microseconds each on some machines, and these arrays are rewritten every iteration).
big_ptr<float> zeroed_floats(size_t n) {
    big_ptr<float> a = big_array<float>(n);
    if (!a.get_deleter().len) std::fill(a.get(), a.get() + n, 0.0f);  // fresh mappings are zero
    return a;
}

// Per-kernel state of the mean field.
struct KernelState {
    const CrfKernel* kn = nullptr;
    int d = 0;
    int64_t M = 0;
    float alpha = 1.0f;
    std::vector<float> pre, post;               // normalisers [P] (empty: none)
    std::vector<int64_t> image_lo, image_hi;    // vertex range of each image [B]
    int64_t tail_lo = 0;                        // vertices [tail_lo, M) belong to no real point
    std::vector<int64_t> part_lo, part_hi;      // vertex range of each part
    std::vector<big_ptr<float>> part_buf;       // private buffers of the non-first parts
    big_ptr<float> acc, X, Y;                   // splat target and blur ping-pong [M+1, W]
    const float* V = nullptr;                   // blurred values read by the slice
    std::vector<float> compat;                  // diagonal [Cp] or M^T [C, Cp], 0-padded
};

// Cut each image's N points into min(kPartsPerImage, N / kMinPartPoints) parts (at least 1).
// The cut depends on N only: an image gets the same result alone or in any batch.
std::vector<Part> make_parts(int64_t B, int64_t N) {
    const int64_t per_image = std::max<int64_t>(1, std::min<int64_t>(kPartsPerImage, N / kMinPartPoints));
    std::vector<Part> parts;
    for (int64_t b = 0; b < B; ++b)
        for (int64_t s = 0; s < per_image; ++s)
            parts.push_back(Part{b * N + N * s / per_image, b * N + N * (s + 1) / per_image, b, s == 0});
    return parts;
}

// Vertex ranges per image and per part (min/max of the entries' vertex indices). A lattice
// numbered in first-occurrence order has disjoint, increasing image ranges: checked, since
// the first part of an image writes its range without a private buffer.
void vertex_ranges(KernelState& ks, const std::vector<Part>& parts, int64_t B, int threads) {
    const int D1 = ks.d + 1;
    const int32_t* off = ks.kn->offsets;
    const int64_t np = (int64_t)parts.size();
    ks.part_lo.assign(np, 0);
    ks.part_hi.assign(np, 0);
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t q = 0; q < np; ++q) {
        int32_t lo = INT32_MAX, hi = -1;
        for (int64_t e = parts[q].lo * D1; e < parts[q].hi * D1; ++e) {
            lo = std::min(lo, off[e]);
            hi = std::max(hi, off[e]);
        }
        ks.part_lo[q] = lo;
        ks.part_hi[q] = (int64_t)hi + 1;
    }
    ks.image_lo.assign(B, INT64_MAX);
    ks.image_hi.assign(B, 0);
    for (int64_t q = 0; q < np; ++q) {
        const int64_t b = parts[q].image;
        ks.image_lo[b] = std::min(ks.image_lo[b], ks.part_lo[q]);
        ks.image_hi[b] = std::max(ks.image_hi[b], ks.part_hi[q]);
    }
    for (int64_t q = 0; q < np; ++q)
        if (ks.part_lo[q] < 0 || ks.part_hi[q] > ks.M)
            throw std::invalid_argument("crf_meanfield: lattice vertex index out of range");
    ks.tail_lo = B > 0 ? ks.image_hi[B - 1] : 0;
    for (int64_t b = 1; b < B; ++b)
        if (ks.image_lo[b] < ks.image_hi[b - 1])
            throw std::invalid_argument(
                "crf_meanfield: lattice vertices are not grouped per image (build the lattice "
                "with segengine's lattice_build)");
}

// The scatter target of part q for kernel k, shifted so that vertex v is row v.
inline float* scatter_target(KernelState& ks, int64_t q, const Part& part, int W) {
    if (part.first) return ks.acc.get();
    return ks.part_buf[q].get() - ks.part_lo[q] * W;
}

// Zero what part q scatters into (the image's vertex range for a first part).
inline void zero_target(KernelState& ks, int64_t q, const Part& part, int W) {
    if (part.first)
        std::fill(ks.acc.get() + ks.image_lo[part.image] * W, ks.acc.get() + ks.image_hi[part.image] * W, 0.0f);
    else
        std::fill(ks.part_buf[q].get(), ks.part_buf[q].get() + (ks.part_hi[q] - ks.part_lo[q]) * W, 0.0f);
}

// acc[v] += the private part buffers covering v, in part order, for vertices [lo, hi).
void reduce_range(KernelState& ks, const std::vector<Part>& parts, int64_t lo, int64_t hi, int W) {
    for (size_t q = 0; q < parts.size(); ++q) {
        if (parts[q].first) continue;
        const int64_t a = std::max(lo, ks.part_lo[q]), b = std::min(hi, ks.part_hi[q]);
        if (a >= b) continue;
        const float* src = ks.part_buf[q].get() + (a - ks.part_lo[q]) * W;
        float* dst = ks.acc.get() + a * W;
        for (int64_t i = 0; i < (b - a) * W; ++i) dst[i] += src[i];
    }
}

// Step `step` of turning the splat targets into the blurred V, for vertices [lo, hi):
// step 0 adds the private part buffers into acc, step j+1 blurs along axis j (acc -> X,
// then X <-> Y). After steps 0..d+1, V is the buffer written last (blurred_values).
void reduce_blur_step(KernelState& ks, const std::vector<Part>& parts, int W, int step, int64_t lo, int64_t hi) {
    if (step == 0) {
        reduce_range(ks, parts, lo, hi, W);
        return;
    }
    const int j = step - 1;
    const float* cur = j == 0 ? ks.acc.get() : (j % 2 == 1 ? ks.X.get() : ks.Y.get());
    float* nxt = j % 2 == 0 ? ks.X.get() : ks.Y.get();
    blur_range(lo, hi, ks.kn->neighbors + (size_t)j * ks.M * 2, cur, W, nxt);
}
const float* blurred_values(const KernelState& ks) { return ks.d % 2 == 0 ? ks.X.get() : ks.Y.get(); }

// The vertices a group of images [b0, b1) reads and writes: their vertex ranges (adjacent,
// numbered in image order) and the tail [tail_lo, M) of vertices no real point touches
// (pydensecrf's padding vertices, which relay the blur). b0 < 0: all vertices.
struct VertexSpan {
    int64_t lo, hi, tail_lo, tail_hi;
    int64_t chunks() const { return (hi - lo + kRows - 1) / kRows + (tail_hi - tail_lo + kRows - 1) / kRows; }
    void chunk(int64_t ch, int64_t& a, int64_t& b) const {
        const int64_t first = (hi - lo + kRows - 1) / kRows;
        const int64_t base = ch < first ? lo : tail_lo, end = ch < first ? hi : tail_hi;
        a = base + (ch < first ? ch : ch - first) * kRows;
        b = std::min(end, a + kRows);
    }
};
VertexSpan vertex_span(const KernelState& ks, int64_t b0, int64_t b1) {
    if (b0 < 0) return VertexSpan{0, ks.M, ks.M, ks.M};
    return VertexSpan{ks.image_lo[b0], ks.image_hi[b1 - 1], ks.tail_lo, ks.M};
}

// Inside a parallel region: the reduce and blur steps of every kernel over the vertices of
// images [b0, b1) (b0 < 0: all). With no more threads than kernels, each thread takes whole
// kernels (one barrier, robust when cores are shared); otherwise all threads work on each
// step of each kernel (a barrier per step). The arithmetic is the same either way. The
// result is in blurred_values(ks) = ks.V.
void reduce_and_blur(std::vector<KernelState>& kss, const std::vector<Part>& parts, int W, int threads,
                     int64_t b0, int64_t b1) {
    const int K = (int)kss.size();
    if (K >= 2 && threads <= K) {
#pragma omp for schedule(static, 1)
        for (int k = 0; k < K; ++k) {
            const VertexSpan span = vertex_span(kss[k], b0, b1);
            for (int step = 0; step <= kss[k].d + 1; ++step) {
                reduce_blur_step(kss[k], parts, W, step, span.lo, span.hi);
                reduce_blur_step(kss[k], parts, W, step, span.tail_lo, span.tail_hi);
            }
        }
    } else {
        for (KernelState& ks : kss) {
            const VertexSpan span = vertex_span(ks, b0, b1);
            const int64_t chunks = span.chunks();
            for (int step = 0; step <= ks.d + 1; ++step) {
#pragma omp for schedule(static)
                for (int64_t ch = 0; ch < chunks; ++ch) {
                    int64_t a, b;
                    span.chunk(ch, a, b);
                    reduce_blur_step(ks, parts, W, step, a, b);
                }
            }
        }
    }
}

void allocate(KernelState& ks, const std::vector<Part>& parts, int W) {
    ks.acc = zeroed_floats((size_t)(ks.M + 1) * W);  // vertices no real point touches stay 0
    ks.X = big_array<float>((size_t)(ks.M + 1) * W);     // fully written by each blur step
    ks.Y = big_array<float>((size_t)(ks.M + 1) * W);
    ks.V = blurred_values(ks);
    ks.part_buf.clear();
    ks.part_buf.resize(parts.size());
    for (size_t q = 0; q < parts.size(); ++q)  // zeroed before each pass
        if (!parts[q].first) ks.part_buf[q] = big_array<float>((size_t)(ks.part_hi[q] - ks.part_lo[q]) * W);
}

void normalisers(std::vector<KernelState>& kss, const std::vector<Part>& parts, int64_t P, int threads) {
    bool any = false;
    for (const KernelState& ks : kss) any |= ks.kn->normalization != codes::NORM_NONE;
    if (!any) return;
    std::vector<float> n((size_t)P);
    const float one = 1.0f;
    for (KernelState& ks : kss) allocate(ks, parts, 1);
#pragma omp parallel num_threads(threads)
    {
        FlushDenormals ftz;
#pragma omp for schedule(static)
        for (int64_t q = 0; q < (int64_t)parts.size(); ++q)
            for (KernelState& ks : kss) {
                if (ks.kn->normalization == codes::NORM_NONE) continue;
                zero_target(ks, q, parts[q], 1);
                float* dst = scatter_target(ks, q, parts[q], 1);
                for (int64_t p = parts[q].lo; p < parts[q].hi; ++p)
                    lattice::scatter_point<float>(p, ks.kn->offsets, ks.kn->weights, ks.d, &one, 1, dst);
            }
        reduce_and_blur(kss, parts, 1, threads, -1, -1);
    }
    for (KernelState& ks : kss) {
        const int norm = ks.kn->normalization;
        if (norm == codes::NORM_NONE) continue;
        const bool sym = norm == codes::NORM_SYMMETRIC;
        const int64_t chunks = (P + kRows - 1) / kRows;
#pragma omp parallel for num_threads(threads) schedule(static)
        for (int64_t ch = 0; ch < chunks; ++ch) {
            const int64_t lo = ch * kRows, hi = std::min(P, lo + kRows);
            slice_range(lo, hi, ks.kn->offsets, ks.kn->weights, ks.V, ks.alpha, ks.d, 1, n.data());
            for (int64_t p = lo; p < hi; ++p) n[p] = sym ? crf::norm_symmetric(n[p]) : crf::norm_inverse(n[p]);
        }
        if (norm == codes::NORM_SYMMETRIC || norm == codes::NORM_BEFORE) ks.pre = n;
        if (norm == codes::NORM_SYMMETRIC || norm == codes::NORM_AFTER) ks.post = n;
    }
}

// The update of one point works on rows of Cp = 8*nv floats held as nv 8-lane vectors: in
// registers when nv is a compile-time constant NV (1..4, C <= 32), otherwise nv = Cp/8 from
// memory (NV = 0). The arithmetic is that of csrc/common/permutohedral.h (slice_point:
// products w*alpha*V summed over the vertices in order, then * post) and csrc/common/crf.h
// (compatibility; the softmax of softmax_simd.h), operation for operation, except that the
// AVX2+FMA build fuses each multiply-add into one rounding (results move by float rounding
// only; the lattice, computed elsewhere, is unchanged).

// e -= the pairwise term of one kernel at point p; s: scratch row. DK: the kernel's feature
// dimension when known at compile time (the vertex loop unrolls), 0: ks.d.
template <int NV, int DK>
SEG_SIMD_INLINE void kernel_energy(const KernelState& ks, int64_t p, int C, int Cp, v8f* e, v8f* s) {
    const int nv = NV > 0 ? NV : Cp / 8;
    const int D1 = (DK > 0 ? DK : ks.d) + 1;
    const int32_t* off = ks.kn->offsets + p * D1;
    const float* w = ks.kn->weights + p * D1;
    for (int k = 0; k < nv; ++k) s[k] = (v8f){};
    for (int r = 0; r < D1; ++r) {
        const float wr = w[r] * ks.alpha;
        const float* src = ks.V + (int64_t)off[r] * Cp;
        for (int k = 0; k < nv; ++k) s[k] += wr * load8(src + 8 * k);
    }
    if (!ks.post.empty())
        for (int k = 0; k < nv; ++k) s[k] *= ks.post[p];
    const float* m = ks.compat.data();
    if (ks.kn->compat_kind == COMPAT_DIAG) {
        for (int k = 0; k < nv; ++k) e[k] -= load8(m + 8 * k) * s[k];
    } else {  // row l of the padded array is column l of M
        for (int k = 0; k < nv; ++k) {
            v8f acc = {};
            for (int l = 0; l < C; ++l) acc += load8(m + (int64_t)l * Cp + 8 * k) * s[l >> 3][l & 7];
            e[k] -= acc;
        }
    }
}

// Splat the new marginals e of point p into one kernel's target dst (DK as above).
template <int NV, int DK>
SEG_SIMD_INLINE void kernel_emit(const KernelState& ks, int64_t p, float* dst, int Cp, const v8f* e) {
    const int nv = NV > 0 ? NV : Cp / 8;
    const int D1 = (DK > 0 ? DK : ks.d) + 1;
    const int32_t* off = ks.kn->offsets + p * D1;
    const float* w = ks.kn->weights + p * D1;
    const bool has_pre = !ks.pre.empty();
    for (int r = 0; r < D1; ++r) {
        const float wr = has_pre ? w[r] * ks.pre[p] : w[r];
        float* row = dst + (int64_t)off[r] * Cp;
        for (int k = 0; k < nv; ++k) store8(row + 8 * k, load8(row + 8 * k) + wr * e[k]);
    }
}

// e = -U[p] plus (slice) the pairwise terms of every kernel at point p; s: scratch row.
template <int NV, int DA, int DB>
SEG_SIMD_INLINE void point_energy(const std::vector<KernelState>& kss, int64_t p, const float* Up, int C, int Cp,
                                  bool slice, v8f* e, v8f* s) {
    const int nv = NV > 0 ? NV : Cp / 8;
    const float* u = Up + p * Cp;
    for (int k = 0; k < nv; ++k) e[k] = -load8(u + 8 * k);
    if (!slice) return;
    // DA > 0: exactly two kernels of feature dimensions DA and DB (pydensecrf's usual pair:
    // the 2-D Gaussian, d = 2, then the bilateral with RGB, d = 5), whose loops unroll.
    // No lambdas here: a call that is not inlined would leave the AVX2 clone.
    if constexpr (DA > 0) {
        kernel_energy<NV, DA>(kss[0], p, C, Cp, e, s);
        kernel_energy<NV, DB>(kss[1], p, C, Cp, e, s);
    } else {
        for (const KernelState& ks : kss) kernel_energy<NV, 0>(ks, p, C, Cp, e, s);
    }
}

// The new marginals e of point p: splatted into the kernels' targets dst (scatter) or
// written to Qp[c * qn + p] for every label c (channel-major output: Qp is the output of p's
// image shifted so that p indexes it).
template <int NV, int DA, int DB>
SEG_SIMD_INLINE void point_emit(const std::vector<KernelState>& kss, int64_t p, float* const* dst, int Cp,
                                bool scatter, float* Qp, int64_t qn, int C, const v8f* e) {
    if (!scatter) {
        float* q = Qp + p;
        for (int c = 0; c < C; ++c) q[c * qn] = e[c >> 3][c & 7];
        return;
    }
    if constexpr (DA > 0) {  // as in point_energy
        kernel_emit<NV, DA>(kss[0], p, dst[0], Cp, e);
        kernel_emit<NV, DB>(kss[1], p, dst[1], Cp, e);
    } else {
        for (size_t k = 0; k < kss.size(); ++k) kernel_emit<NV, 0>(kss[k], p, dst[k], Cp, e);
    }
}

// The points of a part, two at a time: the softmax is a long dependency chain (max, exp,
// sum, divide) that one point alone cannot fill the core with, so the two points' chains
// are issued side by side. Each point's arithmetic, and the order of the additions into
// every vertex row (point p before point p+1), are those of one point at a time.
// e: room for 2*nv vectors, s: nv.
template <int NV, int DA, int DB>
SEG_SIMD_INLINE void update_points(std::vector<KernelState>& kss, const Part& part, float* const* dst,
                                   const float* Up, int C, int Cp, bool slice, bool scatter, float* Qp, int64_t qn,
                                   v8f* e, v8f* s) {
    const int nv = NV > 0 ? NV : Cp / 8;
    // with NV known, rows that never leave this function (registers: no aliasing with the
    // vertex rows written through float pointers)
    v8f local[NV > 0 ? 3 * NV : 1];
    v8f* e0 = NV > 0 ? local : e;
    v8f* e1 = e0 + nv;
    v8f* s0 = NV > 0 ? local + 2 * NV : s;
    int64_t p = part.lo;
    for (; p + 1 < part.hi; p += 2) {
        point_energy<NV, DA, DB>(kss, p, Up, C, Cp, slice, e0, s0);
        point_energy<NV, DA, DB>(kss, p + 1, Up, C, Cp, slice, e1, s0);
        softmax_rows(e0, nv, C);
        softmax_rows(e1, nv, C);
        point_emit<NV, DA, DB>(kss, p, dst, Cp, scatter, Qp, qn, C, e0);
        point_emit<NV, DA, DB>(kss, p + 1, dst, Cp, scatter, Qp, qn, C, e1);
    }
    if (p < part.hi) {
        point_energy<NV, DA, DB>(kss, p, Up, C, Cp, slice, e0, s0);
        softmax_rows(e0, nv, C);
        point_emit<NV, DA, DB>(kss, p, dst, Cp, scatter, Qp, qn, C, e0);
    }
}

using UpdatePoints = void (*)(std::vector<KernelState>&, const Part&, float* const*, const float*, int, int, bool,
                              bool, float*, int64_t, v8f*, v8f*);

#if SEG_CRF_FMA_DISPATCH
#define SEG_UPDATE_POINTS_FMA(NV, DA, DB)                                                                 \
    __attribute__((target("avx2,fma"))) void update_points_fma_##NV##_##DA##DB(                          \
        std::vector<KernelState>& kss, const Part& part, float* const* dst, const float* Up, int C, int Cp, \
        bool slice, bool scatter, float* Qp, int64_t qn, v8f* e, v8f* s) {                               \
        update_points<NV, DA, DB>(kss, part, dst, Up, C, Cp, slice, scatter, Qp, qn, e, s);              \
    }
#else
#define SEG_UPDATE_POINTS_FMA(NV, DA, DB)
#endif
#define SEG_UPDATE_POINTS(NV, DA, DB)                                                                    \
    SEG_MULTIVERSION void update_points_##NV##_##DA##DB(std::vector<KernelState>& kss, const Part& part,  \
                                                        float* const* dst, const float* Up, int C, int Cp, \
                                                        bool slice, bool scatter, float* Qp, int64_t qn, v8f* e, v8f* s) { \
        update_points<NV, DA, DB>(kss, part, dst, Up, C, Cp, slice, scatter, Qp, qn, e, s);              \
    }                                                                                                     \
    SEG_UPDATE_POINTS_FMA(NV, DA, DB)
SEG_UPDATE_POINTS(0, 0, 0)
SEG_UPDATE_POINTS(1, 0, 0)
SEG_UPDATE_POINTS(2, 0, 0)
SEG_UPDATE_POINTS(3, 0, 0)
SEG_UPDATE_POINTS(4, 0, 0)
SEG_UPDATE_POINTS(1, 2, 5)
SEG_UPDATE_POINTS(2, 2, 5)
SEG_UPDATE_POINTS(3, 2, 5)
SEG_UPDATE_POINTS(4, 2, 5)
#undef SEG_UPDATE_POINTS
#undef SEG_UPDATE_POINTS_FMA


// The compiled update for nv label vectors and the kernels' dimensions.
UpdatePoints pick_update(int nv, const std::vector<KernelState>& kss) {
    const bool pair25 = kss.size() == 2 && kss[0].d == 2 && kss[1].d == 5;
#if SEG_CRF_FMA_DISPATCH
    if (cpu_has_avx2_fma()) switch (nv) {
        case 1: return pair25 ? update_points_fma_1_25 : update_points_fma_1_00;
        case 2: return pair25 ? update_points_fma_2_25 : update_points_fma_2_00;
        case 3: return pair25 ? update_points_fma_3_25 : update_points_fma_3_00;
        case 4: return pair25 ? update_points_fma_4_25 : update_points_fma_4_00;
        default: return update_points_fma_0_00;
    }
#endif
    switch (nv) {
        case 1: return pair25 ? update_points_1_25 : update_points_1_00;
        case 2: return pair25 ? update_points_2_25 : update_points_2_00;
        case 3: return pair25 ? update_points_3_25 : update_points_3_00;
        case 4: return pair25 ? update_points_4_25 : update_points_4_00;
        default: return update_points_0_00;
    }
}

// One pass over the points of part q. slice: add the pairwise terms from the kernels' V
// (otherwise Q = softmax(-U)); scatter: splat the new marginals into the kernels' targets;
// otherwise write them to the image's output (Qp, qn: as in point_emit).
// work: room for three rows (3*Cp floats), 32-byte aligned here.
void update_part(std::vector<KernelState>& kss, int64_t q, const Part& part, const float* Up, int C, int Cp,
                 bool slice, bool scatter, float* Qp, int64_t qn, std::vector<float>& work) {
    const int K = (int)kss.size();
    float* dst[8] = {};
    for (int k = 0; k < K; ++k) {
        if (scatter) {
            zero_target(kss[k], q, part, Cp);
            dst[k] = scatter_target(kss[k], q, part, Cp);
        }
    }
    const int nv = Cp / 8;
    if (work.size() < (size_t)(3 * Cp + 8)) work.resize((size_t)(3 * Cp + 8));
    v8f* e = reinterpret_cast<v8f*>((reinterpret_cast<uintptr_t>(work.data()) + 31) & ~(uintptr_t)31);
    v8f* s = e + 2 * nv;
    pick_update(nv, kss)(kss, part, dst, Up, C, Cp, slice, scatter, Qp, qn, e, s);
}

// Points lo..hi-1 (hi - lo <= kRows) of image b into U [.., Cp] (padding 0) from input
// [B, C, N]: U itself, -logits, or -log(clip(p, 1e-5, 1)) (kind: a codes::UnaryKind).
// Returns a bit set: 1 = a non-finite value, 2 = a probability outside [0, 1 + 1e-3] or NaN.
// Up to kUnaryGroup channels are converted along the input's rows into a block buffer, then
// written out point by point (whole rows of U: contiguous stores).
constexpr int kUnaryGroup = 32;
SEG_SIMD_INLINE int unary_rows_impl(const float* input, int kind, int64_t b, int64_t N, int C, int Cp,
                                    int64_t lo, int64_t hi, float* U) {
    int bad = 0;
    alignas(32) float u[kUnaryGroup][kRows];
    const int64_t n = hi - lo;
    float* rows = U + (b * N + lo) * Cp;
    for (int c0 = 0; c0 < C; c0 += kUnaryGroup) {
        const int nc = std::min(kUnaryGroup, C - c0);
        for (int c = 0; c < nc; ++c) {
            const float* src = input + (b * C + c0 + c) * N + lo;
            float* uc = u[c];
            if (kind == codes::UNARY_PROBABILITIES) {
                // 8 lanes written out: GCC's own vectorisation of the loop below evaluates the
                // log's polynomial twice (once per branch of its range reduction)
                int64_t i = 0;
                v8i out = {};  // lanes that saw a value outside [0, 1.001] or NaN
                for (; i + 8 <= n; i += 8) {
                    const v8f x = load8(src + i);
                    out |= ~((x >= 0.0f) & (x <= 1.001f));
                    const v8f lo = (v8f){} + 1e-5f, one = (v8f){} + 1.0f;
                    store8(uc + i, -log_positive8(x < 1e-5f ? lo : (x > 1.0f ? one : x)));
                }
                for (int k = 0; k < 8; ++k) bad |= out[k] ? 2 : 0;
                for (; i < n; ++i) {
                    const float x = src[i];
                    bad |= (x >= 0.0f && x <= 1.001f) ? 0 : 2;
                    uc[i] = -log_positive(x < 1e-5f ? 1e-5f : (x > 1.0f ? 1.0f : x));
                }
            } else {
                const float sign = kind == codes::UNARY_LOGITS ? -1.0f : 1.0f;
                for (int64_t i = 0; i < n; ++i) {
                    const float x = src[i];
                    bad |= std::fabs(x) <= 3.4028234e38f ? 0 : 1;
                    uc[i] = sign * x;
                }
            }
        }
        // out to whole rows of U, padding included (Cp and the group are multiples of 8):
        // 8 points by 8 channels at a time through a register transpose
        const int cw = std::min(kUnaryGroup, Cp - c0);
        for (int c = nc; c < cw; ++c) std::fill(u[c], u[c] + n, 0.0f);
        int64_t i = 0;
        for (; i + 8 <= n; i += 8)
            for (int g = 0; g < cw; g += 8) {
                v8f r[8];
                for (int j = 0; j < 8; ++j) r[j] = load8(&u[g + j][i]);
                transpose8(r);
                for (int j = 0; j < 8; ++j) store8(rows + (i + j) * Cp + c0 + g, r[j]);
            }
        for (; i < n; ++i)
            for (int c = 0; c < cw; ++c) rows[i * Cp + c0 + c] = u[c][i];
    }
    return bad;
}
SEG_MULTIVERSION int unary_rows_generic(const float* input, int kind, int64_t b, int64_t N, int C, int Cp,
                                        int64_t lo, int64_t hi, float* U) {
    return unary_rows_impl(input, kind, b, N, C, Cp, lo, hi, U);
}
#if SEG_CRF_FMA_DISPATCH
__attribute__((target("avx2,fma"))) int unary_rows_fma(const float* input, int kind, int64_t b, int64_t N, int C,
                                                       int Cp, int64_t lo, int64_t hi, float* U) {
    return unary_rows_impl(input, kind, b, N, C, Cp, lo, hi, U);
}
#endif
int unary_rows(const float* input, int kind, int64_t b, int64_t N, int C, int Cp, int64_t lo, int64_t hi,
               float* U) {
#if SEG_CRF_FMA_DISPATCH
    if (cpu_has_avx2_fma()) return unary_rows_fma(input, kind, b, N, C, Cp, lo, hi, U);
#endif
    return unary_rows_generic(input, kind, b, N, C, Cp, lo, hi, U);
}

}  // namespace

void crf_meanfield(const float* input, int unary_kind, float* Q, int64_t B, int64_t N, int C,
                   const CrfKernel* kernels, int num_kernels, int iterations, int num_threads) {
    const int64_t P = B * N;
    if (C < 1) throw std::invalid_argument("crf_meanfield: need at least one label");
    if (iterations < 0) throw std::invalid_argument("crf_meanfield: negative iteration count");
    if (unary_kind != codes::UNARY_ENERGY && unary_kind != codes::UNARY_LOGITS &&
        unary_kind != codes::UNARY_PROBABILITIES)
        throw std::invalid_argument("crf_meanfield: unknown unary kind " + std::to_string(unary_kind));
    if (num_kernels < 0 || num_kernels > 8)
        throw std::invalid_argument("crf_meanfield: 0..8 kernels are supported, got " +
                                    std::to_string(num_kernels));
    if (P == 0) return;
    const int threads = resolve_threads(num_threads);
    const int Cp = (C + SEG_LATTICE_CHUNK - 1) / SEG_LATTICE_CHUNK * SEG_LATTICE_CHUNK;
    const std::vector<Part> parts = make_parts(B, N);
    const int64_t np = (int64_t)parts.size();

    std::vector<KernelState> kss((size_t)num_kernels);
    for (int k = 0; k < num_kernels; ++k) {
        const CrfKernel& kn = kernels[k];
        if (kn.d < 1 || kn.d > SEG_LATTICE_MAX_D)
            throw std::invalid_argument("crf_meanfield: bad kernel dimension " + std::to_string(kn.d));
        if (kn.normalization != codes::NORM_NONE && kn.normalization != codes::NORM_BEFORE &&
            kn.normalization != codes::NORM_AFTER && kn.normalization != codes::NORM_SYMMETRIC)
            throw std::invalid_argument("crf_meanfield: unknown normalization " +
                                        std::to_string(kn.normalization));
        KernelState& ks = kss[k];
        ks.kn = &kn;
        ks.d = kn.d;
        ks.M = kn.M;
        ks.alpha = lattice::slice_alpha(kn.d);
        if (kn.compat_kind != COMPAT_DIAG && kn.compat_kind != COMPAT_FULL)
            throw std::invalid_argument("crf_meanfield: unknown compat kind " + std::to_string(kn.compat_kind));
        const int rows = kn.compat_kind == COMPAT_DIAG ? 1 : C;
        ks.compat.assign((size_t)rows * Cp, 0.0f);
        for (int l = 0; l < rows; ++l)
            for (int c = 0; c < C; ++c)  // matrix: row l holds column l of M
                ks.compat[(size_t)l * Cp + c] = rows == 1 ? kn.compat[c] : kn.compat[(size_t)c * C + l];
        vertex_ranges(ks, parts, B, threads);
    }

    // unary in a point-major, channel-padded layout [P, Cp] (padding 0): whole SIMD chunks;
    // converted and checked in blocks of points of one image (reads along rows of the input)
    big_ptr<float> Up = big_array<float>((size_t)P * Cp);  // fully written
    const int64_t blocks_per_image = (N + kRows - 1) / kRows;
    int bad = 0;
#pragma omp parallel for num_threads(threads) schedule(static) reduction(| : bad)
    for (int64_t blk = 0; blk < B * blocks_per_image; ++blk) {
        const int64_t b = blk / blocks_per_image, lo = (blk - b * blocks_per_image) * kRows;
        bad |= unary_rows(input, unary_kind, b, N, C, Cp, lo, std::min(N, lo + kRows), Up.get());
    }
    if (bad & 2) throw std::invalid_argument("probabilities must lie in [0, 1]");
    if (bad & 1)
        throw std::invalid_argument(unary_kind == codes::UNARY_LOGITS ? "logits must be finite (found NaN or Inf)"
                                                               : "unary energies must be finite (found NaN or Inf)");
    normalisers(kss, parts, P, threads);
    for (KernelState& ks : kss) allocate(ks, parts, Cp);
    const int64_t per_image = np / B;  // make_parts: the same count for every image, in order
    const int64_t group = std::max<int64_t>(1, (std::max(kPartsPerImage, threads) + per_image - 1) / per_image);
#pragma omp parallel num_threads(threads)
    {
        FlushDenormals ftz;
        std::vector<float> work;
        // Images are independent: the whole mean field runs on a group of images at a time, so
        // that its data stays in cache; groups have enough parts to occupy every thread.
        // Q0 = softmax(-U), splatted; then each iteration: reduce + blur, update (+ splat).
        for (int64_t b0 = 0; b0 < B; b0 += group) {
            const int64_t b1 = std::min(B, b0 + group);
            for (int it = 0; it <= iterations; ++it) {
                if (it > 0) reduce_and_blur(kss, parts, Cp, threads, b0, b1);
                const bool last = it == iterations;
#pragma omp for schedule(static)
                for (int64_t q = b0 * per_image; q < b1 * per_image; ++q)
                    update_part(kss, q, parts[q], Up.get(), C, Cp, it > 0, !last,
                                Q + parts[q].image * (C - 1) * N, N, work);
            }
        }
    }
}

int64_t crf_chunk_images(int64_t N, int num_threads) {
    // as the mean field's groups: enough parts to occupy every thread
    const int64_t threads = resolve_threads(num_threads);
    const int64_t per_image = (int64_t)make_parts(1, std::max<int64_t>(N, 1)).size();
    return std::max<int64_t>(1, (std::max<int64_t>(kPartsPerImage, threads) + per_image - 1) / per_image);
}

void crf_dense(const float* input, int unary_kind, float* Q, int64_t B, int64_t N, int C,
               const float* const* features, const int* dims, const int* normalizations,
               const int* compat_kinds, const float* const* compats, int num_kernels,
               bool ghost_origin, int iterations, int num_threads) {
    if (num_kernels < 0 || num_kernels > 8)
        throw std::invalid_argument("crf_dense: 0..8 kernels are supported");
    std::vector<LatticeData> lat((size_t)num_kernels);
    std::vector<CrfKernel> ks((size_t)num_kernels);
    for (int k = 0; k < num_kernels; ++k) {
        lattice_build(features[k], B, dims[k], N, ghost_origin, num_threads, lat[k], false);
        CrfKernel& kn = ks[k];
        kn.d = dims[k];
        kn.M = lat[k].num_vertices;
        kn.offsets = lat[k].offsets.data();
        kn.weights = lat[k].weights.data();
        kn.neighbors = lat[k].neighbors.data();
        kn.normalization = normalizations[k];
        kn.compat_kind = compat_kinds[k];
        kn.compat = compats[k];
    }
    crf_meanfield(input, unary_kind, Q, B, N, C, ks.data(), num_kernels, iterations, num_threads);
}

}  // namespace seg
