// Turning user text into the token ids a model is prompted with: optional chat template (rendered
// at export time into a prefix and suffix) and the BOS rule of docs/model-format.md.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/runtime/model_info.h"
#include "core/tokenizer/tokenizer.h"

namespace s3 {

// prefix + text + suffix when `chat`, else text. Throws Error if `chat` and the model has no
// template.
std::string apply_chat_template(const ModelInfo& info, std::string_view text, bool chat);

// Tokenizes a full prompt (special-token strings recognized) and prepends BOS when the model's
// tokenizer would and the text does not already start with it.
std::vector<int32_t> encode_prompt(const ModelInfo& info, const Tokenizer& tokenizer,
                                   std::string_view prompt);

// Hugging Face's clean_up_tokenization: the space before . ? ! , and English contractions removed
// (" ." -> ".", " n't" -> "n't", " 's" -> "'s", ...), as its decode does when the tokenizer's
// clean_up_tokenization_spaces is set.
std::string clean_up_tokenization(std::string text);

// Text of `ids` as Hugging Face's decode(ids, skip_special_tokens=true) gives it for this model:
// the tokenizer's decoder, then clean_up_tokenization when model.json's tokenizer config asks for
// it.
std::string decode_text(const ModelInfo& info, const Tokenizer& tokenizer,
                        std::span<const int32_t> ids);

}  // namespace s3
