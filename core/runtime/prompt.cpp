#include "core/runtime/prompt.h"

#include <string_view>
#include <utility>

#include "core/base/error.h"

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

std::vector<int32_t> encode_prompt(const ModelInfo& info, const Tokenizer& tokenizer,
                                   std::string_view prompt) {
  std::vector<int32_t> ids = tokenizer.encode(prompt);
  const bool has_bos_text =
      info.bos_token && !info.bos_token->empty() && prompt.starts_with(*info.bos_token);
  if (info.add_bos_token && info.bos_token_id && !has_bos_text)
    ids.insert(ids.begin(), *info.bos_token_id);
  return ids;
}

std::string clean_up_tokenization(std::string text) {
  // The order of Hugging Face's replacements: " ' " goes before the contractions.
  static constexpr std::pair<std::string_view, std::string_view> kRules[] = {
      {" .", "."},     {" ?", "?"},   {" !", "!"},   {" ,", ","},     {" ' ", "'"},
      {" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
  for (const auto& [from, to] : kRules) {
    std::string out;
    out.reserve(text.size());
    size_t at = 0;
    for (size_t hit = text.find(from); hit != std::string::npos; hit = text.find(from, at)) {
      out.append(text, at, hit - at);
      out += to;
      at = hit + from.size();
    }
    out.append(text, at, std::string::npos);
    text = std::move(out);
  }
  return text;
}

std::string decode_text(const ModelInfo& info, const Tokenizer& tokenizer,
                        std::span<const int32_t> ids) {
  std::string text = tokenizer.decode(ids, /*skip_special_tokens=*/true);
  return info.clean_up_tokenization_spaces ? clean_up_tokenization(std::move(text)) : text;
}

}  // namespace s3
