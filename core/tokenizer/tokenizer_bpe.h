// tokenizer.json "model" of type BPE, merged exactly as Hugging Face tokenizers' BPE model does
// (ranked merges through a priority queue, byte_fallback, unk fusing, ignore_merges,
// continuing_subword_prefix / end_of_word_suffix), with a per-word cache. Internal.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/tokenizer/tokenizer_model.h"

namespace s3::tok {

class Bpe final : public Model {
 public:
  // Throws s3::Error for a malformed model (unknown merge tokens, bad merges, dropout).
  explicit Bpe(const nlohmann::json& model);

  void tokenize(std::string_view word, std::vector<ModelToken>& out) const override;
  const Vocab& vocab() const override { return vocab_; }

  // Whether no merge can join word[0, pos) and word[pos, ...) (pos on a code point boundary
  // inside the word): the two code points there are vocabulary tokens and never adjacent inside
  // one. The tokens of the word are then those of its two sides.
  bool can_cut(std::string_view word, size_t pos) const;
  // Bytes of the longest vocabulary string.
  size_t longest_token() const { return longest_token_; }

 private:
  void merge_word(std::string_view word, std::vector<ModelToken>& out) const;
  // merge_word through the cache (words up to kCacheMaxWordBytes).
  void merge_cached(std::string_view word, std::vector<ModelToken>& out) const;
  // Where a long word can be cut without changing its tokens (see bpe.cpp); empty when nowhere.
  std::vector<size_t> safe_cuts(std::string_view word) const;
  std::optional<int32_t> find(std::string_view s) const;

  Vocab vocab_;
  std::unordered_map<uint64_t, std::pair<int32_t, int32_t>>
      merges_;  // (left<<32 | right) -> rank, id
  std::string unk_token_;
  int32_t unk_id_ = -1;
  bool fuse_unk_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
  std::string prefix_;                   // continuing_subword_prefix
  std::string suffix_;                   // end_of_word_suffix
  std::array<int32_t, 256> byte_ids_{};  // ids of <0xXX>, -1 when absent
  // Every pair of adjacent code points inside some vocabulary token (a << 32 | b); empty when
  // words are never cut (a continuing_subword_prefix or end_of_word_suffix is set).
  std::unordered_set<uint64_t> inner_pairs_;
  size_t longest_token_ = 0;

  // Words seen before and their tokens; cleared when it grows past kCacheCapacity.
  static constexpr size_t kCacheCapacity = 1 << 17;
  static constexpr size_t kCacheMaxWordBytes = 256;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<ModelToken>, StringHash, std::equal_to<>>
      cache_;
};

}  // namespace s3::tok
