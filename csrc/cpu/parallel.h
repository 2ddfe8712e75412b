// OpenMP helpers: every kernel compiles serially when the build has no OpenMP.
#pragma once

#ifdef SEGENGINE_OPENMP
#include <omp.h>
#endif

namespace seg {

// Number of threads to use: n <= 0 means "all that OpenMP offers".
inline int resolve_threads(int n) {
#ifdef SEGENGINE_OPENMP
    return n > 0 ? n : omp_get_max_threads();
#else
    (void)n;
    return 1;
#endif
}

inline bool openmp_enabled() {
#ifdef SEGENGINE_OPENMP
    return true;
#else
    return false;
#endif
}

}  // namespace seg
