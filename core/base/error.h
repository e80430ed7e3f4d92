// Error types shared by every layer. Code throws; cli/main.cpp catches once, prints one line on
// stderr and maps the kind to the exit code (2 for usage, 1 otherwise). Header-only and free of
// LibTorch so that index/ and retrieval/ may use it too.
#pragma once

#include <stdexcept>
#include <string>

namespace s3 {

// A user mistake or bad input: the message must say what is wrong and, where possible, what to do.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Invalid command-line usage (exit code 2).
class UsageError : public Error {
 public:
  using Error::Error;
};

// A file exists but its content is not what it must be (truncated, bad checksum, wrong version).
class DataCorruption : public Error {
 public:
  DataCorruption(const std::string& path, const std::string& what)
      : Error(path + ": " + what), path_(path) {}
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A file that cannot be read as a reader needs it: missing, not a regular file, larger than its
// limit, or an OS error (core/base/file_read.h). The message is "PATH: REASON".
class FileError : public Error {
 public:
  FileError(const std::string& path, const std::string& reason)
      : Error(path + ": " + reason), path_(path), reason_(reason) {}
  const std::string& path() const { return path_; }
  const std::string& reason() const { return reason_; }

 private:
  std::string path_;
  std::string reason_;
};

}  // namespace s3
