// CPU dense-CRF mean-field inference on permutohedral lattices (Kraehenbuehl & Koltun 2011),
// with pydensecrf's numerics (see csrc/common/crf.h).
//
// Assumptions (checked in segengine/ops/crf.py): input float32 [B, C, N] or [P, C];
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
    int normalization = 3;                // 0 none, 1 before, 2 after, 3 symmetric
    int compat_kind = 0;                  // 0 diagonal (C floats), 1 full (C*C floats)
    const float* compat = nullptr;
};

// What the `input` of the mean field holds (all float32, finite):
//   UNARY_ENERGY: U itself; UNARY_LOGITS: logits l (U = -log_softmax(l); the mean field uses
//   -U = l, equal up to a per-point constant that the softmax removes);
//   UNARY_PROBABILITIES: p in [0, 1] (U = -log(clip(p, 1e-5, 1)), pydensecrf's
//   unary_from_softmax). A non-finite value, or a probability outside [0, 1 + 1e-3], throws
//   std::invalid_argument.
enum UnaryKind { UNARY_ENERGY = 0, UNARY_LOGITS = 1, UNARY_PROBABILITIES = 2 };

// Q = mean-field marginals after `iterations` parallel updates, starting from softmax(-U),
// for P = B*N points. input and Q are [B, C, N] when channel_major, else [P, C]. The
// lattices must be numbered as lattice_build numbers them (vertices grouped per image).
// Throws std::invalid_argument on bad sizes or input, std::bad_alloc when out of memory.
void crf_meanfield(const float* input, int unary_kind, float* Q, int64_t B, int64_t N, int C,
                   bool channel_major, const CrfKernel* kernels, int num_kernels, int iterations,
                   int num_threads);

// Build the lattices of the kernels' features (kernel k: float32 [B, dims[k], N]) and run
// crf_meanfield on input/Q [B, C, N] (channel-major). compats[k]: C (kind 0) or C*C (kind 1)
// floats. ghost_origin as in lattice_build.
void crf_dense(const float* input, int unary_kind, float* Q, int64_t B, int64_t N, int C,
               const float* const* features, const int* dims, const int* normalizations,
               const int* compat_kinds, const float* const* compats, int num_kernels,
               bool ghost_origin, int iterations, int num_threads);

}  // namespace seg
