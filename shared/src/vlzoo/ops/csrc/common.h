// Shared definitions for the vlzoo.ops kernels: compiled by g++ (CPU extension) and by nvcc (CUDA sources).
//
// The per-sample / per-channel loop bodies of every kernel live in the *_bodies.h headers and are marked
// VLZOO_HD, so the CPU extension runs exactly the code that one CUDA thread runs. The CPU tests therefore
// exercise the device bodies too; only the launch geometry is CUDA-specific.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define VLZOO_HD __host__ __device__ __forceinline__
#else
#define VLZOO_HD inline
#endif

namespace vlzoo {

// Root of x in a union-find forest, halving the path on the way (every visited node skips to its
// grandparent). Used only for connectivity: the tag forest of global propagation is the merge log.
VLZOO_HD int32_t uf_find(int32_t* parent, int32_t x) {
  while (parent[x] != x) {
    const int32_t grand = parent[parent[x]];
    parent[x] = grand;
    x = grand;
  }
  return x;
}

template <typename T>
VLZOO_HD void swap_values(T& a, T& b) {
  const T t = a;
  a = b;
  b = t;
}

}  // namespace vlzoo
