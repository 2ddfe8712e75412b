# distutils: language = c++
# distutils: libraries = dl
"""Build facts of the compiled extensions: OpenMP, compiler, instruction sets, dispatch.

Every extension is compiled with the same flags (``setup.py``), so what this module was
compiled for is what the kernels were compiled for, except the code paths that pick an
instruction set at run time; :func:`build_facts` lists those.
"""

cdef extern from "parallel.h" namespace "seg":
    bint c_openmp_enabled "seg::openmp_enabled"() except + nogil
    int c_resolve_threads "seg::resolve_threads"(int) except + nogil

cdef extern from *:
    """
    #include <dlfcn.h>
    #include "parallel.h"
    #include "permutohedral.h"  /* SEG_MULTIVERSION: the lattice/CRF hot loops' attribute */
    #include "upsample.h"       /* SEG_UPSAMPLE_FMA_DISPATCH */
    #include "crf.h"            /* SEG_CRF_FMA_DISPATCH */
    #include "cpu_features.h"   /* the run-time choices (SEGENGINE_CPU_CAPABILITY) */

    #define SEG_STR_(x) #x
    #define SEG_STR(x) SEG_STR_(x)

    static const char* seg_compiler(void) {
    #if defined(__clang__)
        return "Clang " __VERSION__;
    #elif defined(__GNUC__)
        return "GCC " __VERSION__;
    #elif defined(_MSC_VER)
        return "MSVC " SEG_STR(_MSC_FULL_VER);
    #else
        return "unknown";
    #endif
    }

    static long seg_cplusplus(void) { return (long)__cplusplus; }

    static long seg_openmp_date(void) {
    #ifdef _OPENMP
        return (long)_OPENMP;
    #else
        return 0;
    #endif
    }

    /* File of the OpenMP runtime this process resolved omp_get_max_threads to ("" if none). */
    static const char* seg_openmp_library(void) {
    #ifdef SEGENGINE_OPENMP
        Dl_info info;
        if (dladdr(reinterpret_cast<void*>(&omp_get_max_threads), &info) && info.dli_fname) return info.dli_fname;
    #endif
        return "";
    }

    /* Instruction-set macros the compiler defined for the baseline build. */
    static const char* seg_isa_macros(void) {
        return ""
    #ifdef __x86_64__
            " x86_64"
    #endif
    #ifdef __SSE2__
            " SSE2"
    #endif
    #ifdef __SSE4_2__
            " SSE4.2"
    #endif
    #ifdef __AVX__
            " AVX"
    #endif
    #ifdef __AVX2__
            " AVX2"
    #endif
    #ifdef __FMA__
            " FMA"
    #endif
    #ifdef __AVX512F__
            " AVX512F"
    #endif
    #ifdef __aarch64__
            " aarch64"
    #endif
    #ifdef __ARM_NEON
            " NEON"
    #endif
    #ifdef __ARM_FEATURE_FMA
            " ARM-FMA"
    #endif
            ;
    }

    /* The expansion of SEG_MULTIVERSION: empty when the hot loops are compiled once. */
    static const char* seg_multiversion(void) { return SEG_STR(SEG_MULTIVERSION); }

    /* upsample.h: whether the AVX2+FMA upsampling kernel is compiled and chosen per call. */
    static int seg_upsample_fma_dispatch(void) { return SEG_UPSAMPLE_FMA_DISPATCH; }

    /* crf.h: whether the AVX2+FMA dense-CRF update passes are compiled and chosen per call. */
    static int seg_crf_fma_dispatch(void) { return SEG_CRF_FMA_DISPATCH; }

    /* What this processor offers (x86-64 only; -1: not asked on this architecture). */
    static int seg_cpu_supports(int which) {
    #if defined(__x86_64__) && defined(__GNUC__)
        __builtin_cpu_init();
        switch (which) {
            case 0: return __builtin_cpu_supports("avx2") ? 1 : 0;
            case 1: return __builtin_cpu_supports("fma") ? 1 : 0;
            case 2: return __builtin_cpu_supports("avx512f") ? 1 : 0;
        }
    #endif
        (void)which;
        return -1;
    }
    """
    const char* seg_compiler()
    long seg_cplusplus()
    long seg_openmp_date()
    const char* seg_openmp_library()
    const char* seg_isa_macros()
    const char* seg_multiversion()
    int seg_upsample_fma_dispatch()
    int seg_crf_fma_dispatch()
    int seg_uses_avx2 "seg::cpu_has_avx2"()
    int seg_uses_avx2_fma "seg::cpu_has_avx2_fma"()
    int seg_cpu_supports(int which)


