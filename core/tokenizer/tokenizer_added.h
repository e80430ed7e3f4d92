// Added tokens (tokenizer.json "added_tokens"): special and plain tokens that are found in the
// text before the model sees it, as Hugging Face tokenizers' AddedVocabulary does: leftmost-
// longest matching, then the single_word / lstrip / rstrip rules. Internal.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace s3::tok {

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool special = false;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = true;
};

// A split of a string: an added token (id >= 0) or plain text (id == -1), byte range [b, e).
struct AddedSplit {
  int32_t id;
  size_t b, e;
};

// Finds one set of patterns (the non-normalized or the normalized added tokens).
class AddedMatcher {
 public:
  // `patterns[i]` is what token `tokens[i]` looks like in the text it is matched against.
  AddedMatcher(std::vector<std::string> patterns, std::vector<AddedToken> tokens);
  AddedMatcher() = default;

  bool empty() const { return tokens_.empty(); }

  // Splits `s` into added tokens and the text between them; the splits cover `s` in order. An
  // empty `s` gives one empty text split.
  std::vector<AddedSplit> split(std::string_view s) const;

 private:
  struct Node {
    std::vector<std::pair<unsigned char, int32_t>> next;  // sorted by byte
    int32_t token = -1;                                   // index into tokens_ ending here
  };
  // Longest pattern starting at s[pos]: index into tokens_ and its length, or -1.
  int32_t longest_at(std::string_view s, size_t pos, size_t* len) const;

  std::vector<Node> nodes_;
  std::array<bool, 256> first_byte_{};
  std::vector<AddedToken> tokens_;
};

}  // namespace s3::tok
