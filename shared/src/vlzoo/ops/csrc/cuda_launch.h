// Host-side launchers of the vlzoo.ops CUDA kernels. The .cu files hold only CUDA code (no torch headers,
// so nvcc compiles them in seconds); register_cuda.cpp validates tensors, allocates workspaces with ATen
// and calls these on the current stream. All pointers are device pointers; every launcher returns the
// launch error (cudaSuccess when the kernels were queued).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace vlzoo {

// Global propagation from pre-sorted tree edges. edges (B, E, 2) int64 ascending cost, scaled_cost (B, E)
// = w / zeta^2, rows (B, N, 2, K1) initialised to [acc = 0 | sum = (1, p)]. Workspaces: parent, size (B, N),
// log_x, log_y (B, E); status (B) receives -1 or the position of an edge closing a cycle (that sample's
// rows are then left untouched). Kernel 1: one thread per sample builds the merge log; kernel 2: one thread
// per (sample, channel) replays it.
cudaError_t launch_gp_presorted(const int64_t* edges, const double* scaled_cost, int64_t B, int64_t E, int64_t N,
                                int64_t K1, int32_t* parent, int32_t* size, int32_t* log_x, int32_t* log_y,
                                int64_t* status, double* rows, cudaStream_t stream);

// Local propagation. p (B, K, H, W), image (B, C, H, W), mask (B, mask_channels, H, W) or null, all float64.
// Workspaces: weights (B, k^2, N), pad_a / pad_b (B, K, H + 2r, W + 2r). Output out (B, K, H, W).
// One thread per pixel for the weights, one per (sample, channel, pixel) for each of the T steps.
cudaError_t launch_local_propagate(const double* p, const double* image, const double* mask, int64_t B, int64_t K,
                                   int64_t C, int64_t H, int64_t W, int64_t mask_channels, int ksize, double zeta2,
                                   int64_t iterations, double* weights, double* pad_a, double* pad_b, double* out,
                                   cudaStream_t stream);

// Tree filter. edges (B, E, 2) int64, scaled_cost (B, E) = c_t, rows (B, N, K1) initialised to (1, p).
// Workspaces: offsets (B, N + 1), adjacency, adjacency_edge (B, 2E), order, parent, parent_edge (B, N);
// reached (B) receives the number of pixels a BFS from pixel 0 reaches (rows untouched unless it is N).
// Kernel 1: one thread per sample (adjacency + BFS); kernel 2: one thread per (sample, channel), two passes.
cudaError_t launch_tree_filter(const int64_t* edges, const double* scaled_cost, int64_t B, int64_t E, int64_t N,
                               int64_t K1, int32_t* offsets, int32_t* adjacency, int32_t* adjacency_edge,
                               int32_t* order, int32_t* parent, int32_t* parent_edge, int64_t* reached, double* rows,
                               cudaStream_t stream);

}  // namespace vlzoo
