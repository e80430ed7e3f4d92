#include "index/codec.h"

namespace s3::index {

size_t PostingCodec::decode_add(std::span<const uint8_t> data, size_t n, const AddTarget& target,
                                uint32_t* last) const {
  thread_local std::vector<uint32_t> values;
  values.resize(n);
  const size_t used = decode(data, n, values.data());
  if (used == kDecodeError) return used;
  const uint64_t span = target.hi - target.lo;
  for (const uint32_t v : values) {
    const uint64_t q = v + target.shift - target.lo;  // wraps above span when below lo
    if (q < span) target.acc[q] += target.weight;
  }
  if (n > 0) *last = values.back();
  return used;
}

}  // namespace s3::index
