#include "core/prompt.h"

#include "core/error.h"

namespace s3 {

std::string apply_chat_template(const ModelInfo& info, std::string_view text, bool chat) {
  if (!chat) return std::string(text);
  if (!info.chat_template)
    throw Error("model " + info.dir.string() + " has no chat template; drop --chat");
  std::string out;
  out.reserve(info.chat_template->prefix.size() + text.size() + info.chat_template->suffix.size());
  out += info.chat_template->prefix;
  out += text;
  out += info.chat_template->suffix;
  return out;
}

std::vector<int32_t> encode_prompt(const ModelInfo& info, const Tokenizer& tokenizer, std::string_view prompt) {
  std::vector<int32_t> ids = tokenizer.encode(prompt);
  const bool has_bos_text = info.bos_token && !info.bos_token->empty() && prompt.starts_with(*info.bos_token);
  if (info.add_bos_token && info.bos_token_id && !has_bos_text) ids.insert(ids.begin(), *info.bos_token_id);
  return ids;
}

}  // namespace s3
