// Per-element logic of the fused bilinear upsampling ops, shared by csrc/cpu and csrc/cuda.
//
// Reproduces PyTorch's bilinear source-index formula (area_pixel_compute_scale,
// area_pixel_compute_source_index, guard_index_and_lambda) and its interpolation
// arithmetic: value = lerp2(lerp2(x00, w0, x01, w1), h0, lerp2(x10, w0, x11, w1), h1)
// with lerp2(a, wa, b, wb) = fma(a, wa, b * wb) where PyTorch's kernel is contracted
// to FMA (its AVX2/AVX512 CPU builds and CUDA), a * wa + b * wb otherwise.
#pragma once
#include "seg_common.h"

#ifndef __CUDACC_RTC__
#include <math.h>
#endif

namespace seg_up {

SEG_HD float seg_fma(float a, float b, float c) { return fmaf(a, b, c); }
SEG_HD double seg_fma(double a, double b, double c) { return fma(a, b, c); }

template <typename T, bool FMA>
SEG_HD T lerp2(T a, T wa, T b, T wb) {
    if (FMA) return seg_fma(a, wa, b * wb);
    return a * wa + b * wb;
}

// Ratio between input and output coordinates. `scale` is the user's scale factor
// (<= 0 when a size was given instead), as PyTorch's compute_scales_value.
template <typename T>
SEG_HD T compute_scale(int64_t in, int64_t out, bool align_corners, double scale) {
    if (align_corners) return out > 1 ? (T)(in - 1) / (T)(out - 1) : (T)0;
    return scale > 0 ? (T)(1.0 / scale) : (T)in / (T)out;
}

// The two source taps and weights of output index `o` along one axis.
template <typename T>
SEG_HD void source_taps(T ratio, int64_t o, int64_t in, int64_t out, bool align_corners,
                        int64_t* i0, int64_t* i1, T* l0, T* l1) {
    if (in == out) {  // PyTorch copies when the sizes agree, whatever the scale factor
        *i0 = o; *i1 = o; *l0 = (T)1; *l1 = (T)0;
        return;
    }
    T real;
    if (align_corners) {
        real = ratio * (T)o;
    } else {
        real = ratio * ((T)o + (T)0.5) - (T)0.5;
        if (real < (T)0) real = (T)0;
    }
    int64_t idx = (int64_t)floorf((float)real);  // PyTorch applies floorf for every dtype
    if (idx > in - 1) idx = in - 1;
    T lam = real - (T)idx;
    lam = lam < (T)0 ? (T)0 : (lam > (T)1 ? (T)1 : lam);
    *i0 = idx;
    *i1 = idx + (idx < in - 1 ? 1 : 0);
    *l1 = lam;
    *l0 = (T)1 - lam;
}

// Argmax update with torch.argmax's rules: the first NaN wins, then the largest value,
// the lowest index on ties.
template <typename T>
SEG_HD bool argmax_takes(T v, T best) {
    return (v > best) || (v != v && best == best);
}

// Gradient of one pixel's (weighted, label-smoothed) cross-entropy with respect to
// logit c, given p_c = softmax probability, t the target, w_c / w_t class weights,
// wsum = sum of all class weights, coef_nll = (1 - eps) / norm, coef_smooth = (eps / C) / norm'.
template <typename T>
SEG_HD T ce_grad(T p_c, bool is_target, T w_c, T w_t, T wsum, T coef_nll, T coef_smooth) {
    return coef_nll * w_t * (p_c - (is_target ? (T)1 : (T)0)) + coef_smooth * (p_c * wsum - w_c);
}

}  // namespace seg_up
