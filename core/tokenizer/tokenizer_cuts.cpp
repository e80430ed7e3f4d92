#include "core/tokenizer/tokenizer_cuts.h"

#include <algorithm>

#include "core/tokenizer/unicode.h"

namespace s3::tok {

namespace {

bool same(const Piece& a, const Piece& b) {
  return a.token_id == b.token_id && a.token_span == b.token_span && a.text == b.text &&
         a.align == b.align;
}

// Start of the code point holding byte `pos` of valid UTF-8 `s`.
size_t char_start(std::string_view s, size_t pos) {
  while (pos > 0 && pos < s.size() && (static_cast<unsigned char>(s[pos]) & 0xC0) == 0x80)
    --pos;
  return pos;
}

}  // namespace

bool TextCutter::cuts_cleanly(std::string_view text, size_t cut, size_t lo, size_t hi) const {
  const std::vector<Piece> whole = words_(text, lo, hi);
  const std::vector<Piece> left = words_(text, lo, cut);
  const std::vector<Piece> right = words_(text, cut, hi);
  if (left.empty() || right.empty()) return false;
  const size_t n = left.size();
  // The pre-tokenizer splits at the cut: the same words either way.
  if (whole.size() == n + right.size()) {
    for (size_t i = 0; i < n; ++i)
      if (!same(whole[i], left[i])) return false;
    for (size_t i = 0; i < right.size(); ++i)
      if (!same(whole[n + i], right[i])) return false;
    return true;
  }
  // No pre-tokenizer splits there: one word of the whole is the two sides' words joined, and BPE
  // must not be able to merge across (its two sides must also be longer than any vocabulary
  // string, which ignore_merges would take as one token).
  if (whole.size() + 1 != n + right.size()) return false;
  const Piece& a = left.back();
  const Piece& b = right.front();
  const Piece& joined = whole[n - 1];
  if (a.is_token() || b.is_token() || joined.is_token()) return false;
  if (a.text.size() <= model_.longest_token() || b.text.size() <= model_.longest_token())
    return false;
  if (joined.text.size() != a.text.size() + b.text.size() ||
      joined.text.compare(0, a.text.size(), a.text) != 0 ||
      joined.text.compare(a.text.size(), std::string::npos, b.text) != 0 ||
      !std::equal(a.align.begin(), a.align.end(), joined.align.begin()) ||
      !std::equal(b.align.begin(), b.align.end(),
                  joined.align.begin() + static_cast<std::ptrdiff_t>(a.align.size())))
    return false;
  for (size_t i = 0; i + 1 < n; ++i)
    if (!same(whole[i], left[i])) return false;
  for (size_t i = 1; i < right.size(); ++i)
    if (!same(whole[n - 1 + i], right[i])) return false;
  return model_.can_cut(joined.text, a.text.size());
}

size_t TextCutter::next_cut(std::string_view text, size_t begin, size_t end) {
  if (end - begin < kStreamPieceBytes + kStreamMinPieceBytes) return end;
  const size_t last = end - kStreamMinPieceBytes;  // the last piece is not left shorter than that
  for (size_t p = begin + kStreamPieceBytes; p < last && failed_ < kMaxFailedCuts; ++p) {
    p = text.find(' ', p);
    if (p == std::string_view::npos || p >= last) break;
    const size_t prev = char_start(text, p - 1);
    size_t len = 0;
    if (unicode::is_white_space(unicode::decode_utf8(text, prev, &len))) continue;
    const size_t lo = char_start(text, p - kCutWindowBytes);
    const size_t hi = std::min(end, char_start(text, p + kCutWindowBytes));
    if (cuts_cleanly(text, p, lo, hi)) {
      failed_ = 0;
      return p;
    }
    ++failed_;
    p += kCutWindowBytes / 4;  // neighbouring spaces usually fail for the same reason
  }
  return end;
}

}  // namespace s3::tok
