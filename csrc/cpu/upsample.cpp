// Dispatch of the fused upsampling kernels: dtype, FMA or not, thread count.
#include "upsample.h"

#include <stdexcept>

#include "upsample_impl.h"

namespace seg {

// Defined in upsample_fma.cpp (compiled for AVX2+FMA on x86-64).
template <typename T>
void upsample_argmax_fma(const T*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                         const AxisTaps<T>&, const AxisTaps<T>&, int64_t*, float*, int);
template <typename T>
void upsample_cross_entropy_fma(const T*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                                const AxisTaps<T>&, const AxisTaps<T>&, const CrossEntropyArgs&, int);

namespace {
bool cpu_has_fma() {
#if SEG_UPSAMPLE_FMA_DISPATCH
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return true;  // non-x86 targets with FMA in their base ISA (aarch64) or a correct libm fma
#endif
}
}  // namespace

template <typename T>
AxisTaps<T> axis_taps(int64_t in, int64_t out, bool align_corners, double scale) {
    AxisTaps<T> t;
    t.i0.resize(out); t.i1.resize(out); t.l0.resize(out); t.l1.resize(out);
    const T ratio = seg_up::compute_scale<T>(in, out, align_corners, scale);
    for (int64_t o = 0; o < out; ++o)
        seg_up::source_taps<T>(ratio, o, in, out, align_corners, &t.i0[o], &t.i1[o], &t.l0[o], &t.l1[o]);
    return t;
}

template <typename T>
void upsample_argmax(const T* logits, int64_t B, int64_t C, int64_t h, int64_t w, int64_t H,
                     int64_t W, bool align_corners, double scale_h, double scale_w, bool use_fma,
                     int64_t* labels, float* confidence, int num_threads) {
    const int threads = resolve_threads(num_threads);
    AxisTaps<T> ay = axis_taps<T>(h, H, align_corners, scale_h);
    AxisTaps<T> ax = axis_taps<T>(w, W, align_corners, scale_w);
    if (use_fma && cpu_has_fma())
        upsample_argmax_fma<T>(logits, B, C, h, w, H, W, ay, ax, labels, confidence, threads);
    else if (use_fma)
        argmax_kernel<T, true>(logits, B, C, h, w, H, W, ay, ax, labels, confidence, threads);
    else
        argmax_kernel<T, false>(logits, B, C, h, w, H, W, ay, ax, labels, confidence, threads);
}

template <typename T>
void upsample_cross_entropy(const T* logits, int64_t B, int64_t C, int64_t h, int64_t w,
                            int64_t H, int64_t W, bool align_corners, bool use_fma,
                            const CrossEntropyArgs& args, int num_threads) {
    const int threads = resolve_threads(num_threads);
    // cross_entropy always upsamples to the target's size: no scale factor
    AxisTaps<T> ay = axis_taps<T>(h, H, align_corners, -1.0);
    AxisTaps<T> ax = axis_taps<T>(w, W, align_corners, -1.0);
    if (use_fma && cpu_has_fma())
        upsample_cross_entropy_fma<T>(logits, B, C, h, w, H, W, ay, ax, args, threads);
    else if (use_fma)
        cross_entropy_kernel<T, true>(logits, B, C, h, w, H, W, ay, ax, args, threads);
    else
        cross_entropy_kernel<T, false>(logits, B, C, h, w, H, W, ay, ax, args, threads);
}

template AxisTaps<float> axis_taps<float>(int64_t, int64_t, bool, double);
template AxisTaps<double> axis_taps<double>(int64_t, int64_t, bool, double);
template void upsample_argmax<float>(const float*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                                     bool, double, double, bool, int64_t*, float*, int);
template void upsample_argmax<double>(const double*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                                      bool, double, double, bool, int64_t*, float*, int);
template void upsample_cross_entropy<float>(const float*, int64_t, int64_t, int64_t, int64_t, int64_t,
                                            int64_t, bool, bool, const CrossEntropyArgs&, int);
template void upsample_cross_entropy<double>(const double*, int64_t, int64_t, int64_t, int64_t, int64_t,
                                             int64_t, bool, bool, const CrossEntropyArgs&, int);

}  // namespace seg

namespace seg {

int64_t target_histogram(const int64_t* target, int64_t n, int64_t C, int64_t ignore_index,
                         int64_t* counts) {
    for (int64_t c = 0; c < C; ++c) counts[c] = 0;
    for (int64_t i = 0; i < n; ++i) {
        const int64_t t = target[i];
        if (t == ignore_index) continue;
        if (t < 0 || t >= C) return i;
        ++counts[t];
    }
    return -1;
}

}  // namespace seg
