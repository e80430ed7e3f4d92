#include "index/file_format.h"

#include <fcntl.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstring>

#include "core/base/error.h"

namespace s3::index {

static_assert(std::endian::native == std::endian::little, "the index format is little-endian");

namespace {
constexpr char kMagic[4] = {'S', '3', 'I', 'X'};
constexpr char kFooterMagic[8] = {'S', '3', 'I', 'X', 'E', 'N', 'D', '\0'};
constexpr size_t kBufferBytes = size_t{1} << 20;

std::string errno_text(int e) {
  return std::strerror(e);
}
}  // namespace

std::string_view kind_tag(FileKind kind) {
  switch (kind) {
    case FileKind::kDocs:
      return "DOCS";
    case FileKind::kText:
      return "TEXT";
    case FileKind::kTokens:
      return "TOKS";
    case FileKind::kPostings:
      return "POST";
    case FileKind::kLexical:
      return "LEXI";
    case FileKind::kDense:
      return "DENS";
  }
  return "????";
}

FileWriter::FileWriter(const std::filesystem::path& path, FileKind kind)
    : path_(path.string()), buffer_(kBufferBytes) {
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd_ < 0) throw Error("cannot create " + path_ + ": " + errno_text(errno));
  write(kMagic, 4);
  write(kind_tag(kind).data(), 4);
  write_pod<uint32_t>(kFormatVersion);
  write_pod<uint32_t>(0);
}

FileWriter::~FileWriter() {
  if (fd_ >= 0) ::close(fd_);
}

void FileWriter::flush() {
  size_t done = 0;
  while (done < used_) {
    ssize_t n = ::write(fd_, buffer_.data() + done, used_ - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error("cannot write " + path_ + ": " + errno_text(errno));
    }
    done += static_cast<size_t>(n);
  }
  used_ = 0;
}

void FileWriter::write(const void* data, size_t size) {
  if (size == 0) return;
  hash_.update(data, size);
  position_ += size;
  const auto* p = static_cast<const uint8_t*>(data);
  if (size >= buffer_.size()) {  // large writes bypass the buffer
    flush();
    size_t done = 0;
    while (done < size) {
      ssize_t n = ::write(fd_, p + done, size - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        throw Error("cannot write " + path_ + ": " + errno_text(errno));
      }
      done += static_cast<size_t>(n);
    }
    return;
  }
  if (used_ + size > buffer_.size()) flush();
  std::memcpy(buffer_.data() + used_, p, size);
  used_ += size;
}

void FileWriter::pad_to(size_t alignment) {
  static constexpr uint8_t kZeros[64] = {};
  while (position_ % alignment != 0) {
    size_t n = std::min<size_t>(alignment - position_ % alignment, sizeof(kZeros));
    write(kZeros, n);
  }
}

FileDigest FileWriter::finish(bool fsync) {
  FileDigest d;
  d.xxh3 = hash_.digest();
  uint8_t footer[kFooterBytes];
  std::memcpy(footer, &d.xxh3, 8);
  std::memcpy(footer + 8, kFooterMagic, 8);
  if (used_ + kFooterBytes > buffer_.size()) flush();
  std::memcpy(buffer_.data() + used_, footer, kFooterBytes);
  used_ += kFooterBytes;
  position_ += kFooterBytes;
  flush();
  if (fsync && ::fsync(fd_) != 0) throw Error("cannot fsync " + path_ + ": " + errno_text(errno));
  if (::close(fd_) != 0) {
    fd_ = -1;
    throw Error("cannot close " + path_ + ": " + errno_text(errno));
  }
  fd_ = -1;
  d.bytes = position_;
  return d;
}

CheckedFile open_checked(const std::filesystem::path& path, FileKind kind,
                         const FileDigest& expected, bool verify_checksum) {
  CheckedFile out;
  out.file = MappedFile::open(path);
  const std::string& p = out.file.path();
  const size_t size = out.file.size();
  const uint8_t* d = out.file.data();
  const std::string rebuild = "; rebuild the index with --overwrite";
  if (size < expected.bytes) {
    throw DataCorruption(p, "truncated: " + std::to_string(size) + " bytes, the manifest says " +
                                std::to_string(expected.bytes) + rebuild);
  }
  if (size > expected.bytes) {
    throw DataCorruption(p, "has " + std::to_string(size - expected.bytes) +
                                " bytes more than the manifest says" + rebuild);
  }
  if (size < kHeaderBytes + kFooterBytes) throw DataCorruption(p, "too short to be an index file");
  if (std::memcmp(d, kMagic, 4) != 0)
    throw DataCorruption(p, "not an s3attn index file (bad magic)");
  if (std::memcmp(d + 4, kind_tag(kind).data(), 4) != 0) {
    throw DataCorruption(p, "wrong file kind: expected " + std::string(kind_tag(kind)));
  }
  uint32_t version;
  std::memcpy(&version, d + 8, 4);
  if (version != kFormatVersion) {
    throw DataCorruption(p, "format version " + std::to_string(version) +
                                " is not supported by this build (it reads version " +
                                std::to_string(kFormatVersion) + ")" + rebuild);
  }
  if (std::memcmp(d + size - 8, kFooterMagic, 8) != 0) {
    throw DataCorruption(p, "bad footer (truncated or overwritten)" + rebuild);
  }
  uint64_t stored;
  std::memcpy(&stored, d + size - 16, 8);
  if (stored != expected.xxh3) {
    throw DataCorruption(p, "checksum in the file (" + checksum_hex(stored) +
                                ") differs from the manifest's (" + checksum_hex(expected.xxh3) +
                                "): the file belongs to another index build" + rebuild);
  }
  if (verify_checksum) {
    uint64_t actual = xxh3_64(d, size - kFooterBytes);
    if (actual != stored) {
      throw DataCorruption(p, "checksum mismatch (content " + checksum_hex(actual) + ", recorded " +
                                  checksum_hex(stored) + "): the file is corrupted" + rebuild);
    }
  }
  out.body = std::span<const uint8_t>(d + kHeaderBytes, size - kHeaderBytes - kFooterBytes);
  return out;
}

void BodyReader::skip_to_alignment(size_t alignment) {
  // The body starts at file offset 16, so alignment in the body equals alignment in the file for
  // alignments dividing 16; the mapping itself is page-aligned.
  size_t file_pos = kHeaderBytes + pos_;
  size_t pad = (alignment - file_pos % alignment) % alignment;
  need(pad);
  pos_ += pad;
}

void BodyReader::fail(const std::string& what) const {
  throw DataCorruption(path_, what + "; rebuild the index with --overwrite");
}

}  // namespace s3::index
