// Checked integer arithmetic of the max-flow graphs (internal header of csrc/cpu/maxflow.cpp).
//
// Integer capacities must never wrap: every place where capacities accumulate checks that
// the exact result fits its type and throws std::overflow_error (OverflowError in Python)
// otherwise.  The quantities and their bounds:
//   * a node's terminal residual tr = source - sink (T) and the flow (flow_t<T>) after
//     add_tweights (Kolmogorov's convention, as Solver::add_tweights);
//   * an arc pair: the solver only moves capacity between an arc and its reverse, so their
//     sum is invariant and bounds both residuals: cap + rev must fit T;
//   * the flow of a solve grows by at most the sum of the positive tr (every unit pushed
//     comes out of one of them), and by at most the sum of the negative ones; each node
//     passes on at most its residual arc capacity (check_flow_bound).
// Floating-point capacities are not checked here (they do not wrap).
#pragma once

#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "maxflow_solver.h"

namespace seg {
namespace mf {
namespace detail {

template <class T> inline const char* type_name() {
    if (std::is_same<T, int32_t>::value) return "int32";
    if (std::is_same<T, int64_t>::value) return "int64";
    if (std::is_same<T, float>::value) return "float32";
    return "float64";
}

// A type that holds any sum of a few values of T (and of flow_t<T>) exactly.
template <class T>
using wide_t = typename std::conditional<std::is_integral<T>::value, __int128, double>::type;

template <class T, class W>
inline bool fits(W v) {
    return v >= W(std::numeric_limits<T>::min()) && v <= W(std::numeric_limits<T>::max());
}

// Kolmogorov's terminal update (the common part min(source, sink) goes to the flow, tr
// keeps source - sink), exact for integers: throws std::overflow_error naming `node` when
// tr or the flow would leave its type; nothing is changed then.
template <class T>
inline void tweights_checked(T& tr, flow_t<T>& flow, T s, T t, int64_t node) {
    if constexpr (!std::is_integral<T>::value) {
        T delta = tr;
        if (delta > 0) s += delta; else t -= delta;
        flow += flow_t<T>(s < t ? s : t);
        tr = s - t;
    } else {
        using W = wide_t<T>;
        W ws = W(s), wt = W(t);
        if (tr > 0) ws += W(tr); else wt -= W(tr);
        const W f = W(flow) + (ws < wt ? ws : wt);
        const W r = ws - wt;
        if (!fits<T>(r))
            throw std::overflow_error("terminal capacity of node " + std::to_string(node) + " overflows " +
                                      type_name<T>());
        if (!fits<flow_t<T>>(f))
            throw std::overflow_error("the flow overflows int64 (terminal capacities of node " +
                                      std::to_string(node) + ")");
        tr = T(r);
        flow = flow_t<T>(f);
    }
}

// Undo tweights_checked(tr, ., s, t): every branch of the update leaves tr + s - t, so
// the old tr is tr - (s - t) (the flow is restored by the caller).
template <class T>
inline void tweights_undo(T& tr, T s, T t) {
    if constexpr (std::is_integral<T>::value) {
        using W = wide_t<T>;
        tr = T(W(tr) - (W(s) - W(t)));
    } else {
        (void)tr; (void)s; (void)t;
    }
}

// Apply terminal capacities to m nodes in order, all or nothing.  at(i) returns
// {T* tr, flow_t<T>* flow} of node i.
template <class T, class At>
void add_tweights_all(const int64_t* i, const T* src, const T* snk, int64_t m, At&& at) {
    if constexpr (!std::is_integral<T>::value) {
        for (int64_t k = 0; k < m; ++k) {
            auto r = at(i[k]);
            tweights_checked<T>(*r.first, *r.second, src[k], snk[k], i[k]);
        }
    } else {
        int64_t k = 0;
        try {
            for (; k < m; ++k) {
                auto r = at(i[k]);
                tweights_checked<T>(*r.first, *r.second, src[k], snk[k], i[k]);
            }
        } catch (const std::overflow_error&) {
            // roll back the k applied updates (in reverse; each flow is restored by
            // subtracting the part its update added, recomputed from the restored tr)
            for (int64_t u = k - 1; u >= 0; --u) {
                auto r = at(i[u]);
                tweights_undo<T>(*r.first, src[u], snk[u]);
                using W = wide_t<T>;
                W ws = W(src[u]), wt = W(snk[u]);
                if (*r.first > 0) ws += W(*r.first); else wt -= W(*r.first);
                *r.second = flow_t<T>(W(*r.second) - (ws < wt ? ws : wt));
            }
            throw;
        }
    }
}

// cap + rev of one arc pair must fit T (see the header comment).
template <class T>
inline bool pair_fits(T cap, T rev) {
    if constexpr (!std::is_integral<T>::value) {
        (void)cap; (void)rev;
        return true;
    } else {
        return fits<T>(wide_t<T>(cap) + wide_t<T>(rev));
    }
}

// The flow of one solve must stay within flow_t<T> (integers only): every unit pushed
// comes out of a positive tr and into a negative one, and leaves (enters) its node over
// residual arcs.  First the cheap bound flow + min(sum of positive tr, sum of negative tr);
// only when that does not fit, the tighter flow + min(sum of min(tr_i, out_i), sum of
// min(-tr_i, in_i)) with out_i / in_i the residual capacity out of / into node i
// (caps(i, out, in) adds them).  Throws std::overflow_error when neither fits.
template <class T, class TrF, class CapF>
void check_flow_bound(flow_t<T> flow, int64_t n, TrF&& tr, CapF&& caps) {
    if constexpr (std::is_integral<T>::value) {
        using W = wide_t<T>;
        W pos = 0, neg = 0;
        for (int64_t i = 0; i < n; ++i) {
            const T t = tr(i);
            if (t > 0) pos += t; else neg -= t;
        }
        if (fits<flow_t<T>>(W(flow) + (pos < neg ? pos : neg))) return;
        pos = neg = 0;
        for (int64_t i = 0; i < n; ++i) {
            const T t = tr(i);
            if (t == 0) continue;
            W out = 0, in = 0;
            caps(i, out, in);
            if (t > 0) pos += W(t) < out ? W(t) : out;
            else neg += -W(t) < in ? -W(t) : in;
        }
        if (!fits<flow_t<T>>(W(flow) + (pos < neg ? pos : neg)))
            throw std::overflow_error("the maximum flow can exceed int64 (the flow so far plus what "
                                      "the terminal capacities can still push through their arcs)");
    } else {
        (void)flow; (void)n; (void)tr; (void)caps;
    }
}

}  // namespace detail
}  // namespace mf
}  // namespace seg
