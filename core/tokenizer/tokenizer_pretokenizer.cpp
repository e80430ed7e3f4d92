#include "core/tokenizer/tokenizer_pretokenizer.h"

#include <algorithm>

#include "core/tokenizer/tokenizer_config.h"
#include "core/tokenizer/unicode.h"
#include "core/tokenizer/unicode_bert.h"

namespace s3::tok {

namespace {

// The GPT-2 pre-tokenizer regex of ByteLevel (use_regex: true).
constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

enum class Behavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

struct Range {
  size_t b, e;
  bool match;
};

// tokenizers' Pattern::find_matches: the matches and the text between them, covering [0, size).
std::vector<Range> cover(const Matches& matches, size_t size, bool invert) {
  std::vector<Range> r;
  if (size == 0) {
    r.push_back({0, 0, invert});
    return r;
  }
  size_t prev = 0;
  for (const auto& [b, e] : matches) {
    if (prev != b) r.push_back({prev, b, invert});
    r.push_back({b, e, !invert});
    prev = e;
  }
  if (prev != size) r.push_back({prev, size, invert});
  return r;
}

// tokenizers' NormalizedString::split: applies the delimiter behavior, then slices (dropping empty
// slices, as PreTokenizedString::split does).
void split_piece(const Piece& p, const std::vector<Range>& ranges, Behavior behavior,
                 std::vector<Piece>& out) {
  std::vector<std::pair<Range, bool>> splits;  // range, remove
  bool previous_match = false;
  switch (behavior) {
    case Behavior::Isolated:
      for (const Range& r : ranges)
        splits.push_back({r, false});
      break;
    case Behavior::Removed:
      for (const Range& r : ranges)
        splits.push_back({r, r.match});
      break;
    case Behavior::Contiguous:
      for (const Range& r : ranges) {
        if (r.match == previous_match && !splits.empty()) {
          splits.back().first.e = r.e;
        } else {
          splits.push_back({r, false});
        }
        previous_match = r.match;
      }
      break;
    case Behavior::MergedWithPrevious:
      for (const Range& r : ranges) {
        if (r.match && !previous_match && !splits.empty()) {
          splits.back().first.e = r.e;
        } else {
          splits.push_back({r, false});
        }
        previous_match = r.match;
      }
      break;
    case Behavior::MergedWithNext:
      for (auto it = ranges.rbegin(); it != ranges.rend(); ++it) {
        if (it->match && !previous_match && !splits.empty()) {
          splits.back().first.b = it->b;
        } else {
          splits.push_back({*it, false});
        }
        previous_match = it->match;
      }
      std::reverse(splits.begin(), splits.end());
      break;
  }
  for (const auto& [r, remove] : splits) {
    if (!remove && r.b < r.e) out.push_back(slice(p, r.b, r.e));
  }
}

// Runs `fn(piece, out)` on every text piece; added-token pieces are kept as they are.
template <typename Fn>
void for_each_text(std::vector<Piece>& pieces, Fn&& fn) {
  std::vector<Piece> out;
  out.reserve(pieces.size() * 2);
  for (Piece& p : pieces) {
    if (p.is_token()) {
      out.push_back(std::move(p));
    } else {
      fn(p, out);
    }
  }
  pieces = std::move(out);
}

Behavior parse_behavior(const std::string& s) {
  if (s == "Removed") return Behavior::Removed;
  if (s == "Isolated") return Behavior::Isolated;
  if (s == "MergedWithPrevious") return Behavior::MergedWithPrevious;
  if (s == "MergedWithNext") return Behavior::MergedWithNext;
  if (s == "Contiguous") return Behavior::Contiguous;
  bad_field("pre_tokenizer Split", "behavior",
            "must be Removed, Isolated, MergedWithPrevious, MergedWithNext or Contiguous, not '" +
                s + "'");
}

class Split final : public PreTokenizer {
 public:
  Split(Pattern pattern, Behavior behavior, bool invert)
      : pattern_(std::move(pattern)), behavior_(behavior), invert_(invert) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    Matches m;
    for_each_text(pieces, [&](Piece& p, std::vector<Piece>& out) {
      m.clear();
      pattern_.find_all(p.text, m);
      split_piece(p, cover(m, p.text.size(), invert_), behavior_, out);
    });
  }

 private:
  Pattern pattern_;
  Behavior behavior_;
  bool invert_;
};

class ByteLevel final : public PreTokenizer {
 public:
  ByteLevel(bool add_prefix_space, bool use_regex)
      : add_prefix_space_(add_prefix_space),
        regex_(use_regex ? std::make_unique<Regex>(kGpt2Pattern) : nullptr) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    Matches m;
    for_each_text(pieces, [&](Piece& p, std::vector<Piece>& out) {
      if (add_prefix_space_ && (p.text.empty() || p.text[0] != ' ')) prepend(p, " ");
      if (!regex_) {
        if (!p.text.empty()) out.push_back(std::move(p));
        return;
      }
      m.clear();
      regex_->find_all(p.text, m);
      split_piece(p, cover(m, p.text.size(), false), Behavior::Isolated, out);
    });
    for (Piece& p : pieces) {
      if (!p.is_token()) byte_level_map(p);
    }
  }

 private:
  bool add_prefix_space_;
  std::unique_ptr<Regex> regex_;
};

