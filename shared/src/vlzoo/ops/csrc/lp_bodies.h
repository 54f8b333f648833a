// Local affinity propagation (APro, spec §2.3): per-pixel bodies shared by the CPU and CUDA kernels.
//
//   phi(i, j) = exp(-sum_c (I_ci - I_cj)^2 / zeta^2) for j in the k x k window of i (i itself included),
//   out-of-image neighbours excluded exactly (the official code gets the same effect by shifting the image
//   by +10 before zero padding, which only works while zeta is small);
//   y^t_i = B_i * sum_j phi(i, j) y^{t-1}_j / (sum_j phi(i, j) + 1e-10),   y^0 = B * p.
//
// The normalised weights w_ij = phi(i, j) / (sum_j phi(i, j) + 1e-10) are computed once (k^2 per pixel,
// 0 for out-of-image offsets); the signal is iterated on zero-padded planes so no bounds checks are needed.
#pragma once

#include "common.h"

namespace vlzoo {

// Weights of pixel (row, col) of one image (C, H, W), written to w[o * w_stride] for the k^2 window
// offsets o = dy * k + dx in row-major order.
VLZOO_HD void lp_pixel_weights(const double* image, int64_t C, int64_t H, int64_t W, int64_t row, int64_t col,
                               int ksize, double zeta2, double* w, int64_t w_stride) {
  const int r = ksize / 2;
  const int64_t plane = H * W;
  const int64_t centre = row * W + col;
  double total = 0.0;
  for (int dy = 0; dy < ksize; ++dy) {
    for (int dx = 0; dx < ksize; ++dx) {
      const int64_t rr = row + dy - r;
      const int64_t cc = col + dx - r;
      double a = 0.0;
      if (rr >= 0 && rr < H && cc >= 0 && cc < W) {
        const int64_t j = rr * W + cc;
        double d2 = 0.0;
        for (int64_t c = 0; c < C; ++c) {
          const double d = image[c * plane + j] - image[c * plane + centre];
          d2 += d * d;
        }
        a = exp(-d2 / zeta2);
      }
      w[(dy * ksize + dx) * w_stride] = a;
      total += a;
    }
  }
  const double inv = 1.0 / (total + 1e-10);
  for (int o = 0; o < ksize * ksize; ++o) w[o * w_stride] *= inv;
}

// One propagation step at pixel (row, col): sum over the window of w * y, where y_pad is the plane padded
// by r = k / 2 zeros on every side (row width W + 2r), so window offset (dy, dx) reads y_pad[row + dy][col + dx].
// kSize > 0 fixes the window size at compile time (the loops then unroll); 0 uses ksize.
template <int kSize>
VLZOO_HD double lp_pixel_step(const double* w, int64_t w_stride, const double* y_pad, int64_t Wp, int64_t row,
                              int64_t col, int window) {
  const int ksize = kSize > 0 ? kSize : window;
  double acc = 0.0;
  for (int dy = 0; dy < ksize; ++dy) {
    const double* line = y_pad + (row + dy) * Wp + col;
    for (int dx = 0; dx < ksize; ++dx) acc += w[(dy * ksize + dx) * w_stride] * line[dx];
  }
  return acc;
}

}  // namespace vlzoo
