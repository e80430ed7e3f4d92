// UTF-8 validation (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF).
#pragma once

#include <string_view>

namespace s3::index {

// Offset of the first byte that does not start a valid sequence, or std::string_view::npos.
size_t find_invalid_utf8(std::string_view s);

}  // namespace s3::index
