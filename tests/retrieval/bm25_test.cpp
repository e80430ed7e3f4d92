#include "retrieval/bm25.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/base/error.h"
#include "fakes.h"

namespace s3::retrieval {
namespace {

using testing::MemoryLexical;

MemoryLexical three_passages() {
  return MemoryLexical(
      {{"cat", "sat", "mat"}, {"cat", "cat", "dog"}, {"dog", "ran", "far", "away"}},
      {{0, 4}, {4, 9}, {9, 15}});
}

// Hand computation, k1 = 1.2, b = 0.75:
//   N = 3, dl = (3, 3, 4), avgdl = 10/3.
//   "cat" is in 2 passages: idf = ln(1 + (3 − 2 + 0.5)/(2 + 0.5)) = ln(1.6) = 0.4700036292457356
//   norm(dl=3) = 1 − 0.75 + 0.75·3/(10/3) = 0.25 + 0.675 = 0.925;  k1·norm = 1.11
//   norm(dl=4) = 0.25 + 0.75·1.2 = 1.15;                            k1·norm = 1.38
//   p0, tf 1: 1·2.2/(1 + 1.11) = 1.0426540284360190 → 0.4700036292·1.0426540284 =
//   0.4900511774126154 p1, tf 2: 2·2.2/(2 + 1.11) = 1.4147909967845660 → 0.6649569031129379 "dog"
//   (also in 2 passages, same idf): p1, tf 1, dl 3: 0.4900511774126154;  p2, tf 1, dl 4: 2.2/2.38 =
//   0.9243697479 → 0.4344571362775708 query "cat dog": p1 = 0.6649569031129379 + 0.4900511774126154
//   = 1.1550080805255534,
//                    p0 = 0.4900511774126154, p2 = 0.4344571362775708.
TEST(Bm25, HandComputedExample) {
  EXPECT_NEAR(bm25_idf(3, 2), 0.4700036292457356, 1e-15);
  const MemoryLexical lex = three_passages();
  const std::vector<std::string> q = {"cat", "dog"};
  const auto r = bm25_search(lex, q, {});
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].passage, 1u);
  EXPECT_NEAR(r[0].score, 1.1550080805255534, 1e-12);
  EXPECT_EQ(r[0].range, (TokenRange{4, 9}));
  EXPECT_EQ(r[1].passage, 0u);
  EXPECT_NEAR(r[1].score, 0.4900511774126154, 1e-12);
  EXPECT_EQ(r[2].passage, 2u);
  EXPECT_NEAR(r[2].score, 0.4344571362775708, 1e-12);

  const std::vector<std::string> cat = {"cat"};
  const auto c = bm25_search(lex, cat, {});
  ASSERT_EQ(c.size(), 2u);
  EXPECT_NEAR(c[0].score, 0.6649569031129379, 1e-12);
  EXPECT_NEAR(c[1].score, 0.4900511774126154, 1e-12);
}

TEST(Bm25, ExplainAddsUpToScore) {
  const MemoryLexical lex = three_passages();
  const std::vector<std::string> q = {"dog", "cat", "zebra", "cat"};
  for (const ScoredPassage& p : bm25_search(lex, q, {})) {
    const auto why = explain_passage(lex, q, p.passage, {});
    double sum = 0;
    for (const auto& t : why)
      sum += t.contribution;
    EXPECT_NEAR(sum, p.score, 1e-12);
  }
  const auto why = explain_passage(lex, q, 1, {});
  ASSERT_EQ(why.size(), 2u);
  EXPECT_EQ(why[0].term, "cat");  // qtf 2, tf 2: 2 × 0.6649569031129379
  EXPECT_EQ(why[0].qtf, 2u);
  EXPECT_EQ(why[0].tf, 2u);
  EXPECT_EQ(why[0].n_containing, 2u);
  EXPECT_NEAR(why[0].contribution, 2 * 0.6649569031129379, 1e-12);
  EXPECT_EQ(why[1].term, "dog");
  EXPECT_TRUE(explain_passage(lex, q, 99, {}).empty());
  const nlohmann::json j = why[0];
  EXPECT_EQ(j.at("term"), "cat");
}

TEST(Bm25, RepeatedQueryTermsCountLikeLucene) {
  const MemoryLexical lex = three_passages();
  const std::vector<std::string> once = {"cat"};
  const std::vector<std::string> twice = {"cat", "cat"};
  const auto a = bm25_search(lex, once, {});
  const auto b = bm25_search(lex, twice, {});
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_DOUBLE_EQ(b[i].score, 2 * a[i].score);
  Bm25Options unique;
  unique.count_repeated_terms = false;
  const auto u = bm25_search(lex, twice, unique);
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_DOUBLE_EQ(u[i].score, a[i].score);
}

