// IndexWriter: the streaming writer of an index directory (docs/index-format.md).
//
// Threads: add_feature_bitmap / add_feature_ids for *different* layer slots may run concurrently,
// with each other and with add_document (calls for one slot must not overlap); everything else is
// one thread at a time.
//
// Usage:
//   IndexWriter w(options);                          // checks `out` against the mode, fails early
//   auto d = w.add_document(name, text, ids, offsets);   // -> global token range of the document
//   w.add_feature_bitmap(slot, d.token_begin, n, bits);  // per chunk and layer, increasing
//   positions
//   ...
//   w.commit();                                      // writes and publishes atomically
// A writer destroyed before commit() leaves the previous index untouched and removes its temp
// files.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "index/codec_registry.h"
#include "index/lexical_index.h"
#include "index/types.h"

namespace s3::index {

enum class WriteMode {
  kCreate,     // `out` must not exist
  kOverwrite,  // replace an existing index (or create); the swap is atomic
  kAppend,     // add a segment to an existing index (or create one); existing files are not touched
};

struct IndexWriterOptions {
  std::filesystem::path out;  // index directory
  WriteMode mode = WriteMode::kCreate;
  // kLexicalOnly: no layers, d_latent 0, no add_feature_* calls (docs/index-format.md).
  IndexContent content = IndexContent::kSaeFeatures;
  std::vector<int> layers;  // real layer numbers of the tapped layers; slot = position here
  uint32_t d_latent = 0;    // SAE latents per layer (feature ids are in [0, d_latent))
  std::string codec = std::string(kDefaultCodec);  // posting codec name (codec_registry.h)
  // Fingerprints of model / SAE / tokenizer and the scan configuration, filled by the caller,
  // stored verbatim in the manifest. Must be a JSON object. Appends require an equal object, so
  // put only what identifies the build in it (no timestamps, no input paths).
  nlohmann::json metadata = nlohmann::json::object();
  // Top-level metadata keys an append does not compare (e.g. where the model directory lives). The
  // manifest keeps the values of the first build.
  std::vector<std::string> append_ignore_metadata_keys;
  LexicalOptions lexical;  // BM25 passages and analyzer
  // Values per dense passage embedding (dense.bin); 0 = none. When set, every document added gets
  // its passages' vectors through add_dense_vectors before commit.
  uint32_t dense_dim = 0;
  unsigned commit_threads = 0;  // threads for commit (0 = min(8, hardware threads))
  bool fsync = true;            // fsync files and directories before publishing (durability)
  // Testing hook: called with the name of each commit stage ("begin", "staged", "exchanged",
  // "published", "segment-published"), so crash tests can die at a chosen point.
  std::function<void(std::string_view)> commit_hook;

  // Throws s3::UsageError on a bad value (empty out, no layers, duplicate layers, d_latent 0 — or,
  // lexical-only, any layer or d_latent —, unknown codec, metadata not an object, bad lexical
  // options).
  void validate() const;
};

struct CommitStats {
  std::filesystem::path index_dir;
  std::string segment;  // directory of the segment written
  uint32_t docs = 0;    // documents of this commit
  uint32_t tokens = 0;
  uint32_t passages = 0;
  std::vector<uint64_t> postings;        // per layer slot
  std::vector<uint64_t> postings_bytes;  // encoded bytes per layer slot
  uint64_t file_bytes = 0;               // all files of the segment
  double seconds = 0;                    // wall time of commit()
};

class IndexWriter {
 public:
  explicit IndexWriter(IndexWriterOptions options);
  ~IndexWriter();
  IndexWriter(const IndexWriter&) = delete;
  IndexWriter& operator=(const IndexWriter&) = delete;

  // Adds a document: its exact text (valid UTF-8), its token ids and each token's byte range in
  // `text` (begin <= end <= text.size(), begin non-decreasing). Returns its global id and range.
  DocumentRange add_document(std::string_view name, std::string_view text,
                             std::span<const int32_t> ids, std::span<const TokenOffset> offsets);

  // Feature activity of tokens [global_begin, global_begin + n_tokens), which must lie in documents
  // already added (to this writer) and come after every range fed before for this layer slot.
  //
  // Fast path: feature-major bitmap, bits[f * words + w], words = ceil(n_tokens / 64): bit t % 64
  // of word t / 64 is set iff feature f is active at token global_begin + t (bits past n_tokens
  // ignored).
  void add_feature_bitmap(uint32_t layer_slot, uint32_t global_begin, uint32_t n_tokens,
                          const uint64_t* bits);
  // Token-major ids [n_tokens][n_slots] (n_slots = heads x k): ids < 0 mean inactive, a feature
  // repeated within a token (several heads) gives one posting. Ids >= d_latent are an error.
  void add_feature_ids(uint32_t layer_slot, uint32_t global_begin, uint32_t n_tokens,
                       uint32_t n_slots, const int32_t* ids);
  // Posting lists, feature by feature (merging index parts, index_merge.h): fetch(f, out) replaces
  // `out` with feature f's global positions in the range, strictly increasing. Called for all
  // features from up to commit_threads threads at once (fetch must be thread-safe). A position out
  // of order or outside the range throws s3::Error and leaves the writer unchanged.
  using FeatureListFetch = std::function<void(uint32_t feature, std::vector<uint32_t>& out)>;
  void add_feature_lists(uint32_t layer_slot, uint32_t global_begin, uint32_t n_tokens,
                         const FeatureListFetch& fetch);

  // Replaces the metadata the commit stores, for what is known only once the documents are in (a
  // sharded run's part range, index_part.h). When appending it must still match the index's.
  void set_metadata(nlohmann::json metadata);

  // The unit-length embeddings of the BM25 passages of document `global_doc` (added to this
  // writer): document_passages(text, lexical.target_words) gives the passages, in order; `vectors`
  // holds one row of dense_dim floats per passage (stored as float16). Once per document; may run
  // beside add_feature_* calls.
  void add_dense_vectors(uint32_t global_doc, std::span<const float> vectors);

  // Builds the lexical index, writes every file with checksums and publishes atomically. Throws
  // s3::Error (nothing published) on failure, e.g. when no document was added.
  CommitStats commit();

  const IndexWriterOptions& options() const;
  uint32_t doc_base() const;                       // global id of this writer's first document
  uint32_t n_documents() const;                    // added by this writer
  uint32_t token_end() const;                      // global position after the last token added
  uint64_t n_postings(uint32_t layer_slot) const;  // accumulated so far by this writer

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace s3::index
