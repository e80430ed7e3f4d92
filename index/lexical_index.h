// The BM25 lexical index: passages of the documents and, per analyzed term, the passages holding it
// with their term frequencies. Built at commit by LexicalBuilder (one per segment); read through
// LexicalIndex, which presents all segments with global passage ids, documents and token positions.
// The BM25 formula itself lives in retrieval/; this is only its data (N, lengths, avgdl, df, tf).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "index/file_format.h"
#include "index/segment_format.h"
#include "index/text_analyzer.h"
#include "index/types.h"

namespace s3::index {

struct LexicalOptions {
  uint32_t target_words = 100;  // passage size in words (docs/method.md §6.1: ~100-word passages)
  std::string language = "english";  // Snowball stemmer, or "none"
  void validate() const;             // s3::UsageError on a bad value
  AnalyzerOptions analyzer() const { return AnalyzerOptions{language}; }
};

// Builds one segment's lexical.bin. Documents are added in segment order.
class LexicalBuilder {
 public:
  explicit LexicalBuilder(const LexicalOptions& options);
  // `offsets` are the document's token byte ranges (begin non-decreasing); local_token_begin is the
  // document's first token in the segment.
  void add_document(uint32_t local_doc, std::string_view text, std::span<const TokenOffset> offsets,
                    uint32_t local_token_begin);
  FileDigest write(const std::filesystem::path& path, bool fsync) const;

  size_t n_passages() const { return passages_.size(); }

 private:
  LexicalOptions options_;
  TextAnalyzer analyzer_;
  std::vector<PassageRecord> passages_;
  std::unordered_map<std::string, uint32_t> term_ids_;
  std::vector<std::string> terms_;
  std::vector<std::vector<std::pair<uint32_t, uint32_t>>> postings_;  // per term id: (passage, tf)
  uint64_t total_length_ = 0;
};

// Read side of one segment (views into its mapped lexical.bin), validated at open.
struct LexicalSegment {
  LexicalHeader header{};
  std::span<const PassageRecord> passages;
  std::span<const uint64_t> term_offsets;
  std::span<const uint64_t> posting_offsets;
  std::span<const uint32_t> passage_ids;
  std::span<const uint32_t> tfs;
  std::span<const uint8_t> terms_blob;
  uint32_t doc_base = 0;      // global id of the segment's first document
  uint32_t token_base = 0;    // global position of the segment's first token
  uint32_t passage_base = 0;  // global id of the segment's first passage

  // Parses and validates a lexical.bin body; throws DataCorruption naming `path`.
  static LexicalSegment parse(std::span<const uint8_t> body, const std::string& path,
                              uint32_t n_docs, uint32_t n_tokens);
  std::string_view term(uint32_t t) const;
  // Index of `term` in the sorted vocabulary, or -1.
  int64_t find(std::string_view term) const;
};

class LexicalIndex {
 public:
  LexicalIndex() = default;
  LexicalIndex(LexicalOptions options, std::vector<LexicalSegment> segments);

  const LexicalOptions& options() const { return options_; }
  AnalyzerOptions analyzer_options() const { return options_.analyzer(); }

  uint32_t n_passages() const { return n_passages_; }  // N
  Passage passage(uint32_t p) const;                   // global ids, positions
  double avg_length() const;                           // avgdl: mean passage length in terms
  uint64_t total_length() const { return total_length_; }

  // Number of passages containing the (already analyzed) term.
  uint32_t doc_freq(std::string_view term) const;
  // Replaces `passages` with the passages holding `term` (strictly increasing global ids) and `tfs`
  // with the term's frequency in each (>= 1); both empty for an unknown term. `term` must be
  // analyzed (TextAnalyzer with analyzer_options()).
  void term_postings(std::string_view term, std::vector<uint32_t>& passages,
                     std::vector<uint32_t>& tfs) const;
  // Vocabulary entries summed over segments (a term present in two segments counts twice).
  uint64_t vocabulary_size() const;

 private:
  LexicalOptions options_;
  std::vector<LexicalSegment> segments_;
  uint32_t n_passages_ = 0;
  uint64_t total_length_ = 0;
};

}  // namespace s3::index
