#include "sae/shuffler.h"

#include <ATen/ATen.h>

#include <unordered_set>
#include <vector>

#include "core/base/error.h"
#include "sae/device.h"

namespace s3::sae {
namespace {

uint64_t splitmix64(uint64_t& s) {
  uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Indices to the device without a host sync (pinned staging when the target is a GPU).
at::Tensor to_device(const std::vector<int64_t>& v, const at::Device& device) {
  auto opts = at::TensorOptions().dtype(at::kLong).pinned_memory(device.is_cuda());
  at::Tensor host = at::empty({static_cast<int64_t>(v.size())}, opts);
  std::copy(v.begin(), v.end(), host.data_ptr<int64_t>());
  return host.to(device, /*non_blocking=*/true);
}

}  // namespace

VectorShuffler::VectorShuffler(int64_t d_in, int64_t capacity, uint64_t seed,
                               const std::string& device)
    : d_in_(d_in), capacity_(capacity), rng_(seed) {
  if (d_in < 1 || capacity < 1) throw Error("VectorShuffler: d_in and capacity must be >= 1");
  buf_ = at::empty({capacity, d_in},
                   at::TensorOptions().dtype(at::kFloat).device(resolve_device(device)));
}

int64_t VectorShuffler::add(const at::Tensor& rows) {
  if (rows.dim() != 2 || rows.size(1) != d_in_) {
    throw Error("VectorShuffler: rows must be [n, " + std::to_string(d_in_) + "]");
  }
  const int64_t n = std::min(rows.size(0), capacity_ - size_);
  if (n > 0) {
    buf_.narrow(0, size_, n).copy_(rows.narrow(0, 0, n), /*non_blocking=*/true);
    size_ += n;
  }
  return n;
}

at::Tensor VectorShuffler::take(int64_t batch) {
  const int64_t b = std::min(batch, size_);
  if (b <= 0) return buf_.narrow(0, 0, 0).clone();
  // Floyd's algorithm: b distinct indices in [0, size_).
  std::unordered_set<int64_t> chosen;
  std::vector<int64_t> pick;
  pick.reserve(b);
  for (int64_t j = size_ - b; j < size_; ++j) {
    int64_t t = static_cast<int64_t>(splitmix64(rng_) % static_cast<uint64_t>(j + 1));
    if (!chosen.insert(t).second) {
      t = j;
      chosen.insert(t);
    }
    pick.push_back(t);
  }
  const at::Device dev = buf_.device();
  const at::Tensor out = buf_.index_select(0, to_device(pick, dev));
  // Fill the holes below the new end with the unpicked vectors of the tail.
  const int64_t end = size_ - b;
  std::vector<int64_t> holes, movers;
  for (int64_t t : pick) {
    if (t < end) holes.push_back(t);
  }
  for (int64_t j = end; j < size_; ++j) {
    if (!chosen.count(j)) movers.push_back(j);
  }
  if (!holes.empty()) {
    buf_.index_copy_(0, to_device(holes, dev), buf_.index_select(0, to_device(movers, dev)));
  }
  size_ = end;
  return out;
}

}  // namespace s3::sae
