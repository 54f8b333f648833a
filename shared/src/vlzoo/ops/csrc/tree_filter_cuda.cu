// Learnable-tree-filter on the GPU (LTF / TEL baseline, APro spec §3.3). Kernel 1: one thread per sample
// builds the tree adjacency and its BFS order from pixel 0; kernel 2: one thread per (sample, channel) runs
// the leaf-to-root and root-to-leaf passes over that order (channels interleaved in memory for coalescing).
// TreeFilter-Torch synchronises a block per BFS level instead; this simpler form trades parallelism
// within a sample for no synchronisation. The bodies are the ones the CPU tests run (tree_filter_bodies.h).
#include <cuda_runtime.h>

#include "common.h"
#include "cuda_launch.h"
#include "tree_filter_bodies.h"

namespace vlzoo {
namespace {

constexpr int kThreads = 64;

__global__ void tf_bfs_kernel(const int64_t* edges, int64_t B, int64_t E, int64_t N, int32_t* offsets,
                              int32_t* adjacency, int32_t* adjacency_edge, int32_t* order, int32_t* parent,
                              int32_t* parent_edge, int64_t* reached) {
  const int64_t b = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (b >= B) return;
  reached[b] = tf_bfs(edges + b * E * 2, E, N, offsets + b * (N + 1), adjacency + b * 2 * E, adjacency_edge + b * 2 * E,
                      order + b * N, parent + b * N, parent_edge + b * N);
}

__global__ void tf_passes_kernel(const int32_t* order, const int32_t* parent, const int32_t* parent_edge,
                                 const double* scaled_cost, const int64_t* reached, int64_t B, int64_t E, int64_t N,
                                 int64_t K1, double* rows) {
  const int64_t task = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (task >= B * K1) return;
  const int64_t b = task / K1;
  const int64_t k = task % K1;
  if (reached[b] != N) return;  // not a spanning tree: the host raises
  tf_passes<1>(order + b * N, parent + b * N, parent_edge + b * N, scaled_cost + b * E, N, rows + b * N * K1 + k, K1, 1);
}

int64_t blocks_for(int64_t n) { return (n + kThreads - 1) / kThreads; }

}  // namespace

cudaError_t launch_tree_filter(const int64_t* edges, const double* scaled_cost, int64_t B, int64_t E, int64_t N,
                               int64_t K1, int32_t* offsets, int32_t* adjacency, int32_t* adjacency_edge,
                               int32_t* order, int32_t* parent, int32_t* parent_edge, int64_t* reached, double* rows,
                               cudaStream_t stream) {
  if (B == 0) return cudaSuccess;
  tf_bfs_kernel<<<blocks_for(B), kThreads, 0, stream>>>(edges, B, E, N, offsets, adjacency, adjacency_edge, order,
                                                        parent, parent_edge, reached);
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) return err;
  tf_passes_kernel<<<blocks_for(B * K1), kThreads, 0, stream>>>(order, parent, parent_edge, scaled_cost, reached, B, E,
                                                                N, K1, rows);
  return cudaGetLastError();
}

}  // namespace vlzoo