TEST(Bm25, UnknownTermsAndFilters) {
  const MemoryLexical lex = three_passages();
  const std::vector<std::string> none = {"zebra"};
  EXPECT_TRUE(bm25_search(lex, none, {}).empty());
  EXPECT_TRUE(bm25_search(lex, std::vector<std::string>{}, {}).empty());
  const std::vector<std::string> q = {"cat", "dog"};
  // Only passages overlapping [6, 12): p1 and p2, clipped.
  const auto w = bm25_search(lex, q, {}, TokenRange{6, 12});
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w[0].range, (TokenRange{6, 9}));
  EXPECT_EQ(w[1].range, (TokenRange{9, 12}));
  Bm25Options top1;
  top1.max_passages = 1;
  EXPECT_EQ(bm25_search(lex, q, top1).size(), 1u);
  const auto cands = passages_to_candidates(w);
  ASSERT_EQ(cands.size(), 2u);
  EXPECT_EQ(cands[0].anchor, 6u);
  EXPECT_FLOAT_EQ(cands[0].score, static_cast<float>(w[0].score));
}

// A reference BM25 straight from the raw passages: nothing shared with the fast path but the
// formula (Lucene idf, (k1 + 1) tf numerator, exact dl).
std::map<uint32_t, double> reference_bm25(const std::vector<std::vector<std::string>>& passages,
                                          const std::vector<std::string>& query, double k1,
                                          double b) {
  const double n_docs = static_cast<double>(passages.size());
  double total = 0;
  for (const auto& p : passages)
    total += static_cast<double>(p.size());
  const double avgdl = total / n_docs;
  std::map<std::string, int> qtf;
  for (const auto& t : query)
    ++qtf[t];
  std::map<uint32_t, double> scores;
  for (const auto& [term, count] : qtf) {
    double n = 0;
    for (const auto& p : passages)
      n += std::count(p.begin(), p.end(), term) > 0;
    if (n == 0) continue;
    const double idf = std::log(1 + (n_docs - n + 0.5) / (n + 0.5));
    for (uint32_t i = 0; i < passages.size(); ++i) {
      const double tf =
          static_cast<double>(std::count(passages[i].begin(), passages[i].end(), term));
      if (tf == 0) continue;
      const double dl = static_cast<double>(passages[i].size());
      scores[i] += count * idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl));
    }
  }
  return scores;
}

TEST(Bm25, MatchesReferenceOnRandomData) {
  std::mt19937 rng(17);
  for (int trial = 0; trial < 20; ++trial) {
    const uint32_t n_passages = 1 + rng() % 80;
    const uint32_t vocab = 5 + rng() % 60;
    std::vector<std::vector<std::string>> passages(n_passages);
    std::vector<TokenRange> ranges;
    uint32_t pos = 0;
    for (auto& p : passages) {
      const uint32_t len = 1 + rng() % 40;
      // Zipf-like: low ids are frequent.
      for (uint32_t i = 0; i < len; ++i)
        p.push_back("t" + std::to_string((rng() % vocab) * (rng() % vocab) / vocab));
      ranges.push_back({pos, pos + len + 3});
      pos += len + 3;
    }
    std::vector<std::string> query;
    for (uint32_t i = 0, nq = 1 + rng() % 6; i < nq; ++i)
      query.push_back("t" + std::to_string(rng() % (vocab + 3)));
    Bm25Options o;
    o.k1 = trial % 2 ? 1.2 : 0.9;
    o.b = trial % 3 ? 0.75 : 0.4;
    const MemoryLexical lex(passages, ranges);
    const auto fast = bm25_search(lex, query, o);
    const auto ref = reference_bm25(passages, query, o.k1, o.b);
    size_t positive = 0;
    for (const auto& [p, s] : ref)
      positive += s > 0;
    ASSERT_EQ(fast.size(), positive);
    for (size_t i = 0; i < fast.size(); ++i) {
      EXPECT_NEAR(fast[i].score, ref.at(fast[i].passage), 1e-9 * ref.at(fast[i].passage));
      EXPECT_EQ(fast[i].range, ranges[fast[i].passage]);
      if (i > 0) {
        EXPECT_TRUE(
            fast[i - 1].score > fast[i].score ||
            (fast[i - 1].score == fast[i].score && fast[i - 1].range.begin < fast[i].range.begin));
      }
    }
  }
}

TEST(Bm25, OptionsValidateAndSerialise) {
  Bm25Options o;
  o.k1 = -1;
  try {
    o.validate();
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("--bm25-k1"), std::string::npos);
  }
  o = {};
  o.b = 2;
  EXPECT_THROW(o.validate(), UsageError);
  const nlohmann::json j = Bm25Options{};
  EXPECT_EQ(j.at("k1"), 1.2);
  EXPECT_EQ(j.at("b"), 0.75);
  EXPECT_EQ(j.at("count_repeated_terms"), true);
}

}  // namespace
}  // namespace s3::retrieval
