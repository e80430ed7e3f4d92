#include "retrieval/spans.h"

#include <algorithm>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/base/error.h"

namespace s3::retrieval {
namespace {

// out[i] = (1/w) Σ in[j] over j in [i - w/2, i - w/2 + w) ∩ [0, n), summed naively in double.
std::vector<double> naive_smooth(const std::vector<float>& in, uint32_t w) {
  const auto n = static_cast<int64_t>(in.size());
  std::vector<double> out(in.size());
  for (int64_t i = 0; i < n; ++i) {
    double s = 0;
    for (int64_t j = i - w / 2; j < i - w / 2 + static_cast<int64_t>(w); ++j) {
      if (j >= 0 && j < n) s += in[static_cast<size_t>(j)];
    }
    out[static_cast<size_t>(i)] = s / w;
  }
  return out;
}

// Greedy NMS written the obvious way: sort every position by (value desc, position asc), visit
// in that order, skip suppressed or covered ones, grow as spans.h describes.
std::vector<Candidate> naive_spans(const std::vector<float>& sm, uint32_t base,
                                   const SpanOptions& o) {
  const auto n = static_cast<uint32_t>(sm.size());
  std::vector<uint32_t> order(n);
  std::iota(order.begin(), order.end(), 0u);
  std::sort(order.begin(), order.end(),
            [&](uint32_t a, uint32_t b) { return sm[a] != sm[b] ? sm[a] > sm[b] : a < b; });
  std::vector<bool> suppressed(n), covered(n);
  std::vector<Candidate> out;
  const int64_t r = o.effective_nms_radius();
  for (uint32_t p : order) {
    if (!(sm[p] > 0) || suppressed[p] || covered[p]) continue;
    const double thr = o.grow_fraction * sm[p];
    uint32_t lo = p, hi = p + 1;
    while (hi - lo < o.max_span_tokens) {
      const bool l = lo > 0 && !covered[lo - 1] && sm[lo - 1] >= thr;
      const bool rt = hi < n && !covered[hi] && sm[hi] >= thr;
      if (l && (!rt || sm[lo - 1] >= sm[hi])) {
        --lo;
      } else if (rt) {
        ++hi;
      } else {
        break;
      }
    }
    for (uint32_t i = lo; i < hi; ++i)
      covered[i] = true;
    for (int64_t i = std::max<int64_t>(0, p - r); i <= std::min<int64_t>(n - 1, p + r); ++i) {
      suppressed[static_cast<size_t>(i)] = true;
    }
    out.push_back({{base + lo, base + hi}, base + p, sm[p]});
  }
  return out;
}

void expect_same(const std::vector<Candidate>& a, const std::vector<Candidate>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].range, b[i].range) << i;
    EXPECT_EQ(a[i].anchor, b[i].anchor) << i;
    EXPECT_EQ(a[i].score, b[i].score) << i;
  }
}

void expect_well_formed(const std::vector<Candidate>& spans, TokenRange doc, const SpanOptions& o) {
  std::vector<TokenRange> sorted;
  for (size_t i = 0; i < spans.size(); ++i) {
    const Candidate& c = spans[i];
    EXPECT_GE(c.range.begin, doc.begin);
    EXPECT_LE(c.range.end, doc.end);
    EXPECT_FALSE(c.range.empty());
    EXPECT_LE(c.range.size(), o.max_span_tokens);
    EXPECT_TRUE(c.range.contains(c.anchor));
    if (i > 0) {
      EXPECT_GE(spans[i - 1].score, c.score);
    }
    sorted.push_back(c.range);
  }
  std::sort(sorted.begin(), sorted.end(),
            [](TokenRange a, TokenRange b) { return a.begin < b.begin; });
  for (size_t i = 1; i < sorted.size(); ++i)
    EXPECT_LE(sorted[i - 1].end, sorted[i].begin);
}

TEST(Smooth, MatchesNaive) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(0.0f, 10.0f);
  for (uint32_t n : {1u, 2u, 7u, 31u, 32u, 33u, 100u, 1000u}) {
    std::vector<float> in(n);
    for (auto& x : in)
      x = rng() % 3 == 0 ? 0.0f : u(rng);
    for (uint32_t w : {1u, 2u, 3u, 8u, 32u, 33u, 64u, 2000u}) {
      std::vector<float> out;
      box_smooth(in, w, out);
      const auto want = naive_smooth(in, w);
      ASSERT_EQ(out.size(), n);
      for (size_t i = 0; i < n; ++i) {
        ASSERT_NEAR(out[i], want[i], 1e-6 * std::max(1.0, want[i])) << "n=" << n << " w=" << w;
      }
    }
  }
}

TEST(Smooth, ZerosStayExactlyZero) {
  std::vector<float> in(500, 0.0f);
  in[10] = 1e6f;
  in[11] = 3.3f;
  std::vector<float> out;
  box_smooth(in, 32, out);
  for (size_t i = 100; i < 500; ++i)
    ASSERT_EQ(out[i], 0.0f) << i;
  EXPECT_THROW(box_smooth(in, 0, out), UsageError);
}

