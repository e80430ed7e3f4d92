// Top-K SAE trainer (OpenAI, "Scaling and evaluating sparse autoencoders", 2024): pre-bias,
// unit-norm decoder rows with the parallel gradient component removed, b_dec from the data,
// W_enc initialised as W_dec^T, Adam, AuxK loss against dead latents. Formulas and defaults:
// docs/sae.md. The trainer takes batches of vectors [B, d_in] and does not care where they come
// from (the CLI streams keys from the model's tap through a VectorShuffler).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <memory>

#include "sae/options.h"
#include "sae/weights.h"

namespace s3::sae {

struct StepStats {
  int64_t step = 0;     // steps done, this one included
  int64_t vectors = 0;  // vectors trained on so far
  double lr = 0;        // learning rate of this step
  // The following are copied from the device every options.stats_every steps; `fresh` says
  // whether this step's were (otherwise they are the last copied values).
  bool fresh = false;
  double loss = 0;           // fvu + aux_weight * aux_loss
  double fvu = 0;            // this batch's fraction of variance unexplained
  double aux_loss = 0;       // AuxK loss (residual FVU left by the dead latents; 0 if none dead)
  double dead_fraction = 0;  // latents not fired in the last dead_after vectors
  double vectors_per_s = 0;  // over the steps since the previous copy
};

// Loss and gradients of one batch, the trainer's math exposed for tests.
struct LossAndGrad {
  at::Tensor loss, fvu, aux_loss;  // scalars (device)
  SaeWeights grad;                 // dL/d(W_enc, b_enc, W_dec, b_dec)
  at::Tensor ids;                  // int64 [B, k] top-k of the batch (-1 inactive)
  at::Tensor fired;                // bool [F]: latents active in this batch
};
// x: [B, d_in] float32; params float32 on x's device; dead: bool [F]. The gradient is exact for
// the piecewise-smooth loss (the top-k selections are held fixed), e = x - x_hat is a constant
// in the AuxK term, and the decoder gradient is NOT yet projected.
LossAndGrad sae_loss_and_grad(const SaeWeights& params, const at::Tensor& x, const at::Tensor& dead,
                              int64_t k, int64_t k_aux, double aux_weight);

class Trainer {
 public:
  // Throws s3::UsageError on bad options, s3::Error on an unavailable device.
  Trainer(const TrainerOptions& options, int64_t d_in);
  // Resumes from save_checkpoint()'s file. `options` may change the run (steps, lr, ...) but not
  // its shape: latents and d_in must match the checkpoint (s3::Error otherwise).
  static Trainer resume(const std::filesystem::path& checkpoint, const TrainerOptions& options);
  Trainer(Trainer&&) noexcept;
  Trainer& operator=(Trainer&&) noexcept;
  ~Trainer();

  // One optimizer step on `batch` [B, d_in] (any floating dtype and device; B >= 1). The first
  // batch also initialises b_dec and the input scale. Throws s3::Error on an empty batch, a wrong
  // width, or a non-finite loss (divergence).
  StepStats step(const at::Tensor& batch);

  int64_t steps_done() const;
  int64_t vectors_seen() const;
  bool done() const { return steps_done() >= options().steps; }
  const TrainerOptions& options() const;
  int64_t d_in() const;

  // Weights + Adam state + counters, written atomically to one safetensors file.
  void save_checkpoint(const std::filesystem::path& file) const;

  // The trained SAE as float32 CPU tensors that work on raw (unscaled) vectors. Throws
  // s3::Error when no step was taken ("no training data").
  SaeWeights weights() const;
  // The most recent statistics copied from the device (forces a copy now).
  StepStats final_stats();

 private:
  struct State;
  explicit Trainer(std::unique_ptr<State> s);
  std::unique_ptr<State> s_;
};

}  // namespace s3::sae
