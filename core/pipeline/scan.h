// The streaming scan (docs/method.md §1): documents are tokenized, cut into independent chunks, and
// each chunk runs through the model's `tap` (layers up to the highest tap only), the SAE encoder
// turns the pre-RoPE keys into a feature-major bitmap on the device, the bitmap is copied
// asynchronously into pinned host memory, and one indexer thread per tapped layer turns it into
// postings while the device runs the next chunk. Device memory depends on the chunk, never on
// document length.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/base/dtype.h"
#include "core/base/enum_names.h"
#include "core/pipeline/documents.h"
#include "core/pipeline/index_metadata.h"
#include "core/pipeline/index_shard.h"
#include "core/runtime/model.h"
#include "index/index_part.h"
#include "sae/options.h"

namespace s3::index {
class IndexWriter;
}

namespace s3 {

struct TappedSae;

// Whether each chunk starts with BOS (--chunk-bos): kAuto prepends it when the model's tokenizer
// adds one, so each chunk looks like the start of a sequence; its position is not indexed.
enum class ChunkBos { kAuto, kAlways, kNever };
inline constexpr EnumNames<ChunkBos, 3> kChunkBosNames{
    {{"auto", ChunkBos::kAuto}, {"always", ChunkBos::kAlways}, {"never", ChunkBos::kNever}}};
// Whether `mode` prepends BOS for this model.
bool chunk_starts_with_bos(ChunkBos mode, const ModelInfo& info);

struct ScanOptions {
  int chunk = 4096;         // tokens per independent chunk (docs/method.md §1)
  std::vector<int> layers;  // tapped layers; empty = every layer the SAE has
  bool rope = false;        // post-RoPE keys (ablation; the index default is pre-RoPE)
  // Tokens before each chunk run through the model as warm-up context and are not indexed (their
  // own chunk indexes them). 0 = the method's independent chunks.
  int overlap = 0;
  ChunkBos chunk_bos = ChunkBos::kAuto;
  int buffers = 3;  // pinned host buffers per layer in flight between device and indexer
  std::optional<DType> sae_dtype;  // encoder compute dtype; none: auto (sae/options.h)
  sae::BitmapMode sae_bitmap = sae::BitmapMode::kAuto;  // feature bitmap on CUDA
  // Run the first chunk once per Scanner, unindexed, before the first timed scan on CUDA devices
  // (kernel loading, cuBLAS and allocator set-up): ScanStats::warmup_s reports it apart.
  bool warmup = true;
  // On CUDA, run the SAE encoder and the bitmap copies on a second, low-priority stream, so the
  // encoder of one chunk overlaps the next chunk's forward (on a high-priority stream); false = one
  // stream, each chunk's encoder between two forwards.
  bool sae_overlap = true;
  void validate() const;
  // Lowers `chunk` so that one forward pass (BOS, overlap and chunk) fits the model's window: for
  // the default chunk when the user gave none (an explicit --chunk that does not fit is refused by
  // Scanner::scan). Throws UsageError when the window leaves less than kMinChunk tokens.
  void fit_chunk_to_window(const ModelInfo& info);
};

// Called with (tokens scanned, tokens in total) after each chunk.
using ScanProgress = std::function<void(uint64_t, uint64_t)>;

struct ScanStats {
  uint64_t documents = 0;
  uint64_t tokens = 0;
  uint64_t chunks = 0;
  double warmup_s = 0;    // the unindexed warm-up chunk (CUDA only), before `seconds`
  double seconds = 0;     // wall time of the scan, indexer drained
  double tokenize_s = 0;  // tokenizing every document (a helper thread, beside the first chunk)
  double tokenize_wait_s = 0;  // the main thread waiting for that, after queueing the first chunk
  uint64_t early_chunks = 0;   // first chunks run from text windows, beside the tokenizer
  // Early chunks not used: their tokens differed from the full text's (or, in a sharded run, the
  // chunk was not this rank's).
  uint64_t early_chunks_redone = 0;
  double indexer_busy_s = 0;  // the busiest indexer thread's time in writer calls (one per layer)
  double buffer_wait_s = 0;   // the main thread waiting for a free pinned buffer (indexer behind)
  double drain_s = 0;         // waiting for the indexer after the last chunk
  long long peak_device_bytes = 0;
  // What was scanned (the part record's range, index_part.h): input documents [doc_begin, doc_end)
  // went to the writer and their tokens from `begin` to `end` were scanned. Everything in a
  // single-process scan.
  uint64_t doc_begin = 0, doc_end = 0;
  index::PartPosition begin, end;
};

class Scanner {
 public:
  // Loads and checks the SAE against the model (d_in, fingerprint, layers) and builds one encoder
  // per tapped layer on the model's device.
  Scanner(const Model& model, const std::filesystem::path& sae_dir, ScanOptions options);
  ~Scanner();
  Scanner(const Scanner&) = delete;
  Scanner& operator=(const Scanner&) = delete;

  const std::vector<int>& layers() const;
  int64_t d_latent() const;
  const std::string& sae_fingerprint() const;
  // The loaded SAE, shared with the question side (QuestionEncoder).
  std::shared_ptr<const TappedSae> tapped_sae() const;
  // Scan configuration and fingerprints (model, SAE, tokenizer) for the index manifest.
  IndexMetadata metadata() const;

  // Adds the documents to the writer (which must have been opened with layers() and d_latent()).
  ScanStats scan(index::IndexWriter& writer, std::span<const Document> documents,
                 const ScanProgress& progress = {}) const;
  // The same for one rank of a sharded run: only the documents holding the rank's chunks, and the
  // postings of those chunks only (core/pipeline/index_shard.h).
  ScanStats scan(index::IndexWriter& writer, std::span<const Document> documents,
                 const IndexShard& shard, const ScanProgress& progress = {}) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace s3
