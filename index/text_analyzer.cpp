#include "index/text_analyzer.h"

#include <libstemmer.h>
#include <utf8proc.h>

#include <algorithm>
#include <string>

#include "core/base/error.h"

namespace s3::index {

namespace {

constexpr int32_t kRightSingleQuote = 0x2019;

bool is_cjk(int32_t cp) {
  return (cp >= 0x3040 && cp <= 0x30FF) ||  // Hiragana, Katakana
         (cp >= 0x31F0 && cp <= 0x31FF) ||  // Katakana phonetic extensions
         (cp >= 0x3400 && cp <= 0x4DBF) ||  // CJK Extension A
         (cp >= 0x4E00 && cp <= 0x9FFF) ||  // CJK Unified Ideographs
         (cp >= 0xF900 && cp <= 0xFAFF) ||  // CJK Compatibility Ideographs
         (cp >= 0x20000 && cp <= 0x323AF);  // Extensions B..H and compatibility supplement
}

bool is_word_cp(int32_t cp) {
  if (cp < 0x80) {
    return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || (cp >= '0' && cp <= '9');
  }
  switch (utf8proc_category(cp)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
      return true;
    default:
      return false;
  }
}

// Decodes the code point at text[i]; returns its byte length (>= 1) and sets cp, or cp = -1 for an
// invalid byte (length 1).
size_t next_cp(std::string_view text, size_t i, int32_t& cp) {
  const auto c = static_cast<unsigned char>(text[i]);
  if (c < 0x80) {
    cp = c;
    return 1;
  }
  utf8proc_int32_t v;
  utf8proc_ssize_t n = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(text.data() + i),
                                        static_cast<utf8proc_ssize_t>(text.size() - i), &v);
  if (n <= 0) {
    cp = -1;
    return 1;
  }
  cp = v;
  return static_cast<size_t>(n);
}

}  // namespace

void AnalyzerOptions::validate() const {
  if (language == "none") return;
  for (const std::string& l : stemmer_languages()) {
    if (l == language) return;
  }
  std::string known;
  for (const std::string& l : stemmer_languages())
    known += (known.empty() ? "" : ", ") + l;
  throw UsageError("unknown stemmer language '" + language + "'; known: " + known);
}

std::vector<std::string> stemmer_languages() {
  std::vector<std::string> out{"none"};
  for (const char** l = sb_stemmer_list(); *l != nullptr; ++l)
    out.emplace_back(*l);
  return out;
}

struct TextAnalyzer::Impl {
  AnalyzerOptions options;
  sb_stemmer* stemmer = nullptr;
  ~Impl() {
    if (stemmer != nullptr) sb_stemmer_delete(stemmer);
  }
};

TextAnalyzer::TextAnalyzer(AnalyzerOptions options) : impl_(std::make_unique<Impl>()) {
  options.validate();
  impl_->options = std::move(options);
  if (impl_->options.language != "none") {
    impl_->stemmer = sb_stemmer_new(impl_->options.language.c_str(), "UTF_8");
    if (impl_->stemmer == nullptr) {
      throw Error("libstemmer could not create the '" + impl_->options.language + "' stemmer");
    }
  }
}

TextAnalyzer::~TextAnalyzer() = default;
TextAnalyzer::TextAnalyzer(TextAnalyzer&&) noexcept = default;
TextAnalyzer& TextAnalyzer::operator=(TextAnalyzer&&) noexcept = default;

const AnalyzerOptions& TextAnalyzer::options() const {
  return impl_->options;
}

void TextAnalyzer::split_words(std::string_view text, std::vector<WordSpan>& out) {
  size_t i = 0;
  const size_t n = text.size();
  bool in_word = false;
  size_t word_begin = 0;
  while (i < n) {
    int32_t cp;
    const size_t len = next_cp(text, i, cp);
    if (cp >= 0 && is_cjk(cp)) {
      if (in_word)
        out.push_back({static_cast<uint32_t>(word_begin), static_cast<uint32_t>(i), false});
      in_word = false;
      out.push_back({static_cast<uint32_t>(i), static_cast<uint32_t>(i + len), true});
    } else if (cp >= 0 && is_word_cp(cp)) {
      if (!in_word) {
        in_word = true;
        word_begin = i;
      }
    } else if (in_word && (cp == '\'' || cp == kRightSingleQuote) && i + len < n) {
      int32_t next;
      next_cp(text, i + len, next);
      if (!(next >= 0 && is_word_cp(next) && !is_cjk(next))) {
        out.push_back({static_cast<uint32_t>(word_begin), static_cast<uint32_t>(i), false});
        in_word = false;
      }
    } else if (in_word) {
      out.push_back({static_cast<uint32_t>(word_begin), static_cast<uint32_t>(i), false});
      in_word = false;
    }
    i += len;
  }
  if (in_word) out.push_back({static_cast<uint32_t>(word_begin), static_cast<uint32_t>(n), false});
}

std::string TextAnalyzer::normalize(std::string_view word, bool cjk) {
  std::string lower;
  lower.reserve(word.size());
  for (size_t i = 0; i < word.size();) {
    int32_t cp;
    const size_t len = next_cp(word, i, cp);
    if (cp >= 0 && cp < 0x80) {
      char c = static_cast<char>(cp);
      lower.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c);
    } else if (cp == kRightSingleQuote) {
      lower.push_back('\'');
    } else if (cp >= 0) {
      utf8proc_uint8_t buf[4];
      utf8proc_ssize_t m = utf8proc_encode_char(utf8proc_tolower(cp), buf);
      lower.append(reinterpret_cast<const char*>(buf), static_cast<size_t>(m));
    }
    i += len;
  }
  if (cjk || impl_->stemmer == nullptr || lower.empty()) return lower;
  const sb_symbol* s =
      sb_stemmer_stem(impl_->stemmer, reinterpret_cast<const sb_symbol*>(lower.data()),
                      static_cast<int>(lower.size()));
  if (s == nullptr) throw std::bad_alloc();
  return std::string(reinterpret_cast<const char*>(s),
                     static_cast<size_t>(sb_stemmer_length(impl_->stemmer)));
}

void TextAnalyzer::analyze(std::string_view text, std::vector<Term>& out) {
  std::vector<WordSpan> words;
  split_words(text, words);
  out.reserve(out.size() + words.size());
  for (const WordSpan& w : words) {
    out.push_back({normalize(text.substr(w.begin, w.end - w.begin), w.cjk), w.begin, w.end});
  }
}

std::vector<std::string> TextAnalyzer::analyze(std::string_view text) {
  std::vector<Term> terms;
  analyze(text, terms);
  std::vector<std::string> out;
  out.reserve(terms.size());
  for (Term& t : terms)
    out.push_back(std::move(t.text));
  return out;
}

}  // namespace s3::index
