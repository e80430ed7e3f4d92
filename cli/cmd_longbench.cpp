// s3attn longbench: LongBench v1 under the official protocol with every method (docs/longbench.md).
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "cli/command.h"
#include "cli/device_flags.h"
#include "cli/progress.h"
#include "cli/retrieval_flags.h"
#include "cli/scan_flags.h"
#include "core/base/error.h"
#include "core/pipeline/launch.h"
#include "core/pipeline/longbench.h"

namespace s3::cli {

Command add_longbench(CLI::App& root) {
  struct Args {
    std::string data, config, model, sae, answer_model, out, device = "cpu", label,
                                                             suite = "longbench";
    std::optional<DType> dtype;
    std::vector<std::string> tasks;
    RetrievalFlags retrieval;
    ScanFlags scan;
    int max_length = 0, limit = 0, max_new_tokens_cap = 0, batch = 1;
    DecodeBackend decode_backend = DecodeBackend::kTorchScript;
    bool record_evidence = false;
  };
  auto a = std::make_shared<Args>();
  CLI::App* app = root.add_subcommand(
      "longbench", "Run LongBench v1 tasks under the official protocol (or L-Eval files)");
  app->add_option("--data", a->data, "folder of LongBench v1 <task>.jsonl files")->required();
  app->add_option("--config", a->config, "the official LongBench/config folder (LongBench)");
  app->add_option("--suite", a->suite,
                  "longbench | leval (L-Eval files: one document, many instructions)")
      ->capture_default_str();
  app->add_option("--tasks", a->tasks, "comma-separated task names, or all")
      ->delimiter(',')
      ->required();
  app->add_option("--model", a->model, "model directory")->required();
  app->add_option("--sae", a->sae,
                  "SAE directory (s3, s3-hybrid, s3-dense; default: <model>/sae); with bm25 or "
                  "dense, index each context with the SAE scan too (default there: lexical-only, "
                  "tokenized, no scan)");
  app->add_option("--answer-model", a->answer_model,
                  "model prompted to answer (default: --model, which indexes and retrieves); "
                  "--budget counts its tokens");
  add_retrieval_flags(*app, a->retrieval);
  add_scan_flags(*app, a->scan);
  app->add_option("--max-length", a->max_length,
                  "truncate prompts longer than this many tokens in the middle (default: "
                  "LongBench's model2maxlen rule)");
  app->add_option("--limit", a->limit, "first N samples of each task");
  app->add_option("--max-new-tokens-cap", a->max_new_tokens_cap,
                  "cap dataset2maxlen (for smoke tests; recorded in the manifest)");
  add_decode_backend_option(*app, a->decode_backend);
  app->add_option("--batch", a->batch, "samples generated together (one batched CUDA-graph decode)")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  add_device_option(*app, a->device, DeviceScope::kPerRank);
  add_model_dtype_option(*app, a->dtype);
  app->add_flag("--record-evidence", a->record_evidence,
                "write each sample's evidence text into its row (retrieval methods)");
  app->add_option("--label", a->label, "column label for the scorer's tables (manifest \"label\")");
  app->add_option("--out", a->out, "run directory")->required();

  auto run = [a, app]() {
    auto given = [app](const char* flag) { return app->get_option(flag)->count() > 0; };
    a->retrieval.finish();
    LongBenchOptions o;
    o.suite = a->suite;
    o.data = a->data;
    o.config = a->config;
    o.tasks = a->tasks;
    o.model = a->model;
    if (!a->sae.empty()) o.sae = a->sae;
    if (!a->retrieval.dense_model.empty()) o.dense_model = a->retrieval.dense_model;
    if (!a->answer_model.empty()) o.answer_model = a->answer_model;
    o.out = a->out;
    o.retrieval = a->retrieval.options;
    a->scan.scan.validate();
    o.scan = a->scan.scan;
    o.fit_chunk_to_window = !given("--chunk");
    o.passage_words = a->scan.passage_words;
    if (given("--max-length")) o.max_length = a->max_length;
    if (given("--limit")) o.limit = a->limit;
    if (given("--max-new-tokens-cap")) o.max_new_tokens_cap = a->max_new_tokens_cap;
    const LaunchEnvironment launch = LaunchEnvironment::from_environment();
    o.rank = launch.rank;
    o.world = launch.world;
    o.device = DeviceSpec::parse(a->device).for_local_rank(launch.local_rank);
    o.device.make_current();
    o.dtype = a->dtype;
    o.label = a->label;
    o.batch = a->batch;
    o.decode_backend = a->decode_backend;
    o.record_evidence = a->record_evidence;

    std::optional<ProgressBar> bar;
    LongBenchCallbacks cb;
    cb.task_start = [&](const std::string& task, uint64_t todo) {
      bar.emplace(o.world == 1
                      ? task
                      : task + " [" + std::to_string(o.rank) + "/" + std::to_string(o.world) + "]",
                  todo, "samples");
      bar->update(0);
    };
    cb.sample_done = [&](uint64_t done) { bar->update(done); };
    cb.task_end = [&]() { bar->finish(); };
    const nlohmann::json summary = run_longbench(o, cb);
    std::cout << summary.dump() << "\n";
    return 0;
  };
  return {app, run};
}

}  // namespace s3::cli
