// Kernel bodies of csrc/cpu/upsample.h, instantiated twice: without FMA in upsample.cpp
// and with FMA (compiled for AVX2+FMA) in upsample_fma.cpp. Everything here has internal
// linkage so that the two instantiations never merge at link time.
#pragma once
#include <algorithm>
#include <cmath>
#include <vector>

#include "parallel.h"
#include "upsample.h"
#include "common/fast_exp.h"
#include "common/upsample.h"

namespace seg {
namespace {

// exp of a max-subtracted softmax argument: the vectorisable approximation in float
// (relative error ~2e-7), libm in double.
inline float softmax_exp(float x) { return exp_nonpositive(x); }
inline double softmax_exp(double x) { return std::exp(x); }

// Cache of horizontally interpolated source rows: each slot holds C rows of W outputs.
template <typename T, bool FMA>
class RowCache {
  public:
    RowCache(const T* x, int64_t C, int64_t h, int64_t w, int64_t W, const AxisTaps<T>& ax)
        : x_(x), C_(C), h_(h), w_(w), W_(W), ax_(ax), buf_(2 * C * W) {}

    void set_batch(int64_t b) {
        if (b != b_) { b_ = b; tag_[0] = tag_[1] = -1; }
    }

    // Rows y0 and y1 of the current batch item, each [C][W].
    void get(int64_t y0, int64_t y1, const T** r0, const T** r1) {
        int s0 = find(y0, y1);
        *r0 = &buf_[s0 * C_ * W_];
        if (y1 == y0) { *r1 = *r0; return; }
        int s1 = find_excluding(y1, s0);
        *r1 = &buf_[s1 * C_ * W_];
    }

  private:
    int find(int64_t y, int64_t keep) {
        if (tag_[0] == y) return 0;
        if (tag_[1] == y) return 1;
        int s = (tag_[0] == keep) ? 1 : 0;
        fill(s, y);
        return s;
    }
    int find_excluding(int64_t y, int used) {
        int other = 1 - used;
        if (tag_[other] != y) fill(other, y);
        return other;
    }
    void fill(int s, int64_t y) {
        tag_[s] = y;
        T* dst = &buf_[s * C_ * W_];
        const int64_t* i0 = ax_.i0.data();
        const int64_t* i1 = ax_.i1.data();
        const T* l0 = ax_.l0.data();
        const T* l1 = ax_.l1.data();
        for (int64_t c = 0; c < C_; ++c) {
            const T* src = x_ + ((b_ * C_ + c) * h_ + y) * w_;
            T* d = dst + c * W_;
            for (int64_t X = 0; X < W_; ++X)
                d[X] = seg_up::lerp2<T, FMA>(src[i0[X]], l0[X], src[i1[X]], l1[X]);
        }
    }

