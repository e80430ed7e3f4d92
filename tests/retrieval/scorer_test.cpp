#include "retrieval/scorer.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "fakes.h"

namespace s3::retrieval {
namespace {

using testing::MemoryPostings;

// The formula of method.md §4 written out per position, in double:
//   S[t] = Σ_l Σ_{f ∈ F_q(l)} 1[t ∈ postings_l(f)] · λ_l · w_q(l, f) · 1/(ln(1 + df_l(f)) + 1)
// with the stop-feature rule (df > fraction × n_tokens: dropped) applied per feature.
std::vector<double> oracle(const MemoryPostings& src, const QueryFeatures& q, TokenRange doc,
                           const ScoreOptions& o) {
  std::vector<double> s(doc.size(), 0.0);
  for (uint32_t t = doc.begin; t < doc.end; ++t) {
    for (size_t l = 0; l < q.size(); ++l) {
      const double lambda = o.layer_weights.empty() ? 1.0 : o.layer_weights[l];
      for (const QueryFeature& f : q[l]) {
        const auto& list = src.list(static_cast<int>(l), f.feature);
        const double df = static_cast<double>(list.size());
        if (df > o.max_df_fraction * static_cast<double>(src.n_tokens())) continue;
        if (std::binary_search(list.begin(), list.end(), t)) {
          s[t - doc.begin] += lambda * f.weight / (std::log(1 + df) + 1);
        }
      }
    }
  }
  return s;
}

// The same formula in float, summed in the scorer's documented order (layer slot, then list
// order), with each feature's λ·w·idf rounded once to float: must equal the fast path bit for bit.
std::vector<float> oracle_float(const MemoryPostings& src, const QueryFeatures& q, TokenRange doc) {
  std::vector<float> s(doc.size(), 0.0f);
  for (uint32_t t = doc.begin; t < doc.end; ++t) {
    for (size_t l = 0; l < q.size(); ++l) {
      for (const QueryFeature& f : q[l]) {
        const auto& list = src.list(static_cast<int>(l), f.feature);
        if (std::binary_search(list.begin(), list.end(), t)) {
          s[t - doc.begin] += static_cast<float>(f.weight * feature_idf(list.size()));
        }
      }
    }
  }
  return s;
}

struct RandomIndex {
  MemoryPostings src;
  QueryFeatures query;
};

// `tokens` positions in the index, `layers` slots, features 0..vocab-1 with random list lengths
// (some empty), a question of `nq` random features per slot (some without postings).
RandomIndex make_index(uint32_t seed, uint32_t tokens, int layers, uint32_t vocab, uint32_t nq,
                       bool honour_hint) {
  std::mt19937 rng(seed);
  RandomIndex r{MemoryPostings(layers, tokens, honour_hint), {}};
  std::uniform_int_distribution<uint32_t> pos(0, tokens - 1);
  for (int l = 0; l < layers; ++l) {
    for (uint32_t f = 0; f < vocab; ++f) {
      // Skewed lengths: a few very frequent features (stop-feature candidates).
      const uint32_t len = f % 7 == 0 ? tokens / 2 : rng() % (tokens / 10 + 1);
      if (f % 11 == 5) continue;  // never fired
      std::vector<uint32_t> v(len);
      for (auto& x : v)
        x = pos(rng);
      r.src.set(l, f, v);
    }
  }
  std::uniform_real_distribution<float> w(0.05f, 5.0f);
  r.query.resize(static_cast<size_t>(layers));
  for (int l = 0; l < layers; ++l) {
    std::vector<uint32_t> ids(vocab);
    for (uint32_t i = 0; i < vocab; ++i)
      ids[i] = i;
    std::shuffle(ids.begin(), ids.end(), rng);
    for (uint32_t i = 0; i < nq && i < vocab; ++i)
      r.query[l].push_back({ids[i], w(rng)});
  }
  return r;
}

void expect_matches_oracle(const RandomIndex& r, TokenRange doc, const ScoreOptions& o) {
  const std::vector<float> fast = score_positions(r.src, r.query, doc, o);
  const std::vector<double> slow = oracle(r.src, r.query, doc, o);
  ASSERT_EQ(fast.size(), slow.size());
  // Float accumulation of at most ~100 terms each < 5: relative error well under 1e-5.
  for (size_t i = 0; i < fast.size(); ++i) {
    ASSERT_NEAR(fast[i], slow[i], 1e-5 * std::max(1.0, slow[i])) << "position " << doc.begin + i;
  }
}

TEST(Scorer, IdfFormula) {
  EXPECT_DOUBLE_EQ(feature_idf(0), 1.0);
  EXPECT_DOUBLE_EQ(feature_idf(1), 1.0 / (std::log(2.0) + 1.0));
  EXPECT_DOUBLE_EQ(feature_idf(1000), 1.0 / (std::log(1001.0) + 1.0));
}

TEST(Scorer, MatchesBruteForceOnRandomPostings) {
  for (uint32_t seed = 1; seed <= 6; ++seed) {
    const bool hint = seed % 2 == 0;
    const RandomIndex r = make_index(seed, 3000, 3, 60, 25, hint);
    // A document in the middle of a multi-document index, and the whole index.
    expect_matches_oracle(r, {1000, 2200}, ScoreOptions{});
    expect_matches_oracle(r, {0, 3000}, ScoreOptions{});
    expect_matches_oracle(r, {2999, 3000}, ScoreOptions{});
    EXPECT_EQ(score_positions(r.src, r.query, {1000, 2200}, {}),
              oracle_float(r.src, r.query, {1000, 2200}));
  }
}

TEST(Scorer, LayerWeightsAndStopFeaturesMatchBruteForce) {
  const RandomIndex r = make_index(42, 2000, 3, 50, 30, false);
  ScoreOptions o;
  o.layer_weights = {1.0f, 0.0f, 2.5f};
  o.max_df_fraction = 0.3;  // drops the tokens/2-long lists
  expect_matches_oracle(r, {0, 2000}, o);
  // The stop rule really dropped something: the result differs from the unfiltered one.
  const auto a = score_positions(r.src, r.query, {0, 2000}, o);
  o.max_df_fraction = 1.0;
  const auto b = score_positions(r.src, r.query, {0, 2000}, o);
  EXPECT_NE(a, b);
}

TEST(Scorer, HintIsOptimisationOnly) {
  const RandomIndex a = make_index(7, 2500, 2, 40, 20, false);
  const RandomIndex b = make_index(7, 2500, 2, 40, 20, true);
  EXPECT_EQ(score_positions(a.src, a.query, {300, 1700}, {}),
            score_positions(b.src, b.query, {300, 1700}, {}));
}

TEST(Scorer, MaxQueryFeaturesKeepsStrongest) {
  MemoryPostings src(1, 100);
  src.set(0, 1, {10});
  src.set(0, 2, {20});
  src.set(0, 3, {30});
  const QueryFeatures q = {{{1, 1.0f}, {2, 3.0f}, {3, 2.0f}}};
  ScoreOptions o;
  o.max_query_features = 2;
  const auto s = score_positions(src, q, {0, 100}, o);
  EXPECT_EQ(s[10], 0.0f);
  EXPECT_GT(s[20], 0.0f);
  EXPECT_GT(s[30], 0.0f);
}

TEST(Scorer, SumVersusMaxAggregationChangesVotes) {
  // Feature 1 fires weakly on three question tokens, feature 2 strongly on one: sum prefers the
  // position of feature 1, max that of feature 2.
  MemoryPostings src(1, 10);
  src.set(0, 1, {2});
  src.set(0, 2, {7});
  const std::vector<uint32_t> ids = {1, 1, 1, 2};
  const std::vector<float> acts = {1.0f, 1.0f, 1.0f, 2.0f};
  const QueryTopK topk{ids, acts, 1};
  const auto sum =
      score_positions(src, aggregate_query({&topk, 1}, Aggregation::kSum), {0, 10}, {});
  const auto max =
      score_positions(src, aggregate_query({&topk, 1}, Aggregation::kMax), {0, 10}, {});
  EXPECT_GT(sum[2], sum[7]);
  EXPECT_LT(max[2], max[7]);
  EXPECT_FLOAT_EQ(sum[2], static_cast<float>(3.0 * feature_idf(1)));
  EXPECT_FLOAT_EQ(max[7], static_cast<float>(2.0 * feature_idf(1)));
}

TEST(Scorer, EmptyInputs) {
  MemoryPostings src(2, 50);
  EXPECT_EQ(score_positions(src, {}, {0, 50}, {}), std::vector<float>(50, 0.0f));
  EXPECT_TRUE(score_positions(src, {{{1, 1.0f}}}, {5, 5}, {}).empty());
}

TEST(Scorer, RejectsMismatchedLayers) {
  MemoryPostings src(2, 50);
  const QueryFeatures three(3);
  EXPECT_THROW(score_positions(src, three, {0, 50}, {}), Error);
  ScoreOptions o;
  o.layer_weights = {1.0f};
  try {
    score_positions(src, QueryFeatures(2), {0, 50}, o);
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("--layer-weights"), std::string::npos);
  }
}

TEST(Scorer, OptionsValidateNamesFlags) {
  auto message = [](const ScoreOptions& o) {
    try {
      o.validate();
    } catch (const UsageError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  ScoreOptions o;
  EXPECT_EQ(message(o), "");
  o.max_df_fraction = 0;
  EXPECT_NE(message(o).find("--max-df-fraction"), std::string::npos);
  o = {};
  o.layer_weights = {-1.0f};
  EXPECT_NE(message(o).find("--layer-weights"), std::string::npos);
  const nlohmann::json j = ScoreOptions{};
  EXPECT_EQ(j.at("aggregate"), "sum");
  EXPECT_EQ(j.at("max_df_fraction"), 1.0);
}

TEST(Explain, ContributionsAddUpToRangeScore) {
  const RandomIndex r = make_index(3, 1500, 3, 40, 20, false);
  const TokenRange range{400, 460};
  const auto s = score_positions(r.src, r.query, {0, 1500}, {});
  double total = 0;
  for (uint32_t t = range.begin; t < range.end; ++t)
    total += s[t];
  const auto all = explain_range(r.src, r.query, range, {}, 0);
  double sum = 0;
  for (const auto& c : all) {
    sum += c.contribution;
    // hits counted by brute force
    const auto& list = r.src.list(c.layer, c.feature);
    const auto hits =
        std::count_if(list.begin(), list.end(), [&](uint32_t t) { return range.contains(t); });
    EXPECT_EQ(c.hits, static_cast<uint32_t>(hits));
    EXPECT_DOUBLE_EQ(c.unit, c.weight * feature_idf(c.df));
  }
  EXPECT_NEAR(sum, total, 1e-4 * total);
  for (size_t i = 1; i < all.size(); ++i)
    EXPECT_GE(all[i - 1].contribution, all[i].contribution);

  const auto top3 = explain_range(r.src, r.query, range, {}, 3);
  ASSERT_EQ(top3.size(), 3u);
  EXPECT_EQ(top3[0].feature, all[0].feature);
  EXPECT_EQ(top3[2].contribution, all[2].contribution);
  const nlohmann::json j = top3[0];
  EXPECT_TRUE(j.contains("contribution"));
}

}  // namespace
}  // namespace s3::retrieval
