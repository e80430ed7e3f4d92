#include "core/runtime/diagnostics.h"

#include "core/base/error.h"
#include "core/runtime/model_torch.h"

namespace s3 {
namespace {

std::vector<std::vector<float>> rows(const torch::Tensor& logits) {  // [T, V] -> host rows
  const torch::Tensor host = logits.to(torch::kCPU, torch::kFloat).contiguous();
  std::vector<std::vector<float>> out(host.size(0));
  for (int64_t t = 0; t < host.size(0); ++t) {
    const float* p = host[t].data_ptr<float>();
    out[t].assign(p, p + host.size(1));
  }
  return out;
}

}  // namespace

LogitsDump compute_logits(const Model& model, const std::vector<int32_t>& ids) {
  if (ids.empty()) throw UsageError("--ids: give at least one token id");
  for (int32_t id : ids)
    if (id < 0 || id >= model.info().vocab_size)
      throw UsageError("--ids: " + std::to_string(id) + " is outside the vocabulary [0, " +
                       std::to_string(model.info().vocab_size) + ")");
  torch::NoGradGuard no_grad;
  const torch::Tensor input = ids_tensor(model, ids);
  LogitsDump dump;
  dump.forward = rows(forward_logits(model, input)[0]);

  KvCache cache = new_cache(model, 1, static_cast<int64_t>(ids.size()));
  std::vector<torch::Tensor> steps;
  steps.push_back(prefill(model, input.slice(1, 0, 1), cache, 0));
  for (int64_t t = 1; t < static_cast<int64_t>(ids.size()); ++t)
    steps.push_back(decode(model, input.slice(1, t, t + 1), cache, t));
  dump.cached = rows(torch::cat(steps, 0));
  return dump;
}

}  // namespace s3
