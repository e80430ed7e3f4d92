// The SAE encoder on the scan's hot path: batched Top-K encoding on any device, and the
// feature-major bitmap the index scan consumes. No host synchronisation happens in encode() or
// feature_bitmap(); results stay on the encoder's device until the caller copies them.
//
//   z = TopK_k(ReLU(W_enc (x - b_dec) + b_enc))       (tie rule: sae/topk.h)
//
// Shapes: N vectors of width D = d_in; F = d_latent; T tokens; H vectors per token (KV heads
// under per-head mode, 1 under concat).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

#include "sae/options.h"
#include "sae/topk.h"
#include "sae/weights.h"

namespace s3::sae {

// SAE input rows from a tap's keys k [T, Hkv, D]: per-head -> [T * Hkv, D] (row t * Hkv + h),
// concat -> [T, Hkv * D].
at::Tensor sae_rows_from_keys(const at::Tensor& keys, HeadMode mode);
// SAE input rows from a tap's queries q [T, Hq, D] with Hq = G * Hkv (query head i reads KV head
// i / G). per-head -> [T * Hq, D] (row t * Hq + i); concat -> [T * G, Hkv * D], where row t * G + g
// concatenates query heads {h * G + g : h < Hkv}, i.e. one query head of every KV group, in KV
// head order, to match the concatenated keys.
at::Tensor sae_rows_from_queries(const at::Tensor& queries, int64_t n_kv_heads, HeadMode mode);

// Not thread-safe: calls update a device-side counter (unresolved_rows()). One encoder per layer
// and thread; copies are cheap (tensors are shared) but share that counter.
class Encoder {
 public:
  // Weights are copied to options.device in the compute dtype (options.dtype). k: options.k if
  // non-zero, else `trained_k`. Throws s3::UsageError on bad options (k > d_latent...) and
  // s3::Error when the device is unavailable.
  Encoder(const SaeWeights& weights, int64_t trained_k, const EncoderOptions& options);

  struct Output {
    at::Tensor ids;     // int32 [N, k]: latent ids, -1 for inactive slots
    at::Tensor values;  // float32 [N, k]: activations (> 0), 0 for inactive slots
  };

  // x: [N, D], any floating dtype, any device (copied to the encoder's). Rows are ordered by
  // (value desc, id asc), inactive slots last. The query side of retrieval uses this.
  Output encode(const at::Tensor& x) const;

  // The index fast path. x: [T * H, D] (row t * H + h) or [T, H, D]. Returns int64
  // [F, ceil(T / 64)] on the encoder's device, each element the bits of one uint64 word:
  // bit (t % 64) of word (t / 64) in row f is set iff latent f is active for token t in any of
  // its H vectors. Bits of the padding tokens T..64*words-1 are zero. Only F * words * 8 bytes
  // (8 MiB at F 16,384 and T 4,096) need to leave the device.
  at::Tensor feature_bitmap(const at::Tensor& x, int64_t heads) const;

  // x_hat = W_dec^T z + b_dec in float32, [N, D] on the encoder's device.
  at::Tensor decode(const Output& code) const;

  // ReLU-free pre-activations W_enc (x - b_dec) + b_enc in the compute dtype, [N, F]; what
  // encode() selects from (for tests and diagnostics).
  at::Tensor preactivations(const at::Tensor& x) const;

  // Rows encoded so far whose top-k was left approximate (sae/topk.h step 3). Synchronises with
  // the device: read it once per document, not per chunk.
  int64_t unresolved_rows() const;
  // Rows the fused bitmap kernel settled on its full-row path rather than its candidate list
  // (sae/topk_bitmap_kernel.h); 0 off the fused path. Synchronises like unresolved_rows().
  int64_t fused_full_rows() const;

  int64_t d_in() const { return d_in_; }
  int64_t d_latent() const { return d_latent_; }
  int64_t k() const { return k_; }
  at::Device device() const { return w_.W_enc.device(); }
  at::ScalarType dtype() const { return w_.W_enc.scalar_type(); }
  // Whether feature_bitmap runs the fused CUDA kernel (sae/topk_bitmap_kernel.h).
  bool uses_fused_bitmap() const { return fused_bitmap_; }

 private:
  at::Tensor prepare(const at::Tensor& x, const char* what) const;
  // W_enc (xr - b_dec) + b_enc of rows already on the device in the compute dtype (prepare()).
  at::Tensor preactivations_of(const at::Tensor& xr) const;
  TopKResult select(const at::Tensor& x_rows, bool sorted) const;
  at::Tensor feature_bitmap_fused(const at::Tensor& x, int64_t heads, int64_t tokens,
                                  int64_t words) const;

  SaeWeights w_;          // compute dtype, on device
  at::Tensor W_dec_f32_;  // for decode()
  at::Tensor b_dec_f32_;
  int64_t d_in_ = 0;
  int64_t d_latent_ = 0;
  int64_t k_ = 0;
  TopKOptions topk_;
  int64_t max_rows_ = 0;
  bool fused_bitmap_ = false;  // feature_bitmap uses the CUDA kernel (EncoderOptions::bitmap)
  bool fused_candidates_ = true;
  mutable at::Tensor unresolved_;  // int64 scalar on device
  mutable at::Tensor full_rows_;   // int64 scalar on device (fused_full_rows())
};

}  // namespace s3::sae
