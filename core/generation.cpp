#include "core/generation.h"

#include <algorithm>
#include <chrono>

#include "core/decode_graph.h"
#include "core/error.h"
#include "core/model_torch.h"

namespace s3 {

void GenerationOptions::validate() const {
  if (max_new_tokens < 1) throw UsageError("--max-new-tokens must be at least 1");
}

GenerationResult generate(const Model& model, const std::vector<int32_t>& prompt, const GenerationOptions& options) {
  options.validate();
  const ModelInfo& info = model.info();
  if (prompt.empty()) throw Error("the prompt is empty");
  if (static_cast<int>(prompt.size()) > info.max_position_embeddings)
    throw Error("the prompt has " + std::to_string(prompt.size()) + " tokens, more than the model's window of " +
                std::to_string(info.max_position_embeddings));

  std::vector<int32_t> stops = info.stop_token_ids;
  stops.insert(stops.end(), options.extra_stop_ids.begin(), options.extra_stop_ids.end());
  auto is_stop = [&](int32_t id) {
    return !options.ignore_stop && std::find(stops.begin(), stops.end(), id) != stops.end();
  };

  torch::NoGradGuard no_grad;
  using Clock = std::chrono::steady_clock;
  GenerationResult result;
  result.stop_reason = "max_new_tokens";
  const auto seconds = [](Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); };

  const int64_t n = static_cast<int64_t>(prompt.size());
  KvCache cache = new_cache(model, 1, n + options.max_new_tokens);
  synchronize(model.device());
  const auto t0 = Clock::now();
  torch::Tensor logits = prefill(model, ids_tensor(model, prompt), cache, 0);
  torch::Tensor next = logits.argmax(-1).view({1, 1});
  int32_t id = static_cast<int32_t>(next.item<int64_t>());  // the host needs it for the stop check
  const auto t1 = Clock::now();
  result.tokens.push_back(id);

  if (options.cuda_graph && graph_decode_available(model)) {
    if (!is_stop(id) && options.max_new_tokens > 1) {
      const std::vector<int32_t> more =
          decode_greedy_graph(model, cache, id, n, options.max_new_tokens - 1, is_stop);
      result.tokens.insert(result.tokens.end(), more.begin(), more.end());
      id = result.tokens.back();
    }
  } else {
    for (int64_t pos = n; !is_stop(id) && static_cast<int>(result.tokens.size()) < options.max_new_tokens; ++pos) {
      logits = decode(model, next, cache, pos);
      next = logits.argmax(-1).view({1, 1});
      id = static_cast<int32_t>(next.item<int64_t>());
      result.tokens.push_back(id);
    }
  }
  const auto t2 = Clock::now();
  if (is_stop(id)) result.stop_reason = "stop_token";

  std::vector<int32_t> text_ids = result.tokens;
  if (result.stop_reason == "stop_token") text_ids.pop_back();
  result.text = model.tokenizer().decode(text_ids, /*skip_special_tokens=*/true);
  result.timings = {seconds(t0, t1), seconds(t1, t2), static_cast<int>(n), static_cast<int>(result.tokens.size())};
  return result;
}

}  // namespace s3
