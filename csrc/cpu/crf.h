// CPU dense-CRF mean-field inference on permutohedral lattices (Kraehenbuehl & Koltun 2011),
// with pydensecrf's numerics (see csrc/common/crf.h).
//
// Assumptions (checked in segengine/ops/crf.py): unary float32 [B, C, N] or [P, C], finite;
// C >= 2; each kernel's lattice built over the same P = B*N points; compat arrays hold C
// (kind DIAG) or C*C (kind FULL, row-major, already symmetrised) floats.
#pragma once

#include <cstdint>

namespace seg {

struct CrfKernel {
    int d = 0;
    int64_t M = 0;
    const int32_t* offsets = nullptr;     // [P, d+1]
    const float* weights = nullptr;       // [P, d+1]
    const int32_t* neighbors = nullptr;   // [d+1, M, 2]
    const int64_t* splat_ptr = nullptr;   // [M+1]
    const int32_t* splat_pt = nullptr;    // [P*(d+1)]
    const float* splat_w = nullptr;       // [P*(d+1)]
    int normalization = 3;                // 0 none, 1 before, 2 after, 3 symmetric
    int compat_kind = 0;                  // 0 diagonal (C floats), 1 full (C*C floats)
    const float* compat = nullptr;
};

// Q = mean-field marginals after `iterations` parallel updates, starting from softmax(-unary),
// for P = B*N points. unary and Q are [B, C, N] when channel_major, else [P, C].
// Throws std::invalid_argument on bad sizes, std::bad_alloc when out of memory.
void crf_meanfield(const float* unary, float* Q, int64_t B, int64_t N, int C, bool channel_major,
                   const CrfKernel* kernels, int num_kernels, int iterations, int num_threads);

}  // namespace seg
