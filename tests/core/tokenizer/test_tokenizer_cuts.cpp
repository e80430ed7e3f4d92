// Unit tests of tok::TextCutter (core/tokenizer/tokenizer_cuts.h), the choice of cuts of a long
// text, on a fake words function whose words are runs of text split at spaces, except that a space
// after an 'x' does not split: a cut there changes the words and must be refused. Parity of the
// pieces with the whole text on real tokenizers is tests/core/test_tokenizer_parity.py.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/tokenizer/tokenizer_cuts.h"

namespace {

using s3::tok::Piece;

// Words of text[b, e): split before every space that follows a character other than 'x'.
std::vector<Piece> fake_words(std::string_view text, size_t b, size_t e) {
  std::vector<Piece> out;
  size_t start = b;
  for (size_t i = b + 1; i < e; ++i) {
    if (text[i] == ' ' && text[i - 1] != 'x') {
      out.push_back(
          s3::tok::make_piece(text.substr(start, i - start), static_cast<uint32_t>(start)));
      start = i;
    }
  }
  if (start < e)
    out.push_back(s3::tok::make_piece(text.substr(start, e - start), static_cast<uint32_t>(start)));
  return out;
}

// A model whose longest vocabulary string is longer than any word here, so that a cut inside a
// word is never taken as a merge barrier.
s3::tok::Bpe long_token_model() {
  return s3::tok::Bpe(nlohmann::json{{"type", "BPE"},
                                     {"vocab", {{std::string(8192, 'a'), 0}, {"b", 1}}},
                                     {"merges", nlohmann::json::array()}});
}

std::vector<size_t> cuts(const std::string& text) {
  const s3::tok::Bpe model = long_token_model();
  s3::tok::TextCutter cutter(fake_words, model);
  std::vector<size_t> out;
  for (size_t start = 0; start < text.size();) {
    const size_t stop = cutter.next_cut(text, start, text.size());
    EXPECT_GT(stop, start);
    out.push_back(stop);
    start = stop;
  }
  return out;
}

TEST(TextCutter, CutsOnlyWhereTheWordsAreTheSame) {
  std::string text;
  while (text.size() < (size_t{1} << 20))
    text += "ab x cd ";
  const std::vector<size_t> at = cuts(text);
  ASSERT_GT(at.size(), 10u);
  size_t prev = 0;
  for (size_t i = 0; i + 1 < at.size(); ++i) {
    EXPECT_EQ(text[at[i]], ' ');
    EXPECT_NE(text[at[i] - 1], 'x') << "cut after an x at " << at[i];
    EXPECT_GE(at[i] - prev, s3::tok::kStreamPieceBytes);
    EXPECT_LT(at[i] - prev, s3::tok::kStreamPieceBytes + 64);
    prev = at[i];
  }
  EXPECT_EQ(at.back(), text.size());
}

// Stretches where every candidate fails, each shorter than kMaxFailedCuts candidates, all along a
// long text: the cutter gives up only after kMaxFailedCuts failures in a row. It used to count
// them across the whole text and tokenize everything after the 64th failure as one piece (memory
// then grew with the text again).
TEST(TextCutter, FailuresAreCountedInARowNotAcrossTheText) {
  std::string text;
  while (text.size() < (size_t{8} << 20)) {
    for (int i = 0; i < 4096; ++i)
      text += "x ";  // 8 KiB: ~32 failed candidates
    for (int i = 0; i < 512; ++i)
      text += "a ";  // 1 KiB that can be cut
  }
  const std::vector<size_t> at = cuts(text);
  size_t prev = 0, longest = 0;
  for (size_t cut : at) {
    longest = std::max(longest, cut - prev);
    prev = cut;
  }
  EXPECT_GT(at.size(), 100u);
  EXPECT_LT(longest, s3::tok::kStreamPieceBytes + (size_t{16} << 10));
}

// Where no candidate can be cut, the rest is one piece once kMaxFailedCuts have failed in a row.
TEST(TextCutter, GivesUpAfterTooManyFailuresInARow) {
  std::string text;
  while (text.size() < (size_t{1} << 20))
    text += "x ";
  const std::vector<size_t> at = cuts(text);
  EXPECT_EQ(at, std::vector<size_t>{text.size()});
}

}  // namespace