class Digits final : public PreTokenizer {
 public:
  explicit Digits(bool individual) : individual_(individual) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    Matches m;
    for_each_text(pieces, [&](Piece& p, std::vector<Piece>& out) {
      m.clear();
      size_t pos = 0;
      while (pos < p.text.size()) {
        size_t len = 0;
        if (unicode::is_numeric(unicode::decode_utf8(p.text, pos, &len)))
          m.emplace_back(pos, pos + len);
        pos += len;
      }
      split_piece(p, cover(m, p.text.size(), false),
                  individual_ ? Behavior::Isolated : Behavior::Contiguous, out);
    });
  }

 private:
  bool individual_;
};

class Metaspace final : public PreTokenizer {
 public:
  enum class Prepend { Always, First, Never };
  Metaspace(char32_t replacement, Prepend scheme, bool split) : scheme_(scheme), split_(split) {
    unicode::append_utf8(replacement_, replacement);
  }
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    Matches m;
    for_each_text(pieces, [&](Piece& p, std::vector<Piece>& out) {
      m.clear();
      find_literal(p.text, " ", m);
      replace(p, m, replacement_);
      const bool starts = p.text.compare(0, replacement_.size(), replacement_) == 0;
      if (!starts &&
          (scheme_ == Prepend::Always || (scheme_ == Prepend::First && p.orig_begin == 0))) {
        prepend(p, replacement_);
      }
      if (!split_) {
        if (!p.text.empty()) out.push_back(std::move(p));
        return;
      }
      m.clear();
      find_literal(p.text, replacement_, m);
      split_piece(p, cover(m, p.text.size(), false), Behavior::MergedWithNext, out);
    });
  }

 private:
  std::string replacement_;
  Prepend scheme_;
  bool split_;
};

// Matches of a character class: every code point of the class is a match of its own (tokenizers'
// Pattern for a `Fn(char) -> bool`).
template <typename Pred>
void find_chars(const std::string& text, Pred&& pred, Matches& m) {
  for (size_t pos = 0; pos < text.size();) {
    size_t len = 0;
    if (pred(unicode::decode_utf8(text, pos, &len))) m.emplace_back(pos, pos + len);
    pos += len;
  }
}

// tokenizers' BertPreTokenizer: whitespace removed, then every punctuation character isolated.
class Bert final : public PreTokenizer {
 public:
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    Matches m;
    for_each_text(pieces, [&](Piece& p, std::vector<Piece>& out) {
      m.clear();
      find_chars(p.text, unicode::bert::is_whitespace, m);
      split_piece(p, cover(m, p.text.size(), false), Behavior::Removed, out);
    });
    for_each_text(pieces, [&](Piece& p, std::vector<Piece>& out) {
      m.clear();
      find_chars(p.text, unicode::bert::is_punctuation, m);
      split_piece(p, cover(m, p.text.size(), false), Behavior::Isolated, out);
    });
  }
};

class Sequence final : public PreTokenizer {
 public:
  explicit Sequence(std::vector<std::unique_ptr<PreTokenizer>> steps) : steps_(std::move(steps)) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    for (const auto& s : steps_)
      s->pre_tokenize(pieces);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

}  // namespace

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const json& config) {
  if (config.is_null()) return nullptr;
  const std::string type = type_of(config);
  if (type == "Sequence") {
    auto it = config.find("pretokenizers");
    if (it == config.end() || !it->is_array())
      bad_field("pre_tokenizer Sequence", "pretokenizers", "must be a list");
    std::vector<std::unique_ptr<PreTokenizer>> steps;
    for (const auto& step : *it) {
      if (auto p = make_pre_tokenizer(step)) steps.push_back(std::move(p));
    }
    return std::make_unique<Sequence>(std::move(steps));
  }
  if (type == "Split") {
    const char* where = "pre_tokenizer Split";
    return std::make_unique<Split>(get_pattern(config, "pattern", where),
                                   parse_behavior(get_string(config, "behavior", "", where)),
                                   get_bool(config, "invert", false, where));
  }
  if (type == "ByteLevel") {
    const char* where = "pre_tokenizer ByteLevel";
    return std::make_unique<ByteLevel>(get_bool(config, "add_prefix_space", true, where),
                                       get_bool(config, "use_regex", true, where));
  }
  if (type == "BertPreTokenizer") return std::make_unique<Bert>();
  if (type == "Digits") {
    return std::make_unique<Digits>(
        get_bool(config, "individual_digits", false, "pre_tokenizer Digits"));
  }
  if (type == "Metaspace") {
    const char* where = "pre_tokenizer Metaspace";
    const char32_t replacement = get_char(config, "replacement", U'\u2581', where);
    Metaspace::Prepend scheme = get_bool(config, "add_prefix_space", true, where)
                                    ? Metaspace::Prepend::Always
                                    : Metaspace::Prepend::Never;
    const std::string s = get_string(config, "prepend_scheme", "", where);
    if (s == "always") {
      scheme = Metaspace::Prepend::Always;
    } else if (s == "first") {
      scheme = Metaspace::Prepend::First;
    } else if (s == "never") {
      scheme = Metaspace::Prepend::Never;
    } else if (!s.empty()) {
      bad_field(where, "prepend_scheme", "must be always, first or never, not '" + s + "'");
    }
    return std::make_unique<Metaspace>(replacement, scheme, get_bool(config, "split", true, where));
  }
  unsupported("pre_tokenizer", type,
              "BertPreTokenizer, ByteLevel, Digits, Metaspace, Sequence, Split");
}

}  // namespace s3::tok
