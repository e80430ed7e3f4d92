// Runtime self-checks exposed as `s3attn logits`: every position's logits through the uncached
// forward and through the cached path (prefill of the first token, then one decode step per token).
// Used to compare an export with transformers (tests/cli/test_parity.py).
#pragma once

#include <cstdint>
#include <vector>

#include "core/runtime/model.h"

namespace s3 {

struct LogitsDump {
  std::vector<std::vector<float>> forward;  // [T][V]
  std::vector<std::vector<float>> cached;   // [T][V]
};

LogitsDump compute_logits(const Model& model, const std::vector<int32_t>& ids);

}  // namespace s3
