// Reconstruction quality of an SAE on a stream of vectors, through the same Encoder the index uses.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

#include "sae/encoder.h"

namespace s3::sae {

struct EvalStats {
  int64_t vectors = 0;
  // Fraction of variance unexplained: sum ||x - x_hat||^2 / sum ||x - mean(x)||^2, mean over the
  // whole evaluated set (not per batch).
  double fvu = 0;
  double dead_fraction = 0;  // latents that never fired (active in a top-k) on the set
  double mean_l0 = 0;        // mean number of active latents per vector
};

// Accumulates statistics batch by batch (on the encoder's device, in float64); result() syncs.
class Evaluator {
 public:
  explicit Evaluator(const Encoder& encoder);
  // x: [N, d_in]; N may be 0.
  void add(const at::Tensor& x);
  // Throws s3::Error when no vector was added.
  EvalStats result() const;

 private:
  const Encoder& enc_;
  int64_t n_ = 0;
  at::Tensor sum_x_;    // [d_in] float64
  at::Tensor sum_xx_;   // scalar float64: sum of ||x||^2
  at::Tensor sum_err_;  // scalar float64: sum of ||x - x_hat||^2
  at::Tensor l0_;       // scalar int64
  at::Tensor fired_;    // [d_latent] bool
};

// One-shot evaluation of `vectors` [N, d_in] in batches of `batch` rows.
EvalStats evaluate(const Encoder& encoder, const at::Tensor& vectors, int64_t batch = 8192);

}  // namespace s3::sae
