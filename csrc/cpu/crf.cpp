// CPU dense-CRF mean field: per iteration each kernel splats Q (scaled by its `pre`
// normaliser) and blurs on its lattice; then one pass over the points slices every kernel,
// applies normalisation and compatibility and takes the softmax (fused, parallel over points).
// Deterministic: no float accumulation is shared between threads.
#include "crf.h"

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "parallel.h"
#include "permutohedral.h"
#include "../common/crf.h"
#include "../common/permutohedral.h"

namespace seg {

void crf_meanfield(const float* unary, float* Q, int64_t P, int C, const CrfKernel* kernels,
                   int num_kernels, int iterations, int num_threads) {
    if (C < 1) throw std::invalid_argument("crf_meanfield: need at least one label");
    if (iterations < 0) throw std::invalid_argument("crf_meanfield: negative iteration count");
    const int threads = resolve_threads(num_threads);
    const int K = num_kernels;

    // normalisers: n = K·1
    std::vector<std::vector<float>> pre(K), post(K);
    std::vector<FilterWork<float>> work(K);
    {
        std::vector<float> ones((size_t)P, 1.0f), n((size_t)P);
        for (int k = 0; k < K; ++k) {
            const CrfKernel& kn = kernels[k];
            if (kn.d < 1 || kn.d > SEG_LATTICE_MAX_D)
                throw std::invalid_argument("crf_meanfield: bad kernel dimension " + std::to_string(kn.d));
            if (kn.normalization == 0) continue;
            lattice_filter_work<float>(ones.data(), n.data(), P, 1, kn.d, kn.M, kn.offsets, kn.weights,
                                       kn.neighbors, kn.splat_ptr, kn.splat_pt, kn.splat_w, nullptr, nullptr,
                                       false, num_threads, work[k]);
            std::vector<float> v((size_t)P);
            const bool sym = kn.normalization == 3;
#pragma omp parallel for num_threads(threads) schedule(static)
            for (int64_t p = 0; p < P; ++p)
                v[p] = sym ? crf::norm_symmetric(n[p]) : crf::norm_inverse(n[p]);
            if (kn.normalization == 3) { pre[k] = v; post[k] = v; }
            else if (kn.normalization == 2) post[k] = v;
            else if (kn.normalization == 1) pre[k] = v;
            else throw std::invalid_argument("crf_meanfield: unknown normalization " +
                                             std::to_string(kn.normalization));
        }
    }

#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t p = 0; p < P; ++p) {
        float* q = Q + p * C;
        const float* u = unary + p * C;
        for (int c = 0; c < C; ++c) q[c] = -u[c];
        crf::softmax(q, C);
    }

    std::vector<const float*> V(K);
    std::vector<float> alpha(K);
    for (int k = 0; k < K; ++k) alpha[k] = lattice::slice_alpha(kernels[k].d);
    for (int it = 0; it < iterations; ++it) {
        for (int k = 0; k < K; ++k) {
            const CrfKernel& kn = kernels[k];
            V[k] = lattice_splat_blur<float>(Q, P, C, kn.d, kn.M, kn.neighbors, kn.splat_ptr,
                                             kn.splat_pt, kn.splat_w, pre[k].empty() ? nullptr : pre[k].data(),
                                             false, num_threads, work[k]);
        }
#pragma omp parallel num_threads(threads)
        {
            std::vector<float> sbuf((size_t)C), ebuf((size_t)C);
            float* s = sbuf.data();
            float* e = ebuf.data();
#pragma omp for schedule(static)
            for (int64_t p = 0; p < P; ++p) {
                const float* u = unary + p * C;
                for (int c = 0; c < C; ++c) e[c] = -u[c];
                for (int k = 0; k < K; ++k) {
                    const CrfKernel& kn = kernels[k];
                    lattice::slice_point<float>(p, kn.offsets, kn.weights, V[k],
                                                post[k].empty() ? nullptr : post[k].data(), alpha[k],
                                                kn.d, C, s);
                    crf::apply_compat(e, s, kn.compat, kn.compat_kind, C);
                }
                crf::softmax(e, C);
                float* q = Q + p * C;
                for (int c = 0; c < C; ++c) q[c] = e[c];
            }
        }
    }
}

}  // namespace seg
