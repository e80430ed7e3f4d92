#include "retrieval/dense.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/base/error.h"
#include "fakes.h"
#include "retrieval/pipeline.h"

namespace s3::retrieval {
namespace {

using testing::MemoryDense;

std::vector<float> random_vector(std::mt19937& rng, size_t dim) {
  std::normal_distribution<float> normal;
  std::vector<float> v(dim);
  for (float& x : v)
    x = normal(rng);
  return v;
}

// The oracle: cosine in long double, every passage, sorted by (score desc, begin, id).
std::vector<ScoredPassage> oracle(const std::vector<std::vector<float>>& vectors,
                                  const std::vector<TokenRange>& ranges,
                                  const std::vector<float>& q, TokenRange within) {
  std::vector<ScoredPassage> out;
  for (uint32_t p = 0; p < vectors.size(); ++p) {
    const TokenRange r{std::max(ranges[p].begin, within.begin),
                       std::min(ranges[p].end, within.end)};
    if (r.empty()) continue;
    long double dot = 0, a = 0, b = 0;
    for (size_t i = 0; i < q.size(); ++i) {
      dot += static_cast<long double>(vectors[p][i]) * q[i];
      a += static_cast<long double>(vectors[p][i]) * vectors[p][i];
      b += static_cast<long double>(q[i]) * q[i];
    }
    out.push_back({p, r, static_cast<double>(dot / std::sqrt(a * b))});
  }
  std::sort(out.begin(), out.end(), [](const ScoredPassage& x, const ScoredPassage& y) {
    if (x.score != y.score) return x.score > y.score;
    return x.range.begin != y.range.begin ? x.range.begin < y.range.begin : x.passage < y.passage;
  });
  return out;
}

TEST(DenseSearch, RanksByCosineLikeTheOracle) {
  std::mt19937 rng(3);
  for (int trial = 0; trial < 50; ++trial) {
    const size_t dim = 1 + rng() % 40, n = rng() % 60;
    std::vector<std::vector<float>> vectors;
    std::vector<TokenRange> ranges;
    uint32_t at = 0;
    for (size_t p = 0; p < n; ++p) {
      vectors.push_back(random_vector(rng, dim));
      const uint32_t len = 1 + rng() % 50;
      ranges.push_back({at, at + len});
      at += len;
    }
    if (n > 3) vectors[2] = vectors[1];  // a tie: the earlier passage first
    const MemoryDense source(vectors, ranges, static_cast<uint32_t>(dim));
    const std::vector<float> q = random_vector(rng, dim);
    const TokenRange within{at / 4, at / 4 + at / 2};
    const std::vector<ScoredPassage> want = oracle(vectors, ranges, q, within);
    const std::vector<ScoredPassage> got = dense_search(source, q, DenseOptions{}, within);
    ASSERT_EQ(got.size(), want.size()) << trial;
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_NEAR(got[i].score, want[i].score, 1e-9) << trial << " " << i;
      EXPECT_EQ(got[i].range, want[i].range) << trial << " " << i;
      if (i > 0) {
        EXPECT_GE(got[i - 1].score, got[i].score);
      }
    }
    // Without `within`, every passage, its whole range.
    EXPECT_EQ(dense_search(source, q, DenseOptions{}).size(), n);
    DenseOptions top;
    top.max_passages = 3;
    const auto best = dense_search(source, q, top, within);
    ASSERT_EQ(best.size(), std::min<size_t>(3, want.size()));
    for (size_t i = 0; i < best.size(); ++i)
      EXPECT_EQ(best[i].passage, got[i].passage);
  }
}

TEST(DenseSearch, ScaleOfTheVectorsDoesNotMatter) {
  const std::vector<TokenRange> ranges = {{0, 10}, {10, 20}, {20, 30}};
  const MemoryDense source({{1, 0, 0}, {0, 5, 0}, {0.6f, 0.8f, 0}}, ranges);
  const std::vector<ScoredPassage> got =
      dense_search(source, std::vector<float>{0, 2, 0}, DenseOptions{});
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].passage, 1u);
  EXPECT_NEAR(got[0].score, 1.0, 1e-12);
  EXPECT_EQ(got[1].passage, 2u);
  EXPECT_NEAR(got[1].score, 0.8, 1e-7);
  EXPECT_EQ(got[2].passage, 0u);
  EXPECT_NEAR(got[2].score, 0.0, 1e-12);
}

TEST(DenseSearch, RefusesAQueryOfAnotherSizeOrZero) {
  const MemoryDense source({{1, 0}, {0, 1}}, {{0, 5}, {5, 9}});
  EXPECT_THROW(dense_search(source, std::vector<float>{1, 0, 0}, DenseOptions{}), Error);
  EXPECT_THROW(dense_search(source, std::vector<float>{0, 0}, DenseOptions{}), Error);
  const nlohmann::json j = DenseOptions{};
  EXPECT_EQ(j.at("max_passages"), 0);
}

// retrieve() with --method dense: the passage nearest the question fills the budget first, from
// the document asked about only; without a dense source the method fails with a clear error.
TEST(DensePipeline, DenseMethodSelectsTheNearestPassage) {
  std::vector<std::vector<float>> vectors;
  std::vector<TokenRange> ranges;
  for (uint32_t p = 0; p < 30; ++p) {
    vectors.push_back(
        {std::cos(0.05f * static_cast<float>(p)), std::sin(0.05f * static_cast<float>(p))});
    ranges.push_back({p * 100, p * 100 + 100});
  }
  vectors[25] = {0, 1};  // the passage about the question
  vectors[5] = {0, 1};   // as good, but in the other document
  const MemoryDense dense(vectors, ranges);
  const std::vector<float> question = {0, 3};
  RetrievalInputs in;
  in.doc = {1000, 3000};
  in.dense = &dense;
  in.query_vector = question;
  RetrievalOptions o;
  o.method = Method::kDense;
  o.budget.budget = 150;
  const RetrievalResult r = retrieve(in, o);
  ASSERT_FALSE(r.dense_passages.empty());
  EXPECT_EQ(r.dense_passages[0].passage, 25u);
  EXPECT_EQ(r.dense_passages.size(), 20u);  // the document's passages only
  ASSERT_EQ(r.selection.n_tokens, 150u);
  EXPECT_EQ(r.selection.tokens_by_source[static_cast<size_t>(Source::kDense)], 150u);
  bool found = false;
  for (const SelectedRange& s : r.selection.ranges) {
    EXPECT_EQ(s.source, Source::kDense);
    EXPECT_GE(s.range.begin, 1000u);
    found |= s.range == TokenRange{2500, 2600};
  }
  EXPECT_TRUE(found);
  in.dense = nullptr;
  try {
    retrieve(in, o);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("dense passage embeddings"), std::string::npos)
        << e.what();
  }
  const nlohmann::json j = o;
  EXPECT_EQ(j.at("method"), "dense");
  EXPECT_EQ(j.at("dense").at("max_passages"), 0);
}

}  // namespace
}  // namespace s3::retrieval
