// Reading input and metadata files safely: only regular files (a FIFO, a device, a socket or a
// directory is refused at once instead of blocking or reading forever) and at most a stated number
// of bytes. Every whole-file read of the project goes through here. Free of LibTorch and of the
// rest of core/, like core/base/error.h, so that index/, retrieval/ and sae/ may use it too
// (library s3_base).
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

namespace s3 {

inline constexpr uint64_t kKiB = uint64_t{1} << 10;
inline constexpr uint64_t kMiB = uint64_t{1} << 20;
inline constexpr uint64_t kGiB = uint64_t{1} << 30;

// "12.5 MiB", "3 bytes": a size for messages.
std::string format_bytes(uint64_t bytes);

// The size of `path`, which must be a regular file (symbolic links are followed). Opens it with
// O_NONBLOCK, so a FIFO never blocks. Throws s3::FileError "PATH: ..." naming the file and what it
// is instead ("a named pipe (FIFO)", "a directory", ...) or the OS reason (missing, permission).
// `what` names the file's role in messages ("manifest", "tokenizer.json", "input file").
uint64_t regular_file_size(const std::filesystem::path& path, std::string_view what);

// The whole content of the regular file `path`, at most `max_bytes` long. Reads at most
// max_bytes + 1 bytes whatever the file claims, so a file that grows while it is read cannot make
// the process grow past the bound. Throws s3::FileError naming the file, the limit and `what` when
// the file is larger, and the regular_file_size() errors.
std::string read_regular_file(const std::filesystem::path& path, uint64_t max_bytes,
                              std::string_view what);

// An input stream on the regular file `path` (regular_file_size() checks first), for readers that
// stream (JSONL rows, hashes). Throws s3::FileError like regular_file_size().
std::ifstream open_regular_file(const std::filesystem::path& path, std::string_view what);

}  // namespace s3
