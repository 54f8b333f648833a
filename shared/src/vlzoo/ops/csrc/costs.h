// Squared-L2 edge costs on the CPU: w_kl = sum_c (F_ck - F_cl)^2 (APro spec §2.2), accumulated in float64
// channel by channel in order c = 0, 1, ..., exactly like the PyTorch reference, so ties (and hence the
// MST) are bit-for-bit identical between implementations.
//
// Grid edge indices (row-major pixels, N = H * W): the H * (W - 1) horizontal edges (r, c)-(r, c + 1)
// first, index r * (W - 1) + c, then the (H - 1) * W vertical edges (r, c)-(r + 1, c), index
// H * (W - 1) + r * W + c.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace vlzoo {

template <typename scalar_t>
void grid_costs(const scalar_t* f, int64_t C, int64_t H, int64_t W, double* cost) {
  const int64_t plane = H * W;
  const int64_t n_horizontal = H * (W - 1);
  const int64_t n_edges = n_horizontal + (H - 1) * W;
  std::fill(cost, cost + n_edges, 0.0);
  for (int64_t c = 0; c < C; ++c) {
    const scalar_t* p = f + c * plane;
    for (int64_t r = 0; r < H; ++r) {
      const scalar_t* row = p + r * W;
      double* out = cost + r * (W - 1);
      for (int64_t x = 0; x + 1 < W; ++x) {
        const double d = static_cast<double>(row[x + 1]) - static_cast<double>(row[x]);
        out[x] += d * d;
      }
    }
    for (int64_t r = 0; r + 1 < H; ++r) {
      const scalar_t* row = p + r * W;
      const scalar_t* below = row + W;
      double* out = cost + n_horizontal + r * W;
      for (int64_t x = 0; x < W; ++x) {
        const double d = static_cast<double>(below[x]) - static_cast<double>(row[x]);
        out[x] += d * d;
      }
    }
  }
}

// Costs of arbitrary edges (E, 2) of a tree: w_t = sum_c (F_c[v_t] - F_c[u_t])^2. Returns false on NaN.
template <typename scalar_t>
bool tree_costs(const scalar_t* f, int64_t C, int64_t N, const int64_t* edges, int64_t n_edges, double* cost) {
  std::fill(cost, cost + n_edges, 0.0);
  for (int64_t c = 0; c < C; ++c) {
    const scalar_t* p = f + c * N;
    for (int64_t t = 0; t < n_edges; ++t) {
      const double d = static_cast<double>(p[edges[2 * t + 1]]) - static_cast<double>(p[edges[2 * t]]);
      cost[t] += d * d;
    }
  }
  for (int64_t t = 0; t < n_edges; ++t) {
    if (std::isnan(cost[t])) return false;
  }
  return true;
}

}  // namespace vlzoo
