// Global affinity propagation on the GPU (APro spec §3.2, §9.4: "one thread per sample running the same
// sequential union on pre-sorted edges"). The edges are sorted by cost on the device beforehand
// (torch.sort, stable). Kernel 1 runs the union-find of one sample per thread and writes its merge log;
// kernel 2 replays the log with float64 lazy accumulators, one thread per (sample, channel), the channels
// of a sample interleaved in memory so that neighbouring threads access neighbouring addresses. Both bodies
// are the ones the CPU tests run (gp_bodies.h). The work per thread is sequential by nature (O(N log N)
// dependent steps); the fully parallel Kruskal-reconstruction-tree variant of §9.4 is not implemented.
#include <cuda_runtime.h>

#include "common.h"
#include "cuda_launch.h"
#include "gp_bodies.h"

namespace vlzoo {
namespace {

constexpr int kThreads = 64;

__global__ void gp_merge_log_kernel(const int64_t* edges, int64_t B, int64_t E, int64_t N, int32_t* parent,
                                    int32_t* size, int32_t* log_x, int32_t* log_y, int64_t* status) {
  const int64_t b = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (b >= B) return;
  status[b] = gp_merge_log(edges + b * E * 2, E, N, parent + b * N, size + b * N, log_x + b * E, log_y + b * E);
}

__global__ void gp_replay_kernel(const int32_t* log_x, const int32_t* log_y, const double* scaled_cost,
                                 const int64_t* status, int64_t B, int64_t E, int64_t N, int64_t K1, double* rows) {
  const int64_t task = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (task >= B * K1) return;
  const int64_t b = task / K1;
  const int64_t k = task % K1;
  if (status[b] >= 0) return;  // not a spanning tree: the host raises
  gp_replay<1>(log_x + b * E, log_y + b * E, scaled_cost + b * E, E, rows + b * N * 2 * K1 + k, 2 * K1, K1, 1);
}

int64_t blocks_for(int64_t n) { return (n + kThreads - 1) / kThreads; }

}  // namespace

cudaError_t launch_gp_presorted(const int64_t* edges, const double* scaled_cost, int64_t B, int64_t E, int64_t N,
                                int64_t K1, int32_t* parent, int32_t* size, int32_t* log_x, int32_t* log_y,
                                int64_t* status, double* rows, cudaStream_t stream) {
  if (B == 0) return cudaSuccess;
  gp_merge_log_kernel<<<blocks_for(B), kThreads, 0, stream>>>(edges, B, E, N, parent, size, log_x, log_y, status);
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) return err;
  gp_replay_kernel<<<blocks_for(B * K1), kThreads, 0, stream>>>(log_x, log_y, scaled_cost, status, B, E, N, K1, rows);
  return cudaGetLastError();
}

}  // namespace vlzoo
