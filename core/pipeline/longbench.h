// LongBench v1 under the official protocol (LongBench/pred.py): templates and max new tokens read
// from the official config folder, middle truncation of the prompt tokens, chat template except for
// the few-shot / code tasks, greedy decoding, every stop id of the model (plus the newline for
// samsum). With a retrieval method each sample's context is indexed on the fly (the SAE methods
// with the SAE scan; bm25 and dense lexical-only, by tokenizing, unless --sae is given) and the
// evidence packed to the budget replaces {context}. Resumable and shardable (docs/longbench.md,
// "Running"). The same runner takes L-Eval files (suite "leval": one document, many instructions).
// Free of LibTorch.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/base/dtype.h"
#include "core/pipeline/scan.h"
#include "core/runtime/device.h"
#include "core/runtime/generation.h"
#include "retrieval/pipeline.h"

namespace s3 {

struct LongBenchOptions {
  std::string suite =
      "longbench";  // "longbench" | "leval" (L-Eval files: one document, many instructions)
  std::filesystem::path
      data;  // folder of <task>.jsonl (official LongBench v1 files, or L-Eval files)
  std::filesystem::path config;    // official LongBench/config (dataset2prompt.json,
                                   // dataset2maxlen.json); LongBench only
  std::vector<std::string> tasks;  // task names (L-Eval: leval_<file stem> or the stem), or {"all"}
  std::filesystem::path model;
  // The SAE methods' SAE; default: <model>/sae. Given with bm25 / dense, those index each context
  // with the SAE scan too (without it their context indexes are lexical-only: no scan).
  std::optional<std::filesystem::path> sae;
  // Sentence encoder of dense / s3-dense (required there): each context's passages are embedded.
  std::optional<std::filesystem::path> dense_model;
  // --answer-model: `model` (and the SAE) index and retrieve, this model is prompted and answers;
  // the budget, max length and chat template are its own.
  std::optional<std::filesystem::path> answer_model;
  std::filesystem::path out;              // run directory
  retrieval::RetrievalOptions retrieval;  // method (full = the raw context) and its knobs
  ScanOptions scan;                       // how each context is indexed (as `s3attn index`)
  // Lower scan.chunk to fit the index's model's window (ScanOptions::fit_chunk_to_window), as
  // `s3attn index` does for its default chunk; false when --chunk was given (then it must fit).
  bool fit_chunk_to_window = true;
  uint32_t passage_words = 100;           // BM25 passage size in words (`index --passage-words`)
  std::optional<int> max_length;          // default: longbench_max_length(window)
  std::optional<int> limit;               // first N samples of each task (before sharding)
  std::optional<int> max_new_tokens_cap;  // smoke tests: min(dataset2maxlen, cap); in the manifest
  DeviceSpec device;
  std::optional<DType> dtype;
  std::string label;  // manifest "label" (column name in the scorer's tables); empty = none
  // Samples generated together (generate_batch: one batched CUDA-graph decode per group; on the
  // CPU they run one by one). Not part of a run's identity: a resumed run may use another value.
  int batch = 1;
  // What runs the decode steps (the tokens are model.ts's: a package is installed only if it
  // decodes them). Recorded in the manifest, not part of a run's identity.
  DecodeBackend decode_backend = DecodeBackend::kTorchScript;
  // Write each sample's question (`input`) and evidence text (before truncation; retrieval methods)
  // into its row as `evidence`, to see what a method gave the model. Not part of a run's identity.
  bool record_evidence = false;
  int rank = 0;   // shard of this process (LaunchEnvironment: RANK / SLURM_PROCID)
  int world = 1;  // number of shards (WORLD_SIZE / SLURM_NTASKS)
};

// The official prompt formatting: Python's str.format with only {context} and {input}, in one pass
// (the context may itself contain braces). Throws s3::Error on any other brace in the template.
std::string format_longbench_prompt(const std::string& templ, const std::string& context,
                                    const std::string& input);

// The tasks pred.py prompts without the chat template.
bool longbench_task_uses_chat(const std::string& task);

// pred.py's prompt max length for a model of `window` tokens (LongBench's model2maxlen rule) and
// the rule's words for the manifest.
struct MaxLength {
  int max_length = 0;
  std::string rule;
};
MaxLength longbench_max_length(int window);

struct LongBenchCallbacks {
  std::function<void(const std::string& task, uint64_t todo)> task_start;  // samples left to run
  std::function<void(uint64_t done)> sample_done;                          // within the task
  std::function<void()> task_end;
};

// Runs every task; returns a summary ({"tasks": {task: {"written": n, "skipped": n, "file":
// ...}}}). Checks the config, task names and data files before loading the model.
nlohmann::json run_longbench(const LongBenchOptions& options,
                             const LongBenchCallbacks& callbacks = {});

}  // namespace s3
