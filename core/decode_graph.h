// Greedy decoding with one CUDA graph per generation: the model's `decode_at` step (position in a
// device tensor, shapes independent of it; docs/model-format.md) plus the argmax and the
// token/position update are captured once and replayed for every new token. A decode step of a
// small model is a few hundred tiny kernels, and launching them one by one through the TorchScript
// interpreter costs far more host time than the GPU spends on them; a replay is one launch.
//
// The host reads tokens through pinned memory a few steps behind the device, so the GPU never
// waits for the stop check; steps enqueued past a stop token are discarded (they only write K/V
// positions after the answer, inside the cache).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "core/model_torch.h"

namespace s3 {

// True when `model` runs on CUDA and its model.ts has decode_at (exports of this version).
bool graph_decode_available(const Model& model);

// Decodes greedily after `first`, the token at position `pos` (already generated, e.g. by the
// prefill), for at most `max_tokens` more tokens, stopping after the first id for which `stop`
// is true. `cache` holds positions 0..pos-1 and must have room for pos + max_tokens positions.
// Returns the new ids (the stop id included). Requires graph_decode_available(model).
std::vector<int32_t> decode_greedy_graph(const Model& model, KvCache& cache, int32_t first, int64_t pos,
                                         int max_tokens, const std::function<bool(int32_t)>& stop);

}  // namespace s3
