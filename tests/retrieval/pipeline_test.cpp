#include "retrieval/pipeline.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/base/error.h"
#include "fakes.h"

namespace s3::retrieval {
namespace {

using testing::MemoryLexical;
using testing::MemoryPostings;

// One index of two documents: [0, 1000) and [1000, 3000). Feature 5 of slot 0 fires densely
// around 2000, the lexical passages are 100 tokens each.
struct Fixture {
  MemoryPostings postings{2, 3000};
  MemoryLexical lexical{{}, {}};
  QueryFeatures query{{{5, 1.0f}}, {{9, 0.5f}}};
  std::vector<std::string> terms{"needle"};

  Fixture() {
    std::vector<uint32_t> dense;
    for (uint32_t t = 1990; t < 2010; ++t)
      dense.push_back(t);
    dense.push_back(500);  // in the other document
    postings.set(0, 5, dense);
    postings.set(1, 9, {2600, 2601});
    std::vector<std::vector<std::string>> passages;
    std::vector<TokenRange> ranges;
    for (uint32_t p = 0; p < 30; ++p) {
      passages.push_back({"hay", p == 25 ? "needle" : "straw"});
      ranges.push_back({p * 100, p * 100 + 100});
    }
    lexical = MemoryLexical(passages, ranges);
  }
  RetrievalInputs inputs() const { return {{1000, 3000}, &postings, &query, &lexical, terms}; }
};

TEST(Pipeline, EachMethodFillsTheBudget) {
  const Fixture f;
  RetrievalOptions o;
  o.budget.budget = 600;
  for (Method m : {Method::kS3, Method::kBm25, Method::kS3Hybrid, Method::kFull}) {
    o.method = m;
    const RetrievalResult r = retrieve(f.inputs(), o);
    EXPECT_EQ(r.selection.n_tokens, 600u) << method_name(m);
    for (const SelectedRange& s : r.selection.ranges) {
      EXPECT_GE(s.range.begin, 1000u);
      EXPECT_LE(s.range.end, 3000u);
    }
  }
  o.method = Method::kS3Hybrid;
  const RetrievalResult r = retrieve(f.inputs(), o);
  ASSERT_FALSE(r.s3_spans.empty());
  EXPECT_TRUE(r.s3_spans[0].range.contains(2000));
  ASSERT_EQ(r.passages.size(), 1u);
  EXPECT_EQ(r.passages[0].range, (TokenRange{2500, 2600}));
  bool has_s3 = false, has_bm25 = false;
  for (const SelectedRange& s : r.selection.ranges) {
    has_s3 |= s.source == Source::kS3 && s.range.contains(2000);
    has_bm25 |= s.source == Source::kBm25 && s.range.contains(2550);
  }
  EXPECT_TRUE(has_s3);
  EXPECT_TRUE(has_bm25);
  // --explain for the best span: feature 5 of slot 0 explains it.
  const auto why = explain_range(f.postings, f.query, r.s3_spans[0].range, o.score);
  ASSERT_FALSE(why.empty());
  EXPECT_EQ(why[0].layer, 0);
  EXPECT_EQ(why[0].feature, 5u);
}

TEST(Pipeline, CentersScoresBeforeSpans) {
  // retrieve() = score_positions, then center_scores with the inputs' positions (or one chunk from
  // doc.begin without them), then find_spans.
  const Fixture f;
  const PositionContext ctx{{256, 32, false}, {0, 1000}};
  for (ScoreCentering mode :
       {ScoreCentering::kNone, ScoreCentering::kMean, ScoreCentering::kContext}) {
    for (const PositionContext* given : {&ctx, static_cast<const PositionContext*>(nullptr)}) {
      RetrievalOptions o;
      o.method = Method::kS3;
      o.score.score_centering = mode;
      RetrievalInputs in = f.inputs();
      in.positions = given;
      std::vector<float> scores = score_positions(f.postings, f.query, in.doc, o.score);
      center_scores(scores, in.doc, mode, given ? *given : PositionContext{});
      const std::vector<Candidate> want = find_spans(scores, in.doc, o.spans);
      const RetrievalResult r = retrieve(in, o);
      ASSERT_EQ(r.s3_spans.size(), want.size()) << score_centering_name(mode);
      for (size_t i = 0; i < want.size(); ++i) {
        EXPECT_EQ(r.s3_spans[i].range, want[i].range);
        EXPECT_EQ(r.s3_spans[i].score, want[i].score);
      }
      ASSERT_FALSE(r.s3_spans.empty());
      EXPECT_TRUE(r.s3_spans[0].range.contains(2000)) << score_centering_name(mode);
    }
  }
}

TEST(Pipeline, MissingSourcesAreErrors) {
  const Fixture f;
  RetrievalOptions o;
  RetrievalInputs in = f.inputs();
  in.lexical = nullptr;
  EXPECT_THROW(retrieve(in, o), Error);
  o.method = Method::kS3;
  EXPECT_NO_THROW(retrieve(in, o));
  in.postings = nullptr;
  EXPECT_THROW(retrieve(in, o), Error);
  o.method = Method::kFull;
  EXPECT_NO_THROW(retrieve(in, o));
}

TEST(Pipeline, OptionsManifest) {
  RetrievalOptions o;
  const nlohmann::json j = o;
  EXPECT_EQ(j.at("method"), "s3-hybrid");
  EXPECT_EQ(j.at("spans").at("smooth_width"), 32);
  EXPECT_EQ(j.at("spans").at("nms_radius"), 128);
  EXPECT_EQ(j.at("spans").at("grow_fraction"), 0.5);
  EXPECT_EQ(j.at("spans").at("max_span"), 256);
  EXPECT_EQ(j.at("budget").at("tail"), 128);
  EXPECT_EQ(j.at("bm25").at("k1"), 1.2);
  EXPECT_EQ(j.at("score").at("aggregate"), "max");
  EXPECT_EQ(j.at("score").at("query_vectors"), "keys");
  EXPECT_EQ(j.at("context").at("separator"), "\n...\n");
  o.spans.grow_fraction = 2;
  try {
    o.validate();
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("--grow-fraction"), std::string::npos);
  }
}

}  // namespace
}  // namespace s3::retrieval