    const T* x_;
    int64_t C_, h_, w_, W_;
    const AxisTaps<T>& ax_;
    std::vector<T> buf_;
    int64_t tag_[2] = {-1, -1};
    int64_t b_ = -1;
};

// The transpose of one axis' interpolation: for input index x, the output indices that
// read it (index[lo[x] .. lo[x+1])) and with which weight.
template <typename T>
struct AxisAdjoint {
    std::vector<int64_t> lo, index;
    std::vector<T> weight;
};

template <typename T>
AxisAdjoint<T> axis_adjoint(const AxisTaps<T>& t, int64_t in) {
    const int64_t out = (int64_t)t.i0.size();
    AxisAdjoint<T> a;
    a.lo.assign(in + 1, 0);
    for (int64_t o = 0; o < out; ++o) {
        a.lo[t.i0[o] + 1]++;
        if (t.i1[o] != t.i0[o]) a.lo[t.i1[o] + 1]++;
    }
    for (int64_t x = 0; x < in; ++x) a.lo[x + 1] += a.lo[x];
    a.index.resize(a.lo[in]);
    a.weight.resize(a.lo[in]);
    std::vector<int64_t> fill(a.lo.begin(), a.lo.end() - 1);
    for (int64_t o = 0; o < out; ++o) {  // ascending o: a fixed summation order
        if (t.i1[o] == t.i0[o]) {
            a.index[fill[t.i0[o]]] = o;
            a.weight[fill[t.i0[o]]++] = t.l0[o] + t.l1[o];
        } else {
            a.index[fill[t.i0[o]]] = o;
            a.weight[fill[t.i0[o]]++] = t.l0[o];
            a.index[fill[t.i1[o]]] = o;
            a.weight[fill[t.i1[o]]++] = t.l1[o];
        }
    }
    return a;
}

// Contiguous ranges of rows handed to threads: (batch item, first row, end row).
struct RowChunk { int64_t b, r0, r1; };

inline std::vector<RowChunk> row_chunks(int64_t B, int64_t rows, int threads) {
    int64_t per_item = std::max<int64_t>(1, (4 * threads + B - 1) / B);
    int64_t step = std::max<int64_t>(1, (rows + per_item - 1) / per_item);
    std::vector<RowChunk> out;
    for (int64_t b = 0; b < B; ++b)
        for (int64_t r = 0; r < rows; r += step) out.push_back({b, r, std::min(rows, r + step)});
    return out;
}

template <typename T, bool FMA>
void argmax_kernel(const T* x, int64_t B, int64_t C, int64_t h, int64_t w, int64_t H, int64_t W,
                   const AxisTaps<T>& ay, const AxisTaps<T>& ax, int64_t* labels, float* conf,
                   int threads) {
    std::vector<RowChunk> chunks = row_chunks(B, H, threads);
    const int64_t n = (int64_t)chunks.size();
#pragma omp parallel num_threads(threads)
    {
        RowCache<T, FMA> cache(x, C, h, w, W, ax);
        std::vector<T> best(W), vals(conf ? C * W : 0), sums(conf ? W : 0);
        std::vector<int32_t> arg(W);
#pragma omp for schedule(dynamic, 1)
        for (int64_t k = 0; k < n; ++k) {
            const RowChunk ch = chunks[k];
            cache.set_batch(ch.b);
            for (int64_t Y = ch.r0; Y < ch.r1; ++Y) {
                const T *r0, *r1;
                cache.get(ay.i0[Y], ay.i1[Y], &r0, &r1);
                const T h0 = ay.l0[Y], h1 = ay.l1[Y];
                T* bv = best.data();
                int32_t* bi = arg.data();
                for (int64_t X = 0; X < W; ++X) {
                    bv[X] = seg_up::lerp2<T, FMA>(r0[X], h0, r1[X], h1);
                    bi[X] = 0;
                }
                if (conf) std::copy(bv, bv + W, vals.data());
                for (int64_t c = 1; c < C; ++c) {
                    const T* a = r0 + c * W;
                    const T* b = r1 + c * W;
                    T* keep = conf ? vals.data() + c * W : nullptr;
                    for (int64_t X = 0; X < W; ++X) {
                        T v = seg_up::lerp2<T, FMA>(a[X], h0, b[X], h1);
                        if (keep) keep[X] = v;
                        bool take = seg_up::argmax_takes(v, bv[X]);
                        bv[X] = take ? v : bv[X];
                        bi[X] = take ? (int32_t)c : bi[X];
                    }
                }
                int64_t* out = labels + (ch.b * H + Y) * W;
                for (int64_t X = 0; X < W; ++X) out[X] = bi[X];
                if (conf) {
                    // softmax probability of the winner: 1 / sum_c exp(v_c - v_max)
                    T* s = sums.data();
                    for (int64_t X = 0; X < W; ++X) s[X] = 0;
                    for (int64_t c = 0; c < C; ++c) {
                        const T* vc = vals.data() + c * W;
                        for (int64_t X = 0; X < W; ++X) s[X] += softmax_exp(vc[X] - bv[X]);
                    }
                    float* cf = conf + (ch.b * H + Y) * W;
                    for (int64_t X = 0; X < W; ++X) cf[X] = (float)((T)1 / s[X]);
                }
            }
        }
    }
}

template <typename T, bool FMA>
void cross_entropy_kernel(const T* x, int64_t B, int64_t C, int64_t h, int64_t w, int64_t H,
                          int64_t W, const AxisTaps<T>& ay, const AxisTaps<T>& ax,
                          const CrossEntropyArgs& a, int threads) {
    const T* weight = static_cast<const T*>(a.weight);
    const T* gpix = static_cast<const T*>(a.grad_pixel);
    T* loss_pixel = static_cast<T*>(a.loss_pixel);
    T* grad = static_cast<T*>(a.grad_logits);
    const bool want_grad = grad != nullptr;
    T wsum = 0;
    for (int64_t c = 0; c < C; ++c) wsum += weight ? weight[c] : (T)1;
    const T coef_nll = (T)a.coef_nll, coef_smooth = (T)a.coef_smooth;
    const T pix_nll = (T)a.pixel_nll, pix_smooth = (T)a.pixel_smooth;

    // Threads own ranges of low-resolution rows. An output row is evaluated by every chunk
    // owning one of its two source rows (for the gradient) and its loss is counted by the
    // chunk owning its first source row, so each sum is formed in a fixed order.
    std::vector<RowChunk> chunks = row_chunks(B, h, threads);
    const int64_t n = (int64_t)chunks.size();
    std::vector<double> acc(want_grad ? B * C * h * w : 0, 0.0);
    const AxisAdjoint<T> adj = axis_adjoint(ax, w);
#pragma omp parallel num_threads(threads)
    {
        RowCache<T, FMA> cache(x, C, h, w, W, ax);
        std::vector<T> v(C * W), m(W), sum(W), wv(W), vt(W);
        std::vector<double> red(want_grad ? C * w : 0);
        std::vector<T> wtx(W), gpv(W), grow(W);
        std::vector<int32_t> t32(W);
#pragma omp for schedule(dynamic, 1)
        for (int64_t k = 0; k < n; ++k) {
            const RowChunk ch = chunks[k];
            cache.set_batch(ch.b);
            // output rows whose taps touch [r0, r1): ay.i1[Y] >= r0 and ay.i0[Y] < r1
            int64_t Ylo = std::lower_bound(ay.i1.begin(), ay.i1.end(), ch.r0) - ay.i1.begin();
            int64_t Yhi = std::lower_bound(ay.i0.begin(), ay.i0.end(), ch.r1) - ay.i0.begin();
            for (int64_t Y = Ylo; Y < Yhi; ++Y) {
                const int64_t y0 = ay.i0[Y], y1 = ay.i1[Y];
                const bool own_loss = y0 >= ch.r0 && y0 < ch.r1;
                if (!want_grad && !own_loss) continue;
                const T *r0, *r1;
                cache.get(y0, y1, &r0, &r1);
                const T h0 = ay.l0[Y], h1 = ay.l1[Y];
                const int64_t* tgt = a.target + (ch.b * H + Y) * W;
                for (int64_t X = 0; X < W; ++X) { m[X] = -INFINITY; wv[X] = 0; vt[X] = 0; }
                for (int64_t c = 0; c < C; ++c) {
                    const T* p = r0 + c * W;
                    const T* q = r1 + c * W;
                    T* vc = v.data() + c * W;
                    const T wc = weight ? weight[c] : (T)1;
                    for (int64_t X = 0; X < W; ++X) {
                        T val = seg_up::lerp2<T, FMA>(p[X], h0, q[X], h1);
                        vc[X] = val;
                        m[X] = (val > m[X] || val != val) ? val : m[X];
                        wv[X] += wc * val;
                        vt[X] = tgt[X] == c ? val : vt[X];
                    }
                }
                // v <- exp(v - max), summed into s: one exp per class and pixel
                for (int64_t X = 0; X < W; ++X) sum[X] = 0;
                for (int64_t c = 0; c < C; ++c) {
                    T* vc = v.data() + c * W;
                    for (int64_t X = 0; X < W; ++X) {
                        vc[X] = softmax_exp(vc[X] - m[X]);
                        sum[X] += vc[X];
                    }
                }
                double sn = 0, ss = 0;
                for (int64_t X = 0; X < W; ++X) {
                    const T lse = m[X] + std::log(sum[X]);
                    const int64_t t = tgt[X];
                    T nll = 0, smooth = 0;
                    if (t != a.ignore_index) {
                        const T wt = weight ? weight[t] : (T)1;
                        nll = -wt * (vt[X] - lse);
                        smooth = -(wv[X] - wsum * lse);
                    }
                    sn += (double)nll;
                    ss += (double)smooth;
                    if (loss_pixel && own_loss) loss_pixel[(ch.b * H + Y) * W + X] = pix_nll * nll + pix_smooth * smooth;
                    sum[X] = (T)1 / sum[X];  // now the softmax normaliser
                }
                if (own_loss) {
                    if (a.row_nll) a.row_nll[ch.b * H + Y] = sn;
                    if (a.row_smooth) a.row_smooth[ch.b * H + Y] = ss;
                }
                if (!want_grad) continue;
                // full-resolution gradient of this row, class by class, then its adjoint
                // along x (a gather over each low-resolution column's support) into `red`
                for (int64_t X = 0; X < W; ++X) {
                    const int64_t t = tgt[X];
                    const bool valid = t != a.ignore_index;
                    t32[X] = valid ? (int32_t)t : -1;
                    wtx[X] = valid ? (weight ? weight[t] : (T)1) : (T)0;
                    gpv[X] = valid ? (gpix ? gpix[(ch.b * H + Y) * W + X] : (T)1) : (T)0;
                }
                for (int64_t c = 0; c < C; ++c) {
                    const T* ec = v.data() + c * W;
                    const T wc = weight ? weight[c] : (T)1;
                    for (int64_t X = 0; X < W; ++X) {
                        const T p = ec[X] * sum[X];
                        grow[X] = gpv[X] * seg_up::ce_grad<T>(p, t32[X] == (int32_t)c, wc, wtx[X],
                                                              wsum, coef_nll, coef_smooth);
                    }
                    double* rc = red.data() + c * w;
                    for (int64_t xx = 0; xx < w; ++xx) {
                        T r = 0;
                        for (int64_t k = adj.lo[xx]; k < adj.lo[xx + 1]; ++k)
                            r += adj.weight[k] * grow[adj.index[k]];
                        rc[xx] = (double)r;
                    }
                }
                for (int s = 0; s < 2; ++s) {
                    const int64_t y = s == 0 ? y0 : y1;
                    const double hw = (double)(s == 0 ? h0 : h1);
                    if (y < ch.r0 || y >= ch.r1) continue;
                    for (int64_t c = 0; c < C; ++c) {
                        double* dst = acc.data() + ((ch.b * C + c) * h + y) * w;
                        const double* rc = red.data() + c * w;
                        for (int64_t xx = 0; xx < w; ++xx) dst[xx] += hw * rc[xx];
                    }
                }
            }
        }
    }
    if (want_grad) {
        const int64_t total = B * C * h * w;
        for (int64_t i = 0; i < total; ++i) grad[i] = (T)acc[i];
    }
}

}  // namespace
}  // namespace seg
