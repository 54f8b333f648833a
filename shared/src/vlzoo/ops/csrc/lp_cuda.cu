// Local affinity propagation on the GPU (APro spec §2.3): one thread per pixel computes its k x k
// normalised weights once (stored offset-major, (B, k^2, N), so neighbouring threads read neighbouring
// addresses), then T launches of one thread per (sample, channel, pixel) iterate on zero-padded float64
// planes (ping-pong buffers). The per-pixel bodies are the ones the CPU kernel runs (lp_bodies.h).
#include <cuda_runtime.h>

#include "common.h"
#include "cuda_launch.h"
#include "lp_bodies.h"

namespace vlzoo {
namespace {

constexpr int kThreads = 256;

__global__ void lp_weights_kernel(const double* image, int64_t B, int64_t C, int64_t H, int64_t W, int ksize,
                                  double zeta2, double* weights) {
  const int64_t N = H * W;
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= B * N) return;
  const int64_t b = idx / N;
  const int64_t i = idx % N;
  const int64_t k2 = static_cast<int64_t>(ksize) * ksize;
  lp_pixel_weights(image + b * C * N, C, H, W, i / W, i % W, ksize, zeta2, weights + b * k2 * N + i, N);
}

// Multiplier of pixel i of plane (b, k): the box mask, or 1.
__device__ __forceinline__ double box_at(const double* mask, int64_t mask_channels, int64_t b, int64_t k,
                                         int64_t i, int64_t N) {
  if (mask == nullptr) return 1.0;
  return mask[(b * mask_channels + (mask_channels == 1 ? 0 : k)) * N + i];
}

__global__ void lp_init_kernel(const double* p, const double* mask, int64_t B, int64_t K, int64_t H, int64_t W,
                               int64_t mask_channels, int r, double* pad) {
  const int64_t N = H * W;
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= B * K * N) return;
  const int64_t plane = idx / N;
  const int64_t i = idx % N;
  const int64_t Wp = W + 2 * r;
  const int64_t Hp = H + 2 * r;
  pad[plane * Hp * Wp + (i / W + r) * Wp + i % W + r] = p[idx] * box_at(mask, mask_channels, plane / K, plane % K, i, N);
}

template <int kSize>
__global__ void lp_step_kernel(const double* weights, const double* src, double* dst, const double* mask, int64_t B,
                               int64_t K, int64_t H, int64_t W, int64_t mask_channels, int ksize) {
  const int64_t N = H * W;
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= B * K * N) return;
  const int64_t plane = idx / N;
  const int64_t b = plane / K;
  const int64_t i = idx % N;
  const int r = ksize / 2;
  const int64_t Wp = W + 2 * r;
  const int64_t Hp = H + 2 * r;
  const int64_t k2 = static_cast<int64_t>(ksize) * ksize;
  const int64_t row = i / W;
  const int64_t col = i % W;
  const double value = lp_pixel_step<kSize>(weights + b * k2 * N + i, N, src + plane * Hp * Wp, Wp, row, col, ksize);
  dst[plane * Hp * Wp + (row + r) * Wp + col + r] = value * box_at(mask, mask_channels, b, plane % K, i, N);
}

__global__ void lp_output_kernel(const double* pad, int64_t B, int64_t K, int64_t H, int64_t W, int r, double* out) {
  const int64_t N = H * W;
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= B * K * N) return;
  const int64_t plane = idx / N;
  const int64_t i = idx % N;
  const int64_t Wp = W + 2 * r;
  const int64_t Hp = H + 2 * r;
  out[idx] = pad[plane * Hp * Wp + (i / W + r) * Wp + i % W + r];
}

int64_t blocks_for(int64_t n) { return (n + kThreads - 1) / kThreads; }

}  // namespace

cudaError_t launch_local_propagate(const double* p, const double* image, const double* mask, int64_t B, int64_t K,
                                   int64_t C, int64_t H, int64_t W, int64_t mask_channels, int ksize, double zeta2,
                                   int64_t iterations, double* weights, double* pad_a, double* pad_b, double* out,
                                   cudaStream_t stream) {
  const int64_t N = H * W;
  if (B * K * N == 0) return cudaSuccess;
  const int r = ksize / 2;
  const size_t pad_bytes = static_cast<size_t>(B * K * (H + 2 * r) * (W + 2 * r)) * sizeof(double);
  cudaError_t err = cudaMemsetAsync(pad_a, 0, pad_bytes, stream);
  if (err != cudaSuccess) return err;
  err = cudaMemsetAsync(pad_b, 0, pad_bytes, stream);
  if (err != cudaSuccess) return err;
  lp_weights_kernel<<<blocks_for(B * N), kThreads, 0, stream>>>(image, B, C, H, W, ksize, zeta2, weights);
  lp_init_kernel<<<blocks_for(B * K * N), kThreads, 0, stream>>>(p, mask, B, K, H, W, mask_channels, r, pad_a);
  double* src = pad_a;
  double* dst = pad_b;
  for (int64_t it = 0; it < iterations; ++it) {
    const int64_t blocks = blocks_for(B * K * N);
    if (ksize == 3) {
      lp_step_kernel<3><<<blocks, kThreads, 0, stream>>>(weights, src, dst, mask, B, K, H, W, mask_channels, ksize);
    } else if (ksize == 5) {
      lp_step_kernel<5><<<blocks, kThreads, 0, stream>>>(weights, src, dst, mask, B, K, H, W, mask_channels, ksize);
    } else {
      lp_step_kernel<0><<<blocks, kThreads, 0, stream>>>(weights, src, dst, mask, B, K, H, W, mask_channels, ksize);
    }
    swap_values(src, dst);
  }
  lp_output_kernel<<<blocks_for(B * K * N), kThreads, 0, stream>>>(src, B, K, H, W, r, out);
  return cudaGetLastError();
}

}  // namespace vlzoo
