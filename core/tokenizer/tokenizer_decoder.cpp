#include "core/tokenizer/tokenizer_decoder.h"

#include "core/tokenizer/tokenizer_config.h"
#include "core/tokenizer/unicode.h"

namespace s3::tok {

namespace {

std::vector<char32_t> code_points(const std::string& s) {
  std::vector<char32_t> cps;
  for (size_t pos = 0; pos < s.size();) {
    size_t len = 0;
    cps.push_back(unicode::decode_utf8(s, pos, &len));
    pos += len;
  }
  return cps;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The byte of a "<0xAB>" token (Rust's u8::from_str_radix on the two characters), or -1.
int fallback_byte(const std::string& t) {
  if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return -1;
  if (t[3] == '+') return hex_value(t[4]);
  const int hi = hex_value(t[3]), lo = hex_value(t[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

class ByteLevel final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string bytes;
    for (const std::string& t : tokens) {
      const size_t before = bytes.size();
      bool mapped = true;
      for (size_t pos = 0; pos < t.size() && mapped;) {
        size_t len = 0;
        const int b = unicode::char_to_byte(unicode::decode_utf8(t, pos, &len));
        if (b < 0) {
          mapped = false;
        } else {
          bytes.push_back(static_cast<char>(b));
        }
        pos += len;
      }
      if (!mapped) {  // a token outside the byte alphabet is taken as it is
        bytes.resize(before);
        bytes += t;
      }
    }
    tokens.assign(1, unicode::utf8_lossy(bytes));
  }
};

class ByteFallback final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    out.reserve(tokens.size());
    std::string pending;
    auto flush = [&] {
      if (pending.empty()) return;
      if (unicode::first_invalid_utf8(pending) == pending.size()) {
        out.push_back(pending);
      } else {
        for (size_t i = 0; i < pending.size(); ++i)
          out.emplace_back("\xEF\xBF\xBD");
      }
      pending.clear();
    };
    for (std::string& t : tokens) {
      const int b = fallback_byte(t);
      if (b >= 0) {
        pending.push_back(static_cast<char>(b));
      } else {
        flush();
        out.push_back(std::move(t));
      }
    }
    flush();
    tokens = std::move(out);
  }
};

class Fuse final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string all;
    for (const std::string& t : tokens)
      all += t;
    tokens.assign(1, std::move(all));
  }
};

class Replace final : public Decoder {
 public:
  Replace(Pattern pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    Matches m;
    for (std::string& t : tokens) {
      m.clear();
      pattern_.find_all(t, m);
      if (m.empty()) continue;
      std::string r;
      size_t last = 0;
      for (const auto& [b, e] : m) {
        r.append(t, last, b - last);
        r += content_;
        last = e;
      }
      r.append(t, last);
      t = std::move(r);
    }
  }

 private:
  Pattern pattern_;
  std::string content_;
};

class Strip final : public Decoder {
 public:
  Strip(char32_t content, size_t start, size_t stop)
      : content_(content), start_(start), stop_(stop) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (std::string& t : tokens) {
      const std::vector<char32_t> cps = code_points(t);
      size_t start_cut = 0;
      for (size_t i = 0; i < start_ && i < cps.size() && cps[i] == content_; ++i)
        start_cut = i + 1;
      size_t stop_cut = cps.size();
      for (size_t i = 0; i < stop_ && i < cps.size() && cps[cps.size() - i - 1] == content_; ++i) {
        stop_cut = cps.size() - i - 1;
      }
      std::string r;
      for (size_t i = start_cut; i < stop_cut; ++i)
        unicode::append_utf8(r, cps[i]);
      t = std::move(r);
    }
  }

 private:
  char32_t content_;
  size_t start_, stop_;
};

class Metaspace final : public Decoder {
 public:
  Metaspace(char32_t replacement, bool prepend) : replacement_(replacement), prepend_(prepend) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string r;
      for (char32_t c : code_points(tokens[i])) {
        if (c != replacement_) {
          unicode::append_utf8(r, c);
        } else if (!(i == 0 && prepend_)) {
          r += ' ';
        }
      }
      tokens[i] = std::move(r);
    }
  }

 private:
  char32_t replacement_;
  bool prepend_;
};

