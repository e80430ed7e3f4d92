// safetensors files (https://github.com/huggingface/safetensors), read and written without
// LibTorch.
//
// Layout: [u64 little-endian N][N bytes of UTF-8 JSON header][data buffer]. The header maps each
// tensor name to {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]} (offsets relative to
// the data buffer) plus an optional "__metadata__" object of string -> string. The data buffer is
// covered exactly by the tensors: no overlaps, no holes, no trailing bytes (as the reference Rust
// implementation requires). Bytes are little-endian, row-major.
//
// Reading maps the file (mmap) and validates the whole header up front; any violation is an
// s3::DataCorruption naming the file. Writing goes to "<path>.tmp" and is renamed into place.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace s3::sae {

// Element types of the safetensors format. Values are stable (never reuse one).
enum class Dtype : uint8_t {
  kBool = 0,
  kU8 = 1,
  kI8 = 2,
  kI16 = 3,
  kU16 = 4,
  kF16 = 5,
  kBF16 = 6,
  kI32 = 7,
  kU32 = 8,
  kF32 = 9,
  kF64 = 10,
  kI64 = 11,
  kU64 = 12,
  kF8E4M3 = 13,
  kF8E5M2 = 14,
};

// "F32", "BF16", ... as written in headers.
std::string_view dtype_name(Dtype dtype);
// Bytes per element.
size_t dtype_size(Dtype dtype);
// Parses a header dtype name; false when unknown.
bool parse_dtype(std::string_view name, Dtype* out);

struct TensorInfo {
  std::string name;
  Dtype dtype = Dtype::kF32;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // byte offsets into the data buffer, [begin, end)
  uint64_t end = 0;

  int64_t numel() const;
  uint64_t nbytes() const { return end - begin; }
};

// A validated, read-only safetensors file (memory-mapped) or byte buffer. Move-only.
class SafetensorsFile {
 public:
  // Throws s3::Error when the file cannot be opened, s3::DataCorruption when it is malformed.
  static SafetensorsFile open(const std::filesystem::path& path);
  // Parses bytes held in memory; `name` is used in error messages.
  static SafetensorsFile from_bytes(std::vector<std::byte> bytes, const std::string& name);

  SafetensorsFile(SafetensorsFile&&) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&&) noexcept;
  ~SafetensorsFile();

  // The file name given to open() / from_bytes(), for messages.
  const std::string& path() const;
  // Tensors sorted by name.
  const std::vector<TensorInfo>& tensors() const;
  // nullptr when absent.
  const TensorInfo* find(std::string_view name) const;
  // Throws s3::DataCorruption("missing tensor ...") when absent.
  const TensorInfo& at(std::string_view name) const;
  // The tensor's raw little-endian bytes (valid while this object lives).
  std::span<const std::byte> data(const TensorInfo& info) const;
  const std::map<std::string, std::string>& metadata() const;

 private:
  struct Impl;
  explicit SafetensorsFile(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Collects tensors and writes one safetensors file. Data is copied on add().
class SafetensorsWriter {
 public:
  // Throws s3::Error on a duplicate or empty name, or when data.size() != numel * dtype_size.
  void add(const std::string& name, Dtype dtype, std::vector<int64_t> shape,
           std::span<const std::byte> data);
  void set_metadata(std::map<std::string, std::string> metadata);
  // The complete file image. Tensors are laid out by decreasing element size, then by name, and
  // the header is padded with spaces to a multiple of 8 bytes, so every tensor is aligned.
  std::vector<std::byte> serialize() const;
  // Writes serialize() to `path` atomically (temporary file + rename). Throws s3::Error.
  void write(const std::filesystem::path& path) const;

 private:
  struct Entry {
    std::string name;
    Dtype dtype;
    std::vector<int64_t> shape;
    std::vector<std::byte> bytes;
  };
  std::vector<Entry> entries_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace s3::sae
