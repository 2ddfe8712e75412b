// CPU dense-CRF mean field: per iteration each kernel splats Q (scaled by its `pre`
// normaliser) and blurs on its lattice; then one pass over the points slices every kernel,
// applies normalisation and compatibility and takes the softmax (fused, parallel over points).
// Deterministic: no float accumulation is shared between threads.
// FP exceptions are never trapped here: let GCC if-convert and vectorise the conditional
// float loops (clamps, selects). Results are unchanged (this is not -ffast-math).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif
#include "crf.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "parallel.h"
#include "permutohedral.h"
#include "../common/crf.h"
#include "../common/permutohedral.h"

namespace seg {

namespace {

constexpr int64_t kRows = 256;

struct SliceSpec {
    const int32_t* offsets;
    const float* weights;
    const float* V;
    const float* post;
    float alpha;
    int d;
    int kind;
    const float* compat;
};

// One mean-field update of points [lo, hi): slice every kernel (Cp channels, padded with
// zeros), normalise, compatibility, softmax over the C real labels; Q rows have Cp floats.
SEG_MULTIVERSION void update_range(int64_t lo, int64_t hi, const float* unary, int C, int Cp,
                                   const SliceSpec* ks, int K, float* s, float* e, float* Q) {
    for (int64_t p = lo; p < hi; ++p) {
        const float* u = unary + p * Cp;
        for (int c = 0; c < C; ++c) e[c] = -u[c];
        for (int k = 0; k < K; ++k) {
            const SliceSpec& kn = ks[k];
            lattice::slice_point<float>(p, kn.offsets, kn.weights, kn.V, kn.post, kn.alpha, kn.d, Cp, s);
            crf::apply_compat(e, s, kn.compat, kn.kind, C);
        }
        crf::softmax(e, C);
        float* q = Q + p * Cp;
        for (int c = 0; c < C; ++c) q[c] = e[c];
    }
}

SEG_MULTIVERSION void init_range(int64_t lo, int64_t hi, const float* unary, int C, int Cp, float* e,
                                 float* Q) {
    for (int64_t p = lo; p < hi; ++p) {
        const float* u = unary + p * Cp;
        for (int c = 0; c < C; ++c) e[c] = -u[c];
        crf::softmax(e, C);
        float* q = Q + p * Cp;
        for (int c = 0; c < C; ++c) q[c] = e[c];
        for (int c = C; c < Cp; ++c) q[c] = 0.0f;
    }
}

}  // namespace

void crf_meanfield(const float* unary, float* Q, int64_t B, int64_t N, int C, bool channel_major,
                   const CrfKernel* kernels, int num_kernels, int iterations, int num_threads) {
    const int64_t P = B * N;
    if (C < 1) throw std::invalid_argument("crf_meanfield: need at least one label");
    if (P == 0) return;
    if (iterations < 0) throw std::invalid_argument("crf_meanfield: negative iteration count");
    const int threads = resolve_threads(num_threads);
    const int K = num_kernels;
    const int Cp = (C + SEG_LATTICE_CHUNK - 1) / SEG_LATTICE_CHUNK * SEG_LATTICE_CHUNK;
    const int64_t chunks = (P + kRows - 1) / kRows;

    for (int k = 0; k < K; ++k) {
        const CrfKernel& kn = kernels[k];
        if (kn.d < 1 || kn.d > SEG_LATTICE_MAX_D)
            throw std::invalid_argument("crf_meanfield: bad kernel dimension " + std::to_string(kn.d));
        if (kn.normalization < 0 || kn.normalization > 3)
            throw std::invalid_argument("crf_meanfield: unknown normalization " +
                                        std::to_string(kn.normalization));
    }
    // With no more threads than kernels, each thread handles one whole kernel in the
    // lattice phases (no barriers inside: robust when cores are shared); otherwise all
    // threads work on one kernel after the other. The arithmetic is the same either way.
    const bool per_kernel = K >= 2 && threads <= K;
    const int outer = per_kernel ? threads : 1;
    const int inner = per_kernel ? 1 : num_threads;

    // normalisers from n = K·1
    std::vector<std::vector<float>> pre(K), post(K);
    std::vector<FilterWork<float>> work(K);
    {
        const std::vector<float> ones((size_t)P, 1.0f);
#pragma omp parallel for num_threads(outer) schedule(static, 1)
        for (int k = 0; k < K; ++k) {
            const CrfKernel& kn = kernels[k];
            if (kn.normalization == 0) continue;
            std::vector<float> v((size_t)P);
            lattice_filter_work<float>(ones.data(), v.data(), P, 1, kn.d, kn.M, kn.offsets, kn.weights,
                                       kn.neighbors, kn.splat_ptr, kn.splat_pt, kn.splat_w, nullptr, nullptr,
                                       false, inner, work[k]);
            const bool sym = kn.normalization == 3;
            for (int64_t p = 0; p < P; ++p) v[p] = sym ? crf::norm_symmetric(v[p]) : crf::norm_inverse(v[p]);
            if (kn.normalization == 3) { pre[k] = v; post[k] = v; }
            else if (kn.normalization == 2) post[k] = v;
            else pre[k] = v;
        }
    }

    // unary and marginals in a point-major, channel-padded layout [P, Cp] (padding stays 0):
    // whole SIMD chunks, one row per point
    std::vector<float> Up((size_t)P * Cp, 0.0f), Qp((size_t)P * Cp);
#pragma omp parallel num_threads(threads)
    {
        FlushDenormals ftz;
        std::vector<float> ebuf((size_t)Cp);
#pragma omp for schedule(static)
        for (int64_t ch = 0; ch < chunks; ++ch) {
            const int64_t lo = ch * kRows, hi = std::min(P, (ch + 1) * kRows);
            for (int64_t p = lo; p < hi; ++p) {
                const int64_t b = p / N, n = p - b * N;
                float* u = Up.data() + (size_t)p * Cp;
                if (channel_major)
                    for (int c = 0; c < C; ++c) u[c] = unary[(b * C + c) * N + n];
                else
                    for (int c = 0; c < C; ++c) u[c] = unary[p * C + c];
            }
            init_range(lo, hi, Up.data(), C, Cp, ebuf.data(), Qp.data());
        }
    }

    std::vector<SliceSpec> specs(K);
    for (int k = 0; k < K; ++k) {
        const CrfKernel& kn = kernels[k];
        specs[k] = SliceSpec{kn.offsets, kn.weights, nullptr, post[k].empty() ? nullptr : post[k].data(),
                             lattice::slice_alpha(kn.d), kn.d, kn.compat_kind, kn.compat};
    }
    for (int it = 0; it < iterations; ++it) {
#pragma omp parallel for num_threads(outer) schedule(static, 1)
        for (int k = 0; k < K; ++k) {
            const CrfKernel& kn = kernels[k];
            specs[k].V = lattice_splat_blur<float>(Qp.data(), P, Cp, kn.d, kn.M, kn.offsets, kn.weights,
                                                   kn.neighbors, kn.splat_ptr, kn.splat_pt, kn.splat_w,
                                                   pre[k].empty() ? nullptr : pre[k].data(), false,
                                                   inner, work[k]);
        }
#pragma omp parallel num_threads(threads) if (P * Cp >= (1 << 16))
        {
            FlushDenormals ftz;
            std::vector<float> sbuf((size_t)Cp), ebuf((size_t)Cp);
#pragma omp for schedule(static)
            for (int64_t ch = 0; ch < chunks; ++ch)
                update_range(ch * kRows, std::min(P, (ch + 1) * kRows), Up.data(), C, Cp, specs.data(), K,
                             sbuf.data(), ebuf.data(), Qp.data());
        }
    }
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t p = 0; p < P; ++p) {
        const int64_t b = p / N, n = p - b * N;
        for (int c = 0; c < C; ++c)
            Q[channel_major ? (b * C + c) * N + n : p * C + c] = Qp[(size_t)p * Cp + c];
    }
}

}  // namespace seg
