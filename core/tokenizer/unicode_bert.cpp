#include "core/tokenizer/unicode_bert.h"

#include <utf8proc.h>

#include <algorithm>
#include <span>

#include "core/tokenizer/unicode.h"
#include "core/tokenizer/unicode_bert_tables.h"

namespace s3::unicode::bert {

namespace {

using bert_tables::CodeRange;

bool in(std::span<const CodeRange> ranges, char32_t c) {
  auto it = std::upper_bound(ranges.begin(), ranges.end(), c,
                             [](char32_t x, const CodeRange& r) { return x < r.first; });
  return it != ranges.begin() && c <= std::prev(it)->last;
}

utf8proc_category_t category(char32_t c) {
  return static_cast<utf8proc_category_t>(utf8proc_category(static_cast<utf8proc_int32_t>(c)));
}

// A property from utf8proc, corrected by the tables: `added` code points have it, `removed` ones
// do not, whatever utf8proc says.
bool corrected(bool utf8proc_says, std::span<const CodeRange> added,
               std::span<const CodeRange> removed, char32_t c) {
  if (utf8proc_says) return !in(removed, c);
  return in(added, c);
}

}  // namespace

bool is_control(char32_t c) {
  if (c == '\t' || c == '\n' || c == '\r') return false;
  const utf8proc_category_t cat = category(c);
  const bool other =
      cat == UTF8PROC_CATEGORY_CC || cat == UTF8PROC_CATEGORY_CF || cat == UTF8PROC_CATEGORY_CO;
  return corrected(other, bert_tables::kControlAdded, bert_tables::kControlRemoved, c);
}

bool is_whitespace(char32_t c) {
  return c == '\t' || c == '\n' || c == '\r' || is_white_space(c);
}

bool is_chinese_char(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
         (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
         (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

bool is_nonspacing_mark(char32_t c) {
  if (c < 0x300) return false;
  return corrected(category(c) == UTF8PROC_CATEGORY_MN, bert_tables::kNonspacingAdded,
                   bert_tables::kNonspacingRemoved, c);
}

bool is_combining_mark(char32_t c) {
  if (c < 0x300) return false;
  const utf8proc_category_t cat = category(c);
  const bool mark =
      cat == UTF8PROC_CATEGORY_MN || cat == UTF8PROC_CATEGORY_MC || cat == UTF8PROC_CATEGORY_ME;
  return corrected(mark, bert_tables::kMarkAdded, bert_tables::kMarkRemoved, c);
}

bool is_punctuation(char32_t c) {
  if (c < 0x80) {
    return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) ||
           (c >= 0x7B && c <= 0x7E);
  }
  const utf8proc_category_t cat = category(c);
  const bool p = cat >= UTF8PROC_CATEGORY_PC && cat <= UTF8PROC_CATEGORY_PO;
  return corrected(p, bert_tables::kPunctuationAdded, bert_tables::kPunctuationRemoved, c);
}

bool keeps_whole(char32_t c) {
  return c >= 0x80 && in(bert_tables::kNoDecomposition, c);
}

bool is_starter_override(char32_t c) {
  return c >= 0x300 && in(bert_tables::kCombiningClassZero, c);
}

void append_lowercase(char32_t c, std::u32string& out) {
  if (c < 0x80) {
    out.push_back(c >= 'A' && c <= 'Z' ? c + 32 : c);
    return;
  }
  if (c == 0x130) {  // LATIN CAPITAL LETTER I WITH DOT ABOVE: the one multi-character mapping
    out.push_back('i');
    out.push_back(0x307);
    return;
  }
  const auto& table = bert_tables::kLowercase;
  auto it =
      std::lower_bound(table.begin(), table.end(), c,
                       [](const bert_tables::LowerPair& p, char32_t x) { return p.from < x; });
  if (it != table.end() && it->from == c) {
    out.push_back(it->to);
    return;
  }
  out.push_back(static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c))));
}

}  // namespace s3::unicode::bert
