// Greedy generation over the model's preallocated KV cache: one prefill of the prompt, then one
// decode step per new token (on CUDA, replays of one CUDA graph: core/runtime/decode_graph.h);
// stops on any of the model's stop ids (plus extra ones).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/base/enum_names.h"
#include "core/runtime/model.h"

namespace s3 {

// What runs a decode step: model.ts's TorchScript `decode_at` (the reference), or the same step
// compiled ahead of time by AOTInductor (core/runtime/aoti_decode.h, scripts/export_aoti.py).
enum class DecodeBackend { kTorchScript, kAoti };
inline constexpr EnumNames<DecodeBackend, 2> kDecodeBackendNames{
    {{"torchscript", DecodeBackend::kTorchScript}, {"aoti", DecodeBackend::kAoti}}};

struct GenerationOptions {
  int max_new_tokens = 256;
  std::vector<int32_t> extra_stop_ids;  // e.g. the newline token for LongBench's samsum
  bool ignore_stop = false;             // always generate max_new_tokens (benchmarks)
  // The first new token is never a stop id (its logits are masked): LongBench's pred.py gives
  // samsum min_length = prompt length + 1, which transformers applies by masking every eos id.
  bool first_token_not_stop = false;
  // On CUDA, decode with one CUDA graph (core/runtime/decode_graph.h) when the export has
  // decode_at.
  bool cuda_graph = true;
  DecodeBackend decode_backend = DecodeBackend::kTorchScript;
  void validate() const;
};

struct GenerationTimings {
  double prefill_s = 0;  // prompt prefill up to the first new token's logits
  double decode_s = 0;   // all later decode steps
  int prompt_tokens = 0;
  int new_tokens = 0;
  double prefill_tokens_per_s() const { return prefill_s > 0 ? prompt_tokens / prefill_s : 0; }
  // The first new token comes from the prefill; each later one costs a decode step.
  double decode_tokens_per_s() const {
    return decode_s > 0 && new_tokens > 1 ? (new_tokens - 1) / decode_s : 0;
  }
};

struct GenerationResult {
  std::vector<int32_t> tokens;  // generated ids, including the stop id when one ended generation
  std::string text;             // decoded without special tokens
  // "stop_token" | "max_new_tokens" | "window" (max_new_tokens was capped so that the prompt and
  // the new tokens fit the model's window, and the cap stopped it)
  std::string stop_reason;
  GenerationTimings timings;
};

// New tokens stop at the model's window (max_position_embeddings): max_new_tokens is capped to the
// room the prompt leaves. A prompt longer than the window throws s3::Error.
GenerationResult generate(const Model& model, const std::vector<int32_t>& prompt,
                          const GenerationOptions& options);

// Several prompts at once (LongBench): with CUDA graph decoding, each prompt is prefilled alone
// into its own row of one KV cache and all rows then decode together, so one step serves every
// prompt; each result's decode_s is that shared decode time. Otherwise the prompts run one after
// another. The tokens are those generate() gives for each prompt alone, up to the numerics of the
// batched kernels. Results are in the order of `prompts`.
std::vector<GenerationResult> generate_batch(const Model& model,
                                             const std::vector<std::vector<int32_t>>& prompts,
                                             const GenerationOptions& options);

}  // namespace s3
