#include "core/tokenizer/tokenizer_piece.h"

#include <algorithm>

#include "core/tokenizer/unicode.h"

namespace s3::tok {

Piece make_piece(std::string_view text, uint32_t base) {
  Piece p;
  p.text.assign(text);
  p.align.resize(text.size());
  p.orig_begin = base;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t len =
        std::min(unicode::utf8_len(static_cast<unsigned char>(text[pos])), text.size() - pos);
    const Span span{base + static_cast<uint32_t>(pos), base + static_cast<uint32_t>(pos + len)};
    for (size_t k = 0; k < len; ++k)
      p.align[pos + k] = span;
    pos += len;
  }
  return p;
}

Piece make_token_piece(int32_t id, Span span) {
  Piece p;
  p.token_id = id;
  p.token_span = span;
  p.orig_begin = span.first;
  return p;
}

Piece slice(const Piece& p, size_t b, size_t e) {
  Piece s;
  s.text.assign(p.text, b, e - b);
  s.align.assign(p.align.begin() + static_cast<std::ptrdiff_t>(b),
                 p.align.begin() + static_cast<std::ptrdiff_t>(e));
  s.orig_begin = b < e ? p.align[b].first : p.orig_begin;
  return s;
}

void transform(Piece& p, const std::vector<unicode::CharChange>& changes, size_t initial_offset) {
  std::string text;
  std::vector<Span> align;
  text.reserve(p.text.size() + 8);
  align.reserve(p.text.size() + 8);
  size_t offset = 0;  // byte position in the old text
  auto skip_char = [&] {
    if (offset < p.text.size())
      offset += unicode::utf8_len(static_cast<unsigned char>(p.text[offset]));
  };
  for (size_t k = 0; k < initial_offset; ++k)
    skip_char();
  for (const auto& [c, change] : changes) {
    Span span;
    if (change > 0) {
      span = offset > 0 ? p.align[offset - 1] : Span{p.orig_begin, p.orig_begin};
    } else {
      span = offset < p.align.size() ? p.align[offset] : Span{p.orig_begin, p.orig_begin};
      skip_char();
      for (int k = 0; k < -change; ++k)
        skip_char();
    }
    const size_t before = text.size();
    unicode::append_utf8(text, c);
    align.insert(align.end(), text.size() - before, span);
  }
  p.text = std::move(text);
  p.align = std::move(align);
}

void prepend(Piece& p, std::string_view s) {
  if (p.text.empty() || s.empty()) return;
  const Span first = p.align[0];
  p.text.insert(0, s);
  p.align.insert(p.align.begin(), s.size(), first);
}

void replace(Piece& p, const std::vector<std::pair<size_t, size_t>>& matches,
             std::string_view content) {
  if (matches.empty()) return;
  std::string text;
  std::vector<Span> align;
  text.reserve(p.text.size() + matches.size() * content.size());
  align.reserve(text.capacity());
  size_t last = 0;
  for (const auto& [b, e] : matches) {
    text.append(p.text, last, b - last);
    align.insert(align.end(), p.align.begin() + static_cast<std::ptrdiff_t>(last),
                 p.align.begin() + static_cast<std::ptrdiff_t>(b));
    const Span span = e > 0 ? p.align[e - 1] : Span{p.orig_begin, p.orig_begin};
    text.append(content);
    align.insert(align.end(), content.size(), span);
    last = e;
  }
  text.append(p.text, last);
  align.insert(align.end(), p.align.begin() + static_cast<std::ptrdiff_t>(last), p.align.end());
  p.text = std::move(text);
  p.align = std::move(align);
}

void byte_level_map(Piece& p) {
  std::string text;
  std::vector<Span> align;
  text.reserve(p.text.size() * 2);
  align.reserve(p.text.size() * 2);
  for (size_t i = 0; i < p.text.size(); ++i) {
    const std::string_view c = unicode::byte_to_utf8(static_cast<uint8_t>(p.text[i]));
    text.append(c);
    align.insert(align.end(), c.size(), p.align[i]);
  }
  p.text = std::move(text);
  p.align = std::move(align);
}

}  // namespace s3::tok
