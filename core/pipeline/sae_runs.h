// `s3attn sae train` and `s3attn sae eval`: pre-RoPE keys streamed from the model's `tap` over a
// corpus into one Top-K SAE per tapped layer (sae/trainer.h), and the evaluation of an SAE
// directory on the keys and queries of a corpus. Activations are never written to disk. Free of
// LibTorch. Stream, checkpoints and outputs: docs/sae.md, "Training and evaluating (CLI)".
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/base/dtype.h"

#include "core/pipeline/documents.h"
#include "core/runtime/model.h"
#include "sae/options.h"
#include "sae/sae_info.h"

namespace s3 {

// A corpus tokenized once: each document's ids (no special tokens), and what it was, for sae.json.
struct SaeCorpus {
  std::vector<std::vector<int32_t>> docs;  // non-empty
  uint64_t tokens = 0;
  // "a.jsonl (1256808 bytes, field 'content'); 62 documents, 283,000 tokens"
  std::string description;
};

// Reads and tokenizes `source`. With max_tokens > 0, stops tokenizing once that many tokens are
// held (evaluation reads a prefix). Throws s3::Error for an empty corpus (no document has a token).
SaeCorpus read_sae_corpus(const Model& model, const DocumentSource& source,
                          uint64_t max_tokens = 0);

struct SaeTrainOptions {
  std::vector<int> layers;  // tapped layers; empty = the model's default_taps
  sae::HeadMode head_mode = sae::HeadMode::kPerHead;
  // latents, k, steps, batch, lr, k_aux, aux_weight, seed... device and stats_every are set by
  // train_sae: the SAE trains where the model runs, with stats copied every step on the CPU and
  // every 10th on CUDA.
  sae::TrainerOptions trainer;
  int chunk = 1024;                 // tokens per tap call (real positions 0..chunk-1 after the BOS)
  int64_t shuffle_buffer = 0;       // vectors held per layer for mixing; 0 = auto: 32 * batch
  int64_t checkpoint_every = 1000;  // steps between checkpoints; 0 = none
  bool resume = false;              // continue from OUT/checkpoint
  DType dtype = DType::kFloat32;    // dtype of the saved layer files
  void validate() const;
  int64_t resolved_shuffle_buffer() const;
};

// Reported after every chunk of the corpus, once before the first and once at the end.
struct SaeTrainProgress {
  int64_t step = 0;  // optimizer steps done (per layer; the layers step together)
  int64_t steps = 0;
  int64_t resumed_from = 0;  // step this run started at
  int64_t buffered = 0;      // vectors in each layer's shuffle buffer
  int64_t buffer_capacity = 0;
  int64_t epoch = 0;    // passes over the corpus begun, 0-based
  uint64_t tokens = 0;  // tokens run through the model, earlier runs of a resumed SAE included
  // Means over layers of the latest statistics copied from the trainers (0 before the first step).
  double loss = 0, fvu = 0, dead_fraction = 0;
  double vectors_per_s = 0;      // SAE input vectors trained on per second, all layers, this run
  int64_t checkpoint_step = -1;  // step of the checkpoint written at this call; -1 if none
};
using SaeTrainCallback = std::function<void(const SaeTrainProgress&)>;

struct SaeTrainResult {
  sae::SaeInfo info;  // what went to OUT/sae.json
  int64_t resumed_from = 0;
  double seconds = 0;
  double vectors_per_s = 0;              // as in SaeTrainProgress, over the whole run
  std::filesystem::path checkpoint_dir;  // empty when checkpoints are off
};

// Trains one SAE per layer on the corpus's keys and writes OUT (sae.json, layer_<L>.safetensors;
// OUT/checkpoint/ when checkpoint_every > 0). Refuses an OUT that already holds an SAE or a
// checkpoint unless resuming. Throws s3::UsageError for bad options (unknown layer, --k >
// --latents, --chunk beyond the model's context) and s3::Error for everything else.
SaeTrainResult train_sae(const Model& model, const SaeCorpus& corpus,
                         const SaeTrainOptions& options, const std::filesystem::path& out,
                         const SaeTrainCallback& progress = {});

struct SaeEvalOptions {
  uint64_t max_tokens = 65536;     // corpus tokens evaluated (a prefix, in document order)
  int chunk = 1024;                // tokens per tap call, cut from each document's start
  std::optional<DType> sae_dtype;  // encoder compute dtype; none: auto, as the scan (sae/options.h)
  void validate() const;
};

struct SaeLayerEval {
  int layer = 0;
  double fvu_keys = 0;       // FVU of the keys
  double fvu_queries = 0;    // FVU of the queries, encoded by the same SAE
  double dead_fraction = 0;  // latents never active on the keys
  double l0 = 0;             // mean active latents per key vector
  double dead_fraction_queries = 0;
  double l0_queries = 0;
  int64_t key_vectors = 0;
  int64_t query_vectors = 0;
};

struct SaeEvalResult {
  sae::SaeInfo info;
  std::vector<SaeLayerEval> layers;  // in the SAE's layer order
  uint64_t tokens = 0;
  uint64_t chunks = 0;
  int64_t unresolved_rows = 0;  // encoder rows whose top-k stayed approximate (sae/topk.h)
  double seconds = 0;
};

// Called with (tokens evaluated, tokens to evaluate) after each chunk.
using SaeEvalCallback = std::function<void(uint64_t, uint64_t)>;

// Loads the SAE in `sae_dir`, checked against the model (d_in, fingerprint, layers), and measures
// it on the first options.max_tokens tokens of the corpus.
SaeEvalResult evaluate_sae(const Model& model, const std::filesystem::path& sae_dir,
                           const SaeCorpus& corpus, const SaeEvalOptions& options,
                           const SaeEvalCallback& progress = {});

}  // namespace s3
