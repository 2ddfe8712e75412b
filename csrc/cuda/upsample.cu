// CUDA kernels of the fused bilinear upsampling ops (segengine/ops/_upsample_cuda.py).
//
// Assumptions: logits contiguous [B, C, h, w]; target contiguous int64 [B, H, W] already
// range-checked on the host; per-axis tap tables (yi0, yi1, yl0, yl1 of length H and
// xi0, xi1, xl0, xl1 of length W) from seg_up::source_taps; grid-stride loops.
#include "seg_common.h"
#include "upsample.h"

namespace {

template <typename T>
__device__ __forceinline__ T interp(const T* plane, int64_t w, int64_t y0, int64_t y1, T h0, T h1,
                                    int64_t x0, int64_t x1, T w0, T w1) {
    const T t0 = seg_up::lerp2<T, true>(plane[y0 * w + x0], w0, plane[y0 * w + x1], w1);
    const T t1 = seg_up::lerp2<T, true>(plane[y1 * w + x0], w0, plane[y1 * w + x1], w1);
    return seg_up::lerp2<T, true>(t0, h0, t1, h1);
}

template <typename T>
__device__ void argmax_body(const T* x, int64_t B, int64_t C, int64_t h, int64_t w, int64_t H,
                            int64_t W, const int64_t* yi0, const int64_t* yi1, const T* yl0,
                            const T* yl1, const int64_t* xi0, const int64_t* xi1, const T* xl0,
                            const T* xl1, int64_t* labels, float* conf) {
    const int64_t n = B * H * W;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (int64_t)blockDim.x * gridDim.x) {
        const int64_t X = i % W, Y = (i / W) % H, b = i / (W * H);
        const T* base = x + b * C * h * w;
        T best = interp<T>(base, w, yi0[Y], yi1[Y], yl0[Y], yl1[Y], xi0[X], xi1[X], xl0[X], xl1[X]);
        int64_t arg = 0;
        for (int64_t c = 1; c < C; ++c) {
            T v = interp<T>(base + c * h * w, w, yi0[Y], yi1[Y], yl0[Y], yl1[Y], xi0[X], xi1[X],
                            xl0[X], xl1[X]);
            if (seg_up::argmax_takes(v, best)) { best = v; arg = c; }
        }
        labels[i] = arg;
        if (conf) {
            T s = 0;
            for (int64_t c = 0; c < C; ++c)
                s += exp(interp<T>(base + c * h * w, w, yi0[Y], yi1[Y], yl0[Y], yl1[Y], xi0[X],
                                   xi1[X], xl0[X], xl1[X]) - best);
            conf[i] = (float)((T)1 / s);
        }
    }
}

// log-sum-exp over the classes of one output pixel
template <typename T>
__device__ T pixel_lse(const T* base, int64_t C, int64_t h, int64_t w, int64_t y0, int64_t y1,
                       T h0, T h1, int64_t x0, int64_t x1, T w0, T w1) {
    T m = -SEG_INF;
    for (int64_t c = 0; c < C; ++c) {
        T v = interp<T>(base + c * h * w, w, y0, y1, h0, h1, x0, x1, w0, w1);
        m = (v > m || v != v) ? v : m;
    }
    T s = 0;
    for (int64_t c = 0; c < C; ++c)
        s += exp(interp<T>(base + c * h * w, w, y0, y1, h0, h1, x0, x1, w0, w1) - m);
    return m + log(s);
}

// Per-pixel weighted NLL and smoothing terms (0 where ignored); loss_pixel optional.
template <typename T>
__device__ void ce_forward_body(const T* x, const int64_t* target, const T* weight, int64_t B,
                                int64_t C, int64_t h, int64_t w, int64_t H, int64_t W,
                                const int64_t* yi0, const int64_t* yi1, const T* yl0, const T* yl1,
                                const int64_t* xi0, const int64_t* xi1, const T* xl0, const T* xl1,
                                int64_t ignore_index, T pix_nll, T pix_smooth, T* nll_out,
                                T* smooth_out, T* loss_pixel) {
    const int64_t n = B * H * W;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (int64_t)blockDim.x * gridDim.x) {
        const int64_t X = i % W, Y = (i / W) % H, b = i / (W * H);
        const int64_t t = target[i];
        T nll = 0, smooth = 0;
        if (t != ignore_index) {
            const T* base = x + b * C * h * w;
            const T lse = pixel_lse<T>(base, C, h, w, yi0[Y], yi1[Y], yl0[Y], yl1[Y], xi0[X], xi1[X],
                                       xl0[X], xl1[X]);
            T wv = 0, wsum = 0;
            for (int64_t c = 0; c < C; ++c) {
                const T wc = weight ? weight[c] : (T)1;
                const T v = interp<T>(base + c * h * w, w, yi0[Y], yi1[Y], yl0[Y], yl1[Y], xi0[X],
                                      xi1[X], xl0[X], xl1[X]);
                wv += wc * v;
                wsum += wc;
                if (c == t) nll = -wc * (v - lse);
            }
            smooth = -(wv - wsum * lse);
        }
        nll_out[i] = nll;
        smooth_out[i] = smooth;
        if (loss_pixel) loss_pixel[i] = pix_nll * nll + pix_smooth * smooth;
    }
}

