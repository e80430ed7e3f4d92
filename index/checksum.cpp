#include "index/checksum.h"

#include <xxhash.h>

#include <stdexcept>

namespace s3::index {

uint64_t xxh3_64(const void* data, size_t size) {
  return XXH3_64bits(data, size);
}

struct StreamingHash::State {
  XXH3_state_t* s = nullptr;
  State() {
    s = XXH3_createState();
    if (s == nullptr) throw std::bad_alloc();
    XXH3_64bits_reset(s);
  }
  ~State() { XXH3_freeState(s); }
  State(const State&) = delete;
  State& operator=(const State&) = delete;
};

StreamingHash::StreamingHash() : state_(std::make_unique<State>()) {}
StreamingHash::~StreamingHash() = default;
StreamingHash::StreamingHash(StreamingHash&&) noexcept = default;
StreamingHash& StreamingHash::operator=(StreamingHash&&) noexcept = default;

void StreamingHash::update(const void* data, size_t size) {
  if (size != 0) XXH3_64bits_update(state_->s, data, size);
}

uint64_t StreamingHash::digest() const {
  return XXH3_64bits_digest(state_->s);
}

std::string checksum_hex(uint64_t value) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i) {
    out[static_cast<size_t>(i)] = kDigits[value & 0xF];
    value >>= 4;
  }
  return out;
}

std::optional<uint64_t> parse_checksum_hex(std::string_view s) {
  if (s.size() != 16) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    int d;
    if (c >= '0' && c <= '9') {
      d = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      d = c - 'a' + 10;
    } else {
      return std::nullopt;
    }
    v = (v << 4) | static_cast<uint64_t>(d);
  }
  return v;
}

}  // namespace s3::index
