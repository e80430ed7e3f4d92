// Plain value types shared by every stage of retrieval/: token ranges, candidates from each source,
// and the packer's selected ranges. Positions are GLOBAL token positions of the index (uint32_t,
// the index's posting type); a document occupies [doc.begin, doc.end).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace s3::retrieval {

// Half-open range of global token positions [begin, end). Invariant: begin <= end.
struct TokenRange {
  uint32_t begin = 0;
  uint32_t end = 0;

  uint32_t size() const { return end - begin; }
  bool empty() const { return end <= begin; }
  bool contains(uint32_t t) const { return t >= begin && t < end; }
  friend bool operator==(const TokenRange&, const TokenRange&) = default;
};

// Where a selected range came from. Stable names: "s3" | "bm25" | "lead" | "tail" | "dense".
enum class Source : uint8_t { kS3 = 0, kBm25 = 1, kLead = 2, kTail = 3, kDense = 4 };
inline constexpr size_t kSourceCount = 5;

std::string_view source_name(Source s);

// One scored candidate region offered to the packer: an S3 span or a BM25 / dense passage.
// `anchor` is the position a too-long candidate is trimmed around: the peak of an S3 span, the
// first token of a passage (its prefix is kept). Invariant: range.begin <= anchor < range.end.
struct Candidate {
  TokenRange range;
  uint32_t anchor = 0;
  float score = 0;
};

// One range of the packer's output. Ranges of a selection are sorted, non-overlapping and maximal
// per source (touching ranges of the same source are merged; score = the max of the merged ones).
// Lead and tail ranges have score 0.
struct SelectedRange {
  TokenRange range;
  Source source = Source::kS3;
  float score = 0;
};

}  // namespace s3::retrieval
