#include "core/tokenizer/tokenizer_normalizer.h"

#include <string>
#include <vector>

#include "core/tokenizer/tokenizer_config.h"
#include "core/tokenizer/unicode.h"
#include "core/tokenizer/unicode_bert.h"
#include "core/tokenizer/unicode_nfc.h"

namespace s3::tok {

namespace {

using unicode::CharChange;

std::u32string code_points(const std::string& text) {
  std::u32string out;
  out.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    size_t len = 0;
    out.push_back(unicode::decode_utf8(text, pos, &len));
    pos += len;
  }
  return out;
}

bool is_ascii(const std::string& text) {
  for (const char c : text)
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  return true;
}

// tokenizers' NormalizedString::filter followed by map: code points `keep` rejects are removed
// (each run is charged to the kept code point before it, or skipped at the start), the others
// become `map(c)`.
template <typename Keep, typename Map>
void filter_map(Piece& p, Keep&& keep, Map&& map) {
  std::vector<CharChange> changes;
  changes.reserve(p.text.size());
  bool changed = false;
  size_t removed = 0, removed_start = 0;
  bool have_last = false;
  char32_t last = 0;
  for (const char32_t c : code_points(p.text)) {
    if (!keep(c)) {
      ++removed;
      changed = true;
      continue;
    }
    if (have_last) {
      changes.push_back({last, -static_cast<int>(removed)});
    } else {
      removed_start = removed;
    }
    last = map(c);
    changed = changed || last != c;
    have_last = true;
    removed = 0;
  }
  if (!changed) return;
  if (have_last) changes.push_back({last, -static_cast<int>(removed)});
  transform(p, changes, removed_start);
}

// NormalizedString::lowercase: Rust's char::to_lowercase, extra code points inserted.
void lowercase(Piece& p) {
  std::vector<CharChange> changes;
  changes.reserve(p.text.size());
  bool changed = false;
  std::u32string lower;
  for (const char32_t c : code_points(p.text)) {
    lower.clear();
    unicode::bert::append_lowercase(c, lower);
    changed = changed || lower.size() != 1 || lower[0] != c;
    for (size_t i = 0; i < lower.size(); ++i)
      changes.push_back({lower[i], i == 0 ? 0 : 1});
  }
  if (changed) transform(p, changes);
}

void nfd(Piece& p) {
  std::vector<CharChange> changes;
  const unicode::NormalizationTables tokenizers_tables{unicode::bert::keeps_whole,
                                                       unicode::bert::is_starter_override};
  if (unicode::nfd_with_changes(p.text, changes, tokenizers_tables)) transform(p, changes);
}

void strip_nonspacing_marks(Piece& p) {
  filter_map(
      p, [](char32_t c) { return !unicode::bert::is_nonspacing_mark(c); },
      [](char32_t c) { return c; });
}

// tokenizers' BertNormalizer: clean_text, handle_chinese_chars, strip_accents (default: as
// lowercase), lowercase, in this order.
class Bert final : public Normalizer {
 public:
  Bert(bool clean_text, bool chinese, bool strip_accents, bool lowercase)
      : clean_(clean_text), chinese_(chinese), strip_(strip_accents), lower_(lowercase) {}

  void normalize(Piece& p, bool) const override {
    if (is_ascii(p.text)) {
      normalize_ascii(p);
      return;
    }
    if (clean_) {
      filter_map(
          p, [](char32_t c) { return c != 0 && c != 0xFFFD && !unicode::bert::is_control(c); },
          [](char32_t c) { return unicode::bert::is_whitespace(c) ? U' ' : c; });
    }
    if (chinese_) space_chinese(p);
    if (strip_) {
      nfd(p);
      strip_nonspacing_marks(p);
    }
    if (lower_) lowercase(p);
  }
  // Every step maps or removes one code point at a time, or (NFD) reorders marks after a
  // starter: none acts across a space.
  bool local() const override { return true; }

