#include "core/tokenizer_normalizer.h"

#include <vector>

#include "core/tokenizer_config.h"
#include "core/unicode_nfc.h"

namespace s3::tok {

namespace {

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
  unsupported("normalizer", type, "NFC, Prepend, Replace, Sequence");
}

}  // namespace s3::tok
