// IndexReader: read-only view of an index directory through mmap (docs/index-format.md).
//
// open() checks the manifest (format, version, checksum), then every file of every segment listed
// (exists, size, magic, version, footer, XXH3-64 against the footer and the manifest, internal
// consistency) and refuses anything wrong with s3::DataCorruption naming the file. After open() the
// reader never fails on valid input; it is immutable and safe to share between threads.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "index/codec.h"
#include "index/dense_index.h"
#include "index/lexical_index.h"
#include "index/types.h"

namespace s3::index {

struct ReaderOptions {
  // Hash every byte at open (XXH3, ~10+ GB/s). Off: only sizes, headers and footers are checked.
  bool verify_checksums = true;
};

struct LayerTotals {
  int layer = 0;                // real layer number
  uint64_t postings = 0;        // over all segments
  uint64_t postings_bytes = 0;  // encoded posting bytes (data areas)
  uint64_t file_bytes = 0;      // postings files including headers, df and offset tables
};

struct SegmentSummary {
  std::string dir;
  uint32_t doc_base = 0, n_docs = 0;
  uint32_t token_base = 0, n_tokens = 0;
  uint32_t passage_base = 0, n_passages = 0;
  uint64_t file_bytes = 0;
};

class IndexReader {
 public:
  static IndexReader open(const std::filesystem::path& dir, ReaderOptions options = {});
  ~IndexReader();
  IndexReader(IndexReader&&) noexcept;
  IndexReader& operator=(IndexReader&&) noexcept;

  const std::filesystem::path& dir() const;
  const nlohmann::json& manifest() const;  // the whole manifest.json
  const nlohmann::json& metadata() const;  // the caller's blob stored by the writer
  // kLexicalOnly: layers() is empty, d_latent() 0, and there are no postings to read.
  IndexContent content() const;
  std::span<const int> layers() const;  // real layer numbers; index = layer slot
  uint32_t d_latent() const;
  const PostingCodec& codec() const;
  std::span<const SegmentSummary> segments() const;

  // Documents and tokens (global ids and positions).
  uint32_t n_documents() const;
  uint32_t n_tokens() const;
  DocumentView document(uint32_t doc) const;      // throws std::out_of_range
  uint32_t document_at(uint32_t position) const;  // the document holding a global position
  std::span<const int32_t> token_ids(uint32_t doc) const;
  std::span<const TokenOffset> token_offsets(
      uint32_t doc) const;  // byte ranges in document(doc).text
  // Exact text of tokens [token_begin, token_end) of one document: from the first token's begin to
  // the last token's end. Throws std::out_of_range if the range is empty or crosses documents.
  std::string_view text_of(uint32_t token_begin, uint32_t token_end) const;

  // Postings. df is the length of a posting list (the number of positions), summed over segments.
  uint32_t df(uint32_t layer_slot, uint32_t feature) const;
  std::span<const uint32_t> df(uint32_t layer_slot) const;  // d_latent entries, contiguous
  // Replaces `out` with the sorted global positions where `feature` was active at `layer_slot`.
  void postings(uint32_t layer_slot, uint32_t feature, std::vector<uint32_t>& out) const;
  // The same, but segments holding no position of [begin, end) are skipped (positions outside it
  // may still appear: the caller ignores them). `out` keeps its capacity, so steady state allocates
  // nothing.
  void postings(uint32_t layer_slot, uint32_t feature, uint32_t begin, uint32_t end,
                std::vector<uint32_t>& out) const;
  LayerTotals totals(uint32_t layer_slot) const;
  // Adds `weight` to acc[p - begin] for every position p of the feature's list in [begin, end)
  // (acc covers [begin, end)), decoding and adding in one pass; the same checks as postings().
  void add_postings(uint32_t layer_slot, uint32_t feature, uint32_t begin, uint32_t end,
                    float weight, float* acc) const;
  uint64_t total_postings() const;
  uint64_t total_file_bytes() const;  // every file of every segment (manifest.json excluded)

  const LexicalIndex& lexical() const;
  // Dense passage embeddings (global passage ids, lexical()'s passages); null when the index was
  // built without them.
  const DenseIndex* dense() const;

 private:
  struct Impl;
  explicit IndexReader(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace s3::index
