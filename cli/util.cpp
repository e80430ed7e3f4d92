#include <algorithm>
#include <cstdio>

#include "cli/command.h"
#include "core/base/file_read.h"
#include "core/tokenizer/unicode.h"

namespace s3::cli {

std::string read_text_file(const std::string& path, uint64_t max_bytes, std::string_view what) {
  return read_regular_file(path, max_bytes, what);
}

std::string printable(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  auto escape = [&](const char* format, unsigned value) {
    char buf[12];
    std::snprintf(buf, sizeof buf, format, value);
    out += buf;
  };
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if (c == '\n') {
        out += "\\n";
      } else if (c == '\t') {
        out += "\\t";
      } else if (c == '\r') {
        out += "\\r";
      } else if (c < 0x20 || c == 0x7F) {
        escape("\\x%02X", c);
      } else {
        out += static_cast<char>(c);
      }
      ++i;
      continue;
    }
    const size_t len = std::min(unicode::utf8_len(c), s.size() - i);
    const std::string_view seq = s.substr(i, len);
    if (len < 2 || unicode::first_invalid_utf8(seq) != seq.size()) {  // not UTF-8: the byte alone
      escape("\\x%02X", c);
      ++i;
      continue;
    }
    size_t n = 0;
    const char32_t cp = unicode::decode_utf8(seq, 0, &n);
    if ((cp >= 0x80 && cp <= 0x9F) || cp == 0x2028 ||
        cp == 0x2029) {  // C1 controls, line separators
      escape("\\u%04X", static_cast<unsigned>(cp));
    } else {
      out += seq;
    }
    i += len;
  }
  return out;
}

}  // namespace s3::cli
