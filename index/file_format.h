// The envelope every binary index file shares (docs/index-format.md, "Common envelope"):
//
//   offset 0   char[4]  magic "S3IX"
//          4   char[4]  kind tag: "DOCS", "TEXT", "TOKS", "POST", "LEXI", "DENS"
//          8   u32      format version (kFormatVersion)
//         12   u32      reserved, 0
//         16   ...      body (kind-specific, documented in docs/index-format.md)
//   size-16    u64      XXH3-64 of bytes [0, size-16)
//   size-8     char[8]  footer magic "S3IXEND\0"
//
// All integers are little-endian. FileWriter writes this envelope around a body streamed through
// it; open_checked() maps a file and checks it against the manifest before handing out the body.
#pragma once

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "index/checksum.h"
#include "index/mapped_file.h"

namespace s3::index {

// Version of the binary files and of manifest.json. Bump on any incompatible layout change; readers
// refuse other versions (docs/index-format.md, "Versioning").
inline constexpr uint32_t kFormatVersion = 1;
inline constexpr size_t kHeaderBytes = 16;
inline constexpr size_t kFooterBytes = 16;

enum class FileKind : uint32_t { kDocs, kText, kTokens, kPostings, kLexical, kDense };
std::string_view kind_tag(FileKind kind);  // "DOCS", ...

// Size and checksum of a finished file, as recorded in the manifest.
struct FileDigest {
  uint64_t bytes = 0;
  uint64_t xxh3 = 0;
};

// Buffered, checksumming writer of one index file. Creates the file (it must not exist), writes the
// header at construction, the footer in finish(). Throws s3::Error naming the path on I/O errors.
class FileWriter {
 public:
  FileWriter(const std::filesystem::path& path, FileKind kind);
  ~FileWriter();
  FileWriter(const FileWriter&) = delete;
  FileWriter& operator=(const FileWriter&) = delete;

  void write(const void* data, size_t size);
  template <class T>
  void write_pod(const T& value) {
    static_assert(std::is_trivially_copyable_v<T>);
    write(&value, sizeof(T));
  }
  template <class T>
  void write_span(std::span<const T> values) {
    static_assert(std::is_trivially_copyable_v<T>);
    write(values.data(), values.size_bytes());
  }
  void pad_to(size_t alignment);  // zero bytes until position() is a multiple of alignment
  uint64_t position() const { return position_; }
  // Writes the footer, flushes, optionally fsyncs, closes. Returns size and checksum.
  FileDigest finish(bool fsync);

 private:
  void flush();
  std::string path_;
  int fd_ = -1;
  std::vector<uint8_t> buffer_;
  size_t used_ = 0;
  uint64_t position_ = 0;
  StreamingHash hash_;
};

// A mapped, checked index file: body() is the bytes between header and footer.
struct CheckedFile {
  MappedFile file;
  std::span<const uint8_t> body;
};

// Maps `path` and checks, in this order, each failure a s3::DataCorruption naming the file: it
// exists; its size equals expected.bytes (else "truncated"/"has extra bytes"); header magic and
// kind; format version; footer magic; footer checksum equals expected.xxh3; and, when
// verify_checksum, that the bytes hash to it.
CheckedFile open_checked(const std::filesystem::path& path, FileKind kind,
                         const FileDigest& expected, bool verify_checksum);

// Cursor over a body with bounds checks; every overrun is a DataCorruption naming the file.
class BodyReader {
 public:
  BodyReader(std::span<const uint8_t> body, std::string path)
      : body_(body), path_(std::move(path)) {}
  template <class T>
  T read_pod() {
    static_assert(std::is_trivially_copyable_v<T>);
    need(sizeof(T));
    T v;
    std::memcpy(&v, body_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  // A typed array view into the mapping. The position must be suitably aligned for T (the writer
  // pads).
  template <class T>
  std::span<const T> read_array(uint64_t count) {
    static_assert(std::is_trivially_copyable_v<T>);
    if (count > (body_.size() - pos_) / sizeof(T)) fail("truncated array");
    if (reinterpret_cast<uintptr_t>(body_.data() + pos_) % alignof(T) != 0)
      fail("misaligned array");
    std::span<const T> out(reinterpret_cast<const T*>(body_.data() + pos_), count);
    pos_ += count * sizeof(T);
    return out;
  }
  std::span<const uint8_t> read_bytes(uint64_t count) { return read_array<uint8_t>(count); }
  void skip_to_alignment(size_t alignment);  // body starts at file offset 16, so body alignment ==
                                             // file alignment for 8 and 16
  size_t remaining() const { return body_.size() - pos_; }
  size_t position() const { return pos_; }
  [[noreturn]] void fail(const std::string& what) const;
  const std::string& path() const { return path_; }

 private:
  void need(size_t n) const {
    if (n > body_.size() - pos_) fail("truncated record");
  }
  std::span<const uint8_t> body_;
  std::string path_;
  size_t pos_ = 0;
};

}  // namespace s3::index
