#include "core/runtime/generation.h"

#include <algorithm>
#include <chrono>
#include <limits>

#include "core/base/error.h"
#include "core/runtime/decode_graph.h"
#include "core/runtime/model_torch.h"
#include "core/runtime/prompt.h"

namespace s3 {

void GenerationOptions::validate() const {
  if (max_new_tokens < 1) throw UsageError("--max-new-tokens must be at least 1");
}

namespace {

using Clock = std::chrono::steady_clock;
double seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

void check_stop_ids(const ModelInfo& info, const GenerationOptions& options) {
  for (int32_t id : options.extra_stop_ids)
    if (id < 0 || id >= info.vocab_size)
      throw UsageError("stop id " + std::to_string(id) + " is outside the model's vocabulary of " +
                       std::to_string(info.vocab_size) + " (--stop-ids)");
}

void check_prompt(const ModelInfo& info, const std::vector<int32_t>& prompt) {
  if (prompt.empty()) throw Error("the prompt is empty");
  if (static_cast<int>(prompt.size()) > info.max_position_embeddings)
    throw Error("the prompt has " + std::to_string(prompt.size()) +
                " tokens, more than the model's window of " +
                std::to_string(info.max_position_embeddings));
}

// The options with max_new_tokens capped so that every position the generation runs at is inside
// the model's window: the prompt's n positions and one per new token but the last (whose logits are
// never needed). The KV cache is allocated for all of them up front.
GenerationOptions within_window(const ModelInfo& info, size_t longest_prompt,
                                const GenerationOptions& options) {
  GenerationOptions capped = options;
  capped.max_new_tokens = static_cast<int>(std::min<int64_t>(
      options.max_new_tokens,
      int64_t{info.max_position_embeddings} - static_cast<int64_t>(longest_prompt) + 1));
  return capped;
}

// "window" instead of "max_new_tokens" where the cap, not the caller's limit, stopped generation.
void note_window_stop(const GenerationOptions& asked, const GenerationOptions& capped,
                      GenerationResult& result) {
  if (capped.max_new_tokens < asked.max_new_tokens && result.stop_reason == "max_new_tokens")
    result.stop_reason = "window";
}

struct StopRule {
  std::vector<int32_t> ids;
  bool ignore = false;
  StopRule(const ModelInfo& info, const GenerationOptions& options)
      : ids(info.stop_token_ids), ignore(options.ignore_stop) {
    ids.insert(ids.end(), options.extra_stop_ids.begin(), options.extra_stop_ids.end());
  }
  bool operator()(int32_t id) const {
    return !ignore && std::find(ids.begin(), ids.end(), id) != ids.end();
  }
};

// The first new token from the prefill's last logits [rows, vocab] -> [rows] ids; with
// first_token_not_stop every stop id is masked first.
torch::Tensor first_tokens(const torch::Tensor& logits, const StopRule& is_stop,
                           const GenerationOptions& options) {
  if (!options.first_token_not_stop || is_stop.ids.empty()) return logits.argmax(-1);
  const torch::Tensor stops =
      torch::tensor(std::vector<int64_t>(is_stop.ids.begin(), is_stop.ids.end()), torch::kLong)
          .to(logits.device());
  return logits.index_fill(-1, stops, -std::numeric_limits<float>::infinity()).argmax(-1);
}

// Stop reason and text once `result.tokens` is final.
void finish(const Model& model, const StopRule& is_stop, GenerationResult& result) {
  result.stop_reason =
      !result.tokens.empty() && is_stop(result.tokens.back()) ? "stop_token" : "max_new_tokens";
  std::vector<int32_t> text_ids = result.tokens;
  if (result.stop_reason == "stop_token") text_ids.pop_back();
  result.text = decode_text(model.info(), model.tokenizer(), text_ids);
  result.timings.new_tokens = static_cast<int>(result.tokens.size());
}

// The AOTInductor decode step when the options ask for it (loaded on the model's first use,
// before any timing), else null: model.ts's.
const AotiDecode* aoti_step(const Model& model, const GenerationOptions& options) {
  return options.decode_backend == DecodeBackend::kAoti ? &aoti_decode(model) : nullptr;
}

// Step by step: one decode call per token (CPU, or exports without decode_at).
GenerationResult generate_stepwise(const Model& model, const std::vector<int32_t>& prompt,
                                   const GenerationOptions& options, const StopRule& is_stop) {
  const int64_t n = static_cast<int64_t>(prompt.size());
  KvCache cache = new_cache(model, 1, n + options.max_new_tokens);
  const AotiDecode* aoti = aoti_step(model, options);
  synchronize(model.device());
  GenerationResult result;
  const auto t0 = Clock::now();
  torch::Tensor logits = prefill(model, ids_tensor(model, prompt), cache, 0);
  torch::Tensor next = first_tokens(logits, is_stop, options).view({1, 1});
  int32_t id = static_cast<int32_t>(next.item<int64_t>());  // the host needs it for the stop check
  const auto t1 = Clock::now();
  result.tokens.push_back(id);
  for (int64_t pos = n;
       !is_stop(id) && static_cast<int>(result.tokens.size()) < options.max_new_tokens; ++pos) {
    logits = aoti ? (*aoti)(next, cache, torch::tensor({pos}, torch::kLong).to(next.device()))
                  : decode(model, next, cache, pos);
    next = logits.argmax(-1).view({1, 1});
    id = static_cast<int32_t>(next.item<int64_t>());
    result.tokens.push_back(id);
  }
  result.timings = {seconds(t0, t1), seconds(t1, Clock::now()), static_cast<int>(n), 0};
  finish(model, is_stop, result);
  return result;
}

// Each prompt prefilled into its own row of one cache, then every row decoded together with one
// CUDA graph (core/runtime/decode_graph.h).
std::vector<GenerationResult> generate_graph(const Model& model,
                                             const std::vector<std::vector<int32_t>>& prompts,
                                             const GenerationOptions& options,
                                             const StopRule& is_stop) {
  const auto rows = static_cast<int64_t>(prompts.size());
  size_t longest = 0;
  for (const auto& p : prompts)
    longest = std::max(longest, p.size());
  KvCache cache = new_cache(model, rows, static_cast<int64_t>(longest) + options.max_new_tokens);
  aoti_step(model, options);  // loads the package now, outside the timings
  synchronize(model.device());
  std::vector<GenerationResult> results(prompts.size());
  std::vector<int32_t> first;
  std::vector<int64_t> pos;
  std::vector<bool> open;
  for (int64_t r = 0; r < rows; ++r) {
    const auto t0 = Clock::now();
    KvCache row{cache.k.narrow(1, r, 1), cache.v.narrow(1, r, 1)};
    const torch::Tensor logits = prefill(model, ids_tensor(model, prompts[r]), row, 0);
    const auto id = static_cast<int32_t>(first_tokens(logits, is_stop, options).item<int64_t>());
    results[r].tokens.push_back(id);
    results[r].timings.prefill_s = seconds(t0, Clock::now());
    results[r].timings.prompt_tokens = static_cast<int>(prompts[r].size());
    first.push_back(id);
    pos.push_back(static_cast<int64_t>(prompts[r].size()));
    open.push_back(!is_stop(id) && options.max_new_tokens > 1);
  }
  if (std::find(open.begin(), open.end(), true) != open.end()) {
    const auto t1 = Clock::now();
    const auto more = decode_greedy_graph(model, cache, first, pos, options.max_new_tokens - 1,
                                          is_stop, aoti_step(model, options));
    const double decode_s = seconds(t1, Clock::now());
    for (int64_t r = 0; r < rows; ++r) {
      if (!open[r]) continue;
      results[r].tokens.insert(results[r].tokens.end(), more[r].begin(), more[r].end());
      results[r].timings.decode_s = decode_s;
    }
  }
  for (GenerationResult& result : results)
    finish(model, is_stop, result);
  return results;
}

bool use_graph(const Model& model, const GenerationOptions& options) {
  return options.cuda_graph && graph_decode_available(model);
}

}  // namespace

GenerationResult generate(const Model& model, const std::vector<int32_t>& prompt,
                          const GenerationOptions& asked) {
  asked.validate();
  check_stop_ids(model.info(), asked);
  check_prompt(model.info(), prompt);
  const GenerationOptions options = within_window(model.info(), prompt.size(), asked);
  torch::NoGradGuard no_grad;
  const StopRule is_stop(model.info(), options);
  GenerationResult result = use_graph(model, options)
                                ? generate_graph(model, {prompt}, options, is_stop).front()
                                : generate_stepwise(model, prompt, options, is_stop);
  note_window_stop(asked, options, result);
  return result;
}

std::vector<GenerationResult> generate_batch(const Model& model,
                                             const std::vector<std::vector<int32_t>>& prompts,
                                             const GenerationOptions& asked) {
  asked.validate();
  check_stop_ids(model.info(), asked);
  size_t longest = 0;
  for (const auto& p : prompts) {
    check_prompt(model.info(), p);
    longest = std::max(longest, p.size());
  }
  if (prompts.empty()) return {};
  const GenerationOptions options = within_window(model.info(), longest, asked);
  torch::NoGradGuard no_grad;
  const StopRule is_stop(model.info(), options);
  std::vector<GenerationResult> results;
  if (use_graph(model, options)) {
    results = generate_graph(model, prompts, options, is_stop);
  } else {
    for (const auto& p : prompts)
      results.push_back(generate_stepwise(model, p, options, is_stop));
  }
  for (GenerationResult& r : results)
    note_window_stop(asked, options, r);
  return results;
}

}  // namespace s3
