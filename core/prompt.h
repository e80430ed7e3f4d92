// Turning user text into the token ids a model is prompted with: optional chat template (rendered
// at export time into a prefix and suffix) and the BOS rule of docs/model-format.md.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/model_info.h"
#include "core/tokenizer.h"

namespace s3 {

// prefix + text + suffix when `chat`, else text. Throws Error if `chat` and the model has no template.
std::string apply_chat_template(const ModelInfo& info, std::string_view text, bool chat);

// Tokenizes a full prompt (special-token strings recognized) and prepends BOS when the model's
// tokenizer would and the text does not already start with it.
std::vector<int32_t> encode_prompt(const ModelInfo& info, const Tokenizer& tokenizer, std::string_view prompt);

}  // namespace s3
