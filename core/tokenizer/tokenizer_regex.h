// The regexes of tokenizer.json (written for Oniguruma, which Hugging Face tokenizers uses),
// compiled once with PCRE2 (UTF + Unicode properties, JIT when available). Internal.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace s3::tok {

using Matches = std::vector<std::pair<size_t, size_t>>;

class Regex {
 public:
  // Throws s3::Error naming the pattern when PCRE2 cannot compile it.
  explicit Regex(std::string_view oniguruma_pattern);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // All matches [begin, end) in `subject` (valid UTF-8), left to right, with the rule of the
  // Rust onig crate's find_iter: an empty match right after the previous match is skipped.
  // Thread-safe.
  void find_all(std::string_view subject, Matches& out) const;

  const std::string& pattern() const { return pattern_; }

 private:
  struct Code;
  std::string pattern_;
  std::unique_ptr<Code> code_;
};

// Oniguruma -> PCRE2 translation of the escapes whose meaning differs: \s and \S become the
// Unicode White_Space set (PCRE2's also holds U+180E), \w and \W become Oniguruma's word set
// (letters, marks, decimal digits, connector punctuation). Exposed for tests.
std::string translate_oniguruma(std::string_view pattern);

// Finds every occurrence of a literal string (tokenizers' String pattern), left to right.
void find_literal(std::string_view subject, std::string_view needle, Matches& out);

// tokenizer.json's {"String": "..."} or {"Regex": "..."} pattern.
class Pattern {
 public:
  static Pattern literal(std::string s);
  static Pattern regex(std::string_view oniguruma_pattern);
  void find_all(std::string_view subject, Matches& out) const;
  bool is_literal() const { return !regex_; }

 private:
  std::string literal_;
  std::shared_ptr<const Regex> regex_;
};

}  // namespace s3::tok