TEST(Spans, MatchesNaiveGreedyOnRandomScores) {
  std::mt19937 rng(11);
  for (int trial = 0; trial < 40; ++trial) {
    const uint32_t n = 1 + rng() % 3000;
    std::vector<float> s(n);
    // Quantised values make many exact ties; some zero stretches.
    for (auto& x : s)
      x = rng() % 5 == 0 ? 0.0f : static_cast<float>(rng() % 8);
    SpanOptions o;
    o.smooth_width = 1 + rng() % 40;
    o.max_span_tokens = 1 + rng() % 300;
    if (trial % 3 == 0) o.nms_radius = rng() % 50;
    o.grow_fraction = (rng() % 11) / 10.0;
    std::vector<float> sm;
    box_smooth(s, o.smooth_width, sm);
    const TokenRange doc{1000, 1000 + n};
    const auto fast = extract_spans(sm, doc, o);
    expect_same(fast, naive_spans(sm, doc.begin, o));
    expect_well_formed(fast, doc, o);
    expect_same(find_spans(s, doc, o), fast);
  }
}

TEST(Spans, AllZeroGivesNoSpans) {
  const std::vector<float> zero(1000, 0.0f);
  EXPECT_TRUE(find_spans(zero, {0, 1000}, {}).empty());
  EXPECT_TRUE(find_spans({}, {5, 5}, {}).empty());
}

TEST(Spans, PeaksAtDocumentEdges) {
  SpanOptions o;
  o.smooth_width = 1;
  std::vector<float> s(600, 0.0f);
  s[0] = 5;
  s[1] = 4;
  s[599] = 3;
  const auto spans = find_spans(s, {100, 700}, o);
  ASSERT_EQ(spans.size(), 2u);
  EXPECT_EQ(spans[0].range, (TokenRange{100, 102}));  // clipped at the start
  EXPECT_EQ(spans[0].anchor, 100u);
  EXPECT_EQ(spans[1].range, (TokenRange{699, 700}));  // the last position
  EXPECT_EQ(spans[1].anchor, 699u);

  // With smoothing the edge peaks survive too (zero padding halves them but they stay > 0).
  const auto smoothed = find_spans(s, {100, 700}, SpanOptions{});
  ASSERT_GE(smoothed.size(), 2u);
  EXPECT_EQ(smoothed[0].range.begin, 100u);
  EXPECT_EQ(smoothed[1].range.end, 700u);
}

TEST(Spans, TiesGoToLowerPosition) {
  SpanOptions o;
  o.smooth_width = 1;
  o.nms_radius = 2;
  std::vector<float> s(20, 0.0f);
  s[4] = s[5] = s[6] = 1.0f;  // plateau: the peak is its leftmost position
  s[15] = 1.0f;               // equal height further right: visited after the plateau
  const auto spans = find_spans(s, {0, 20}, o);
  ASSERT_EQ(spans.size(), 2u);
  EXPECT_EQ(spans[0].anchor, 4u);
  EXPECT_EQ(spans[0].range, (TokenRange{4, 7}));
  EXPECT_EQ(spans[1].anchor, 15u);
}

TEST(Spans, GrowthStopsBelowFractionAndAtCap) {
  SpanOptions o;
  o.smooth_width = 1;
  o.grow_fraction = 0.5;
  o.nms_radius = 0;
  //                       0  1  2  3   4  5  6  7  8
  const std::vector<float> s = {1, 2, 6, 8, 10, 9, 5, 4, 1};
  auto spans = find_spans(s, {0, 9}, o);
  // Peak 10 at 4; >= 5 are positions 2..6.
  EXPECT_EQ(spans[0].range, (TokenRange{2, 7}));
  o.max_span_tokens = 3;  // grows to the higher neighbour first: 4 -> 5 (9) -> 3 (8)
  spans = find_spans(s, {0, 9}, o);
  EXPECT_EQ(spans[0].range, (TokenRange{3, 6}));
  o.max_span_tokens = 1;
  spans = find_spans(s, {0, 9}, o);
  EXPECT_EQ(spans[0].range, (TokenRange{4, 5}));
}

TEST(Spans, OptionsValidateAndSerialise) {
  auto message = [](const SpanOptions& o) {
    try {
      o.validate();
    } catch (const UsageError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  SpanOptions o;
  EXPECT_EQ(o.effective_nms_radius(), 128u);
  o.smooth_width = 0;
  EXPECT_NE(message(o).find("--smooth-width"), std::string::npos);
  o = {};
  o.grow_fraction = 1.5;
  EXPECT_NE(message(o).find("--grow-fraction"), std::string::npos);
  o = {};
  o.max_span_tokens = 0;
  EXPECT_NE(message(o).find("--max-span"), std::string::npos);
  o = {};
  o.max_span_tokens = 100;
  const nlohmann::json j = o;
  EXPECT_EQ(j.at("nms_radius"), 50);
  EXPECT_EQ(j.at("smooth_width"), 32);
  EXPECT_THROW(extract_spans(std::vector<float>(3), {0, 4}, SpanOptions{}), Error);
}

}  // namespace
}  // namespace s3::retrieval
