// tokenizer.json "model" of type WordPiece, as Hugging Face tokenizers' WordPiece model: greedy
// longest-match-first over the word, pieces after the first looked up with the
// continuing_subword_prefix ("##"); a word longer than max_input_chars_per_word characters, or one
// with a part no vocabulary entry matches, becomes the single unk_token. Internal.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>

#include "core/tokenizer/tokenizer_model.h"

namespace s3::tok {

class WordPiece final : public Model {
 public:
  // Throws s3::Error for a malformed model (no vocab, an unk_token missing from it).
  explicit WordPiece(const nlohmann::json& model);

  void tokenize(std::string_view word, std::vector<ModelToken>& out) const override;
  const Vocab& vocab() const override { return vocab_; }

 private:
  Vocab vocab_;
  int32_t unk_id_ = -1;
  std::string prefix_;      // continuing_subword_prefix
  size_t max_chars_ = 100;  // max_input_chars_per_word
};

}  // namespace s3::tok
