// Stable LSD radix sort of (64-bit key, 32-bit value) pairs, for the CPU kernels.
//
// Keys are the IEEE-754 bit patterns of non-negative doubles, whose unsigned order equals their numeric
// order. Starting from values in edge-index order, the stable sort yields the (cost, edge index) order that
// makes the MST deterministic under ties. Passes whose digit is the same for every key are skipped.
#pragma once

#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

namespace vlzoo {

inline uint64_t double_key(double x) {
  uint64_t k;
  std::memcpy(&k, &x, sizeof(k));
  return k;
}

inline double key_double(uint64_t k) {
  double x;
  std::memcpy(&x, &k, sizeof(x));
  return x;
}

// Sorts keys/vals (n items) by key, stably. tmp_keys/tmp_vals are scratch buffers of n items; the sorted
// result ends up in keys/vals (the pointers are swapped when it lands in the scratch buffers).
template <int kBits = 11>
void radix_sort_pairs(uint64_t*& keys, uint32_t*& vals, uint64_t*& tmp_keys, uint32_t*& tmp_vals, int64_t n,
                      std::vector<uint32_t>& hist) {
  constexpr int kBuckets = 1 << kBits;
  constexpr int kPasses = (64 + kBits - 1) / kBits;
  constexpr uint64_t kMask = kBuckets - 1;
  if (n <= 1) return;
  hist.assign(static_cast<size_t>(kPasses) * kBuckets, 0);
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t k = keys[i];
    for (int p = 0; p < kPasses; ++p) hist[p * kBuckets + ((k >> (p * kBits)) & kMask)] += 1;
  }
  for (int p = 0; p < kPasses; ++p) {
    uint32_t* h = hist.data() + p * kBuckets;
    const int shift = p * kBits;
    if (h[(keys[0] >> shift) & kMask] == static_cast<uint32_t>(n)) continue;  // one digit value: no-op
    uint32_t running = 0;
    for (int d = 0; d < kBuckets; ++d) {
      const uint32_t c = h[d];
      h[d] = running;
      running += c;
    }
    for (int64_t i = 0; i < n; ++i) {
      const uint64_t k = keys[i];
      const uint32_t pos = h[(k >> shift) & kMask]++;
      tmp_keys[pos] = k;
      tmp_vals[pos] = vals[i];
    }
    std::swap(keys, tmp_keys);
    std::swap(vals, tmp_vals);
  }
}

}  // namespace vlzoo
