// In-memory posting lists of one tapped layer of one segment while it is being written.
//
// Each feature f in [0, d_latent) owns a growable byte buffer holding its positions (segment-local,
// strictly increasing) already delta-coded as varint-delta (varint_codec.h): a posting costs one
// ctz + one subtraction + (almost always) one byte store, with no per-posting allocation. Buffers
// grow geometrically with realloc. At commit the buffers are either written as they are (codec
// varint-delta) or transcoded to another codec feature by feature, in parallel.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "index/codec.h"

namespace s3::index {

class PostingAccumulator {
 public:
  explicit PostingAccumulator(uint32_t d_latent);
  ~PostingAccumulator();
  PostingAccumulator(PostingAccumulator&&) noexcept;
  PostingAccumulator& operator=(PostingAccumulator&&) noexcept;
  PostingAccumulator(const PostingAccumulator&) = delete;
  PostingAccumulator& operator=(const PostingAccumulator&) = delete;

  // Feature-major bitmap of tokens [begin, begin + n_tokens) (segment-local positions):
  // bits[f * words + w], words = ceil(n_tokens / 64), bit (t % 64) of word (t / 64) set iff feature
  // f is active at token begin + t. Bits at t >= n_tokens are ignored. Preconditions (checked by
  // IndexWriter): begin >= frontier(), begin + n_tokens <= kMaxTokens.
  void add_bitmap(uint32_t begin, uint32_t n_tokens, const uint64_t* bits);

  // Token-major ids [n_tokens][n_slots]; negative ids are skipped, repeated ids of one token give
  // one posting. Preconditions as add_bitmap, plus every id < d_latent.
  void add_ids(uint32_t begin, uint32_t n_tokens, uint32_t n_slots, const int32_t* ids);

  // Sorted lists of tokens [begin, begin + n_tokens), feature by feature (merging index parts):
  // fetch(f, out) replaces `out` with feature f's positions, segment-local, strictly increasing and
  // inside the range. Features are fetched and appended from up to `threads` threads at once, so
  // `fetch` must be thread-safe. A list out of order or out of range throws s3::Error naming the
  // feature and leaves the accumulator as it was. Preconditions as add_bitmap.
  using ListFetch = std::function<void(uint32_t feature, std::vector<uint32_t>& out)>;
  void add_lists(uint32_t begin, uint32_t n_tokens, const ListFetch& fetch, unsigned threads);

  // End of the last range fed (ranges must come in increasing position order).
  uint32_t frontier() const { return frontier_; }
  uint32_t d_latent() const { return static_cast<uint32_t>(features_.size()); }
  uint32_t df(uint32_t f) const { return features_[f].df; }
  std::span<const uint8_t> bytes(uint32_t f) const {
    return {features_[f].data, features_[f].size};
  }
  uint64_t n_postings() const;
  uint64_t n_bytes() const;

  // Re-encodes every feature's list with `codec` (no-op for varint-delta), spreading features over
  // `threads` threads. Afterwards bytes(f) holds the codec's encoding; no more postings may be
  // added.
  void transcode(const PostingCodec& codec, unsigned threads);

  // Decodes feature f (only before transcode()); for tests and the bench.
  void decode(uint32_t f, std::vector<uint32_t>& out) const;

 private:
  struct Feature {
    uint8_t* data = nullptr;
    size_t size = 0;
    size_t cap = 0;
    uint32_t prev = 0xFFFFFFFFu;  // last position, or 0xFFFFFFFF when none yet
    uint32_t df = 0;
  };
  static void reserve(Feature& ft, size_t extra);
  void release() noexcept;

  std::vector<Feature> features_;
  uint32_t frontier_ = 0;
  bool sealed_ = false;
};

}  // namespace s3::index
