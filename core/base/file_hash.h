// XXH3 hashes of files, for fingerprints and run manifests: the one place that streams a file
// through xxHash. Files are opened as open_regular_file() does (regular files only). Free of
// LibTorch and of the rest of core/ (library s3_base), like core/file_read.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

namespace s3 {

// Calls `consume` on the regular file `path`'s bytes in order, in blocks of at most 1 MiB, for
// hashes that cover several files (one state, many files). `what` names the file in errors.
void for_each_file_block(const std::filesystem::path& path, std::string_view what,
                         const std::function<void(const char* data, size_t size)>& consume);

// XXH3-64 of the file's bytes.
uint64_t xxh3_64_file(const std::filesystem::path& path, std::string_view what);

// "00ab...": a 64-bit hash as 16 lower-case hex digits, the form manifests record.
std::string hex64(uint64_t hash);

}  // namespace s3
