// Shared by the CPU (plain C++) and the CUDA (NVRTC) builds.
// NVRTC-safe: no STL, host-only headers guarded by __CUDACC_RTC__.
#pragma once

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define SEG_HD __host__ __device__ __forceinline__
#define SEG_DEVICE 1
#else
#define SEG_HD inline
#endif

#ifndef __CUDACC_RTC__
#include <stdint.h>
#else
typedef long long int64_t;
typedef int int32_t;
typedef unsigned int uint32_t;
typedef unsigned long long uint64_t;
typedef unsigned char uint8_t;
#endif

// +infinity usable in host and device code
#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define SEG_INF __int_as_float(0x7f800000)
#else
#include <math.h>
#define SEG_INF INFINITY
#endif
