// Filesystem steps of the crash-safety protocol (docs/index-format.md, "Crash safety") and of every
// file the project publishes: atomic writes, renames, temporary directories, locks. All failures
// throw s3::Error naming the path and the OS reason.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace s3 {

// fsync of a file or directory (so renames inside a directory are durable).
void fsync_path(const std::filesystem::path& path);

// Creates a fresh directory `<parent>/<prefix>XXXXXX` (mkdtemp) and returns its path.
std::filesystem::path make_temp_dir(const std::filesystem::path& parent, std::string_view prefix);

// Removes files and directories `<parent>/<prefix><pid>[-anything]` left by writers that were
// killed: those whose <pid> is not a running process. Never throws.
void remove_stale_temp_dirs(const std::filesystem::path& parent, std::string_view prefix) noexcept;

// rename(2) that fails (s3::Error "already exists") instead of replacing `to`.
void rename_noreplace(const std::filesystem::path& from, const std::filesystem::path& to);

// Atomically swaps two paths (renameat2 RENAME_EXCHANGE). Returns false when the filesystem does
// not support it; throws on other errors.
bool rename_exchange(const std::filesystem::path& a, const std::filesystem::path& b);

// Plain atomic rename(2), replacing `to`.
void rename_replace(const std::filesystem::path& from, const std::filesystem::path& to);

// Recursive removal that never throws (best effort, for cleanup paths).
void remove_tree_quietly(const std::filesystem::path& path) noexcept;

// Writes `content` to `<path>.tmp-<pid>`, fsyncs it (when `fsync`), renames it over `path`, fsyncs
// the directory: readers see either the old file or the new one.
void write_file_atomic(const std::filesystem::path& path, std::string_view content, bool fsync);

// An exclusive advisory lock (flock) on `<dir>/.lock`, held for the object's lifetime. Throws
// s3::Error when another process holds it.
class DirectoryLock {
 public:
  explicit DirectoryLock(const std::filesystem::path& dir);
  ~DirectoryLock();
  DirectoryLock(const DirectoryLock&) = delete;
  DirectoryLock& operator=(const DirectoryLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace s3
