// Reading the messages of libraries that report errors as text (LibTorch, CUDA). Header-only and
// free of LibTorch.
#pragma once

#include <string>
#include <string_view>

namespace s3 {

// The first line of a multi-line message (LibTorch's carry source listings and traces).
inline std::string first_line(std::string_view message) {
  return std::string(message.substr(0, message.find('\n')));
}

// Whether a device library's message reports exhausted memory (CUDA's allocator says "out of
// memory"; the TorchScript interpreter re-throws it without keeping its type).
inline bool is_out_of_memory(std::string_view message) {
  return message.find("out of memory") != std::string_view::npos;
}

}  // namespace s3
