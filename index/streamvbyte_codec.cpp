#include "index/streamvbyte_codec.h"

#include <streamvbyte.h>
#include <streamvbytedelta.h>

#include <array>
#include <cstring>

namespace s3::index {

namespace {

// The SIMD decoder loads 16 bytes at a time and may read up to this many bytes past the encoding.
constexpr size_t kDecodeSlack = 16;

// Data bytes described by one full control byte (four 2-bit codes, each 1..4 bytes).
constexpr std::array<uint8_t, 256> make_key_lengths() {
  std::array<uint8_t, 256> t{};
  for (int k = 0; k < 256; ++k) {
    t[static_cast<size_t>(k)] = static_cast<uint8_t>(((k & 3) + 1) + ((k >> 2 & 3) + 1) +
                                                     ((k >> 4 & 3) + 1) + ((k >> 6 & 3) + 1));
  }
  return t;
}
constexpr std::array<uint8_t, 256> kKeyLengths = make_key_lengths();

// Exact encoded size of n values, read from the control bytes; kDecodeError if they run past data.
size_t encoded_size(std::span<const uint8_t> data, size_t n) {
  const size_t n_keys = (n + 3) / 4;
  if (n_keys > data.size()) return PostingCodec::kDecodeError;
  size_t total = n_keys;
  const size_t full = n / 4;
  for (size_t i = 0; i < full; ++i)
    total += kKeyLengths[data[i]];
  for (size_t j = 0; j < n % 4; ++j)
    total += ((data[full] >> (2 * j)) & 3) + 1;
  return total;
}

}  // namespace

size_t StreamVByteDeltaCodec::encode(std::span<const uint32_t> values,
                                     std::vector<uint8_t>& out) const {
  const size_t start = out.size();
  const auto n = static_cast<uint32_t>(values.size());
  out.resize(start + streamvbyte_max_compressedbytes(n));
  size_t written = streamvbyte_delta_encode(values.data(), n, out.data() + start, 0);
  out.resize(start + written);
  return written;
}

size_t StreamVByteDeltaCodec::decode(std::span<const uint8_t> data, size_t n, uint32_t* out) const {
  if (n == 0) return 0;
  if (n > std::numeric_limits<uint32_t>::max()) return kDecodeError;
  const size_t size = encoded_size(data, n);
  if (size == kDecodeError || size > data.size()) return kDecodeError;
  size_t used;
  if (data.size() - size >= kDecodeSlack) {
    used = streamvbyte_delta_decode(data.data(), out, static_cast<uint32_t>(n), 0);
  } else {  // too close to the end of the buffer for the SIMD over-read: decode from a padded copy
    std::vector<uint8_t> padded(size + kDecodeSlack, 0);
    std::memcpy(padded.data(), data.data(), size);
    used = streamvbyte_delta_decode(padded.data(), out, static_cast<uint32_t>(n), 0);
  }
  if (used != size) return kDecodeError;
  // A d-gap of 0 repeats a position and one past 2^32 wraps to a smaller one: neither encodes a
  // strictly increasing list (the reader's bound on the last position then bounds them all).
  for (size_t i = 1; i < n; ++i) {
    if (out[i] <= out[i - 1]) return kDecodeError;
  }
  return size;
}

}  // namespace s3::index