 private:
  // The same steps on ASCII text, byte by byte (no Chinese characters, nothing to decompose).
  void normalize_ascii(Piece& p) const {
    size_t out = 0;
    for (size_t i = 0; i < p.text.size(); ++i) {
      char c = p.text[i];
      if (clean_) {
        if (c == '\t' || c == '\n' || c == '\r') {
          c = ' ';
        } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {
          continue;  // control (NUL included)
        }
      }
      if (lower_ && c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
      p.text[out] = c;
      p.align[out] = p.align[i];
      ++out;
    }
    p.text.resize(out);
    p.align.resize(out);
  }

  static void space_chinese(Piece& p) {
    std::vector<CharChange> changes;
    changes.reserve(p.text.size());
    bool any = false;
    for (const char32_t c : code_points(p.text)) {
      if (unicode::bert::is_chinese_char(c)) {
        changes.push_back({U' ', 0});
        changes.push_back({c, 1});
        changes.push_back({U' ', 1});
        any = true;
      } else {
        changes.push_back({c, 0});
      }
    }
    if (any) transform(p, changes);
  }

  bool clean_, chinese_, strip_, lower_;
};

// A space is a starter with no decomposition: NFD never acts across one.
class Nfd final : public Normalizer {
 public:
  void normalize(Piece& p, bool) const override { nfd(p); }
  bool local() const override { return true; }
};

class Lowercase final : public Normalizer {
 public:
  void normalize(Piece& p, bool) const override { lowercase(p); }
  bool local() const override { return true; }  // one code point at a time
};

// tokenizers' StripAccents: every combining mark removed (its NFD is left to the user).
class StripAccents final : public Normalizer {
 public:
  void normalize(Piece& p, bool) const override {
    filter_map(
        p, [](char32_t c) { return !unicode::bert::is_combining_mark(c); },
        [](char32_t c) { return c; });
  }
  bool local() const override { return true; }  // one code point at a time
};

// A space is a starter that composes with nothing: NFC never acts across one.

class Nfc final : public Normalizer {
 public:
  void normalize(Piece& p, bool) const override {
    std::vector<unicode::CharChange> changes;
    if (unicode::nfc_with_changes(p.text, changes)) transform(p, changes);
  }
  bool local() const override { return true; }
};

class Prepend final : public Normalizer {
 public:
  explicit Prepend(std::string s) : s_(std::move(s)) {}
  void normalize(Piece& p, bool continued) const override {
    if (!continued) prepend(p, s_);
  }
  bool local() const override { return true; }

 private:
  std::string s_;
};

class Replace final : public Normalizer {
 public:
  Replace(Pattern pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void normalize(Piece& p, bool) const override {
    Matches m;
    pattern_.find_all(p.text, m);
    replace(p, m, content_);
  }
  // A literal's matches are as long as the literal; a regex's may be any length.
  bool local() const override { return pattern_.is_literal(); }

 private:
  Pattern pattern_;
  std::string content_;
};

class Sequence final : public Normalizer {
 public:
  explicit Sequence(std::vector<std::unique_ptr<Normalizer>> steps) : steps_(std::move(steps)) {}
  void normalize(Piece& p, bool continued) const override {
    for (const auto& s : steps_)
      s->normalize(p, continued);
  }
  bool local() const override {
    for (const auto& s : steps_)
      if (!s->local()) return false;
    return true;
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> steps_;
};

}  // namespace

std::unique_ptr<Normalizer> make_normalizer(const json& config) {
  if (config.is_null()) return nullptr;
  const std::string type = type_of(config);
  if (type == "NFC") return std::make_unique<Nfc>();
  if (type == "NFD") return std::make_unique<Nfd>();
  if (type == "Lowercase") return std::make_unique<Lowercase>();
  if (type == "StripAccents") return std::make_unique<StripAccents>();
  if (type == "BertNormalizer") {
    const char* where = "normalizer BertNormalizer";
    const bool lower = get_bool(config, "lowercase", true, where);
    return std::make_unique<Bert>(get_bool(config, "clean_text", true, where),
                                  get_bool(config, "handle_chinese_chars", true, where),
                                  get_bool(config, "strip_accents", lower, where), lower);
  }
  if (type == "Prepend")
    return std::make_unique<Prepend>(get_string(config, "prepend", "", "normalizer Prepend"));
  if (type == "Replace") {
    return std::make_unique<Replace>(get_pattern(config, "pattern", "normalizer Replace"),
                                     get_string(config, "content", "", "normalizer Replace"));
  }
  if (type == "Sequence") {
    auto it = config.find("normalizers");
    if (it == config.end() || !it->is_array())
      bad_field("normalizer Sequence", "normalizers", "must be a list");
    std::vector<std::unique_ptr<Normalizer>> steps;
    for (const auto& step : *it) {
      if (auto n = make_normalizer(step)) steps.push_back(std::move(n));
    }
    return std::make_unique<Sequence>(std::move(steps));
  }
  unsupported("normalizer", type,
              "BertNormalizer, Lowercase, NFC, NFD, Prepend, Replace, Sequence, StripAccents");
}

}  // namespace s3::tok
