// LEB128 (unsigned varint) helpers: 7 data bits per byte, low groups first, high bit = "more".
// A uint32 takes 1..5 bytes. Header-only because the posting accumulator inlines them in its hot
// loop.
#pragma once

#include <cstddef>
#include <cstdint>

namespace s3::index::varint {

inline constexpr size_t kMaxBytes32 = 5;

// Writes v at p (which must have kMaxBytes32 bytes of room); returns the new end.
inline uint8_t* encode(uint32_t v, uint8_t* p) {
  if (v < 0x80) {
    *p++ = static_cast<uint8_t>(v);
    return p;
  }
  while (v >= 0x80) {
    *p++ = static_cast<uint8_t>(v | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<uint8_t>(v);
  return p;
}

inline size_t encoded_size(uint32_t v) {
  return v < (1u << 7) ? 1 : v < (1u << 14) ? 2 : v < (1u << 21) ? 3 : v < (1u << 28) ? 4 : 5;
}

// Decodes one value from [p, end). Returns the new position, or nullptr when the value runs past
// end or does not fit in 32 bits (a 5th byte above 0x0F, or a 6th byte).
inline const uint8_t* decode(const uint8_t* p, const uint8_t* end, uint32_t& v) {
  if (p < end && *p < 0x80) {
    v = *p;
    return p + 1;
  }
  uint32_t result = 0;
  for (int shift = 0; shift < 35; shift += 7) {
    if (p == end) return nullptr;
    uint8_t b = *p++;
    if (shift == 28 && b > 0x0F) return nullptr;
    result |= static_cast<uint32_t>(b & 0x7F) << shift;
    if (b < 0x80) {
      v = result;
      return p;
    }
  }
  return nullptr;
}

}  // namespace s3::index::varint
