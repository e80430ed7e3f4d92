#include "core/tokenizer/tokenizer_wordpiece.h"

#include <nlohmann/json.hpp>

#include "core/base/error.h"
#include "core/tokenizer/tokenizer_config.h"
#include "core/tokenizer/unicode.h"

namespace s3::tok {

namespace {
constexpr const char* kWhere = "model WordPiece";
}  // namespace

WordPiece::WordPiece(const json& model) {
  vocab_ = read_vocab(model, kWhere);
  const std::string unk = get_string(model, "unk_token", "[UNK]", kWhere);
  auto it = vocab_.find(unk);
  if (it == vocab_.end()) bad_field(kWhere, "unk_token", "'" + unk + "' is not in the vocabulary");
  unk_id_ = it->second;
  prefix_ = get_string(model, "continuing_subword_prefix", "##", kWhere);
  const int64_t max_chars = get_int(model, "max_input_chars_per_word", 100, kWhere);
  if (max_chars < 0) bad_field(kWhere, "max_input_chars_per_word", "must not be negative");
  max_chars_ = static_cast<size_t>(max_chars);
}

void WordPiece::tokenize(std::string_view word, std::vector<ModelToken>& out) const {
  if (word.empty()) return;
  const auto whole = static_cast<uint32_t>(word.size());
  size_t chars = 0;
  for (size_t pos = 0; pos < word.size();
       pos += unicode::utf8_len(static_cast<unsigned char>(word[pos])))
    ++chars;
  if (chars > max_chars_) {
    out.push_back({unk_id_, 0, whole});
    return;
  }
  const size_t first = out.size();
  std::string candidate;
  size_t start = 0;
  while (start < word.size()) {
    size_t end = word.size();
    int32_t found = -1;
    while (start < end) {
      std::string_view piece = word.substr(start, end - start);
      if (start > 0) {
        candidate.assign(prefix_);
        candidate.append(piece);
        piece = candidate;
      }
      if (auto it = vocab_.find(piece); it != vocab_.end()) {
        found = it->second;
        break;
      }
      // Drop the last character of the candidate.
      --end;
      while (end > start && (static_cast<unsigned char>(word[end]) & 0xC0) == 0x80)
        --end;
    }
    if (found < 0) {  // a part no entry matches: the whole word is unknown
      out.resize(first);
      out.push_back({unk_id_, 0, whole});
      return;
    }
    out.push_back({found, static_cast<uint32_t>(start), static_cast<uint32_t>(end)});
    start = end;
  }
}

}  // namespace s3::tok
