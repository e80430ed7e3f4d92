// A piece of text on its way through the tokenizer pipeline (Hugging Face's NormalizedString):
// its current bytes, and for every byte the range of the ORIGINAL input it came from, so that
// tokens can be mapped back to the exact input text. Internal to the tokenizer.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/tokenizer/unicode_nfc.h"

namespace s3::tok {

// [begin, end) byte offsets into the original encode() input.
using Span = std::pair<uint32_t, uint32_t>;

struct Piece {
  std::string text;         // current UTF-8 text (normalized, pre-tokenized)
  std::vector<Span> align;  // align.size() == text.size(); all bytes of one code point share a span
  uint32_t orig_begin = 0;  // where this piece starts in the original (tokenizers' original_shift)
  int32_t token_id = -1;    // >= 0: an added token, matched already; later stages pass it through
  Span token_span{0, 0};    // original span of that added token

  bool is_token() const { return token_id >= 0; }
  // Original span of text[b, e) (b < e): from the first byte's begin to the last byte's end.
  Span original(size_t b, size_t e) const { return {align[b].first, align[e - 1].second}; }
};

// A piece holding `text` unchanged, which starts at `base` in the original input; every byte is
// aligned with its whole code point.
Piece make_piece(std::string_view text, uint32_t base);
Piece make_token_piece(int32_t id, Span span);

// text[b, e) with its alignments (tokenizers' NormalizedString::slice).
Piece slice(const Piece& p, size_t b, size_t e);

// Rewrites the whole text from a list of code points with changes (see unicode::CharChange),
// updating the alignments exactly as tokenizers' NormalizedString::transform does; the first
// `initial_offset` code points of the old text are removed.
void transform(Piece& p, const std::vector<unicode::CharChange>& changes,
               size_t initial_offset = 0);

// tokenizers' prepend: no-op on an empty piece; the new code points take the alignment of the
// first code point.
void prepend(Piece& p, std::string_view s);

// tokenizers' replace: every match [b, e) is replaced with `content`, whose bytes all take the
// alignment of the last byte of the match. `matches` are sorted and disjoint.
void replace(Piece& p, const std::vector<std::pair<size_t, size_t>>& matches,
             std::string_view content);

// The GPT-2 byte-level mapping: every byte becomes its code point of the byte-level alphabet.
void byte_level_map(Piece& p);

}  // namespace s3::tok
