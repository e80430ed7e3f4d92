#include "index/passage_splitter.h"

#include <algorithm>

namespace s3::index {

namespace {
bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
bool is_closer(char c) {
  return c == '"' || c == '\'' || c == ')' || c == ']' || c == '}';
}
}  // namespace

bool is_sentence_break(std::string_view gap) {
  // CJK full stop / exclamation / question mark (UTF-8), anywhere in the gap.
  if (gap.find("\xE3\x80\x82") != std::string_view::npos ||
      gap.find("\xEF\xBC\x81") != std::string_view::npos ||
      gap.find("\xEF\xBC\x9F") != std::string_view::npos) {
    return true;
  }
  // Blank line: two newlines with only horizontal whitespace between.
  for (size_t i = 0; i < gap.size(); ++i) {
    if (gap[i] != '\n') continue;
    size_t j = i + 1;
    while (j < gap.size() && (gap[j] == ' ' || gap[j] == '\t' || gap[j] == '\r'))
      ++j;
    if (j < gap.size() && gap[j] == '\n') return true;
  }
  // Terminal punctuation followed by whitespace (closing quotes/brackets may come between).
  for (size_t i = 0; i < gap.size(); ++i) {
    size_t after;
    if (gap[i] == '.' || gap[i] == '!' || gap[i] == '?') {
      after = i + 1;
    } else if (gap.compare(i, 3, "\xE2\x80\xA6") == 0) {  // U+2026 horizontal ellipsis
      after = i + 3;
    } else {
      continue;
    }
    while (after < gap.size() &&
           (is_closer(gap[after]) || gap[after] == '.' || gap[after] == '!' || gap[after] == '?')) {
      ++after;
    }
    // Closing curly quotes U+201D / U+2019 are 3 bytes each.
    while (gap.compare(after, 3, "\xE2\x80\x9D") == 0 ||
           gap.compare(after, 3, "\xE2\x80\x99") == 0) {
      after += 3;
    }
    if (after < gap.size() && is_space(gap[after])) return true;
  }
  return false;
}

std::vector<PassageSpan> split_passages(std::string_view text, std::span<const WordSpan> words,
                                        uint32_t target_words) {
  std::vector<PassageSpan> out;
  const auto n = static_cast<uint32_t>(words.size());
  if (n == 0) return out;
  target_words = std::max<uint32_t>(target_words, 1);
  const uint32_t long_sentence = target_words + target_words / 2;

  // Sentences as word ranges; long ones cut into target-sized pieces.
  std::vector<std::pair<uint32_t, uint32_t>> sentences;
  uint32_t start = 0;
  auto push_sentence = [&](uint32_t b, uint32_t e) {
    if (e - b <= long_sentence) {
      sentences.emplace_back(b, e);
      return;
    }
    for (uint32_t p = b; p < e; p += target_words)
      sentences.emplace_back(p, std::min(e, p + target_words));
  };
  for (uint32_t i = 0; i < n; ++i) {
    const bool last = i + 1 == n;
    if (last || is_sentence_break(text.substr(words[i].end, words[i + 1].begin - words[i].end))) {
      push_sentence(start, i + 1);
      start = i + 1;
    }
  }

  // Greedy packing towards target_words.
  std::vector<std::pair<uint32_t, uint32_t>> packed;
  uint32_t cur_begin = sentences.front().first;
  uint32_t cur_words = 0;
  for (const auto& [b, e] : sentences) {
    const uint32_t len = e - b;
    if (cur_words > 0) {
      const int64_t now = static_cast<int64_t>(cur_words) - target_words;
      const int64_t with = static_cast<int64_t>(cur_words + len) - target_words;
      if (now >= 0 || (with > 0 && with > -now)) {  // adding would move us further from target
        packed.emplace_back(cur_begin, b);
        cur_begin = b;
        cur_words = 0;
      }
    }
    cur_words += len;
  }
  packed.emplace_back(cur_begin, n);

  out.reserve(packed.size());
  for (size_t p = 0; p < packed.size(); ++p) {
    PassageSpan s;
    s.word_begin = packed[p].first;
    s.word_end = packed[p].second;
    s.byte_begin = p == 0 ? 0 : words[s.word_begin].begin;
    s.byte_end = p + 1 == packed.size() ? static_cast<uint32_t>(text.size())
                                        : words[packed[p + 1].first].begin;
    out.push_back(s);
  }
  return out;
}

std::vector<PassageSpan> document_passages(std::string_view text, uint32_t target_words) {
  std::vector<WordSpan> words;
  TextAnalyzer::split_words(text, words);
  return split_passages(text, words, target_words);
}

}  // namespace s3::index
