// Read-only memory map of a whole file (RAII, move-only).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>

namespace s3::index {

class MappedFile {
 public:
  MappedFile() = default;
  // Maps `path` read-only. Throws s3::DataCorruption(path, ...) when it is missing or unreadable
  // (for an index, a missing file means an incomplete index).
  static MappedFile open(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  const std::string& path() const { return path_; }

 private:
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::string path_;
  void reset() noexcept;
};

}  // namespace s3::index
