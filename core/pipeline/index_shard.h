// How `s3attn index` splits its input between the W processes of a sharded run (docs/scale-out.md,
// "How the work is split"). The documents' texts, concatenated in input order, are cut into W
// equal byte ranges. A chunk (`--chunk` tokens of one document, counted from the document's first
// token) belongs to the rank whose range holds the first byte of its first token. So a rank scans
// a run of whole chunks, in one document or across several, and many small documents and one long
// document split alike. Chunk boundaries depend only on each document's own tokens, so the ranks
// scan exactly the chunks one process scans, and their parts merge into the index one process
// builds. Every rank computes the same split from the input alone, without talking to the others.
// Free of LibTorch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/pipeline/documents.h"
#include "index/index_part.h"
#include "index/types.h"

namespace s3 {

class IndexShard {
 public:
  // Rank `rank` of `world` (0 <= rank < world) over `documents` (in input order, none empty).
  IndexShard(std::span<const Document> documents, int rank, int world);

  int rank() const { return rank_; }
  int world() const { return world_; }

  // The documents this rank tokenizes: [first_document(), end_document()), those overlapping its
  // bytes (at least the one holding its first byte, which a rank without a chunk keeps).
  size_t first_document() const { return first_doc_; }
  size_t end_document() const { return end_doc_; }
  // Whether document d begins inside this rank's bytes (so its first chunk may be this rank's).
  bool starts_inside(size_t d) const { return bases_[d] >= lo_ && bases_[d] < hi_; }

  // Chunks [first, end) of document d that this rank scans, given the byte offsets of the
  // document's tokens and the chunk size: those whose first token starts in this rank's bytes
  // (a token without text at the very end counts as the document's last byte). For the document
  // a rank without chunks keeps, first == end is where its bytes begin.
  struct Chunks {
    int64_t first = 0;
    int64_t end = 0;
  };
  Chunks chunks(size_t d, std::span<const index::TokenOffset> offsets, int64_t chunk) const;

  // The part record's rank, world size and input fields (the scan fills in the range).
  index::PartRecord part_record() const;

 private:
  int rank_ = 0;
  int world_ = 1;
  std::vector<uint64_t> bases_;  // first byte of each document in the concatenation; n + 1 entries
  uint64_t lo_ = 0, hi_ = 0;     // this rank's bytes [lo_, hi_)
  size_t first_doc_ = 0, end_doc_ = 0;
  std::string fingerprint_;  // XXH3-64 of every document's name and text, 16 hex digits
};

}  // namespace s3
