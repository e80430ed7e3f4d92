// Text analyzer (words, lowercasing, Snowball stemming, CJK) and passage splitting.
#include <gtest/gtest.h>

#include "core/base/error.h"
#include "index/passage_splitter.h"
#include "index/text_analyzer.h"

namespace s3::index {
namespace {

using Strings = std::vector<std::string>;

TEST(IndexAnalyzer, EnglishStemming) {
  TextAnalyzer a;
  EXPECT_EQ(a.analyze("Running runs ran"), (Strings{"run", "run", "ran"}));
  EXPECT_EQ(a.analyze("The CATS were connected; connections!"),
            (Strings{"the", "cat", "were", "connect", "connect"}));
  EXPECT_EQ(a.analyze("generously generalization"), (Strings{"generous", "general"}));
}

TEST(IndexAnalyzer, WordsApostrophesNumbersPunctuation) {
  TextAnalyzer a(AnalyzerOptions{"none"});
  EXPECT_EQ(a.analyze("Don't stop—it's 3.14, e-mail_me @home"),
            (Strings{"don't", "stop", "it's", "3", "14", "e", "mail", "me", "home"}));
  EXPECT_EQ(a.analyze("rock ’n’ roll’s end'"), (Strings{"rock", "n", "roll's", "end"}));
  EXPECT_EQ(a.analyze(""), Strings{});
  EXPECT_EQ(a.analyze("  ... !!! "), Strings{});
}

TEST(IndexAnalyzer, UnicodeLettersAndLowercase) {
  TextAnalyzer a(AnalyzerOptions{"none"});
  EXPECT_EQ(a.analyze("ÉCOLE Über NAÏVE Ελλάδα Москва"),
            (Strings{"école", "über", "naïve", "ελλάδα", "москва"}));
  // Combining marks stay inside their word.
  EXPECT_EQ(a.analyze("cafe\xCC\x81 ok"), (Strings{"cafe\xCC\x81", "ok"}));
}

TEST(IndexAnalyzer, CjkCharactersAreOwnTokens) {
  TextAnalyzer a;
  EXPECT_EQ(a.analyze("東京は日本の首都です。Tokyo!"),
            (Strings{"東", "京", "は", "日", "本", "の", "首", "都", "で", "す", "tokyo"}));
  std::vector<WordSpan> w;
  TextAnalyzer::split_words("ab東c", w);
  ASSERT_EQ(w.size(), 3u);
  EXPECT_EQ(w[0].begin, 0u);
  EXPECT_EQ(w[0].end, 2u);
  EXPECT_TRUE(w[1].cjk);
  EXPECT_EQ(w[1].end - w[1].begin, 3u);
  EXPECT_EQ(w[2].begin, 5u);
}

TEST(IndexAnalyzer, InvalidUtf8BytesSeparateWords) {
  TextAnalyzer a(AnalyzerOptions{"none"});
  EXPECT_EQ(a.analyze("abc\xFF"
                      "def\xC3"),
            (Strings{"abc", "def"}));
}

TEST(IndexAnalyzer, TermsCarryByteRanges) {
  TextAnalyzer a;
  std::vector<Term> t;
  a.analyze("  Connected, cats", t);
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].text, "connect");
  EXPECT_EQ(t[0].begin, 2u);
  EXPECT_EQ(t[0].end, 11u);
  EXPECT_EQ(t[1].text, "cat");
  EXPECT_EQ(t[1].begin, 13u);
}

TEST(IndexAnalyzer, LanguagesArePluggable) {
  TextAnalyzer de(AnalyzerOptions{"german"});
  EXPECT_EQ(de.analyze("Häuser"), (Strings{"haus"}));
  EXPECT_THROW(TextAnalyzer(AnalyzerOptions{"klingon"}), UsageError);
  const auto langs = stemmer_languages();
  EXPECT_NE(std::find(langs.begin(), langs.end(), "english"), langs.end());
}