# _OPENMP release dates -> OpenMP specification versions.
_OPENMP_SPECS = {200505: "2.5", 200805: "3.0", 201107: "3.1", 201307: "4.0", 201511: "4.5",
                 201811: "5.0", 202011: "5.1", 202111: "5.2", 202411: "6.0"}


def openmp_enabled():
    """Return True when the extensions were built with OpenMP."""
    return c_openmp_enabled()


def max_threads():
    """Return the number of threads OpenMP would use by default (1 without OpenMP)."""
    return c_resolve_threads(0)


def build_facts():
    """What the compiled code was built for and which paths it picks at run time.

    Returns
    -------
    dict
        ``compiler`` (str, e.g. ``"GCC 12.2.0"``), ``cplusplus`` (int, ``__cplusplus``),
        ``openmp`` (bool), ``openmp_spec`` (str such as ``"4.5 (201511)"``, or None),
        ``openmp_library`` (str: the file of the OpenMP runtime in use, or None),
        ``isa`` (list of str: the instruction-set macros of the baseline build, e.g.
        ``["x86_64", "SSE2"]``), ``dispatch`` (list of str: each code path that picks an
        instruction set at run time; empty when none does), ``cpu`` (dict str -> bool:
        ``avx2``, ``fma``, ``avx512f`` of this processor on x86-64, empty elsewhere),
        ``run_time`` (dict str -> bool: whether this process takes the AVX2 (``avx2``) and
        AVX2+FMA (``avx2_fma``) code chosen at run time; both False when the processor lacks
        them or ``SEGENGINE_CPU_CAPABILITY=default`` is set).
    """
    date = seg_openmp_date()
    spec = None
    if date:
        spec = f"{_OPENMP_SPECS.get(date, '?')} ({date})"
    lib = seg_openmp_library().decode()
    dispatch = []
    multiversion = seg_multiversion().decode().strip()
    if multiversion:
        how = "GCC target_clones" if "target_clones" in multiversion else multiversion
        dispatch.append("permutohedral lattice and dense CRF hot loops: compiled for AVX2 and for "
                        f"the baseline, the loader picks one ({how})")
    if seg_crf_fma_dispatch():
        dispatch.append("dense CRF update passes and unary conversion: an AVX2+FMA build chosen per "
                        "call when the processor has both (multiply-adds fused), else the build above")
    if seg_upsample_fma_dispatch():
        dispatch.append("fused upsampling: an AVX2+FMA kernel chosen per call when the processor "
                        "has both, else the baseline kernel")
    cpu = {}
    for i, name in enumerate(("avx2", "fma", "avx512f")):
        has = seg_cpu_supports(i)
        if has >= 0:
            cpu[name] = bool(has)
    return {
        "compiler": seg_compiler().decode(),
        "cplusplus": seg_cplusplus(),
        "openmp": bool(c_openmp_enabled()),
        "openmp_spec": spec,
        "openmp_library": lib or None,
        "isa": seg_isa_macros().decode().split(),
        "dispatch": dispatch,
        "run_time": {"avx2": bool(seg_uses_avx2()), "avx2_fma": bool(seg_uses_avx2_fma())},
        "cpu": cpu,
    }