std::string replace_all(std::string s, std::string_view from, std::string_view to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
  return s;
}

// tokenizers' WordPiece decoder: a token after the first loses the prefix ("##") it starts with or
// gains a leading space; with `cleanup`, the spaces BERT's tokenization put before punctuation
// and English contractions are taken out again (per token, in tokenizers' order).
class WordPieceDecoder final : public Decoder {
 public:
  WordPieceDecoder(std::string prefix, bool cleanup)
      : prefix_(std::move(prefix)), cleanup_(cleanup) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    static constexpr std::pair<std::string_view, std::string_view> kCleanup[] = {
        {" .", "."},   {" ?", "?"},     {" !", "!"},    {" ,", ","},
        {" ' ", "'"},  {" n't", "n't"}, {" 'm", "'m"},  {" do not", " don't"},
        {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string& t = tokens[i];
      if (i != 0) {
        if (t.compare(0, prefix_.size(), prefix_) == 0) {
          t.erase(0, prefix_.size());
        } else {
          t.insert(0, " ");
        }
      }
      if (cleanup_) {
        for (const auto& [from, to] : kCleanup)
          t = replace_all(std::move(t), from, to);
      }
    }
  }

 private:
  std::string prefix_;
  bool cleanup_;
};

class Sequence final : public Decoder {
 public:
  explicit Sequence(std::vector<std::unique_ptr<Decoder>> steps) : steps_(std::move(steps)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (const auto& s : steps_)
      s->decode_chain(tokens);
  }

 private:
  std::vector<std::unique_ptr<Decoder>> steps_;
};

}  // namespace

std::unique_ptr<Decoder> make_decoder(const json& config) {
  if (config.is_null()) return nullptr;
  const std::string type = type_of(config);
  if (type == "ByteLevel") return std::make_unique<ByteLevel>();
  if (type == "ByteFallback") return std::make_unique<ByteFallback>();
  if (type == "Fuse") return std::make_unique<Fuse>();
  if (type == "Replace") {
    return std::make_unique<Replace>(get_pattern(config, "pattern", "decoder Replace"),
                                     get_string(config, "content", "", "decoder Replace"));
  }
  if (type == "Strip") {
    const char* where = "decoder Strip";
    const int64_t start = get_int(config, "start", 0, where),
                  stop = get_int(config, "stop", 0, where);
    if (start < 0 || stop < 0) bad_field(where, "start/stop", "must not be negative");
    return std::make_unique<Strip>(get_char(config, "content", U' ', where),
                                   static_cast<size_t>(start), static_cast<size_t>(stop));
  }
  if (type == "Metaspace") {
    const char* where = "decoder Metaspace";
    bool prepend = get_bool(config, "add_prefix_space", true, where);
    const std::string scheme = get_string(config, "prepend_scheme", "", where);
    if (!scheme.empty()) prepend = scheme != "never";
    return std::make_unique<Metaspace>(get_char(config, "replacement", U'\u2581', where), prepend);
  }
  if (type == "WordPiece") {
    const char* where = "decoder WordPiece";
    return std::make_unique<WordPieceDecoder>(get_string(config, "prefix", "##", where),
                                              get_bool(config, "cleanup", true, where));
  }
  if (type == "Sequence") {
    auto it = config.find("decoders");
    if (it == config.end() || !it->is_array())
      bad_field("decoder Sequence", "decoders", "must be a list");
    std::vector<std::unique_ptr<Decoder>> steps;
    for (const auto& step : *it) {
      if (auto d = make_decoder(step)) steps.push_back(std::move(d));
    }
    return std::make_unique<Sequence>(std::move(steps));
  }
  unsupported("decoder", type,
              "ByteFallback, ByteLevel, Fuse, Metaspace, Replace, Sequence, Strip, WordPiece");
}

}  // namespace s3::tok
