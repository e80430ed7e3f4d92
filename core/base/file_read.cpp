#include "core/base/file_read.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/base/error.h"

namespace s3 {
namespace {

std::string kind_of(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a named pipe (FIFO)";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a plain file";
}

[[noreturn]] void fail(const std::filesystem::path& path, std::string_view what,
                       const std::string& why) {
  throw FileError(path.string(), "cannot read this " + std::string(what) + ": " + why);
}

// An open descriptor on a regular file, closed with the object.
class RegularFd {
 public:
  RegularFd(const std::filesystem::path& path, std::string_view what) {
    struct stat st {};
    // stat first: open(2) on a socket fails with a vague ENXIO, and on a FIFO it would block
    // without O_NONBLOCK.
    if (::stat(path.c_str(), &st) != 0) fail(path, what, std::strerror(errno));
    if (!S_ISREG(st.st_mode))
      fail(path, what, "it is " + kind_of(st.st_mode) + ", not a regular file");
    fd_ = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd_ < 0) fail(path, what, std::strerror(errno));
    // The path may have been replaced between stat and open: check what was opened.
    if (::fstat(fd_, &st) != 0) fail(path, what, std::strerror(errno));
    if (!S_ISREG(st.st_mode))
      fail(path, what, "it is " + kind_of(st.st_mode) + ", not a regular file");
    size_ = static_cast<uint64_t>(st.st_size);
  }
  ~RegularFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  RegularFd(const RegularFd&) = delete;
  RegularFd& operator=(const RegularFd&) = delete;
  int fd() const { return fd_; }
  uint64_t size() const { return size_; }

 private:
  int fd_ = -1;
  uint64_t size_ = 0;
};

std::string with_commas(uint64_t n) {
  const std::string digits = std::to_string(n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

// `size`: the file's size, or 0 when it grew past the limit while it was read.
[[noreturn]] void too_large(const std::filesystem::path& path, std::string_view what, uint64_t size,
                            uint64_t max_bytes) {
  throw FileError(path.string(), "this " + std::string(what) +
                                     (size ? " is " + with_commas(size) + " bytes," : "") +
                                     " larger than the limit of " + format_bytes(max_bytes));
}

}  // namespace

std::string format_bytes(uint64_t bytes) {
  if (bytes < kKiB) return std::to_string(bytes) + (bytes == 1 ? " byte" : " bytes");
  const char* unit = "KiB";
  double value = static_cast<double>(bytes) / kKiB;
  for (const char* next : {"MiB", "GiB", "TiB"}) {
    if (value < 1024) break;
    value /= 1024;
    unit = next;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, value < 10 ? "%.1f %s" : "%.0f %s", value, unit);
  return buf;
}

uint64_t regular_file_size(const std::filesystem::path& path, std::string_view what) {
  return RegularFd(path, what).size();
}

std::string read_regular_file(const std::filesystem::path& path, uint64_t max_bytes,
                              std::string_view what) {
  const RegularFd file(path, what);
  if (file.size() > max_bytes) too_large(path, what, file.size(), max_bytes);
  std::string out;
  out.resize(static_cast<size_t>(file.size()) + 1);  // one more byte tells a file that grew
  size_t done = 0;
  for (;;) {
    if (done == out.size()) {
      if (out.size() > max_bytes) too_large(path, what, 0, max_bytes);
      out.resize(std::min<uint64_t>(out.size() * 2, max_bytes + 1));
    }
    const ssize_t n = ::read(file.fd(), out.data() + done, out.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail(path, what, std::strerror(errno));
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  if (done > max_bytes) too_large(path, what, 0, max_bytes);
  out.resize(done);
  return out;
}

std::ifstream open_regular_file(const std::filesystem::path& path, std::string_view what) {
  regular_file_size(path, what);
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, what, "it cannot be opened");
  return in;
}

}  // namespace s3
