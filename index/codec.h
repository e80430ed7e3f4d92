// Posting-list codecs: one small interface, implementations found by name or by a stable integer id
// (codec_registry.h). A posting list is a strictly increasing sequence of uint32 token positions;
// its length is stored outside the encoding (the df array), so decode() is told n.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string_view>
#include <vector>

namespace s3::index {

class PostingCodec {
 public:
  virtual ~PostingCodec() = default;

  // Stable name (what options, manifests and the CLI use) and stable id (what files store).
  // Ids are never reused, even after a codec is removed (docs/index-format.md, "Codec ids").
  virtual std::string_view name() const = 0;
  virtual uint32_t id() const = 0;
  virtual std::string_view description() const = 0;

  // Appends the encoding of `values` (strictly increasing) to `out`; returns the bytes appended.
  virtual size_t encode(std::span<const uint32_t> values, std::vector<uint8_t>& out) const = 0;

  // Decodes n values from the front of `data` into out[0, n); returns the bytes the encoding took
  // (exactly what encode() appended), or kDecodeError if it is malformed or runs past `data`.
  // `data` may extend beyond the encoding; decoders never read outside `data`.
  virtual size_t decode(std::span<const uint8_t> data, size_t n, uint32_t* out) const = 0;

  // Where decode_add adds: `weight` to acc[v + shift - lo] for every decoded value v with
  // lo <= v + shift < hi (v + shift is a global position; acc covers [lo, hi)).
  struct AddTarget {
    float* acc = nullptr;
    float weight = 0;
    uint64_t shift = 0;
    uint64_t lo = 0, hi = 0;
  };
  // Decodes like decode() but adds to `target` instead of storing the values (scoring reads each
  // list once), in list order; *last is the last value when n > 0. Returns what decode() returns.
  // The default decodes into a buffer first; a codec may fuse the two.
  virtual size_t decode_add(std::span<const uint8_t> data, size_t n, const AddTarget& target,
                            uint32_t* last) const;

  static constexpr size_t kDecodeError = std::numeric_limits<size_t>::max();
};

}  // namespace s3::index
