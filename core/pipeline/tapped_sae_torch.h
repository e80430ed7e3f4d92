// The SAE of the tapped layers, loaded for one model: checked against it (d_in, fingerprint,
// layers), one encoder per tapped layer on the model's device, and whether each chunk starts with
// BOS for this model. The scan (Scanner) and the question side (QuestionEncoder) share one.
// Internal to core/pipeline's .cpp files (LibTorch types); the public headers forward-declare it.
#pragma once

#include <filesystem>
#include <memory>
#include <vector>

#include "core/pipeline/scan.h"
#include "core/runtime/model.h"
#include "sae/encoder.h"
#include "sae/weights.h"

namespace s3 {

struct TappedSae {
  const Model& model;
  sae::Sae sae;
  std::vector<int> layers;             // sorted, distinct
  std::vector<sae::Encoder> encoders;  // one per entry of `layers`, in that order
  bool chunk_bos = false;              // BOS before each chunk (and the question), resolved
  bool rope = false;                   // post-RoPE keys (ablation)
};

// Loads the SAE in `sae_dir` for `model` with the layers, encoder dtype, bitmap path, BOS and
// RoPE settings of `options` (validated). Throws UsageError / Error naming what does not match.
std::shared_ptr<const TappedSae> load_tapped_sae(const Model& model,
                                                 const std::filesystem::path& sae_dir,
                                                 const ScanOptions& options);

}  // namespace s3
