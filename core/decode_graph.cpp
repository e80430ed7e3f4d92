#include "core/decode_graph.h"

#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "core/error.h"

namespace s3 {

bool graph_decode_available(const Model& model) {
  return model.device().is_cuda() && model.impl().module.find_method("decode_at").has_value();
}

std::vector<int32_t> decode_greedy_graph(const Model& model, KvCache& cache, int32_t first, int64_t pos,
                                         int max_tokens, const std::function<bool(int32_t)>& stop) {
  if (!graph_decode_available(model)) throw Error("decode_greedy_graph: the model has no CUDA decode_at");
  if (pos + max_tokens > cache.max_len()) throw Error("decode_greedy_graph: the cache is too short");
  std::vector<int32_t> out;
  if (max_tokens <= 0) return out;
  torch::NoGradGuard no_grad;
  const c10::Device device = model.impl().torch_device;
  torch::jit::Method method = model.impl().module.get_method("decode_at");
  const auto options = torch::TensorOptions().dtype(torch::kLong).device(device);
  // Static inputs of the graph: the token at `position`; each step replaces both in place.
  torch::Tensor token = torch::full({1, 1}, static_cast<int64_t>(first), options);
  torch::Tensor position = torch::full({1}, pos, options);
  auto step = [&] {
    const torch::Tensor logits = method({token, cache.k, cache.v, position}).toTensor();
    token.copy_(logits.argmax(-1).view({1, 1}));
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
  for (int i = 0; i < kRing; ++i) slots.push_back(torch::empty({1, 1}, pinned));
  std::vector<at::cuda::CUDAEvent> ready(kRing);
  auto read = [&](int slot) {
    ready[slot].synchronize();
    return static_cast<int32_t>(slots[slot].item<int64_t>());
  };

  // Two eager steps on the side stream (real steps: their tokens are kept) set up cuBLAS and the
  // allocator before capture, as CUDA graph capture requires.
  for (int i = 0; i < 2 && static_cast<int>(out.size()) < max_tokens; ++i) {
    step();
    slots[0].copy_(token, /*non_blocking=*/true);
    ready[0].record(stream);
    out.push_back(read(0));
    if (stop(out.back())) {
      stream.synchronize();
      return out;
    }
  }
  const int remaining = max_tokens - static_cast<int>(out.size());
  if (remaining <= 0) {
    stream.synchronize();
    return out;
  }
  at::cuda::CUDAGraph graph;
  graph.capture_begin({0, 0}, cudaStreamCaptureModeThreadLocal);
  step();
  graph.capture_end();

  int enqueued = 0, consumed = 0;
  while (consumed < remaining) {
    for (; enqueued < remaining && enqueued - consumed < kRing; ++enqueued) {
      graph.replay();
      slots[enqueued % kRing].copy_(token, /*non_blocking=*/true);
      ready[enqueued % kRing].record(stream);
    }
    out.push_back(read(consumed % kRing));
    ++consumed;
    if (stop(out.back())) break;
  }
  stream.synchronize();  // replays past the stop finish before the cache is reused
  return out;
}

}  // namespace s3
