// Where a long text may be cut so that tokenizing it piece by piece gives exactly the tokens of
// the whole text (core/tokenizer/tokenizer.cpp streams long inputs this way: the working memory
// then depends on the piece, not on the text or line length). Internal. See core/README.md, "Long
// inputs".
//
// A cut is made only before an ASCII space that follows a non-space character, and only where the
// tokenizer's own steps give the same words on the two sides as on the whole: the normalizer,
// added tokens and pre-tokenizer are run on kCutWindowBytes of text before and after the candidate
// cut, once as one piece and once as two, and the words must be the same; where no pre-tokenizer
// splits there (Llama-2's SentencePiece-style BPE sees one long word), the two words must also be
// separated by a BPE merge barrier (Bpe::can_cut).
#pragma once

#include <cstddef>
#include <functional>
#include <string_view>
#include <vector>

#include "core/tokenizer/tokenizer_bpe.h"
#include "core/tokenizer/tokenizer_piece.h"

namespace s3::tok {

// Target size of a piece, and the least a piece may be (so that no piece is ever a vocabulary
// string on its own, which BPE's ignore_merges would treat apart).
inline constexpr size_t kStreamPieceBytes = size_t{64} << 10;
inline constexpr size_t kStreamMinPieceBytes = kStreamPieceBytes / 2;
// Text on each side of a candidate cut that is checked.
inline constexpr size_t kCutWindowBytes = 1024;
// Candidates in a row checked without success before the rest of a text is tokenized whole.
inline constexpr int kMaxFailedCuts = 64;

// The words (pre-tokenized pieces, added tokens included) of original text[b, e), normalized as
// a continuation (not the start of a text).
using WordsFn = std::function<std::vector<Piece>(std::string_view text, size_t b, size_t e)>;

class TextCutter {
 public:
  TextCutter(WordsFn words, const Bpe& model) : words_(std::move(words)), model_(model) {}

  // The end of the next piece of text[begin, end): a checked cut near begin + kStreamPieceBytes,
  // or `end` (no cut is needed, or none was found). Counts failed candidates in a row across calls
  // (one cutter serves one text) and stops trying after kMaxFailedCuts.
  size_t next_cut(std::string_view text, size_t begin, size_t end);

 private:
  bool cuts_cleanly(std::string_view text, size_t cut, size_t lo, size_t hi) const;

  WordsFn words_;
  const Bpe& model_;
  int failed_ = 0;
};

}  // namespace s3::tok
