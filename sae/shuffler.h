// A mixing buffer between the model's tap and the trainer. Keys of consecutive tokens are strongly
// correlated; training on them in order biases each step. The shuffler keeps up to `capacity`
// vectors on the device and hands out batches drawn uniformly without replacement from what it
// holds, so a batch mixes vectors from many chunks. Device-generic, no host syncs.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>

namespace s3::sae {

class VectorShuffler {
 public:
  // capacity >= 1 vectors of width d_in, stored in float32 on `device` ("cpu", "cuda", ...).
  VectorShuffler(int64_t d_in, int64_t capacity, uint64_t seed, const std::string& device);

  // Appends rows [n, d_in]. Rows beyond the free space are not taken: the return value says how
  // many were, so the caller draws batches and adds the rest.
  int64_t add(const at::Tensor& rows);
  // Vectors held.
  int64_t size() const { return size_; }
  int64_t capacity() const { return capacity_; }
  bool full() const { return size_ == capacity_; }
  // Removes and returns min(batch, size()) random vectors [b, d_in] (float32, on the device).
  at::Tensor take(int64_t batch);

 private:
  int64_t d_in_;
  int64_t capacity_;
  int64_t size_ = 0;
  at::Tensor buf_;  // [capacity, d_in]
  uint64_t rng_;    // splitmix64 state for the index draws (host side)
};

}  // namespace s3::sae
