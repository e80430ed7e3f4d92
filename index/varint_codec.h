// Codec 1, "varint-delta": for a list v0 < v1 < ... the bytes are LEB128(v0), LEB128(v1 - v0 - 1),
// LEB128(v2 - v1 - 1), ... ("d-gaps minus one", so consecutive positions cost one 0x00 byte).
// This is also the in-memory format of the posting accumulator, so with this codec commit writes
// the accumulated buffers as they are.
#pragma once

#include "index/codec.h"

namespace s3::index {

class VarintDeltaCodec final : public PostingCodec {
 public:
  static constexpr uint32_t kId = 1;
  std::string_view name() const override { return "varint-delta"; }
  uint32_t id() const override { return kId; }
  std::string_view description() const override {
    return "LEB128 of d-gaps minus one; ~1 byte/posting at SAE densities, scalar decode";
  }
  size_t encode(std::span<const uint32_t> values, std::vector<uint8_t>& out) const override;
  size_t decode(std::span<const uint8_t> data, size_t n, uint32_t* out) const override;
  size_t decode_add(std::span<const uint8_t> data, size_t n, const AddTarget& target,
                    uint32_t* last) const override;
};

}  // namespace s3::index
