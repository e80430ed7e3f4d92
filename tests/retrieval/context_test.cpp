#include "retrieval/context.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace s3::retrieval {
namespace {

// Token i of the fake document is the text "<i>" (so range text shows its exact bounds).
std::string fake_text(TokenRange r) {
  std::string s;
  for (uint32_t t = r.begin; t < r.end; ++t)
    s += "<" + std::to_string(t) + ">";
  return s;
}

TEST(Context, JoinsInDocumentOrderWithSeparators) {
  int calls = 0;
  const RangeText text = [&](TokenRange r) {
    ++calls;
    return fake_text(r);
  };
  const std::vector<SelectedRange> ranges = {{{0, 2}, Source::kLead, 0},
                                             {{2, 3}, Source::kS3, 1},  // adjacent: no separator
                                             {{7, 8}, Source::kBm25, 2},
                                             {{9, 10}, Source::kTail, 0}};
  EXPECT_EQ(assemble_context(ranges, text), "<0><1><2>\n...\n<7>\n...\n<9>");
  EXPECT_EQ(calls, 3);  // the adjacent ranges are fetched as one
  ContextOptions o;
  o.separator = " | ";
  EXPECT_EQ(assemble_context(ranges, text, o), "<0><1><2> | <7> | <9>");
  const nlohmann::json j = o;
  EXPECT_EQ(j.at("separator"), " | ");
}

TEST(Context, EmptyAndInvalidInput) {
  const RangeText text = fake_text;
  EXPECT_EQ(assemble_context({}, text), "");
  const std::vector<SelectedRange> with_empty = {{{3, 3}, Source::kS3, 0},
                                                 {{4, 5}, Source::kS3, 0}};
  EXPECT_EQ(assemble_context(with_empty, text), "<4>");
  const std::vector<SelectedRange> overlap = {{{0, 5}, Source::kS3, 0}, {{4, 6}, Source::kBm25, 0}};
  EXPECT_THROW(assemble_context(overlap, text), Error);
  const std::vector<SelectedRange> unsorted = {{{8, 9}, Source::kS3, 0},
                                               {{1, 2}, Source::kBm25, 0}};
  EXPECT_THROW(assemble_context(unsorted, text), Error);
}

}  // namespace
}  // namespace s3::retrieval
