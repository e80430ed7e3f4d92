#include "core/runtime/decode_graph.h"

#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <algorithm>

#include "core/base/error.h"

namespace s3 {

bool graph_decode_available(const Model& model) {
  return model.device().is_cuda() && model.impl().module.find_method("decode_at").has_value();
}

std::vector<std::vector<int32_t>> decode_greedy_graph(const Model& model, KvCache& cache,
                                                      const std::vector<int32_t>& first,
                                                      const std::vector<int64_t>& pos,
                                                      int max_tokens,
                                                      const std::function<bool(int32_t)>& stop,
                                                      const AotiDecode* aoti) {
  if (!graph_decode_available(model))
    throw Error("decode_greedy_graph: the model has no CUDA decode_at");
  const auto rows = static_cast<int64_t>(first.size());
  if (rows == 0 || static_cast<int64_t>(pos.size()) != rows || cache.k.size(1) != rows)
    throw Error("decode_greedy_graph: first, pos and the cache must have one row per sequence");
  if (*std::max_element(pos.begin(), pos.end()) + max_tokens > cache.max_len())
    throw Error("decode_greedy_graph: the cache is too short");
  std::vector<std::vector<int32_t>> out(static_cast<size_t>(rows));
  if (max_tokens <= 0) return out;
  torch::NoGradGuard no_grad;
  const c10::Device device = model.impl().torch_device;
  torch::jit::Method method = model.impl().module.get_method("decode_at");
  const auto on_device = torch::TensorOptions().dtype(torch::kLong).device(device);
  // Static inputs of the graph: each row's token and its position; a step replaces both in place.
  torch::Tensor token =
      torch::tensor(std::vector<int64_t>(first.begin(), first.end()), torch::kLong)
          .view({rows, 1})
          .to(on_device);
  torch::Tensor position = torch::tensor(pos, torch::kLong).to(on_device);
  auto step = [&] {
    const torch::Tensor logits = aoti ? (*aoti)(token, cache, position)
                                      : method({token, cache.k, cache.v, position}).toTensor();
    token.copy_(logits.argmax(-1).view({rows, 1}));
    position.add_(1);
  };

  // Capture needs a side stream, ordered after the prefill's work on the current one.
  const c10::cuda::CUDAStream current = c10::cuda::getCurrentCUDAStream(device.index());
  const c10::cuda::CUDAStream stream = c10::cuda::getStreamFromPool(false, device.index());
  at::cuda::CUDAEvent prefilled;
  prefilled.record(current);
  prefilled.block(stream);
  c10::cuda::CUDAStreamGuard guard(stream);

  constexpr int kRing = 4;  // steps the device may run ahead of the host's stop check
  const auto pinned = torch::TensorOptions().dtype(torch::kLong).pinned_memory(true);
  std::vector<torch::Tensor> slots;
  for (int i = 0; i < kRing; ++i)
    slots.push_back(torch::empty({rows, 1}, pinned));
  std::vector<at::cuda::CUDAEvent> ready(kRing);
  std::vector<bool> done(static_cast<size_t>(rows), false);
  int64_t open = rows;
  // Takes the tokens of one finished step; false once every row has stopped.
  auto consume = [&](int slot) {
    ready[slot].synchronize();
    const int64_t* ids = slots[slot].data_ptr<int64_t>();
    for (int64_t r = 0; r < rows; ++r) {
      if (done[r]) continue;
      const auto id = static_cast<int32_t>(ids[r]);
      out[r].push_back(id);
      if (stop(id)) {
        done[r] = true;
        --open;
      }
    }
    return open > 0;
  };
  auto enqueue_copy = [&](int slot) {
    slots[slot].copy_(token, /*non_blocking=*/true);
    ready[slot].record(stream);
  };

  // Two eager steps on the side stream (real steps: their tokens are kept) set up cuBLAS and the
  // allocator before capture, as CUDA graph capture requires.
  int steps = 0;
  for (; steps < 2 && steps < max_tokens; ++steps) {
    step();
    enqueue_copy(0);
    if (!consume(0)) {
      stream.synchronize();
      return out;
    }
  }
  const int remaining = max_tokens - steps;
  if (remaining > 0) {
    at::cuda::CUDAGraph graph;
    graph.capture_begin({0, 0}, cudaStreamCaptureModeThreadLocal);
    step();
    graph.capture_end();
    int enqueued = 0, consumed = 0;
    while (consumed < remaining) {
      for (; enqueued < remaining && enqueued - consumed < kRing; ++enqueued) {
        graph.replay();
        enqueue_copy(enqueued % kRing);
      }
      const bool more = consume(consumed % kRing);
      ++consumed;
      if (!more) break;
    }
  }
  stream.synchronize();  // replays past the last stop finish before the cache is reused
  return out;
}

}  // namespace s3
