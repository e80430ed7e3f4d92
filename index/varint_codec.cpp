#include "index/varint_codec.h"

#include <cstring>

#include "index/varint.h"

namespace s3::index {

size_t VarintDeltaCodec::encode(std::span<const uint32_t> values, std::vector<uint8_t>& out) const {
  const size_t start = out.size();
  out.resize(start + values.size() * varint::kMaxBytes32);
  uint8_t* p = out.data() + start;
  uint32_t prev = std::numeric_limits<uint32_t>::max();  // so the first gap is v0 itself
  for (uint32_t v : values) {
    p = varint::encode(v - prev - 1, p);
    prev = v;
  }
  out.resize(static_cast<size_t>(p - out.data()));
  return out.size() - start;
}

namespace {

// The decoder, parameterized by what happens to value i (v: a uint32 held in 64 bits).
template <class Emit>
size_t decode_with(std::span<const uint8_t> data, size_t n, Emit emit) {
  const uint8_t* p = data.data();
  const uint8_t* end = p + data.size();
  uint64_t prev = std::numeric_limits<uint64_t>::max();  // -1: first value is the first gap
  size_t i = 0;
  // Fast path while at least 5 * 4 bytes remain, no bounds checks: eight single-byte gaps at once
  // when one test of their continuation bits allows (dense lists are mostly gaps < 128), else one
  // gap.
  while (i < n && end - p >= 20) {
    if (n - i >= 8) {
      uint64_t word;
      std::memcpy(&word, p, sizeof word);
      if ((word & 0x8080808080808080ull) == 0) {
        for (size_t j = 0; j < 8; ++j) {
          prev = prev + 1 + p[j];
          emit(i + j, prev);
        }
        p += 8;
        i += 8;
        continue;
      }
    }
    uint32_t g;
    if (*p < 0x80) {
      g = *p++;
    } else {
      p = varint::decode(p, end, g);
      if (p == nullptr) return PostingCodec::kDecodeError;
    }
    prev = prev + 1 + g;
    emit(i++, prev);
  }
  for (; i < n; ++i) {
    uint32_t g;
    p = varint::decode(p, end, g);
    if (p == nullptr) return PostingCodec::kDecodeError;
    prev = prev + 1 + g;
    if (prev > std::numeric_limits<uint32_t>::max()) return PostingCodec::kDecodeError;
    emit(i, prev);
  }
  // Values only grow: the last one is the largest.
  if (n > 0 && prev > std::numeric_limits<uint32_t>::max()) return PostingCodec::kDecodeError;
  return static_cast<size_t>(p - data.data());
}

}  // namespace

size_t VarintDeltaCodec::decode(std::span<const uint8_t> data, size_t n, uint32_t* out) const {
  return decode_with(data, n, [out](size_t i, uint64_t v) { out[i] = static_cast<uint32_t>(v); });
}

size_t VarintDeltaCodec::decode_add(std::span<const uint8_t> data, size_t n,
                                    const AddTarget& target, uint32_t* last) const {
  float* const acc = target.acc;
  const float weight = target.weight;
  const uint64_t offset = target.shift - target.lo;  // modulo 2^64, like q below
  const uint64_t span = target.hi - target.lo;
  uint64_t final_value = 0;
  const size_t used = decode_with(data, n, [&](size_t, uint64_t v) {
    const uint64_t q = v + offset;  // wraps above span when v + shift < lo
    if (q < span) acc[q] += weight;
    final_value = v;
  });
  if (used != kDecodeError && n > 0) *last = static_cast<uint32_t>(final_value);
  return used;
}

}  // namespace s3::index
