// Checksums of index files: XXH3-64 (xxHash 0.8, seed 0), written as 16 lower-case hex digits in
// the manifest and as a little-endian uint64 in each file's footer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace s3::index {

uint64_t xxh3_64(const void* data, size_t size);
inline uint64_t xxh3_64(std::string_view s) {
  return xxh3_64(s.data(), s.size());
}

// Incremental XXH3-64 over a byte stream (same result as one xxh3_64 call over the concatenation).
class StreamingHash {
 public:
  StreamingHash();
  ~StreamingHash();
  StreamingHash(StreamingHash&&) noexcept;
  StreamingHash& operator=(StreamingHash&&) noexcept;
  void update(const void* data, size_t size);
  uint64_t digest() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

std::string checksum_hex(uint64_t value);                        // 16 hex digits
std::optional<uint64_t> parse_checksum_hex(std::string_view s);  // nullopt unless 16 hex digits

}  // namespace s3::index
