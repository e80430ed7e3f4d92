#include "retrieval/scorer.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/base/error.h"
#include "fakes.h"

namespace s3::retrieval {
namespace {

using testing::MemoryPostings;

// The formula of docs/method.md §4.2 written out per position, in double:
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

// The same formula in float, summed in the scorer's documented order (per layer slot in list
// order, then the slot sums added in slot order), with each feature's λ·w·idf rounded once to
// float: must equal the fast path bit for bit, for any number of threads.
std::vector<float> oracle_float(const MemoryPostings& src, const QueryFeatures& q, TokenRange doc) {
  std::vector<float> s(doc.size(), 0.0f);
  for (uint32_t t = doc.begin; t < doc.end; ++t) {
    float total = 0.0f;
    for (size_t l = 0; l < q.size(); ++l) {
      float slot = 0.0f;
      for (const QueryFeature& f : q[l]) {
        const auto& list = src.list(static_cast<int>(l), f.feature);
        if (std::binary_search(list.begin(), list.end(), t)) {
          slot += static_cast<float>(f.weight * feature_idf(list.size()));
        }
      }
      total = l == 0 ? slot : total + slot;
    }
    s[t - doc.begin] = total;
  }
  return s;
}

// The paper's formula: every query feature (no cap, no postings budget). score_positions never
// centres; the pipeline does.
ScoreOptions paper() {
  ScoreOptions o;
  o.aggregation = Aggregation::kSum;
  o.question_keys = false;
  o.max_query_features = 0;
  o.max_query_postings = 0;
  o.score_centering = ScoreCentering::kNone;
  return o;
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
    expect_matches_oracle(r, {1000, 2200}, paper());
    expect_matches_oracle(r, {0, 3000}, paper());
    expect_matches_oracle(r, {2999, 3000}, paper());
    EXPECT_EQ(score_positions(r.src, r.query, {1000, 2200}, paper()),
              oracle_float(r.src, r.query, {1000, 2200}));
  }
}

TEST(Scorer, LayerWeightsAndStopFeaturesMatchBruteForce) {
  const RandomIndex r = make_index(42, 2000, 3, 50, 30, false);
  ScoreOptions o = paper();
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
  EXPECT_EQ(score_positions(a.src, a.query, {300, 1700}, paper()),
            score_positions(b.src, b.query, {300, 1700}, paper()));
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
  EXPECT_EQ(j.at("aggregate"), "max");
  EXPECT_EQ(j.at("query_vectors"), "keys");
  EXPECT_EQ(j.at("max_df_fraction"), 1.0);
}

TEST(Explain, ContributionsAddUpToRangeScore) {
  const RandomIndex r = make_index(3, 1500, 3, 40, 20, false);
  const TokenRange range{400, 460};
  const auto s = score_positions(r.src, r.query, {0, 1500}, paper());
  double total = 0;
  for (uint32_t t = range.begin; t < range.end; ++t)
    total += s[t];
  const auto all = explain_range(r.src, r.query, range, paper(), 0);
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

  const auto top3 = explain_range(r.src, r.query, range, paper(), 3);
  ASSERT_EQ(top3.size(), 3u);
  EXPECT_EQ(top3[0].feature, all[0].feature);
  EXPECT_EQ(top3[2].contribution, all[2].contribution);
  const nlohmann::json j = top3[0];
  EXPECT_TRUE(j.contains("contribution"));
}

// ---- threads, --max-query-features, --score-centering

TEST(Scorer, ThreadsGiveTheSameBits) {
  for (uint32_t seed = 11; seed <= 13; ++seed) {
    const RandomIndex r = make_index(seed, 2500, 4, 50, 30, seed % 2 == 0);
    const TokenRange doc{300, 2400};
    const std::vector<float> want = oracle_float(r.src, r.query, doc);
    for (uint32_t threads : {0u, 1u, 2u, 3u, 4u, 16u}) {  // 0: one per slot, up to the cores
      ScoreOptions o = paper();
      o.threads = threads;
      EXPECT_EQ(score_positions(r.src, r.query, doc, o), want) << "threads " << threads;
    }
  }
}

// The cap by brute force: per slot, every feature with postings ranked by λ·w·idf descending
// (ties: lower id), the first N kept.
std::vector<std::pair<int, uint32_t>> kept_by_brute_force(const MemoryPostings& src,
                                                          const QueryFeatures& q,
                                                          const ScoreOptions& o) {
  std::vector<std::pair<int, uint32_t>> out;
  for (size_t l = 0; l < q.size(); ++l) {
    const double lambda = o.layer_weights.empty() ? 1.0 : o.layer_weights[l];
    std::vector<std::pair<double, uint32_t>> ranked;
    for (const QueryFeature& f : q[l]) {
      const auto df = src.list(static_cast<int>(l), f.feature).size();
      const double unit = lambda * f.weight * feature_idf(df);
      if (df > 0 && unit > 0) ranked.push_back({unit, f.feature});
    }
    std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
      return a.first != b.first ? a.first > b.first : a.second < b.second;
    });
    if (o.max_query_features > 0 && ranked.size() > o.max_query_features) {
      ranked.resize(o.max_query_features);
    }
    uint64_t postings = 0;
    for (const auto& [unit, f] : ranked) {
      const auto df = src.list(static_cast<int>(l), f).size();
      if (o.max_query_postings > 0 && postings + df > o.max_query_postings) continue;
      postings += df;
      out.push_back({static_cast<int>(l), f});
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(Scorer, MaxQueryFeaturesMatchesBruteForce) {
  const RandomIndex r = make_index(21, 2000, 3, 80, 60, false);
  for (const auto& [cap, budget] : std::vector<std::pair<uint32_t, uint64_t>>{{0, 0},
                                                                              {1, 0},
                                                                              {7, 0},
                                                                              {25, 0},
                                                                              {59, 0},
                                                                              {60, 0},
                                                                              {1000, 0},
                                                                              {0, 1},
                                                                              {0, 2000},
                                                                              {25, 2000},
                                                                              {7, 500},
                                                                              {60, 100000}}) {
    ScoreOptions o;
    o.max_query_features = cap;
    o.max_query_postings = budget;
    o.layer_weights = {1.0f, 0.5f, 2.0f};
    const std::vector<PlannedFeature> plan = plan_features(r.src, r.query, o);
    std::vector<std::pair<int, uint32_t>> got;
    for (const PlannedFeature& p : plan)
      got.push_back({p.layer, p.feature});
    // Grouped by slot, in the question's list order within a slot.
    for (size_t i = 1; i < plan.size(); ++i) {
      ASSERT_LE(plan[i - 1].layer, plan[i].layer);
    }
    for (size_t l = 0; l < r.query.size(); ++l) {
      size_t last = 0;
      for (const PlannedFeature& p : plan) {
        if (p.layer != static_cast<int>(l)) continue;
        size_t pos = 0;
        while (r.query[l][pos].feature != p.feature)
          ++pos;
        EXPECT_GE(pos, last);
        last = pos;
      }
    }
    std::sort(got.begin(), got.end());
    EXPECT_EQ(got, kept_by_brute_force(r.src, r.query, o)) << "cap " << cap << " budget " << budget;
    if (budget > 0) {  // the budget holds per slot
      std::vector<uint64_t> per_slot(r.query.size(), 0);
      for (const PlannedFeature& p : plan)
        per_slot[static_cast<size_t>(p.layer)] += p.df;
      for (uint64_t n : per_slot)
        EXPECT_LE(n, budget);
    }
    // The scores are the formula over the kept features only.
    QueryFeatures kept(r.query.size());
    for (const PlannedFeature& p : plan)
      kept[static_cast<size_t>(p.layer)].push_back({p.feature, p.weight});
    ScoreOptions all = o;
    all.max_query_features = 0;
    all.max_query_postings = 0;
    EXPECT_EQ(score_positions(r.src, r.query, {0, 2000}, o),
              score_positions(r.src, kept, {0, 2000}, all));
  }
}

TEST(Scorer, MaxQueryFeaturesBreaksTiesByLowerFeatureId) {
  MemoryPostings src(1, 100);
  for (uint32_t f = 1; f <= 6; ++f)
    src.set(0, f, {f * 10});  // equal df: equal idf
  // Equal weights for 6, 2, 4 and 5; 3 is weaker, 1 stronger.
  const QueryFeatures q = {{{6, 1.0f}, {2, 1.0f}, {3, 0.5f}, {4, 1.0f}, {1, 2.0f}, {5, 1.0f}}};
  ScoreOptions o;
  o.max_query_features = 3;
  const std::vector<PlannedFeature> plan = plan_features(src, q, o);
  ASSERT_EQ(plan.size(), 3u);
  // Kept: 1 (strongest), then 2 and 4 (lowest ids among the tied); in list order 2, 4, 1.
  EXPECT_EQ(plan[0].feature, 2u);
  EXPECT_EQ(plan[1].feature, 4u);
  EXPECT_EQ(plan[2].feature, 1u);
}

// context_length written out: the offset inside the chunk, plus the warm-up the scan ran before
// every chunk but the first (at most `overlap`, at most what precedes the chunk), plus BOS.
uint32_t context_oracle(uint32_t chunk, uint32_t overlap, bool bos, uint32_t d) {
  if (chunk == 0) return d + (bos ? 1 : 0);
  uint32_t chunk_start = 0;
  while (chunk_start + chunk <= d)
    chunk_start += chunk;
  const uint32_t warm = chunk_start == 0 ? 0 : std::min(overlap, chunk_start);
  return (d - chunk_start) + warm + (bos ? 1 : 0);
}

TEST(Centering, ContextLengthFormula) {
  for (uint32_t chunk : {0u, 1u, 7u, 64u}) {
    for (uint32_t overlap : {0u, 3u, 6u}) {
      if (chunk > 0 && overlap >= chunk) continue;
      for (bool bos : {false, true}) {
        for (uint32_t d = 0; d < 300; ++d) {
          ASSERT_EQ(context_length({chunk, overlap, bos}, d),
                    context_oracle(chunk, overlap, bos, d))
              << chunk << " " << overlap << " " << bos << " " << d;
        }
      }
    }
  }
  EXPECT_EQ(context_length({4096, 512, false}, 4096), 512u);
  EXPECT_EQ(context_length({4096, 0, false}, 4097), 1u);
}

// The centering written out per position: its document (the last start at or before it, or the
// range's first position), its context length and log2 bin (0 for c = 0, else floor(log2 c) + 1),
// the mean over the range's positions in that bin, in double.
std::vector<float> centering_oracle(const std::vector<float>& s, TokenRange doc,
                                    ScoreCentering mode, const PositionContext& ctx) {
  if (mode == ScoreCentering::kNone) return s;
  std::vector<int> bin(s.size(), 0);
  for (uint32_t t = doc.begin; t < doc.end; ++t) {
    uint32_t start = doc.begin;
    for (uint32_t b : ctx.doc_starts)
      if (b <= t) start = b;
    const uint32_t c =
        context_oracle(ctx.geometry.chunk, ctx.geometry.overlap, ctx.geometry.bos, t - start);
    int b = 0;
    while (b < 32 && (uint64_t{1} << b) <= c)
      ++b;
    bin[t - doc.begin] = mode == ScoreCentering::kMean ? 0 : b;
  }
  std::vector<float> out(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    double sum = 0;
    size_t n = 0;
    for (size_t j = 0; j < s.size(); ++j) {
      if (bin[j] == bin[i]) {
        sum += s[j];
        ++n;
      }
    }
    out[i] = static_cast<float>(s[i] - sum / static_cast<double>(n));
  }
  return out;
}

TEST(Centering, MatchesBruteForce) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(0.0f, 10.0f);
  struct Case {
    TokenRange doc;
    PositionContext ctx;
  };
  const std::vector<Case> cases = {
      {{0, 700}, {{64, 0, false}, {}}},
      {{0, 700}, {{64, 16, true}, {}}},
      {{100, 900}, {{50, 20, false}, {0, 250, 251, 600}}},  // range starts inside a document
      {{300, 700}, {{0, 0, false}, {0, 400, 500}}},         // chunk unknown: one per document
      {{5, 6}, {{64, 0, false}, {}}},
      {{0, 1000}, {{4096, 512, false}, {0}}},
  };
  for (const Case& c : cases) {
    std::vector<float> s(c.doc.size());
    for (float& x : s)
      x = u(rng);
    for (ScoreCentering mode :
         {ScoreCentering::kNone, ScoreCentering::kMean, ScoreCentering::kContext}) {
      std::vector<float> got = s;
      center_scores(got, c.doc, mode, c.ctx);
      const std::vector<float> want = centering_oracle(s, c.doc, mode, c.ctx);
      ASSERT_EQ(got.size(), want.size());
      for (size_t i = 0; i < got.size(); ++i) {
        ASSERT_NEAR(got[i], want[i], 1e-5f) << score_centering_name(mode) << " position " << i;
      }
    }
  }
  std::vector<float> wrong(3);
  EXPECT_THROW(center_scores(wrong, {0, 4}, ScoreCentering::kMean, {}), Error);
}

TEST(Centering, RemovesAPositionPriorAndKeepsTheQuestionsPeak) {
  // Every chunk of 512 scores high on its first positions (a prior shared by all questions), and
  // one position in the middle of chunk 2 carries the question's signal. Uncentred, the best
  // position is a chunk start; centred per context bin, it is the signal.
  const uint32_t chunk = 512, n = 4 * chunk, signal = 2 * chunk + 300;
  std::vector<float> s(n);
  for (uint32_t t = 0; t < n; ++t)
    s[t] = 10.0f + 6.0f / (1.0f + static_cast<float>(t % chunk) / 8.0f);
  s[signal] += 3.0f;
  auto best = [](const std::vector<float>& v) {
    return static_cast<uint32_t>(std::max_element(v.begin(), v.end()) - v.begin());
  };
  EXPECT_EQ(best(s) % chunk, 0u);
  std::vector<float> centred = s;
  center_scores(centred, {0, n}, ScoreCentering::kContext, {{chunk, 0, false}, {}});
  EXPECT_EQ(best(centred), signal);
  // Without the geometry (one chunk), the prior is not removed.
  std::vector<float> one = s;
  center_scores(one, {0, n}, ScoreCentering::kContext, {});
  EXPECT_NE(best(one), signal);
}

TEST(Centering, NamesAndValidation) {
  EXPECT_EQ(parse_score_centering("none"), ScoreCentering::kNone);
  EXPECT_EQ(parse_score_centering("mean"), ScoreCentering::kMean);
  EXPECT_EQ(parse_score_centering("context"), ScoreCentering::kContext);
  for (ScoreCentering c : {ScoreCentering::kNone, ScoreCentering::kMean, ScoreCentering::kContext})
    EXPECT_EQ(parse_score_centering(score_centering_name(c)), c);
  try {
    parse_score_centering("chunk");
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("--score-centering"), std::string::npos);
  }
  ScoreOptions o;
  EXPECT_EQ(o.threads, 0u);  // default: one thread per layer slot, up to the cores
  EXPECT_NO_THROW(o.validate());
  const nlohmann::json j = ScoreOptions{};
  EXPECT_EQ(j.at("score_centering"), "context");
  EXPECT_EQ(j.at("max_query_features"), 256);
  EXPECT_EQ(j.at("max_query_postings"), 1500000);
  EXPECT_FALSE(j.contains("threads"));  // changes no result: not part of a run's identity
}

}  // namespace
}  // namespace s3::retrieval
