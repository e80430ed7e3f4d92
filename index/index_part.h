// One part of a sharded index build (docs/scale-out.md). Rank R of W scans its share of the input
// and commits it as an ordinary index at <INDEX>.part-R-of-W: the input documents it touches
// (whole: text, token ids, offsets) and the postings of its tokens only. This record, stored under
// the manifest metadata's "part" key, says which share that is; merge_parts (index_merge.h) checks
// the records of all W parts against each other and joins them.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

namespace s3::index {

inline constexpr const char* kPartKey = "part";

// A token boundary of the input: token `token` of input document `doc` (0 .. its token count).
struct PartPosition {
  uint64_t doc = 0;
  uint32_t token = 0;
  friend bool operator==(const PartPosition&, const PartPosition&) = default;
  friend auto operator<=>(const PartPosition&, const PartPosition&) = default;
};

struct PartRecord {
  uint32_t rank = 0;
  uint32_t world = 1;
  // The whole input, the same for every rank of one build.
  uint64_t input_documents = 0;
  uint64_t input_bytes = 0;   // of the documents' texts
  std::string input_xxh3_64;  // 16 hex digits over every document's name and text
  // Input documents [doc_begin, doc_end) are this part's documents 0 .. doc_end - doc_begin - 1.
  uint64_t doc_begin = 0;
  uint64_t doc_end = 0;
  // The part holds the postings of the tokens from `begin` to `end` (input order). Empty parts
  // (begin == end, a rank whose share holds no chunk start) hold one document and no postings.
  PartPosition begin;
  PartPosition end;

  nlohmann::json to_json() const;
  // Throws DataCorruption(where, ...) when a field is missing or ill-typed.
  static PartRecord from_json(const nlohmann::json& j, const std::string& where);
};

// <index>.part-<rank>-of-<world>, beside the index.
std::filesystem::path part_path(const std::filesystem::path& index, uint32_t rank, uint32_t world);

}  // namespace s3::index
