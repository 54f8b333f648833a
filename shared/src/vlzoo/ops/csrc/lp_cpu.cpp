// Local affinity propagation on the CPU (APro spec §2.3). Shapes: signal (B, K, H, W), image (B, C, H, W),
// mask (B, 1 or K, H, W). The normalised k x k weights are computed once per pixel (parallel over B x N),
// then every (sample, channel) plane is iterated on its own pair of zero-padded float64 buffers (parallel
// over B x K). The per-pixel bodies are the ones the CUDA kernels run (lp_bodies.h).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#include "cpu_ops.h"
#include "lp_bodies.h"

namespace vlzoo {
namespace {

// One step on one padded plane: next = mask * (W-weighted window sums of cur); weights (N, k^2).
template <int kSize>
void step_plane(const double* weights, const double* cur, double* next, const double* mask, int64_t H, int64_t W,
                int ksize) {
  const int64_t r = ksize / 2;
  const int64_t Wp = W + 2 * r;
  const int64_t k2 = static_cast<int64_t>(ksize) * ksize;
  for (int64_t y = 0; y < H; ++y) {
    for (int64_t x = 0; x < W; ++x) {
      const int64_t i = y * W + x;
      double v = lp_pixel_step<kSize>(weights + i * k2, 1, cur, Wp, y, x, ksize);
      if (mask) v *= mask[i];
      next[(y + r) * Wp + x + r] = v;
    }
  }
}

}  // namespace

at::Tensor local_propagate_cpu(const at::Tensor& signal, const at::Tensor& image,
                               const std::optional<at::Tensor>& mask, int64_t kernel_size, double zeta,
                               int64_t iterations) {
  TORCH_CHECK_VALUE(signal.dim() == 4 && image.dim() == 4, "local_propagate: signal and image must be 4-D, got ",
              signal.sizes(), " and ", image.sizes());
  TORCH_CHECK_VALUE(signal.device().is_cpu() && image.device().is_cpu(), "local_propagate: tensors must be on the CPU");
  TORCH_CHECK_VALUE(kernel_size >= 1 && kernel_size % 2 == 1, "local_propagate: kernel_size must be odd, got ", kernel_size);
  TORCH_CHECK_VALUE(zeta > 0.0 && std::isfinite(zeta), "local_propagate: zeta must be positive and finite, got ", zeta);
  TORCH_CHECK_VALUE(iterations >= 0, "local_propagate: iterations must be >= 0, got ", iterations);
  const int64_t B = signal.size(0), K = signal.size(1), H = signal.size(2), W = signal.size(3);
  const int64_t C = image.size(1);
  TORCH_CHECK_VALUE(image.size(0) == B && image.size(2) == H && image.size(3) == W, "local_propagate: image ",
              image.sizes(), " must share B, H, W with signal ", signal.sizes());
  const at::Tensor p = signal.to(at::kDouble).contiguous();
  const at::Tensor img = image.to(at::kDouble).contiguous();
  at::Tensor m;
  int64_t mask_channels = 0;
  if (mask.has_value() && mask->defined()) {
    TORCH_CHECK_VALUE(mask->dim() == 4 && mask->size(0) == B && (mask->size(1) == 1 || mask->size(1) == K) &&
                    mask->size(2) == H && mask->size(3) == W,
                "local_propagate: mask must be (B, 1 or K, H, W), got ", mask->sizes());
    m = mask->to(at::kDouble).contiguous();
    mask_channels = m.size(1);
  }
  const int64_t N = H * W;
  const int ksize = static_cast<int>(kernel_size);
  const int64_t k2 = kernel_size * kernel_size;
  const int64_t r = kernel_size / 2;
  const int64_t Wp = W + 2 * r;
  const int64_t Hp = H + 2 * r;
  const double zeta2 = zeta * zeta;

  at::Tensor weights = at::empty({B, N, k2}, p.options());  // (pixel, offset): contiguous per pixel
  const double* ip = img.const_data_ptr<double>();
  double* wp = weights.mutable_data_ptr<double>();
  at::parallel_for(0, B * N, 1024, [&](int64_t begin, int64_t end) {
    for (int64_t idx = begin; idx < end; ++idx) {
      const int64_t b = idx / N;
      const int64_t i = idx % N;
      lp_pixel_weights(ip + b * C * N, C, H, W, i / W, i % W, ksize, zeta2, wp + idx * k2, 1);
    }
  });

  at::Tensor out = at::empty({B, K, H, W}, p.options());
  const double* pp = p.const_data_ptr<double>();
  const double* mp = m.defined() ? m.const_data_ptr<double>() : nullptr;
  double* op = out.mutable_data_ptr<double>();
  at::parallel_for(0, B * K, 1, [&](int64_t begin, int64_t end) {
    std::vector<double> cur(Hp * Wp), next(Hp * Wp);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t b = task / K;
      const int64_t k = task % K;
      const double* pk = pp + task * N;
      const double* mk = mp ? mp + (b * mask_channels + (mask_channels == 1 ? 0 : k)) * N : nullptr;
      const double* wb = wp + b * N * k2;
      std::fill(cur.begin(), cur.end(), 0.0);
      std::fill(next.begin(), next.end(), 0.0);
      for (int64_t y = 0; y < H; ++y) {
        for (int64_t x = 0; x < W; ++x) {
          const int64_t i = y * W + x;
          cur[(y + r) * Wp + x + r] = mk ? pk[i] * mk[i] : pk[i];
        }
      }
      for (int64_t it = 0; it < iterations; ++it) {
        if (ksize == 3) {
          step_plane<3>(wb, cur.data(), next.data(), mk, H, W, ksize);
        } else if (ksize == 5) {
          step_plane<5>(wb, cur.data(), next.data(), mk, H, W, ksize);
        } else {
          step_plane<0>(wb, cur.data(), next.data(), mk, H, W, ksize);
        }
        std::swap(cur, next);
      }
      double* ok = op + task * N;
      for (int64_t y = 0; y < H; ++y) {
        for (int64_t x = 0; x < W; ++x) ok[y * W + x] = cur[(y + r) * Wp + x + r];
      }
    }
  });
  return out.to(signal.scalar_type());
}

}  // namespace vlzoo
