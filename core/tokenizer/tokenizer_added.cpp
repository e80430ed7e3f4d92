#include "core/tokenizer/tokenizer_added.h"

#include <algorithm>

#include "core/tokenizer/unicode.h"

namespace s3::tok {

namespace {

// The code point that ends s[0, end) (end > 0, valid UTF-8).
char32_t last_char(std::string_view s, size_t end) {
  size_t b = end - 1;
  while (b > 0 && (static_cast<unsigned char>(s[b]) & 0xC0) == 0x80)
    --b;
  size_t len = 0;
  return unicode::decode_utf8(s, b, &len);
}

// Start of the run of White_Space that ends at `end`.
size_t spaces_before(std::string_view s, size_t end) {
  while (end > 0) {
    size_t b = end - 1;
    while (b > 0 && (static_cast<unsigned char>(s[b]) & 0xC0) == 0x80)
      --b;
    size_t len = 0;
    if (!unicode::is_white_space(unicode::decode_utf8(s, b, &len))) break;
    end = b;
  }
  return end;
}

// End of the run of White_Space that starts at `pos`.
size_t spaces_after(std::string_view s, size_t pos) {
  while (pos < s.size()) {
    size_t len = 0;
    if (!unicode::is_white_space(unicode::decode_utf8(s, pos, &len))) break;
    pos += len;
  }
  return pos;
}

}  // namespace

AddedMatcher::AddedMatcher(std::vector<std::string> patterns, std::vector<AddedToken> tokens)
    : tokens_(std::move(tokens)) {
  nodes_.emplace_back();
  for (size_t t = 0; t < patterns.size(); ++t) {
    const std::string& pat = patterns[t];
    if (pat.empty()) continue;
    first_byte_[static_cast<unsigned char>(pat[0])] = true;
    int32_t node = 0;
    for (char ch : pat) {
      const auto byte = static_cast<unsigned char>(ch);
      auto& next = nodes_[static_cast<size_t>(node)].next;
      auto it =
          std::lower_bound(next.begin(), next.end(), byte,
                           [](const auto& entry, unsigned char b) { return entry.first < b; });
      if (it != next.end() && it->first == byte) {
        node = it->second;
      } else {
        const auto child = static_cast<int32_t>(nodes_.size());
        next.insert(it, {byte, child});
        nodes_.emplace_back();  // invalidates `next`; not used after this
        node = child;
      }
    }
    // Two tokens with the same pattern: the first one wins (aho-corasick keeps the lowest index).
    if (nodes_[static_cast<size_t>(node)].token < 0)
      nodes_[static_cast<size_t>(node)].token = static_cast<int32_t>(t);
  }
}

int32_t AddedMatcher::longest_at(std::string_view s, size_t pos, size_t* len) const {
  int32_t best = -1;
  int32_t node = 0;
  for (size_t i = pos; i < s.size(); ++i) {
    const auto byte = static_cast<unsigned char>(s[i]);
    const auto& next = nodes_[static_cast<size_t>(node)].next;
    auto it = std::lower_bound(next.begin(), next.end(), byte,
                               [](const auto& entry, unsigned char b) { return entry.first < b; });
    if (it == next.end() || it->first != byte) break;
    node = it->second;
    if (nodes_[static_cast<size_t>(node)].token >= 0) {
      best = nodes_[static_cast<size_t>(node)].token;
      *len = i + 1 - pos;
    }
  }
  return best;
}

std::vector<AddedSplit> AddedMatcher::split(std::string_view s) const {
  std::vector<AddedSplit> splits;
  if (s.empty()) {
    splits.push_back({-1, 0, 0});
    return splits;
  }
  size_t start_offset = 0;  // end of the last accepted split
  size_t pos = 0;           // where the search for the next match resumes
  while (pos < s.size() && !tokens_.empty()) {
    if (!first_byte_[static_cast<unsigned char>(s[pos])]) {
      ++pos;
      continue;
    }
    size_t len = 0;
    const int32_t t = longest_at(s, pos, &len);
    if (t < 0) {
      ++pos;
      continue;
    }
    size_t start = pos, stop = pos + len;
    pos = stop;  // matches never overlap, accepted or not
    const AddedToken& tok = tokens_[static_cast<size_t>(t)];
    if (tok.single_word) {
      const bool start_ok = start == 0 || !unicode::is_word_char(last_char(s, start));
      size_t clen = 0;
      const bool stop_ok =
          stop == s.size() || !unicode::is_word_char(unicode::decode_utf8(s, stop, &clen));
      if (!start_ok || !stop_ok) continue;
    }
    if (tok.lstrip) start = std::max(spaces_before(s, start), start_offset);
    if (tok.rstrip) stop = spaces_after(s, stop);
    if (start_offset < start) splits.push_back({-1, start_offset, start});
    splits.push_back({tok.id, start, stop});
    start_offset = stop;
    pos = std::max(pos, stop);
  }
  if (start_offset != s.size()) splits.push_back({-1, start_offset, s.size()});
  return splits;
}

}  // namespace s3::tok
