// The FMA instantiation of the upsampling kernels, compiled for AVX2+FMA on x86-64
// (selected at run time only when the processor has both, see upsample.cpp).
// Every header is included before the target pragma so that library templates keep the
// baseline ISA (their COMDAT copies may be merged with the generic translation unit's).
#include <algorithm>
#include <cmath>
#include <vector>

#include "parallel.h"
#include "upsample.h"
#include "common/upsample.h"

#if SEG_UPSAMPLE_FMA_DISPATCH
#pragma GCC target("avx2,fma")
#define SEG_UPSAMPLE_FMA_TARGET 1
#endif
#include "upsample_impl.h"

namespace seg {

template <typename T>
void upsample_argmax_fma(const T* x, int64_t B, int64_t C, int64_t h, int64_t w, int64_t H,
                         int64_t W, const AxisTaps<T>& ay, const AxisTaps<T>& ax, int64_t* labels,
                         float* conf, int threads) {
    argmax_kernel<T, true>(x, B, C, h, w, H, W, ay, ax, labels, conf, threads);
}

template <typename T>
void upsample_cross_entropy_fma(const T* x, int64_t B, int64_t C, int64_t h, int64_t w, int64_t H,
                                int64_t W, const AxisTaps<T>& ay, const AxisTaps<T>& ax,
                                const CrossEntropyArgs& a, int threads) {
    cross_entropy_kernel<T, true>(x, B, C, h, w, H, W, ay, ax, a, threads);
}

template void upsample_argmax_fma<float>(const float*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                                         const AxisTaps<float>&, const AxisTaps<float>&, int64_t*, float*, int);
template void upsample_argmax_fma<double>(const double*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                                          const AxisTaps<double>&, const AxisTaps<double>&, int64_t*, float*, int);
template void upsample_cross_entropy_fma<float>(const float*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                                                const AxisTaps<float>&, const AxisTaps<float>&,
                                                const CrossEntropyArgs&, int);
template void upsample_cross_entropy_fma<double>(const double*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                                                 const AxisTaps<double>&, const AxisTaps<double>&,
                                                 const CrossEntropyArgs&, int);

}  // namespace seg
