// Codec 2, "streamvbyte-delta": libstreamvbyte's delta coding (d-gaps, previous = 0) in the
// StreamVByte layout: ceil(n/4) control bytes (2 bits per value: 1..4 data bytes), then the data
// bytes. SIMD decode; at least 1.25 bytes/posting.
#pragma once

#include "index/codec.h"

namespace s3::index {

class StreamVByteDeltaCodec final : public PostingCodec {
 public:
  static constexpr uint32_t kId = 2;
  std::string_view name() const override { return "streamvbyte-delta"; }
  uint32_t id() const override { return kId; }
  std::string_view description() const override {
    return "libstreamvbyte on d-gaps; >= 1.25 bytes/posting, SIMD decode";
  }
  size_t encode(std::span<const uint32_t> values, std::vector<uint8_t>& out) const override;
  size_t decode(std::span<const uint8_t> data, size_t n, uint32_t* out) const override;
};

}  // namespace s3::index
