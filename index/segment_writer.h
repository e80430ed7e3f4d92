// Writes one segment directory (docs, text, tokens, postings per layer, lexical, dense) from the
// writer's in-memory content. Internal to IndexWriter; separate so the file layouts sit in one
// place.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "index/codec.h"
#include "index/file_format.h"
#include "index/lexical_index.h"
#include "index/posting_accumulator.h"
#include "index/types.h"

namespace s3::index {

// Documents of one segment, all positions segment-local.
struct SegmentContent {
  std::vector<std::string> names;
  std::string texts;  // concatenated texts
  std::vector<uint64_t> text_offsets{
      0};  // doc d's text is texts[text_offsets[d], text_offsets[d+1])
  std::vector<uint32_t> token_offsets{
      0};  // doc d's tokens are [token_offsets[d], token_offsets[d+1])
  std::vector<int32_t> ids;
  std::vector<TokenOffset> offsets;
  uint32_t n_docs() const { return static_cast<uint32_t>(names.size()); }
  uint32_t n_tokens() const { return static_cast<uint32_t>(ids.size()); }
};

// Dense passage vectors of the segment (float16, passage order); dim 0 = none.
struct DenseRows {
  uint32_t dim = 0;
  std::vector<uint16_t> values;
};

struct SegmentWriteResult {
  std::map<std::string, FileDigest> files;
  std::vector<uint64_t> postings;        // per layer slot
  std::vector<uint64_t> postings_bytes;  // per layer slot
  uint32_t n_passages = 0;
};

// Transcodes the accumulators to `codec` and writes every file of the segment into `dir` (which
// exists and is empty), using up to `threads` threads. Does not fsync the directory itself.
SegmentWriteResult write_segment(const std::filesystem::path& dir, const SegmentContent& content,
                                 std::vector<PostingAccumulator>& layers,
                                 const std::vector<int>& layer_ids, const PostingCodec& codec,
                                 const LexicalOptions& lexical, const DenseRows& dense,
                                 unsigned threads, bool fsync);

}  // namespace s3::index
