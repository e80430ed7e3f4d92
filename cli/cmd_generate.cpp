// s3attn generate: greedy generation with the KV cache.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/device_flags.h"
#include "core/base/error.h"
#include "core/runtime/generation.h"
#include "core/runtime/model.h"
#include "core/runtime/prompt.h"

namespace s3::cli {
namespace {

// A prompt must fit the model's window anyway; this only stops a runaway file early.
constexpr uint64_t kMaxPromptFileBytes = uint64_t{256} << 20;

// One generation of `rows` copies of a prompt and its timings over every row: prefill and decode
// seconds of the whole batch, its prompt tokens and new tokens summed (so the rates are the
// batch's throughput). One row is generate() itself.
struct Generated {
  std::vector<GenerationResult> rows;
  GenerationTimings timings;
  int64_t decoded = 0;  // tokens from decode steps (each row's first token comes from its prefill)
  double decode_tokens_per_s() const {
    return timings.decode_s > 0 ? static_cast<double>(decoded) / timings.decode_s : 0;
  }
  bool rows_identical() const {
    return std::all_of(rows.begin(), rows.end(),
                       [&](const GenerationResult& r) { return r.tokens == rows.front().tokens; });
  }
};

Generated run_generation(const Model& model, const std::vector<int32_t>& prompt,
                         const GenerationOptions& options, int rows) {
  Generated g;
  if (rows == 1) {
    g.rows.push_back(generate(model, prompt, options));
    g.timings = g.rows.front().timings;
    g.decoded = std::max(g.timings.new_tokens - 1, 0);
    return g;
  }
  const auto t0 = std::chrono::steady_clock::now();
  g.rows = generate_batch(model, std::vector<std::vector<int32_t>>(rows, prompt), options);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // Rows are prefilled one after another, then decoded together (or, without a CUDA graph, each
  // decoded after its prefill): what is not prefill is decode.
  for (const GenerationResult& r : g.rows) {
    g.timings.prefill_s += r.timings.prefill_s;
    g.timings.prompt_tokens += r.timings.prompt_tokens;
    g.timings.new_tokens += r.timings.new_tokens;
    g.decoded += std::max(r.timings.new_tokens - 1, 0);
  }
  g.timings.decode_s = wall - g.timings.prefill_s;
  return g;
}

}  // namespace

Command add_generate(CLI::App& root) {
  struct Args {
    std::string model, prompt, prompt_file, device = "cpu";
    std::optional<DType> dtype;
    bool chat = false, json = false, ignore_stop = false, cuda_graph = true,
         first_token_not_stop = false;
    std::vector<int32_t> stop_ids;
    int max_new_tokens = 128;
    int repeat = 1;
    int batch = 1;
    DecodeBackend decode_backend = DecodeBackend::kTorchScript;
  };
  auto args = std::make_shared<Args>();
  CLI::App* app = root.add_subcommand("generate", "Generate a greedy answer to a prompt");
  app->add_option("--model", args->model, "model directory (scripts/export_model.py)")->required();
  auto* prompt = app->add_option("--prompt", args->prompt, "prompt text");
  auto* prompt_file =
      app->add_option("--prompt-file", args->prompt_file, "file holding the prompt text")
          ->check(CLI::ExistingFile);
  prompt->excludes(prompt_file);
  app->add_flag("--chat", args->chat, "wrap the prompt in the model's chat template");
  app->add_option("--max-new-tokens", args->max_new_tokens, "at most this many new tokens")
      ->capture_default_str();
  add_device_option(*app, args->device);
  add_model_dtype_option(*app, args->dtype);
  app->add_flag("--ignore-stop", args->ignore_stop,
                "generate exactly --max-new-tokens tokens (benchmarks)");
  app->add_option("--stop-ids", args->stop_ids,
                  "token ids that also end generation, comma separated")
      ->delimiter(',');
  app->add_flag(
      "--first-token-not-stop", args->first_token_not_stop,
      "the first new token is never a stop id (LongBench's samsum: min_length = prompt + 1)");
  app->add_flag("!--no-cuda-graph", args->cuda_graph,
                "decode step by step instead of replaying one CUDA graph");
  app->add_option("--repeat", args->repeat,
                  "run the generation N times in one process and report the last (benchmarks: the "
                  "first run warms up the GPU)")
      ->check(CLI::Range(1, 1000));
  add_decode_backend_option(*app, args->decode_backend);
  app->add_option("--batch", args->batch,
                  "decode the prompt as N rows of one batch (on CUDA one batched CUDA graph; "
                  "benchmarks of batched decoding: timings count every row's tokens)")
      ->check(CLI::Range(1, 1024));
  app->add_flag("--json", args->json,
                "print a JSON object with text, tokens, prompt_tokens and timings");

  auto run = [args, prompt, prompt_file]() {
    if (prompt->count() == 0 && prompt_file->count() == 0)
      throw UsageError("generate needs --prompt or --prompt-file");
    if (prompt_file->count())
      args->prompt = read_text_file(args->prompt_file, kMaxPromptFileBytes, "prompt file");
    GenerationOptions options;
    options.max_new_tokens = args->max_new_tokens;
    options.ignore_stop = args->ignore_stop;
    options.cuda_graph = args->cuda_graph;
    options.extra_stop_ids = args->stop_ids;
    options.first_token_not_stop = args->first_token_not_stop;
    options.decode_backend = args->decode_backend;
    options.validate();
    ModelLoadOptions load;
    load.device = DeviceSpec::parse(args->device);
    load.dtype = args->dtype;

    const Model model = Model::load(args->model, load);
    const std::string full_prompt = apply_chat_template(model.info(), args->prompt, args->chat);
    const std::vector<int32_t> prompt_ids =
        encode_prompt(model.info(), model.tokenizer(), full_prompt);
    if (const int64_t room = int64_t{model.info().max_position_embeddings} -
                             static_cast<int64_t>(prompt_ids.size()) + 1;
        room >= 1 && options.max_new_tokens > room)
      spdlog::warn(
          "--max-new-tokens {} is capped at {}: the prompt ({} tokens) and the answer must fit the "
          "model's window of {} tokens",
          options.max_new_tokens, room, prompt_ids.size(), model.info().max_position_embeddings);
    Generated generated = run_generation(model, prompt_ids, options, args->batch);
    for (int i = 1; i < args->repeat; ++i)
      generated = run_generation(model, prompt_ids, options, args->batch);
    const GenerationResult& result = generated.rows.front();
    const GenerationTimings& t = generated.timings;
    if (args->json) {
      nlohmann::json timings = {{"prefill_s", t.prefill_s},
                                {"decode_s", t.decode_s},
                                {"prefill_tokens_per_s", t.prefill_tokens_per_s()},
                                {"decode_tokens_per_s", generated.decode_tokens_per_s()}};
      nlohmann::json out = {{"text", result.text},
                            {"tokens", result.tokens},
                            {"prompt_tokens", prompt_ids},
                            {"stop_reason", result.stop_reason},
                            {"device", model.device().name},
                            {"dtype", dtype_name(model.dtype())},
                            {"timings", timings}};
      if (args->batch > 1) {
        out["batch"] = args->batch;
        out["rows_identical"] = generated.rows_identical();
      }
      std::cout << out.dump() << "\n";
    } else {
      std::cout << result.text << "\n";
      spdlog::info("{} prompt tokens, {} new tokens{}; prefill {:.1f} tok/s, decode {:.1f} tok/s",
                   t.prompt_tokens, t.new_tokens,
                   args->batch > 1 ? " over " + std::to_string(args->batch) + " rows" : "",
                   t.prefill_tokens_per_s(), generated.decode_tokens_per_s());
    }
    return 0;
  };
  return {app, run};
}

}  // namespace s3::cli
