#include "retrieval/packing.h"

#include <algorithm>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/base/error.h"

namespace s3::retrieval {
namespace {

constexpr Method kAll[] = {Method::kS3,   Method::kBm25,  Method::kS3Hybrid,
                           Method::kFull, Method::kDense, Method::kS3Dense};

// Invariants of every selection: inside the document, sorted, non-overlapping, touching ranges of
// one source merged, counts consistent, exactly min(budget, doc length) tokens.
void expect_valid(const Selection& s, TokenRange doc, uint32_t budget) {
  uint32_t total = 0;
  std::array<uint32_t, kSourceCount> by{};
  for (size_t i = 0; i < s.ranges.size(); ++i) {
    const SelectedRange& r = s.ranges[i];
    EXPECT_FALSE(r.range.empty());
    EXPECT_GE(r.range.begin, doc.begin);
    EXPECT_LE(r.range.end, doc.end);
    if (i > 0) {
      const SelectedRange& p = s.ranges[i - 1];
      EXPECT_LE(p.range.end, r.range.begin);
      if (p.range.end == r.range.begin) {
        EXPECT_NE(p.source, r.source);
      }
    }
    total += r.range.size();
    by[static_cast<size_t>(r.source)] += r.range.size();
  }
  EXPECT_EQ(total, s.n_tokens);
  EXPECT_EQ(by, s.tokens_by_source);
  EXPECT_EQ(s.n_tokens, std::min(budget, doc.size()));
}

std::vector<Candidate> random_candidates(std::mt19937& rng, TokenRange doc, int n, uint32_t max_len,
                                         bool anchor_at_start) {
  std::vector<Candidate> out;
  for (int i = 0; i < n && !doc.empty(); ++i) {
    const uint32_t b = doc.begin + rng() % doc.size();
    const uint32_t e = std::min<uint32_t>(doc.end, static_cast<uint32_t>(b + 1 + rng() % max_len));
    const uint32_t a = anchor_at_start ? b : b + rng() % (e - b);
    out.push_back({{b, e}, a, static_cast<float>(rng() % 20)});  // ties on purpose
  }
  return out;
}

TEST(Packing, EveryMethodExactlyFillsMinOfBudgetAndDoc) {
  std::mt19937 rng(23);
  for (int trial = 0; trial < 300; ++trial) {
    const uint32_t len = rng() % 3000;
    const TokenRange doc{500, 500 + len};
    BudgetOptions o;
    o.budget = 1 + rng() % 2500;
    o.lead_tokens = rng() % 200;
    o.tail_tokens = rng() % 200;
    o.bm25_share = (rng() % 11) / 10.0;
    o.lead_tail_max_share = (rng() % 11) / 10.0;
    // Candidates may stick out of the document and be few, many or none.
    const auto s3 =
        random_candidates(rng, {400, 600 + len}, static_cast<int>(rng() % 30), 300, false);
    const auto bm =
        random_candidates(rng, {400, 600 + len}, static_cast<int>(rng() % 30), 150, true);
    const auto dense =
        random_candidates(rng, {400, 600 + len}, static_cast<int>(rng() % 30), 150, true);
    for (Method m : kAll) {
      const Selection s = select_ranges(m, doc, CandidateSets{s3, bm, dense}, o);
      SCOPED_TRACE(std::string(method_name(m)) + " trial " + std::to_string(trial));
      expect_valid(s, doc, o.budget);
      auto tokens = [&](Source src) { return s.tokens_by_source[static_cast<size_t>(src)]; };
      if (!method_uses_bm25(m)) {
        EXPECT_EQ(tokens(Source::kBm25), 0u);
      }
      if (!method_uses_s3(m)) {
        EXPECT_EQ(tokens(Source::kS3), 0u);
      }
      if (!method_uses_dense(m)) {
        EXPECT_EQ(tokens(Source::kDense), 0u);
      }
    }
  }
}

TEST(Packing, DefaultHybridSplit) {
  // Plenty of disjoint candidates of both kinds: 128 + 128 lead/tail, 25% BM25, the rest S3.
  const TokenRange doc{0, 100000};
  std::vector<Candidate> s3, bm;
  for (uint32_t i = 0; i < 50; ++i) {
    const uint32_t b = 1000 + i * 1000;
    s3.push_back({{b, b + 200}, b + 100, 100.0f - i});
    bm.push_back({{b + 500, b + 600}, b + 500, 50.0f - i});
  }
  const Selection s = select_ranges(Method::kS3Hybrid, doc, s3, bm, BudgetOptions{});
  expect_valid(s, doc, 2048);
  EXPECT_EQ(s.tokens_by_source[static_cast<size_t>(Source::kLead)], 128u);
  EXPECT_EQ(s.tokens_by_source[static_cast<size_t>(Source::kTail)], 128u);
  EXPECT_EQ(s.tokens_by_source[static_cast<size_t>(Source::kBm25)], 512u);
  EXPECT_EQ(s.tokens_by_source[static_cast<size_t>(Source::kS3)], 2048u - 768u);
  EXPECT_EQ(s.ranges.front().range, (TokenRange{0, 128}));
  EXPECT_EQ(s.ranges.back().range, (TokenRange{99872, 100000}));
  // The best S3 span is in, whole.
  EXPECT_TRUE(std::any_of(s.ranges.begin(), s.ranges.end(), [](const SelectedRange& r) {
    return r.source == Source::kS3 && r.range == TokenRange{1000, 1200} && r.score == 100.0f;
  }));
  const nlohmann::json j = s;
  EXPECT_EQ(j.at("n_tokens"), 2048);
  EXPECT_EQ(j.at("tokens_by_source").at("bm25"), 512);
}

// dense packs like bm25 with its own candidates; s3-dense splits like s3-hybrid with dense
// passages in BM25's quota. BM25 candidates given to either are ignored.
TEST(Packing, DenseMethodsUseDensePassages) {
  const TokenRange doc{0, 100000};
  std::vector<Candidate> s3, bm, dense;
  for (uint32_t i = 0; i < 50; ++i) {
    const uint32_t b = 1000 + i * 1000;
    s3.push_back({{b, b + 200}, b + 100, 100.0f - i});
    bm.push_back({{b + 300, b + 400}, b + 300, 50.0f - i});
    dense.push_back({{b + 500, b + 600}, b + 500, 0.9f - 0.01f * i});
  }
  const CandidateSets all{s3, bm, dense};
  const Selection d = select_ranges(Method::kDense, doc, all, BudgetOptions{});
  expect_valid(d, doc, 2048);
  EXPECT_EQ(d.tokens_by_source[static_cast<size_t>(Source::kDense)], 2048u);
  // The 20 most similar passages whole, then the prefix of the 21st.
  EXPECT_EQ(d.ranges.front().range, (TokenRange{1500, 1600}));
  EXPECT_EQ(d.ranges.back().range, (TokenRange{21500, 21548}));
  EXPECT_FLOAT_EQ(d.ranges.front().score, 0.9f);
  // bm25 and dense pick the same ranges from the same candidates, under their own names.
  const Selection b =
      select_ranges(Method::kBm25, doc, CandidateSets{s3, dense, bm}, BudgetOptions{});
  ASSERT_EQ(b.ranges.size(), d.ranges.size());
  for (size_t i = 0; i < b.ranges.size(); ++i) {
    EXPECT_EQ(b.ranges[i].range, d.ranges[i].range);
    EXPECT_EQ(b.ranges[i].source, Source::kBm25);
  }
  const Selection h = select_ranges(Method::kS3Dense, doc, all, BudgetOptions{});
  expect_valid(h, doc, 2048);
  EXPECT_EQ(h.tokens_by_source[static_cast<size_t>(Source::kLead)], 128u);
  EXPECT_EQ(h.tokens_by_source[static_cast<size_t>(Source::kTail)], 128u);
  EXPECT_EQ(h.tokens_by_source[static_cast<size_t>(Source::kDense)], 512u);
  EXPECT_EQ(h.tokens_by_source[static_cast<size_t>(Source::kS3)], 2048u - 768u);
  EXPECT_EQ(h.tokens_by_source[static_cast<size_t>(Source::kBm25)], 0u);
  const nlohmann::json j = h;
  EXPECT_EQ(j.at("tokens_by_source").at("dense"), 512);
}

TEST(Packing, NoS3SpansBudgetGoesToOtherSources) {
  const TokenRange doc{0, 10000};
  std::vector<Candidate> bm;
  for (uint32_t i = 0; i < 40; ++i)
    bm.push_back({{2000 + i * 100, 2100 + i * 100}, 2000 + i * 100, 1.0f});
  BudgetOptions o;
  o.budget = 1000;
  const Selection h = select_ranges(Method::kS3Hybrid, doc, {}, bm, o);
  expect_valid(h, doc, 1000);
  EXPECT_EQ(h.tokens_by_source[static_cast<size_t>(Source::kS3)], 0u);
  EXPECT_EQ(h.tokens_by_source[static_cast<size_t>(Source::kBm25)], 1000u - 256u);
  // Pure S3 with nothing to offer: the lead and tail fill the budget, half each.
  const Selection p = select_ranges(Method::kS3, doc, {}, bm, o);
  expect_valid(p, doc, 1000);
  EXPECT_EQ(p.tokens_by_source[static_cast<size_t>(Source::kLead)], 500u);
  EXPECT_EQ(p.tokens_by_source[static_cast<size_t>(Source::kTail)], 500u);
  // And BM25 exhausted in the hybrid hands its share to S3.
  std::vector<Candidate> s3;
  for (uint32_t i = 0; i < 10; ++i)
    s3.push_back({{5000 + i * 300, 5200 + i * 300}, 5100 + i * 300, 2.0f});
  const std::vector<Candidate> one_bm = {{{300, 350}, 300, 1.0f}};
  const Selection g = select_ranges(Method::kS3Hybrid, doc, s3, one_bm, o);
  EXPECT_EQ(g.tokens_by_source[static_cast<size_t>(Source::kBm25)], 50u);
  EXPECT_EQ(g.tokens_by_source[static_cast<size_t>(Source::kS3)], 1000u - 256u - 50u);
}

TEST(Packing, BudgetSmallerThanOneSpanTrimsAroundPeak) {
  const TokenRange doc{0, 5000};
  const std::vector<Candidate> s3 = {{{400, 656}, 500, 3.0f}};
  BudgetOptions o;
  o.budget = 10;
  const Selection s = select_ranges(Method::kS3, doc, s3, {}, o);
  expect_valid(s, doc, 10);
  ASSERT_EQ(s.ranges.size(), 1u);
  EXPECT_EQ(s.ranges[0].range, (TokenRange{495, 505}));  // left first: 5 left, peak, 4 right
  EXPECT_EQ(s.ranges[0].source, Source::kS3);
  EXPECT_EQ(s.ranges[0].score, 3.0f);
  o.budget = 1;
  const Selection one = select_ranges(Method::kS3Hybrid, doc, s3, {}, o);
  ASSERT_EQ(one.ranges.size(), 1u);
  EXPECT_EQ(one.ranges[0].range, (TokenRange{500, 501}));
  // A BM25 passage cut short keeps its beginning.
  const std::vector<Candidate> bm = {{{1000, 1100}, 1000, 1.0f}};
  o.budget = 30;
  const Selection b = select_ranges(Method::kBm25, doc, {}, bm, o);
  ASSERT_EQ(b.ranges.size(), 1u);
  EXPECT_EQ(b.ranges[0].range, (TokenRange{1000, 1030}));
  // A peak at the span's edge: the window is clipped there and grows the other way.
  const std::vector<Candidate> edge = {{{0, 256}, 0, 1.0f}};
  o.budget = 7;
  const Selection e = select_ranges(Method::kS3, doc, edge, {}, o);
  EXPECT_EQ(e.ranges[0].range, (TokenRange{0, 7}));
}

TEST(Packing, BudgetLargerThanDocumentSelectsAll) {
  const TokenRange doc{100, 400};
  const std::vector<Candidate> s3 = {{{150, 200}, 170, 1.0f}};
  const std::vector<Candidate> bm = {{{300, 350}, 300, 1.0f}};
  BudgetOptions o;
  o.budget = 100000;
  for (Method m : kAll) {
    const Selection s = select_ranges(m, doc, s3, bm, o);
    expect_valid(s, doc, o.budget);
    EXPECT_EQ(s.ranges.front().range.begin, 100u);
    EXPECT_EQ(s.ranges.back().range.end, 400u);
  }
}

TEST(Packing, OverlapsAcrossSourcesCountedOnce) {
  const TokenRange doc{0, 1000};
  BudgetOptions o;
  o.lead_tokens = o.tail_tokens = 0;
  o.budget = 150;
  o.bm25_share = 0.5;
  // BM25 [100, 200) gets 75 tokens (its prefix); S3 [150, 250) then adds only its 75 new ones.
  const std::vector<Candidate> bm = {{{100, 200}, 100, 1.0f}};
  const std::vector<Candidate> s3 = {{{150, 250}, 200, 5.0f}};
  const Selection s = select_ranges(Method::kS3Hybrid, doc, s3, bm, o);
  expect_valid(s, doc, 150);
  ASSERT_EQ(s.ranges.size(), 2u);
  EXPECT_EQ(s.ranges[0].range, (TokenRange{100, 175}));
  EXPECT_EQ(s.ranges[0].source, Source::kBm25);
  EXPECT_EQ(s.ranges[1].range, (TokenRange{175, 250}));
  EXPECT_EQ(s.ranges[1].source, Source::kS3);

  // An S3 span entirely inside the lead adds nothing; the next span is used instead.
  BudgetOptions h;
  h.budget = 400;
  const std::vector<Candidate> inside = {{{10, 60}, 30, 9.0f}, {{500, 520}, 510, 1.0f}};
  const Selection t = select_ranges(Method::kS3Hybrid, doc, inside, {}, h);
  expect_valid(t, doc, 400);
  EXPECT_EQ(t.ranges.front().source, Source::kLead);
  EXPECT_TRUE(std::any_of(t.ranges.begin(), t.ranges.end(), [](const SelectedRange& r) {
    return r.source == Source::kS3 && r.range == TokenRange{500, 520};
  }));
}

TEST(Packing, LeadAndTailShrinkForSmallBudgets) {
  const TokenRange doc{0, 10000};
  BudgetOptions o;
  o.budget = 100;  // lead + tail may take at most 50
  const std::vector<Candidate> s3 = {{{5000, 5256}, 5100, 1.0f}};
  const Selection s = select_ranges(Method::kS3Hybrid, doc, s3, {}, o);
  expect_valid(s, doc, 100);
  EXPECT_EQ(s.tokens_by_source[static_cast<size_t>(Source::kLead)], 25u);
  EXPECT_EQ(s.tokens_by_source[static_cast<size_t>(Source::kTail)], 25u);
  EXPECT_EQ(s.tokens_by_source[static_cast<size_t>(Source::kS3)], 50u);
}

TEST(Packing, MiddleTruncation) {
  const TokenRange doc{1000, 2000};
  Selection s = select_full(doc, 101);
  expect_valid(s, doc, 101);
  ASSERT_EQ(s.ranges.size(), 2u);
  EXPECT_EQ(s.ranges[0].range, (TokenRange{1000, 1051}));
  EXPECT_EQ(s.ranges[0].source, Source::kLead);
  EXPECT_EQ(s.ranges[1].range, (TokenRange{1950, 2000}));
  EXPECT_EQ(s.ranges[1].source, Source::kTail);
  s = select_full(doc, 1000);
  ASSERT_EQ(s.ranges.size(), 1u);
  EXPECT_EQ(s.ranges[0].range, doc);
  s = select_full(doc, 1);
  ASSERT_EQ(s.ranges.size(), 1u);
  EXPECT_EQ(s.ranges[0].range, (TokenRange{1000, 1001}));
  BudgetOptions o;
  o.budget = 200;
  EXPECT_EQ(select_ranges(Method::kFull, doc, {}, {}, o).ranges[1].range, (TokenRange{1900, 2000}));
  EXPECT_TRUE(select_full({5, 5}, 10).ranges.empty());
}

TEST(Packing, LeadTailHelpers) {
  EXPECT_EQ(lead_range({10, 20}, 3), (TokenRange{10, 13}));
  EXPECT_EQ(lead_range({10, 20}, 30), (TokenRange{10, 20}));
  EXPECT_EQ(tail_range({10, 20}, 3), (TokenRange{17, 20}));
  EXPECT_EQ(tail_range({10, 20}, 30), (TokenRange{10, 20}));
}

TEST(Packing, OptionsAndMethodNames) {
  for (Method m : kAll)
    EXPECT_EQ(parse_method(method_name(m)), m);
  try {
    parse_method("colbert");
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("--method"), std::string::npos);
  }
  BudgetOptions o;
  o.budget = 0;
  EXPECT_THROW(o.validate(), UsageError);
  o = {};
  o.bm25_share = 1.5;
  EXPECT_THROW(o.validate(), UsageError);
  o = {};
  o.lead_tail_max_share = -0.1;
  EXPECT_THROW(o.validate(), UsageError);
  const nlohmann::json j = BudgetOptions{};
  EXPECT_EQ(j.at("budget"), 2048);
  EXPECT_EQ(j.at("lead"), 128);
  EXPECT_EQ(j.at("bm25_share"), 0.25);
  EXPECT_EQ(source_name(Source::kTail), "tail");
}

}  // namespace
}  // namespace s3::retrieval
