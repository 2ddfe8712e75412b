// Fused bilinear upsampling + argmax / cross-entropy on the CPU.
//
// Assumptions (checked in segengine/ops/upsample.py):
//   logits are contiguous [B, C, h, w] of float or double; C >= 1; all sizes >= 1;
//   target is contiguous int64 [B, H, W] with values in [0, C) or == ignore_index;
//   weight (optional) is contiguous [C]; grad_pixel (optional) is contiguous [B, H, W].
// Results are deterministic and independent of the number of threads.
#pragma once
#include <cstdint>
#include <vector>

// 1 where an AVX2+FMA instantiation of the kernels is compiled (upsample_fma.cpp) and chosen per
// call when the processor has both (upsample.cpp); segengine info reports it (_runtime.pyx).
#if defined(__x86_64__) && defined(__GNUC__)
#define SEG_UPSAMPLE_FMA_DISPATCH 1
#else
#define SEG_UPSAMPLE_FMA_DISPATCH 0
#endif

namespace seg {

// Source taps of every output index along one axis (PyTorch's bilinear formula).
template <typename T>
struct AxisTaps {
    std::vector<int64_t> i0, i1;
    std::vector<T> l0, l1;
};

template <typename T>
AxisTaps<T> axis_taps(int64_t in, int64_t out, bool align_corners, double scale);

// labels: int64 [B, H, W]; confidence: float [B, H, W] or nullptr.
template <typename T>
void upsample_argmax(const T* logits, int64_t B, int64_t C, int64_t h, int64_t w, int64_t H,
                     int64_t W, bool align_corners, double scale_h, double scale_w, bool use_fma,
                     int64_t* labels, float* confidence, int num_threads);

struct CrossEntropyArgs {
    const int64_t* target;      // [B, H, W]
    const void* weight;         // [C] of T, or nullptr
    int64_t ignore_index;
    double coef_nll;            // multiplies the NLL term of the gradient
    double coef_smooth;         // multiplies the label-smoothing term of the gradient
    double pixel_nll;           // per-pixel loss = pixel_nll * nll + pixel_smooth * smooth
    double pixel_smooth;
    const void* grad_pixel;     // [B, H, W] of T (upstream gradient), or nullptr for 1
    double* row_nll;            // [B * H] sums of the weighted NLL per output row, or nullptr
    double* row_smooth;         // [B * H] sums of the smoothing term per output row, or nullptr
    void* loss_pixel;           // [B, H, W] of T per-pixel loss, or nullptr
    void* grad_logits;          // [B, C, h, w] of T, or nullptr
};

template <typename T>
void upsample_cross_entropy(const T* logits, int64_t B, int64_t C, int64_t h, int64_t w,
                            int64_t H, int64_t W, bool align_corners, bool use_fma,
                            const CrossEntropyArgs& args, int num_threads);

}  // namespace seg

namespace seg {

// Histogram of target classes (counts[C]) ignoring `ignore_index`; returns the flat
// index of the first value outside [0, C) that is not ignore_index, or -1.
int64_t target_histogram(const int64_t* target, int64_t n, int64_t C, int64_t ignore_index,
                         int64_t* counts);

}  // namespace seg
