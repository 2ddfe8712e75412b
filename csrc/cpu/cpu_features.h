// What this processor offers to the kernels that pick an instruction set at run time
// (x86-64 with GCC or Clang; elsewhere nothing is claimed). SEGENGINE_CPU_CAPABILITY=default
// in the environment (read once per process, as PyTorch's ATEN_CPU_CAPABILITY) makes every
// answer false, so that the baseline code paths can be tested on any machine. The
// upsampling kernels do not ask here: they follow PyTorch's own capability (upsample.cpp).
#pragma once

#include <cstdlib>
#include <cstring>

namespace seg {

inline bool cpu_baseline_requested() {
    static const bool requested = [] {
        const char* cap = std::getenv("SEGENGINE_CPU_CAPABILITY");
        return cap != nullptr && std::strcmp(cap, "default") == 0;
    }();
    return requested;
}

// AVX2 (and, for cpu_has_avx2_fma, FMA) usable and not turned off by the variable above.
inline bool cpu_has_avx2() {
#if defined(__x86_64__) && defined(__GNUC__)
    static const bool has = !cpu_baseline_requested() && __builtin_cpu_supports("avx2");
    return has;
#else
    return false;
#endif
}
inline bool cpu_has_avx2_fma() {
#if defined(__x86_64__) && defined(__GNUC__)
    static const bool has = cpu_has_avx2() && __builtin_cpu_supports("fma");
    return has;
#else
    return false;
#endif
}

}  // namespace seg
