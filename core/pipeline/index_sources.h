// Adapters from the on-disk index reader to the views retrieval/ scores against
// (retrieval/sources.h). Thin and allocation-free per call; no LibTorch.
#pragma once

#include "index/index_reader.h"
#include "retrieval/sources.h"

namespace s3 {

class IndexPostingSource final : public retrieval::PostingSource {
 public:
  explicit IndexPostingSource(const index::IndexReader& reader) : reader_(reader) {}
  int n_layers() const override { return static_cast<int>(reader_.layers().size()); }
  uint64_t n_tokens() const override { return reader_.n_tokens(); }
  uint32_t df(int layer, uint32_t feature) const override {
    return reader_.df(static_cast<uint32_t>(layer), feature);
  }
  void postings(int layer, uint32_t feature, retrieval::TokenRange hint,
                std::vector<uint32_t>& out) const override {
    reader_.postings(static_cast<uint32_t>(layer), feature, hint.begin, hint.end, out);
  }
  void add_postings(int layer, uint32_t feature, retrieval::TokenRange range, float weight,
                    float* acc, std::vector<uint32_t>& /*buf*/) const override {
    reader_.add_postings(static_cast<uint32_t>(layer), feature, range.begin, range.end, weight,
                         acc);
  }

 private:
  const index::IndexReader& reader_;
};

class IndexLexicalSource final : public retrieval::LexicalSource {
 public:
  explicit IndexLexicalSource(const index::LexicalIndex& lexical) : lexical_(lexical) {}
  uint32_t n_passages() const override { return lexical_.n_passages(); }
  double avg_passage_length() const override { return lexical_.avg_length(); }
  uint32_t passage_length(uint32_t p) const override { return lexical_.passage(p).length; }
  retrieval::TokenRange passage_tokens(uint32_t p) const override {
    const index::Passage passage = lexical_.passage(p);
    return {passage.token_begin, passage.token_end};
  }
  void term_postings(std::string_view term, std::vector<uint32_t>& passages,
                     std::vector<uint32_t>& tfs) const override {
    lexical_.term_postings(term, passages, tfs);
  }

 private:
  const index::LexicalIndex& lexical_;
};

class IndexDenseSource final : public retrieval::DenseSource {
 public:
  IndexDenseSource(const index::DenseIndex& dense, const index::LexicalIndex& lexical)
      : dense_(dense), lexical_(lexical) {}
  uint32_t n_passages() const override { return dense_.n_passages(); }
  uint32_t dim() const override { return dense_.dim(); }
  retrieval::TokenRange passage_tokens(uint32_t p) const override {
    const index::Passage passage = lexical_.passage(p);
    return {passage.token_begin, passage.token_end};
  }
  void passage_vector(uint32_t p, std::span<float> out) const override { dense_.vector(p, out); }

 private:
  const index::DenseIndex& dense_;
  const index::LexicalIndex& lexical_;
};

}  // namespace s3
