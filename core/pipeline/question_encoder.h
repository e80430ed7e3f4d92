// The question side of S3 retrieval (docs/method.md §4.1): the question runs once through the
// index's model and the scan's SAEs encode its queries (or, with `keys`, its keys) into features
// per layer slot. `ask` builds one on its own, without a scan pipeline; `longbench` takes the one
// of its Scanner, sharing the loaded SAE. Free of LibTorch.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "core/pipeline/scan.h"
#include "retrieval/query.h"

namespace s3 {

struct TappedSae;

class QuestionEncoder {
 public:
  // Loads the SAE for `model` as the scan of an index with these settings did (layers, RoPE, BOS;
  // the encoder's dtype).
  QuestionEncoder(const Model& model, const std::filesystem::path& sae_dir,
                  const ScanOptions& options);
  // The question side of `scanner`'s index, on the same loaded SAE.
  explicit QuestionEncoder(const Scanner& scanner);

  const std::string& sae_fingerprint() const;

  // The question's features per layer slot: the SAE top-k of its queries (or, with `keys`, its own
  // keys: --query-vectors keys) over its tokens and heads, aggregated by
  // retrieval::aggregate_query (sum or max; a non-finite activation throws s3::Error). The
  // question is one forward pass: more tokens than the model's window (max_position_embeddings)
  // throw s3::UsageError.
  retrieval::QueryFeatures encode(const std::string& question,
                                  retrieval::Aggregation aggregation = retrieval::Aggregation::kSum,
                                  bool keys = false) const;

 private:
  std::shared_ptr<const TappedSae> sae_;
};

}  // namespace s3