// Gradient with respect to the low-resolution logits, gathered per low-resolution pixel over
// the output pixels whose taps reach it (ylo/yhi, xlo/xhi): deterministic, no atomics.
template <typename T>
__device__ void ce_backward_body(const T* x, const int64_t* target, const T* weight,
                                 const T* grad_pixel, int64_t B, int64_t C, int64_t h, int64_t w,
                                 int64_t H, int64_t W, const int64_t* yi0, const int64_t* yi1,
                                 const T* yl0, const T* yl1, const int64_t* xi0, const int64_t* xi1,
                                 const T* xl0, const T* xl1, const int64_t* ylo, const int64_t* yhi,
                                 const int64_t* xlo, const int64_t* xhi, int64_t ignore_index,
                                 T coef_nll, T coef_smooth, T* grad) {
    const int64_t n = B * h * w;
    T wsum = 0;
    for (int64_t c = 0; c < C; ++c) wsum += weight ? weight[c] : (T)1;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (int64_t)blockDim.x * gridDim.x) {
        const int64_t xx = i % w, yy = (i / w) % h, b = i / (w * h);
        const T* base = x + b * C * h * w;
        T* g = grad + b * C * h * w + yy * w + xx;
        for (int64_t c = 0; c < C; ++c) g[c * h * w] = 0;
        for (int64_t Y = ylo[yy]; Y < yhi[yy]; ++Y) {
            const T wy = (yi0[Y] == yy ? yl0[Y] : (T)0) + (yi1[Y] == yy ? yl1[Y] : (T)0);
            for (int64_t X = xlo[xx]; X < xhi[xx]; ++X) {
                const T wx = (xi0[X] == xx ? xl0[X] : (T)0) + (xi1[X] == xx ? xl1[X] : (T)0);
                const int64_t p = (b * H + Y) * W + X;
                const int64_t t = target[p];
                if (t == ignore_index) continue;
                const T gp = grad_pixel ? grad_pixel[p] : (T)1;
                const T lse = pixel_lse<T>(base, C, h, w, yi0[Y], yi1[Y], yl0[Y], yl1[Y], xi0[X],
                                           xi1[X], xl0[X], xl1[X]);
                const T wt = weight ? weight[t] : (T)1;
                for (int64_t c = 0; c < C; ++c) {
                    const T v = interp<T>(base + c * h * w, w, yi0[Y], yi1[Y], yl0[Y], yl1[Y],
                                          xi0[X], xi1[X], xl0[X], xl1[X]);
                    const T wc = weight ? weight[c] : (T)1;
                    const T gc = seg_up::ce_grad<T>(exp(v - lse), c == t, wc, wt, wsum, coef_nll,
                                                    coef_smooth);
                    g[c * h * w] += wy * wx * gp * gc;
                }
            }
        }
    }
}

}  // namespace

#define SEG_UPSAMPLE_KERNELS(T, SUFFIX)                                                              \
    extern "C" __global__ void upsample_argmax_##SUFFIX(                                             \
        const T* x, int64_t B, int64_t C, int64_t h, int64_t w, int64_t H, int64_t W,                \
        const int64_t* yi0, const int64_t* yi1, const T* yl0, const T* yl1, const int64_t* xi0,     \
        const int64_t* xi1, const T* xl0, const T* xl1, int64_t* labels, float* conf) {             \
        argmax_body<T>(x, B, C, h, w, H, W, yi0, yi1, yl0, yl1, xi0, xi1, xl0, xl1, labels, conf);  \
    }                                                                                                \
    extern "C" __global__ void upsample_ce_forward_##SUFFIX(                                        \
        const T* x, const int64_t* target, const T* weight, int64_t B, int64_t C, int64_t h,        \
        int64_t w, int64_t H, int64_t W, const int64_t* yi0, const int64_t* yi1, const T* yl0,      \
        const T* yl1, const int64_t* xi0, const int64_t* xi1, const T* xl0, const T* xl1,           \
        int64_t ignore_index, T pix_nll, T pix_smooth, T* nll_out, T* smooth_out, T* loss_pixel) {  \
        ce_forward_body<T>(x, target, weight, B, C, h, w, H, W, yi0, yi1, yl0, yl1, xi0, xi1, xl0,  \
                           xl1, ignore_index, pix_nll, pix_smooth, nll_out, smooth_out, loss_pixel); \
    }                                                                                                \
    extern "C" __global__ void upsample_ce_backward_##SUFFIX(                                       \
        const T* x, const int64_t* target, const T* weight, const T* grad_pixel, int64_t B,         \
        int64_t C, int64_t h, int64_t w, int64_t H, int64_t W, const int64_t* yi0,                  \
        const int64_t* yi1, const T* yl0, const T* yl1, const int64_t* xi0, const int64_t* xi1,     \
        const T* xl0, const T* xl1, const int64_t* ylo, const int64_t* yhi, const int64_t* xlo,     \
        const int64_t* xhi, int64_t ignore_index, T coef_nll, T coef_smooth, T* grad) {             \
        ce_backward_body<T>(x, target, weight, grad_pixel, B, C, h, w, H, W, yi0, yi1, yl0, yl1,    \
                            xi0, xi1, xl0, xl1, ylo, yhi, xlo, xhi, ignore_index, coef_nll,         \
                            coef_smooth, grad);                                                     \
    }

SEG_UPSAMPLE_KERNELS(float, f32)
SEG_UPSAMPLE_KERNELS(double, f64)