TEST(IndexSentenceBreak, Rules) {
  EXPECT_TRUE(is_sentence_break(". "));
  EXPECT_TRUE(is_sentence_break("! "));
  EXPECT_TRUE(is_sentence_break("?\n"));
  EXPECT_TRUE(is_sentence_break(".\" "));
  EXPECT_TRUE(is_sentence_break(".) "));
  EXPECT_TRUE(is_sentence_break("\n\n"));
  EXPECT_TRUE(is_sentence_break(" \n \n"));
  EXPECT_TRUE(is_sentence_break("。"));
  EXPECT_TRUE(is_sentence_break("\xE2\x80\xA6 "));  // ellipsis
  EXPECT_FALSE(is_sentence_break("."));             // "3.14"
  EXPECT_FALSE(is_sentence_break(", "));
  EXPECT_FALSE(is_sentence_break(" "));
  EXPECT_FALSE(is_sentence_break("\n"));
  EXPECT_FALSE(is_sentence_break(""));
}

std::string sentence(int n_words, const std::string& word = "w") {
  std::string s;
  for (int i = 0; i < n_words; ++i)
    s += word + (i + 1 == n_words ? ". " : " ");
  return s;
}

std::vector<uint32_t> passage_words(const std::string& text, uint32_t target) {
  std::vector<WordSpan> words;
  TextAnalyzer::split_words(text, words);
  std::vector<uint32_t> out;
  for (const PassageSpan& p : split_passages(text, words, target))
    out.push_back(p.word_end - p.word_begin);
  return out;
}

TEST(IndexPassages, CutsAtSentenceBoundariesNearTarget) {
  // Ten 12-word sentences. Target 29: 24 words (5 short) beats 36 (7 over), so 24-word passages.
  // Target 30: 24 and 36 are equally far; a tie adds the sentence.
  std::string text;
  for (int i = 0; i < 10; ++i)
    text += sentence(12);
  EXPECT_EQ(passage_words(text, 29), (std::vector<uint32_t>{24, 24, 24, 24, 24}));
  EXPECT_EQ(passage_words(text, 30), (std::vector<uint32_t>{36, 36, 36, 12}));
  EXPECT_EQ(passage_words(text, 36), (std::vector<uint32_t>{36, 36, 36, 12}));
  EXPECT_EQ(passage_words(text, 1000), (std::vector<uint32_t>{120}));
}

TEST(IndexPassages, LongSentencesAreCut) {
  const std::string text = sentence(250) + sentence(10);
  // 250 words > 1.5 x 100: pieces of 100, 100, 50; the 10-word sentence joins the 50-word piece.
  EXPECT_EQ(passage_words(text, 100), (std::vector<uint32_t>{100, 100, 60}));
}

TEST(IndexPassages, PassagesTileTheTextAndEndAtSentenceEnds) {
  const std::string text =
      "  Intro words here. Second sentence is here! Third one?\n\nFourth para "
      "starts. Fifth.";
  std::vector<WordSpan> words;
  TextAnalyzer::split_words(text, words);
  const auto ps = split_passages(text, words, 4);
  ASSERT_GE(ps.size(), 2u);
  EXPECT_EQ(ps.front().byte_begin, 0u);
  EXPECT_EQ(ps.back().byte_end, text.size());
  for (size_t i = 0; i + 1 < ps.size(); ++i) {
    EXPECT_EQ(ps[i].byte_end, ps[i + 1].byte_begin);
    EXPECT_EQ(ps[i].word_end, ps[i + 1].word_begin);
    // Each passage but the last ends right after a sentence terminator or blank line.
    const WordSpan& last = words[ps[i].word_end - 1];
    EXPECT_TRUE(is_sentence_break(
        std::string_view(text).substr(last.end, words[ps[i].word_end].begin - last.end)));
  }
  EXPECT_TRUE(split_passages("", {}, 100).empty());
  EXPECT_TRUE(split_passages(" ... ", {}, 100).empty());
}

}  // namespace
}  // namespace s3::index
