// Answering a question against an index (docs/method.md §4-§7): encode the question (its keys, or
// its queries with --query-vectors queries) with the index's SAEs, score and select evidence within
// a token budget (retrieval/), turn it back into exact original text, prompt the model and decode
// greedily. Free of LibTorch.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/base/dtype.h"
#include "core/pipeline/evidence.h"
#include "core/runtime/device.h"
#include "core/runtime/generation.h"
#include "retrieval/pipeline.h"

namespace s3 {

// The prompt the evidence is placed in; {context} and {question} are replaced.
inline constexpr const char* kDefaultAskPrompt =
    "Answer the question based on the given document excerpts (in document order; \"...\" marks "
    "omitted text). Only give the answer.\n\n{context}\n\nQuestion: {question}\nAnswer:";

struct AskSetup {
  std::filesystem::path index;
  std::optional<std::filesystem::path> model;  // default: the model the index was built with
  std::optional<std::filesystem::path> sae;    // default: the SAE the index was built with
  // The dense model of dense / s3-dense; default: the one the index was built with.
  std::optional<std::filesystem::path> dense_model;
  // The model that reads the evidence and answers (--answer-model); default: the index's model.
  // Retrieval still uses the index's model and SAE; the prompt, the budget's tokens and the
  // answer are the answer model's.
  std::optional<std::filesystem::path> answer_model;
  DeviceSpec device;
  std::optional<DType> dtype;
};

struct AskOptions {
  retrieval::RetrievalOptions retrieval;
  int max_new_tokens = 128;
  bool evidence_only = false;  // stop after retrieval
  bool chat = true;            // use the model's chat template when it has one
  std::string prompt_template = kDefaultAskPrompt;
  std::string doc;           // a document's name or id; empty = every document of the index
  bool explain = false;      // attach the features / terms that chose each evidence range
  bool ignore_stop = false;  // always generate max_new_tokens (benchmarks)
  DecodeBackend decode_backend = DecodeBackend::kTorchScript;
  void validate() const;
};

struct Evidence {
  std::string doc;  // document name
  uint32_t doc_id = 0;
  uint32_t start = 0;  // token range [start, end) within the document
  uint32_t end = 0;
  std::string text;    // exact original text of the range
  std::string source;  // "s3" | "bm25" | "dense" | "lead" | "tail"
  float score = 0;
  nlohmann::json explain;  // filled with --explain
};

struct AskResult {
  std::string answer;
  std::vector<Evidence> evidence;
  uint32_t budget = 0;  // evidence tokens asked for, in the answering model's tokens
  uint32_t evidence_tokens =
      0;  // evidence tokens selected, in the index's tokens (<= document tokens)
  size_t answer_evidence_tokens =
      0;                // the same evidence in the answering model's tokens (<= budget)
  std::string context;  // the evidence as the prompt shows it (per-document headers, separators)
  int prompt_tokens = 0;
  std::vector<int32_t> tokens;  // generated ids
  std::string stop_reason;
  nlohmann::json timings;
  nlohmann::json models;  // {"index": {path, fingerprint}, "answer": {path, fingerprint}}
};

// Loads the index, the model, (for s3 methods) the SAE and (for dense methods) the dense model
// once; answers many questions with `method`. Throws s3::Error when the index cannot serve the
// method: an SAE method on a lexical-only index, a dense one on an index without embeddings.
class Asker {
 public:
  Asker(const AskSetup& setup, retrieval::Method method);
  ~Asker();
  Asker(const Asker&) = delete;
  Asker& operator=(const Asker&) = delete;

  AskResult ask(const std::string& question, const AskOptions& options) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace s3
