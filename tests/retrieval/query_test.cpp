#include "retrieval/query.h"

#include <cmath>
#include <limits>
#include <vector>

#include <gtest/gtest.h>

#include "core/base/error.h"

namespace s3::retrieval {
namespace {

// Two question tokens, k = 3. Feature 7 fires on both (0.5 and 2.0), 3 on the first only, 9 on
// the second, and the last slot of row 2 is inactive (activation 0).
const std::vector<uint32_t> kIds = {7, 3, 1, 9, 7, 5};
const std::vector<float> kActs = {0.5f, 1.0f, -0.25f, 4.0f, 2.0f, 0.0f};

TEST(Query, SumAggregatesOverRows) {
  const auto f = aggregate_query_layer({kIds, kActs, 3}, Aggregation::kSum);
  const std::vector<QueryFeature> want = {{3, 1.0f}, {7, 2.5f}, {9, 4.0f}};
  EXPECT_EQ(f, want);
}

TEST(Query, MaxKeepsStrongestActivation) {
  const auto f = aggregate_query_layer({kIds, kActs, 3}, Aggregation::kMax);
  const std::vector<QueryFeature> want = {{3, 1.0f}, {7, 2.0f}, {9, 4.0f}};
  EXPECT_EQ(f, want);
}

TEST(Query, NonPositiveActivationsAreInactive) {
  const std::vector<uint32_t> ids = {1, 2};
  const std::vector<float> acts = {0.0f, -1.0f};
  EXPECT_TRUE(aggregate_query_layer({ids, acts, 2}, Aggregation::kSum).empty());
}

TEST(Query, AllLayers) {
  const std::vector<QueryTopK> layers = {{kIds, kActs, 3}, {{}, {}, 3}};
  const QueryFeatures q = aggregate_query(layers, Aggregation::kSum);
  ASSERT_EQ(q.size(), 2u);
  EXPECT_EQ(q[0].size(), 3u);
  EXPECT_TRUE(q[1].empty());
}

TEST(Query, RejectsBadShapes) {
  const std::vector<uint32_t> ids = {1, 2, 3};
  const std::vector<float> two = {1, 1};
  const std::vector<float> three = {1, 1, 1};
  EXPECT_THROW(aggregate_query_layer({ids, two, 1}, Aggregation::kSum), Error);
  EXPECT_THROW(aggregate_query_layer({ids, three, 2}, Aggregation::kSum), Error);
  const std::vector<float> nan = {1, std::numeric_limits<float>::quiet_NaN(), 1};
  EXPECT_THROW(aggregate_query_layer({ids, nan, 3}, Aggregation::kSum), Error);
}

TEST(Query, ParseAggregation) {
  EXPECT_EQ(parse_aggregation("sum"), Aggregation::kSum);
  EXPECT_EQ(parse_aggregation("max"), Aggregation::kMax);
  EXPECT_EQ(aggregation_name(Aggregation::kMax), "max");
  try {
    parse_aggregation("mean");
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("--aggregate"), std::string::npos);
  }
}

}  // namespace
}  // namespace s3::retrieval
