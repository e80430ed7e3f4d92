// Compares an opened index with the brute-force Reference (test_util.h): documents, tokens, every
// posting list, df arrays, totals, and the lexical index recomputed from the passages' text.
#pragma once

#include <gtest/gtest.h>

#include <map>

#include "index/index_reader.h"
#include "index/passage_splitter.h"
#include "index/text_analyzer.h"
#include "test_util.h"

namespace s3::index::test {

inline void expect_matches_reference(const IndexReader& r, const Reference& ref) {
  ASSERT_EQ(r.n_documents(), ref.docs.size());
  ASSERT_EQ(r.n_tokens(), ref.n_tokens);
  for (uint32_t d = 0; d < ref.docs.size(); ++d) {
    const TestDoc& want = ref.docs[d];
    const DocumentView v = r.document(d);
    ASSERT_EQ(v.id, d);
    ASSERT_EQ(v.name, want.name);
    ASSERT_EQ(v.text, want.text);
    ASSERT_EQ(v.token_begin, ref.doc_begin[d]);
    ASSERT_EQ(v.n_tokens(), want.ids.size());
    const auto ids = r.token_ids(d);
    ASSERT_TRUE(std::equal(ids.begin(), ids.end(), want.ids.begin(), want.ids.end()));
    const auto offs = r.token_offsets(d);
    ASSERT_TRUE(std::equal(offs.begin(), offs.end(), want.offsets.begin(), want.offsets.end()));
    if (v.n_tokens() > 0) {
      ASSERT_EQ(r.document_at(v.token_begin), d);
      ASSERT_EQ(r.document_at(v.token_end - 1), d);
    }
  }
  // Postings, df, totals.
  const uint32_t d_latent = r.d_latent();
  std::vector<uint32_t> got;
  for (uint32_t l = 0; l < ref.postings.size(); ++l) {
    uint64_t total = 0;
    const auto df = r.df(l);
    ASSERT_EQ(df.size(), d_latent);
    for (uint32_t f = 0; f < d_latent; ++f) {
      const auto& want = ref.postings[l][f];
      r.postings(l, f, got);
      ASSERT_EQ(got.size(), want.size()) << "layer slot " << l << " feature " << f;
      ASSERT_TRUE(std::equal(got.begin(), got.end(), want.begin()))
          << "layer slot " << l << " feature " << f;
      ASSERT_EQ(df[f], want.size());
      ASSERT_EQ(r.df(l, f), want.size());
      // Decode-and-add over a sub-range of the index: one add per position inside it.
      const uint32_t lo = r.n_tokens() / 3, hi = lo + r.n_tokens() / 2 + 1;
      std::vector<float> acc(hi - lo, 0.0f), acc_want(hi - lo, 0.0f);
      for (uint32_t p : want)
        if (p >= lo && p < hi) acc_want[p - lo] += 2.0f;
      r.add_postings(l, f, lo, hi, 2.0f, acc.data());
      ASSERT_EQ(acc, acc_want) << "layer slot " << l << " feature " << f;
      total += want.size();
    }
    EXPECT_EQ(r.totals(l).postings, total);
    EXPECT_EQ(r.totals(l).layer, r.layers()[l]);
  }
  // Lexical index against brute-force counting over the passages' text.
  const LexicalIndex& lex = r.lexical();
  TextAnalyzer analyzer(lex.analyzer_options());
  std::map<std::string, std::map<uint32_t, uint32_t>> want;  // term -> passage -> tf
  uint64_t total_len = 0;
  std::vector<uint32_t> next_byte(ref.docs.size(), 0), next_token(ref.docs.size(), 0);
  std::vector<bool> seen(ref.docs.size(), false);
  for (uint32_t p = 0; p < lex.n_passages(); ++p) {
    const Passage ps = lex.passage(p);
    ASSERT_LT(ps.doc, ref.docs.size());
    const std::string& text = ref.docs[ps.doc].text;
    // Passages of a document tile its bytes and tokens, in order.
    if (!seen[ps.doc]) {
      ASSERT_EQ(ps.byte_begin, 0u);
      ASSERT_EQ(ps.token_begin, ref.doc_begin[ps.doc]);
      seen[ps.doc] = true;
    } else {
      ASSERT_EQ(ps.byte_begin, next_byte[ps.doc]);
      ASSERT_EQ(ps.token_begin, next_token[ps.doc]);
    }
    next_byte[ps.doc] = ps.byte_end;
    next_token[ps.doc] = ps.token_end;
    // Tokens belong to the passage holding their first byte.
    for (uint32_t t = ps.token_begin; t < ps.token_end; ++t) {
      const TokenOffset& o = ref.docs[ps.doc].offsets[t - ref.doc_begin[ps.doc]];
      ASSERT_GE(o.begin, ps.byte_begin);
      if (ps.byte_end != text.size()) {
        ASSERT_LT(o.begin, ps.byte_end);
      }
    }
    const auto terms =
        analyzer.analyze(std::string_view(text).substr(ps.byte_begin, ps.byte_end - ps.byte_begin));
    ASSERT_EQ(ps.length, terms.size());
    total_len += terms.size();
    for (const std::string& t : terms)
      ++want[t][p];
  }
  for (uint32_t d = 0; d < ref.docs.size(); ++d) {
    if (!seen[d]) continue;
    ASSERT_EQ(next_byte[d], ref.docs[d].text.size());
    ASSERT_EQ(next_token[d], ref.doc_begin[d] + ref.docs[d].ids.size());
  }
  EXPECT_EQ(lex.total_length(), total_len);
  if (lex.n_passages() > 0) {
    EXPECT_DOUBLE_EQ(lex.avg_length(), double(total_len) / lex.n_passages());
  }
  std::vector<uint32_t> ps, tfs;  // reused: term_postings replaces their contents
  for (const auto& [term, m] : want) {
    lex.term_postings(term, ps, tfs);
    ASSERT_EQ(ps.size(), m.size()) << term;
    ASSERT_EQ(lex.doc_freq(term), m.size()) << term;
    size_t i = 0;
    for (const auto& [p, tf] : m) {
      ASSERT_EQ(ps[i], p) << term;
      ASSERT_EQ(tfs[i], tf) << term;
      ++i;
    }
  }
  lex.term_postings("zzz-not-a-term", ps, tfs);
  EXPECT_TRUE(ps.empty());
  EXPECT_TRUE(tfs.empty());
}

}  // namespace s3::index::test
