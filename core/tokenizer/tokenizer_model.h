// tokenizer.json "model": what turns one pre-tokenized word into tokens (BPE, WordPiece), and the
// vocabulary type they share. Internal.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace s3::tok {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using Vocab = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

// One token of a word: id and byte range [b, e) in the word.
struct ModelToken {
  int32_t id;
  uint32_t b, e;
};

class Model {
 public:
  virtual ~Model() = default;
  // Appends the tokens of one pre-tokenized word. Thread-safe.
  virtual void tokenize(std::string_view word, std::vector<ModelToken>& out) const = 0;
  virtual const Vocab& vocab() const = 0;
};

}  // namespace s3::tok
