# distutils: language = c++
"""Build facts of the compiled extensions (OpenMP on or off)."""

cdef extern from "parallel.h" namespace "seg":
    bint c_openmp_enabled "seg::openmp_enabled"() except + nogil
    int c_resolve_threads "seg::resolve_threads"(int) except + nogil


def openmp_enabled():
    """Return True when the extensions were built with OpenMP."""
    return c_openmp_enabled()


def max_threads():
    """Return the number of threads OpenMP would use by default (1 without OpenMP)."""
    return c_resolve_threads(0)
