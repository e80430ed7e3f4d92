// In-memory PostingSource / LexicalSource for the retrieval tests.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "retrieval/sources.h"

namespace s3::retrieval::testing {

class MemoryPostings final : public PostingSource {
 public:
  MemoryPostings(int layers, uint64_t tokens, bool honour_hint = false)
      : layers_(layers), tokens_(tokens), honour_hint_(honour_hint) {}

  void set(int layer, uint32_t feature, std::vector<uint32_t> positions) {
    std::sort(positions.begin(), positions.end());
    positions.erase(std::unique(positions.begin(), positions.end()), positions.end());
    lists_[{layer, feature}] = std::move(positions);
  }
  const std::vector<uint32_t>& list(int layer, uint32_t feature) const {
    static const std::vector<uint32_t> kEmpty;
    auto it = lists_.find({layer, feature});
    return it == lists_.end() ? kEmpty : it->second;
  }

  int n_layers() const override { return layers_; }
  uint64_t n_tokens() const override { return tokens_; }
  uint32_t df(int layer, uint32_t feature) const override {
    return static_cast<uint32_t>(list(layer, feature).size());
  }
  void postings(int layer, uint32_t feature, TokenRange hint,
                std::vector<uint32_t>& out) const override {
    const auto& l = list(layer, feature);
    if (honour_hint_) {
      out.assign(std::lower_bound(l.begin(), l.end(), hint.begin),
                 std::lower_bound(l.begin(), l.end(), hint.end));
    } else {
      out.assign(l.begin(), l.end());
    }
  }

 private:
  int layers_;
  uint64_t tokens_;
  bool honour_hint_;
  std::map<std::pair<int, uint32_t>, std::vector<uint32_t>> lists_;
};

// Passages given as analyzed term lists plus their token ranges.
class MemoryLexical final : public LexicalSource {
 public:
  MemoryLexical(std::vector<std::vector<std::string>> passages, std::vector<TokenRange> ranges)
      : passages_(std::move(passages)), ranges_(std::move(ranges)) {
    uint64_t total = 0;
    for (uint32_t p = 0; p < passages_.size(); ++p) {
      total += passages_[p].size();
      std::map<std::string, uint32_t> tf;
      for (const auto& t : passages_[p])
        ++tf[t];
      for (const auto& [t, n] : tf) {
        index_[t].first.push_back(p);
        index_[t].second.push_back(n);
      }
    }
    avg_ = passages_.empty() ? 0.0 : static_cast<double>(total) / passages_.size();
  }

  uint32_t n_passages() const override { return static_cast<uint32_t>(passages_.size()); }
  double avg_passage_length() const override { return avg_; }
  uint32_t passage_length(uint32_t p) const override {
    return static_cast<uint32_t>(passages_[p].size());
  }
  TokenRange passage_tokens(uint32_t p) const override { return ranges_[p]; }
  void term_postings(std::string_view term, std::vector<uint32_t>& passages,
                     std::vector<uint32_t>& tfs) const override {
    passages.clear();
    tfs.clear();
    auto it = index_.find(std::string(term));
    if (it == index_.end()) return;
    passages = it->second.first;
    tfs = it->second.second;
  }

 private:
  std::vector<std::vector<std::string>> passages_;
  std::vector<TokenRange> ranges_;
  std::map<std::string, std::pair<std::vector<uint32_t>, std::vector<uint32_t>>> index_;
  double avg_ = 0;
};

// Passage vectors and their token ranges, in memory.
class MemoryDense final : public DenseSource {
 public:
  // `dim` is the vectors' size (needed when there are none).
  MemoryDense(std::vector<std::vector<float>> vectors, std::vector<TokenRange> ranges,
              uint32_t dim = 0)
      : vectors_(std::move(vectors)),
        ranges_(std::move(ranges)),
        dim_(vectors_.empty() ? dim : static_cast<uint32_t>(vectors_[0].size())) {}

  uint32_t n_passages() const override { return static_cast<uint32_t>(vectors_.size()); }
  uint32_t dim() const override { return dim_; }
  TokenRange passage_tokens(uint32_t p) const override { return ranges_[p]; }
  void passage_vector(uint32_t p, std::span<float> out) const override {
    std::copy(vectors_[p].begin(), vectors_[p].end(), out.begin());
  }

 private:
  std::vector<std::vector<float>> vectors_;
  std::vector<TokenRange> ranges_;
  uint32_t dim_;
};

}  // namespace s3::retrieval::testing
