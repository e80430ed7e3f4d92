// Parameter structs of the SAE stages (plain data, no LibTorch): head mode, encoder options,
// trainer options. Each has documented defaults and a validate() that throws s3::UsageError with
// the CLI flag names, so `s3attn sae ...` can pass user input straight through. sae.json records
// the TrainerOptions a run used (to_json / from_json below).
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "core/base/dtype.h"
#include "core/base/enum_names.h"

namespace s3::sae {

// How a token's attention heads become SAE input vectors (docs/method.md §1, "Heads (GQA)").
enum class HeadMode {
  // (a) one SAE per layer shared by all KV heads; each head is one vector of head_dim; a token's
  // feature set is the union over its heads. Queries are encoded head by head.
  kPerHead,
  // (b) the KV heads of a token concatenated into one vector of n_kv_heads * head_dim.
  kConcat,
};

inline constexpr EnumNames<HeadMode, 2> kHeadModeNames{
    {{"per-head", HeadMode::kPerHead}, {"concat", HeadMode::kConcat}}};
std::string_view to_string(HeadMode mode);  // "per-head" | "concat"

// How feature_bitmap runs on CUDA (--sae-bitmap). Both paths give identical bitmaps.
enum class BitmapMode {
  kAuto,   // the fused Top-K bitmap kernel when this build has it and the SAE fits it, else ATen
  kFused,  // the kernel, or an error saying why not
  kAten,   // ATen top-k and scatter: the reference the kernel is tested against
};
inline constexpr EnumNames<BitmapMode, 3> kBitmapModeNames{
    {{"auto", BitmapMode::kAuto}, {"fused", BitmapMode::kFused}, {"aten", BitmapMode::kAten}}};
// Throws s3::UsageError naming the accepted values.
HeadMode parse_head_mode(std::string_view text);
// The SAE input width a model gives under `mode`: head_dim, or n_kv_heads * head_dim.
int64_t expected_d_in(HeadMode mode, int64_t n_kv_heads, int64_t head_dim);

// Checks "cpu", "cuda" or "cuda:N"; throws s3::UsageError naming `flag`. Availability is checked
// where the device is first used.
void validate_device(const std::string& device, std::string_view flag = "--device");

// The encoder's dtype from its name: "auto" (none) or one of s3::kDTypeNames; throws
// s3::UsageError naming the choices.
std::optional<s3::DType> parse_encoder_dtype(std::string_view name);

// How the encoder runs. The defaults suit the index scan on a GPU.
struct EncoderOptions {
  // "cpu", "cuda", "cuda:N".
  std::string device = "cpu";
  // Compute dtype of the encoder matmul and top-k; none: auto (bfloat16 on CUDA, float32 on CPU).
  // Top-k runs on the values in this dtype, so bf16 ties are broken by the tie rule below, not by
  // hidden float32 digits.
  std::optional<s3::DType> dtype;
  // Active latents per vector; 0 = the k the SAE was trained with. May differ from it (an
  // ablation), but must be in [1, d_latent].
  int64_t k = 0;
  // Exact candidate prefilter for the top-k (sae/topk.h): latents are split into d_latent /
  // group_size strided groups, the k + extra_groups groups with the largest maxima are kept and
  // the top-k is taken among their members. 1 disables the prefilter. Must divide d_latent
  // (otherwise the prefilter is disabled).
  int64_t group_size = 8;
  int64_t extra_groups = 32;
  // Rows per call whose top-k can not be decided from the candidates (a tie group at the k-th
  // value wider than the margin) are recomputed densely; more than this many per pass are left
  // approximate and counted (Encoder::unresolved_rows()).
  int64_t exact_rows = 256;
  // Rows encoded per pass: bounds device memory to about max_rows * d_latent * 6 bytes (the
  // fused bitmap kernel: max_rows * d_latent * 2 bytes in bf16). 8192 rows at 16,384 latents is
  // 256 MiB of bf16 pre-activations, one 1024-token slice of a chunk with 8 KV heads.
  int64_t max_rows = 8192;
  BitmapMode bitmap = BitmapMode::kAuto;
  // The fused kernel's candidate list (sae/topk_bitmap_kernel.h); false sends every row down its
  // full-row radix select (the same bitmaps; for benchmarks).
  bool fused_candidates = true;

  void validate() const;
};

// The most latents an SAE may have (trained here or read from sae.json): 64x the paper's 16,384.
// W_enc, W_dec and their Adam moments alone take 24 GiB in float32 at d_in 1,024.
inline constexpr int64_t kMaxLatents = int64_t{1} << 20;
// The widest SAE input (head_dim, or n_kv_heads * head_dim in concat mode).
inline constexpr int64_t kMaxSaeInput = int64_t{1} << 16;
// The most vectors per training step.
inline constexpr int64_t kMaxBatch = int64_t{1} << 20;

// Top-K SAE training (OpenAI "Scaling and evaluating sparse autoencoders", 2024). Defaults and
// the reasons for them: docs/sae.md.
struct TrainerOptions {
  int64_t latents = 16384;  // d_latent (the paper: 128 x head_dim 128)
  int64_t k = 32;           // active latents per vector (keys' sparsity elbow is near 8-32)
  int64_t steps = 30000;    // optimizer steps
  int64_t batch = 4096;     // vectors per step
  double lr = 1e-3;         // Adam learning rate (the paper's)
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  int64_t warmup_steps = -1;       // linear lr warm-up; -1 = auto: min(1000, steps / 20)
  double lr_decay_fraction = 0.2;  // linear decay to 0 over this last fraction of the steps
  int64_t k_aux = 0;               // AuxK latents; 0 = auto: the power of two nearest d_in / 2
  double aux_weight = 1.0 / 32.0;  // AuxK loss weight
  // A latent is dead when it has not fired in the last `dead_after` vectors; 0 = auto:
  // min(10,000,000, steps * batch / 10).
  int64_t dead_after = 0;
  // b_dec initialisation from the first batch: "geometric-median" (Weiszfeld) or "mean".
  std::string b_dec_init = "geometric-median";
  // Scale inputs so that the centered first batch has mean squared norm d_in; the scale is folded
  // back into b_enc and b_dec of the exported weights, which then work on raw vectors.
  bool normalize_inputs = true;
  uint64_t seed = 0;
  std::string device = "cpu";
  // Loss / FVU / dead fraction are copied to the host every this many steps (1 = every step).
  int64_t stats_every = 1;

  void validate() const;
  // The value the auto settings resolve to for this input width and run length.
  int64_t resolved_k_aux(int64_t d_in) const;
  int64_t resolved_dead_after() const;
  int64_t resolved_warmup_steps() const;
};

void to_json(nlohmann::json& j, const TrainerOptions& o);
// Missing keys keep their defaults; wrong types throw s3::Error.
void from_json(const nlohmann::json& j, TrainerOptions& o);

}  // namespace s3::sae
