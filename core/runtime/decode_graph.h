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

#include "core/runtime/aoti_decode.h"
#include "core/runtime/model_torch.h"

namespace s3 {

// True when `model` runs on CUDA and its model.ts has decode_at (exports of this version).
bool graph_decode_available(const Model& model);

// Batched greedy decoding: row b continues after first[b], its token at position pos[b], for at
// most `max_tokens` more tokens, and stops after the first id for which `stop` is true. Rows run
// in lockstep (a finished row keeps computing until all are done; its extra tokens are dropped).
// `cache` holds each row's positions 0..pos[b]-1 and must have room for pos[b] + max_tokens
// positions. Returns the new ids per row (the stop id included). Requires
// graph_decode_available(model). With `aoti`, the step is its compiled decode_at (aoti_decode.h).
std::vector<std::vector<int32_t>> decode_greedy_graph(const Model& model, KvCache& cache,
                                                      const std::vector<int32_t>& first,
                                                      const std::vector<int64_t>& pos,
                                                      int max_tokens,
                                                      const std::function<bool(int32_t)>& stop,
                                                      const AotiDecode* aoti = nullptr);

}  // namespace s3
