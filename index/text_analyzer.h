// The text analyzer of the BM25 lexical index. Query text must go through the same analyzer (same
// options) as the indexed passages: build one from LexicalIndex::analyzer_options().
//
// Words: maximal runs of word characters, where a word character is an ASCII letter or digit, or a
// non-ASCII code point of Unicode category L*, M* or N* (utf8proc). An apostrophe (' or U+2019)
// between two word characters stays inside the word ("don't"). CJK ideographs and kana are each a
// word of their own. Everything else (punctuation, spaces, symbols, invalid UTF-8 bytes) separates
// words. Terms: words lowercased (Unicode simple lowercase; U+2019 becomes ') and stemmed with the
// Snowball stemmer of `language` (libstemmer, UTF-8); CJK words are not stemmed. kAnalyzerVersion
// changes whenever these rules change; the manifest records it and a reader refuses an index built
// with another version (its terms would not match the queries').
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace s3::index {

inline constexpr uint32_t kAnalyzerVersion = 1;

struct AnalyzerOptions {
  // Snowball algorithm name ("english", "porter", "german", ...; see stemmer_languages()), or
  // "none" to disable stemming.
  std::string language = "english";
  // Throws s3::UsageError naming the known languages when `language` is unknown.
  void validate() const;
};

// Byte range [begin, end) of one word in the analyzed text.
struct WordSpan {
  uint32_t begin = 0;
  uint32_t end = 0;
  bool cjk = false;  // a single CJK ideograph or kana
};

// A normalized term and the byte range of the word it came from.
struct Term {
  std::string text;
  uint32_t begin = 0;
  uint32_t end = 0;
};

// Not thread-safe (the Snowball stemmer keeps state): use one analyzer per thread.
class TextAnalyzer {
 public:
  explicit TextAnalyzer(AnalyzerOptions options = {});
  ~TextAnalyzer();
  TextAnalyzer(TextAnalyzer&&) noexcept;
  TextAnalyzer& operator=(TextAnalyzer&&) noexcept;

  const AnalyzerOptions& options() const;

  // Word boundaries only (no normalization); appends to `out`. Texts are limited to 4 GiB.
  static void split_words(std::string_view text, std::vector<WordSpan>& out);

  // Lowercases and stems one word (as split_words() found it).
  std::string normalize(std::string_view word, bool cjk = false);

  // split_words + normalize.
  void analyze(std::string_view text, std::vector<Term>& out);
  std::vector<std::string> analyze(std::string_view text);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Snowball algorithm names libstemmer knows (plus "none").
std::vector<std::string> stemmer_languages();

}  // namespace s3::index
