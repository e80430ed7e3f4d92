#include "index/dense_index.h"

#include <algorithm>
#include <stdexcept>

#include "core/base/error.h"
#include "index/half.h"
#include "index/segment_format.h"

namespace s3::index {

FileDigest write_dense_file(const std::filesystem::path& path, std::span<const uint16_t> rows,
                            uint32_t n_passages, uint32_t dim, bool fsync) {
  if (rows.size() != uint64_t{n_passages} * dim)
    throw Error("internal: dense rows do not match " + std::to_string(n_passages) + " passages");
  FileWriter w(path, FileKind::kDense);
  DenseHeader h{};
  h.n_passages = n_passages;
  h.dim = dim;
  h.dtype = kDenseFloat16;
  w.write_pod(h);
  w.write_span(rows);
  return w.finish(fsync);
}

DenseSegment DenseSegment::parse(std::span<const uint8_t> body, const std::string& path,
                                 uint32_t n_passages, uint32_t dim) {
  BodyReader r(body, path);
  const auto h = r.read_pod<DenseHeader>();
  if (h.dtype != kDenseFloat16) r.fail("unknown vector type " + std::to_string(h.dtype));
  if (h.dim != dim)
    r.fail("holds vectors of " + std::to_string(h.dim) + " values, the manifest says " +
           std::to_string(dim));
  if (h.n_passages != n_passages)
    r.fail("holds " + std::to_string(h.n_passages) + " vectors for " + std::to_string(n_passages) +
           " passages");
  DenseSegment s;
  s.rows = r.read_array<uint16_t>(uint64_t{h.n_passages} * h.dim);
  s.n_passages = h.n_passages;
  if (r.remaining() != 0) r.fail("trailing bytes after the vectors");
  return s;
}

DenseIndex::DenseIndex(uint32_t dim, std::vector<DenseSegment> segments)
    : dim_(dim), segments_(std::move(segments)) {
  for (const DenseSegment& s : segments_)
    n_passages_ += s.n_passages;
}

std::span<const uint16_t> DenseIndex::raw(uint32_t passage) const {
  if (passage >= n_passages_) {
    throw std::out_of_range("dense vector of passage " + std::to_string(passage) +
                            " out of range (" + std::to_string(n_passages_) + " passages)");
  }
  auto it = std::upper_bound(segments_.begin(), segments_.end(), passage,
                             [](uint32_t p, const DenseSegment& s) { return p < s.passage_base; });
  const DenseSegment& s = *(it - 1);
  return s.rows.subspan(size_t{passage - s.passage_base} * dim_, dim_);
}

void DenseIndex::vector(uint32_t passage, std::span<float> out) const {
  if (out.size() != dim_) throw std::invalid_argument("DenseIndex::vector: out has the wrong size");
  const std::span<const uint16_t> row = raw(passage);
  for (uint32_t i = 0; i < dim_; ++i)
    out[i] = half_to_float(row[i]);
}

}  // namespace s3::index
