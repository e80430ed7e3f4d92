// Dense passage embeddings: dense.bin of every segment (docs/index-format.md), one unit-length
// float16 vector per BM25 passage, in lexical.bin's passage order. Written at commit from the
// vectors the caller computed (the index layer never computes embeddings); read through
// DenseIndex, which presents all segments with global passage ids.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "index/file_format.h"

namespace s3::index {

// Writes dense.bin: `rows` holds n_passages x dim float16 values.
FileDigest write_dense_file(const std::filesystem::path& path, std::span<const uint16_t> rows,
                            uint32_t n_passages, uint32_t dim, bool fsync);

// One segment's vectors (a view into its mapped dense.bin), validated at open.
struct DenseSegment {
  std::span<const uint16_t> rows;  // n_passages x dim
  uint32_t passage_base = 0;       // global id of the segment's first passage
  uint32_t n_passages = 0;

  // Parses a dense.bin body; throws DataCorruption naming `path` unless it holds exactly
  // `n_passages` float16 rows of `dim` values.
  static DenseSegment parse(std::span<const uint8_t> body, const std::string& path,
                            uint32_t n_passages, uint32_t dim);
};

class DenseIndex {
 public:
  DenseIndex(uint32_t dim, std::vector<DenseSegment> segments);

  uint32_t dim() const { return dim_; }
  uint32_t n_passages() const { return n_passages_; }
  // Passage p's vector (global id), converted to float; out.size() must be dim().
  void vector(uint32_t passage, std::span<float> out) const;
  // The stored float16 values of passage p.
  std::span<const uint16_t> raw(uint32_t passage) const;

 private:
  uint32_t dim_ = 0;
  uint32_t n_passages_ = 0;
  std::vector<DenseSegment> segments_;
};

}  // namespace s3::index
