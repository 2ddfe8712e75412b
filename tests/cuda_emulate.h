// Compile a csrc/cuda/*.cu file as plain C++ so that its kernel bodies run on the CPU.
// Only for kernels without shared memory or barriers. The test harness (tests/emulate.py)
// sets blockIdx/threadIdx through seg_emu_set() and calls each kernel once per thread.
#pragma once
#include <math.h>
#include <stdint.h>
#include <float.h>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)

struct seg_dim3 { unsigned int x, y, z; };
static seg_dim3 blockIdx, threadIdx, blockDim, gridDim;

extern "C" void seg_emu_set(unsigned bx, unsigned by, unsigned bz, unsigned tx, unsigned ty, unsigned tz,
                            unsigned nbx, unsigned nby, unsigned nbz, unsigned ntx, unsigned nty, unsigned ntz) {
    blockIdx = {bx, by, bz}; threadIdx = {tx, ty, tz};
    gridDim = {nbx, nby, nbz}; blockDim = {ntx, nty, ntz};
}

template <typename T> inline T __ldg(const T* p) { return *p; }
template <typename T> inline T atomicAdd(T* p, T v) { T old = *p; *p += v; return old; }
template <typename T> inline T atomicMax(T* p, T v) { T old = *p; if (v > old) *p = v; return old; }
template <typename T> inline T atomicMin(T* p, T v) { T old = *p; if (v < old) *p = v; return old; }
template <typename T> inline T atomicCAS(T* p, T cmp, T v) { T old = *p; if (old == cmp) *p = v; return old; }
template <typename T> inline T atomicExch(T* p, T v) { T old = *p; *p = v; return old; }
inline float __int_as_float(int v) { union { int i; float f; } u; u.i = v; return u.f; }
inline int __float_as_int(float v) { union { int i; float f; } u; u.f = v; return u.i; }
